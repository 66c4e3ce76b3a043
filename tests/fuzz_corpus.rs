//! The fuzz targets (`roomgate::fuzzing`) in the ordinary test command: every checked-in
//! corpus input, then a short seeded random run of each target over mutations of its
//! corpus, and `check` against `serve` (the real binary) on the config corpus and its
//! mutations. A long coverage-guided run is `cargo fuzz run <target>` (see docs/security.md).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target, usize); 5] = [
    ("webhook", roomgate::fuzzing::webhook, 3000),
    ("config", roomgate::fuzzing::config, 1500),
    (
        "sealed_and_cookies",
        roomgate::fuzzing::sealed_and_cookies,
        3000,
    ),
    ("canonical", roomgate::fuzzing::canonical, 20000),
    ("response", roomgate::fuzzing::response, 4000),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir(target))
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).expect("corpus file"))
        })
        .collect();
    inputs.sort();
    inputs
}

/// Run `target` on `input`; on a panic, fail with the input written out (to add to the
/// corpus once fixed).
fn run_one(name: &str, target: Target, input: &[u8], origin: &str) {
    let outcome = std::panic::catch_unwind(|| target(input));
    if outcome.is_err() {
        panic!(
            "fuzz target {name} failed on {origin}: {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn every_corpus_input_keeps_its_target_properties() {
    for (name, target, _) in TARGETS {
        let inputs = corpus(name);
        assert!(inputs.len() >= 5, "{name}: a seed corpus");
        for (file, input) in inputs {
            run_one(name, target, &input, &format!("fuzz/corpus/{name}/{file}"));
        }
    }
}

/// The response seeds are the differential's own check: each `ok-*` response is read by
/// roomgate's reader and by hyper's client alike (so the target compares something), and
/// each `bad-*` one is refused by roomgate's reader.
#[test]
fn response_seeds_are_read_alike_by_roomgate_and_hyper() {
    use roomgate::fuzzing::{hyper_reads, read_response};
    let mut compared = 0;
    for (file, input) in corpus("response") {
        let (flags, wire) = input.split_first().expect("a flags byte");
        let head_request = flags & 1 == 1;
        let piece = usize::from(flags >> 1) + 1;
        let ours = read_response(wire, head_request, piece);
        if file.starts_with("ok-") {
            let ours = ours.unwrap_or_else(|e| panic!("{file}: roomgate refused: {e}"));
            let theirs = hyper_reads(wire, head_request)
                .unwrap_or_else(|e| panic!("{file}: hyper refused: {e}"));
            assert_eq!(ours, theirs, "{file}: roomgate, then hyper");
            compared += 1;
        } else if file.starts_with("bad-") {
            assert!(ours.is_err(), "{file}: roomgate read {ours:?}");
        }
    }
    assert!(compared >= 10, "{compared} responses compared");
}

/// Byte strings that matter to the parsers, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"v1=",
    b"v1,",
    b"v1a,",
    b"t=",
    b"ts=",
    b"h1=",
    b",",
    b";",
    b" ",
    b"=",
    b"{",
    b"}",
    b"[",
    b"]",
    b": ",
    b"\n",
    b"- ",
    b"\"",
    b"'",
    b"%2e",
    b"%2F",
    b"..",
    b"/",
    b"\\",
    b"\0",
    b"sha256=",
    b"{value: ",
    b"{file: /dev/zero}",
    b"{env: FUZZ_TOKEN}",
    b"$argon2id$v=19$m=",
    b"&",
    b"?",
    b"1700000000",
    b"99999999999999999999",
    b"\r\n",
    b"\r\n\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
];

/// One random edit of `input`, sometimes spliced with `other`.
fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.random_range(0..=out.len())
        };
        match rng.random_range(0..6) {
            0 if !out.is_empty() => {
                let i = rng.random_range(0..out.len());
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 => out.insert(at, rng.random()),
            2 if !out.is_empty() => {
                let end = (at + rng.random_range(1..=16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                let times = if rng.random_ratio(1, 8) {
                    rng.random_range(2..64)
                } else {
                    1
                };
                for _ in 0..times {
                    out.splice(at..at, token.iter().copied());
                }
            }
            4 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let len = rng.random_range(1..=(other.len() - from).min(64));
                out.splice(at..at, other[from..from + len].iter().copied());
            }
            _ if !out.is_empty() => {
                let from = rng.random_range(0..out.len());
                let len = rng.random_range(1..=(out.len() - from).min(32));
                let copy = out[from..from + len].to_vec();
                out.splice(at..at, copy);
            }
            _ => out.push(rng.random()),
        }
    }
    out
}

/// The seed of the random runs: fixed, so a failure is reproducible; another with
/// `ROOMGATE_FUZZ_SEED=N`.
fn seed() -> u64 {
    std::env::var("ROOMGATE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(17)
}

#[test]
fn a_seeded_random_run_keeps_every_target_property() {
    for (name, target, iterations) in TARGETS {
        let inputs = corpus(name);
        let mut rng = StdRng::seed_from_u64(seed());
        let started = Instant::now();
        for i in 0..iterations {
            let (_, base) = &inputs[rng.random_range(0..inputs.len())];
            let (_, other) = &inputs[rng.random_range(0..inputs.len())];
            let input = mutate(&mut rng, base, other);
            run_one(
                name,
                target,
                &input,
                &format!("mutation {i} (seed {})", seed()),
            );
        }
        eprintln!("{name}: {iterations} mutations in {:?}", started.elapsed());
    }
}

/// Exit code and error lines of `roomgate <cmd>` (ended within 20 s); for `serve`, a
/// config it accepts is stopped once listening.
fn outcome(cmd: &str, config: &Path) -> (Option<i32>, Vec<String>) {
    let mut child = Command::new(common::bin())
        .arg(cmd)
        .arg("--config")
        .arg(config)
        .env("ROOMGATE_LOG_FORMAT", "json")
        .env("ROOMGATE_WORKER_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn roomgate");
    let stderr = child.stderr.take().expect("stderr");
    // The error lines, and whether `serve` said it is listening.
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("\"message\":\"listening\"") {
                return (lines, true);
            }
            lines.push(line);
        }
        (lines, false)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() {
        assert!(
            Instant::now() < deadline,
            "roomgate {cmd} neither exited nor listened"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (lines, listening) = reader.join().expect("reader");
    let code = if listening {
        // `serve` accepted the config: that is all this asks of it.
        let _ = child.kill();
        let _ = child.wait();
        Some(0)
    } else {
        child.wait().expect("wait").code()
    };
    // `check` indents its error lines; `serve` logs each as an `invalid config` line.
    let errors = lines
        .into_iter()
        .filter_map(|l| {
            if l.starts_with("  ") {
                return Some(l);
            }
            let v: serde_json::Value = serde_json::from_str(&l).ok()?;
            let error = v["error"]
                .as_str()
                .filter(|_| v["message"] == "invalid config")?;
            Some(format!("  {error}"))
        })
        .collect();
    (code, errors)
}

/// True when every listener of a valid config is on loopback port 0 (so `serve` may run).
fn listens_on_loopback_port_0(text: &str) -> bool {
    let ctx = roomgate::config::LoadContext::default();
    let Ok(config) = roomgate::config::Config::from_yaml_str(text, &ctx) else {
        return true;
    };
    let l = &config.file.listen;
    [l.http, l.https, l.admin]
        .into_iter()
        .flatten()
        .all(|a| a.ip().is_loopback() && a.port() == 0)
}

/// Security property (issue 17): `check` and `serve` agree on every config of the corpus
/// and on seeded mutations of it: a config `check` refuses, `serve` refuses with the same
/// error lines (exit 1); one `check` accepts, `serve` starts listening with.
#[test]
fn check_and_serve_agree_on_the_config_corpus_and_its_mutations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("routes.yaml");
    let inputs = corpus("config");
    let mut rng = StdRng::seed_from_u64(seed());
    let mut configs: Vec<Vec<u8>> = inputs.iter().map(|(_, i)| i.clone()).collect();
    for _ in 0..24 {
        let (_, base) = &inputs[rng.random_range(0..inputs.len())];
        let (_, other) = &inputs[rng.random_range(0..inputs.len())];
        configs.push(mutate(&mut rng, base, other));
    }
    let (mut accepted, mut refused) = (0, 0);
    for config in configs {
        let text = String::from_utf8_lossy(&config).into_owned();
        if !listens_on_loopback_port_0(&text) {
            continue;
        }
        std::fs::write(&path, &text).expect("write");
        let check = outcome("check", &path);
        let serve = outcome("serve", &path);
        assert_eq!(check, serve, "check and serve disagree on:\n{text}");
        match check.0 {
            Some(0) => accepted += 1,
            _ => refused += 1,
        }
    }
    assert!(
        accepted >= 2 && refused >= 2,
        "{accepted} accepted, {refused} refused"
    );
}
