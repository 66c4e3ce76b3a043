//! `roomgate check` validates everything `roomgate serve` needs at start, with the same
//! code and the same messages, and no config error ever repeats a secret (issue 17,
//! findings 2, 3 and 4). Everything here runs the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{eventually, metric, Proc};

/// Output and exit code of `roomgate <cmd> --config <path>`, which must end within 20 s.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn run(cmd: &str, config: &Path) -> Run {
    let started = Instant::now();
    let mut child = Command::new(common::bin())
        .arg(cmd)
        .arg("--config")
        .arg(config)
        .env("ROOMGATE_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn roomgate");
    // Poll with a deadline: a FIFO used to hang both commands for ever.
    let deadline = started + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("roomgate {cmd} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// The error lines of a refused config: `check`'s indented lines, or the `error` of each
/// `invalid config` line `serve` logs (as JSON), indented the same way.
fn error_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            if l.starts_with("  ") {
                return Some(l.to_owned());
            }
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let error = v["error"]
                .as_str()
                .filter(|_| v["message"] == "invalid config")?;
            Some(format!("  {error}"))
        })
        .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

const HEAD: &str = "version: v1\nlisten: {http: 127.0.0.1:0}\n";

/// A certificate for `a.test` with its key, and a key that belongs to no certificate.
struct Pem {
    cert: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
}

fn pem(dir: &Path) -> Pem {
    let certs = common::tls::issue(dir);
    let other = rcgen::KeyPair::generate().expect("key");
    let other_key = dir.join("other.key");
    write(&other_key, &other.serialize_pem());
    Pem {
        cert: certs.a.cert,
        key: certs.a.key,
        other_key,
    }
}

fn tls_config(cert: &Path, key: &Path) -> String {
    format!(
        "version: v1\nlisten: {{http: 127.0.0.1:0, https: 127.0.0.1:0}}\ntls:\n  certificates: [{{cert: {}, key: {}}}]\nrooms: []\nroutes: []\n",
        cert.display(),
        key.display()
    )
}

fn token_file_config(file: &Path) -> String {
    format!(
        "{HEAD}tokens:\n  keys: [{{kid: a, secret: {{file: {}}}}}]\nrooms: []\nroutes: []\n",
        file.display()
    )
}

/// Security property (issue 17, finding 3): every file `serve` would fail on — a FIFO,
/// `/dev/zero`, `/dev/urandom` or a directory as a secret, a missing certificate, a key
/// that is not the certificate's, a FIFO as the secrets file, a flow mapping 100 000
/// deep — is refused by `check`, quickly, and `serve` refuses it with the same messages
/// (exit 1) instead of hanging, aborting or allocating without bound.
#[test]
fn check_and_serve_refuse_the_same_unusable_files_with_the_same_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pem = pem(d);
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let deep = format!(
        "{HEAD}rooms: {}1{}\nroutes: []\n",
        "{a: ".repeat(100_000),
        "}".repeat(100_000)
    );
    let cases: Vec<(&str, String, String)> = vec![
        (
            "fifo secret",
            token_file_config(&fifo),
            format!(
                "tokens.keys[0].secret: {} is a FIFO, not a regular file",
                fifo.display()
            ),
        ),
        (
            "/dev/zero secret",
            token_file_config(Path::new("/dev/zero")),
            "tokens.keys[0].secret: /dev/zero is a character device, not a regular file".into(),
        ),
        (
            "/dev/urandom secret",
            token_file_config(Path::new("/dev/urandom")),
            "tokens.keys[0].secret: /dev/urandom is a character device, not a regular file".into(),
        ),
        (
            "directory secret",
            token_file_config(d),
            format!(
                "tokens.keys[0].secret: {} is a directory, not a regular file",
                d.display()
            ),
        ),
        (
            "missing certificate",
            tls_config(&d.join("absent.pem"), &pem.key),
            format!(
                "tls.certificates[0].cert: {} does not exist",
                d.join("absent.pem").display()
            ),
        ),
        (
            "/dev/zero certificate",
            tls_config(Path::new("/dev/zero"), &pem.key),
            "tls.certificates[0].cert: /dev/zero is a character device, not a regular file".into(),
        ),
        (
            "mismatched key",
            tls_config(&pem.cert, &pem.other_key),
            format!(
                "tls.certificates[0].key: {}: the key does not match the certificate {}",
                pem.other_key.display(),
                pem.cert.display()
            ),
        ),
        (
            "fifo secrets file",
            format!(
                "{HEAD}secrets: {{file: {}}}\nrooms: []\nroutes: []\n",
                fifo.display()
            ),
            format!(
                "secrets.file: secrets file {} is a FIFO, not a regular file",
                fifo.display()
            ),
        ),
        (
            "100k-deep flow mapping",
            deep,
            // The 64th `{` (the document's mapping is the first collection) is refused
            // where it stands; nothing after it is read.
            "rooms: collections are nested more than 64 levels deep at line 3 column 260".into(),
        ),
    ];
    let config = d.join("routes.yaml");
    for (name, yaml, expected) in cases {
        write(&config, &yaml);
        let check = run("check", &config);
        assert_eq!(check.code, Some(1), "{name}: {}", check.stderr);
        assert_eq!(
            error_lines(&check.stderr),
            vec![format!("  {expected}").as_str()],
            "{name}"
        );
        assert!(
            check.took < Duration::from_secs(5),
            "{name}: check took {:?}",
            check.took
        );
        let serve = run("serve", &config);
        assert_eq!(serve.code, Some(1), "{name}: {}", serve.stderr);
        assert_eq!(
            error_lines(&serve.stderr),
            error_lines(&check.stderr),
            "{name}"
        );
    }
    // The good pair passes both.
    write(&config, &tls_config(&pem.cert, &pem.key));
    let check = run("check", &config);
    assert_eq!(check.code, Some(0), "{}", check.stderr);
}

/// A `password_hash` asking for 4 TB of memory (issue 17, finding 2): before, `check`
/// accepted it and one sign-in attempt grew the process until it died.
const COSTLY_HASH: &str =
    "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn static_iap(hash: &str) -> String {
    format!(
        "{HEAD}iap:\n  auth_url: http://auth.test\n  provider: static\n  static:\n    users: [{{email: a@b.test, password_hash: \"{hash}\"}}]\n  cookie_keys: [{{value: \"{}\"}}]\n  secure_cookies: false\nrooms: []\nroutes: []\n",
        common::iap::COOKIE_KEY
    )
}

/// Security property (issue 17, finding 2): argon2 costs beyond what a login can afford
/// are refused by `check` at the hash's YAML path, naming the limit and not the hash.
#[test]
fn check_refuses_an_argon2_hash_no_login_could_afford() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("routes.yaml");
    write(&config, &static_iap(COSTLY_HASH));
    let check = run("check", &config);
    assert_eq!(check.code, Some(1));
    assert_eq!(
        error_lines(&check.stderr),
        ["  iap.static.users[0].password_hash: argon2 memory (m) 4294967295 KiB is over the limit of 65536 KiB: every sign-in attempt would compute it"]
    );
    assert!(!check.stderr.contains("RdescudvJCsgt3ub"));
    write(&config, &static_iap(&common::iap::hash("pw")));
    assert_eq!(run("check", &config).code, Some(0));
}

/// One secret-bearing field given a wrong shape: the YAML (with `MARK` where the value
/// goes) and the marker that must appear nowhere.
struct Leak {
    field: &'static str,
    yaml: String,
    mark: String,
}

/// Every secret-bearing field, each fed a bare string, an integer, a list, a flow mapping
/// with the value as its key, and wrong types inside `{value: …}`.
fn leaks(dir: &Path) -> Vec<Leak> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut mark = |kind: &str| {
        n += 1;
        if kind == "int" {
            format!("9182736455{n:02}")
        } else {
            format!("LEAKMARK{n:02}x")
        }
    };
    let shapes = |m: &str, int: &str| {
        vec![
            format!("\"{m}\""),
            int.to_owned(),
            format!("[{m}]"),
            format!("{{{m}}}"),
            format!("{{value: {int}}}"),
            format!("{{value: [{m}]}}"),
            format!("{{env: {int}}}"),
        ]
    };
    let redis = "redis: {url: {value: \"redis://127.0.0.1:1\"}}\n";
    let iap = |field: &str| {
        let key = common::iap::COOKIE_KEY;
        let cookie = if field == "cookie_keys" {
            "MARK".to_owned()
        } else {
            format!("[{{value: \"{key}\"}}]")
        };
        let secret = if field == "client_secret" {
            "MARK".to_owned()
        } else {
            "{value: s}".into()
        };
        format!(
            "iap:\n  auth_url: http://auth.test\n  provider: oidc\n  oidc: {{issuer: http://idp.test, client_id: c, client_secret: {secret}}}\n  cookie_keys: {cookie}\n"
        )
    };
    let fields: Vec<(&'static str, String)> = vec![
        (
            "tokens.keys[0].secret",
            "tokens:\n  keys: [{kid: a, secret: MARK}]\n".into(),
        ),
        ("redis.url", "redis: {url: MARK}\n".into()),
        (
            "secrets.key",
            format!("{redis}secrets: {{backend: redis, key: MARK}}\n"),
        ),
        ("iap.oidc.client_secret", iap("client_secret")),
        ("iap.cookie_keys", iap("cookie_keys")),
        (
            "iap.cookie_keys[0]",
            iap("cookie_keys").replace("cookie_keys: MARK", "cookie_keys: [MARK]"),
        ),
    ];
    for (field, template) in fields {
        let (m, int) = (mark("text"), mark("int"));
        for shape in shapes(&m, &int) {
            let yaml = format!(
                "{HEAD}{}rooms: []\nroutes: []\n",
                template.replace("MARK", &shape)
            );
            let mark = if shape.contains(&m) {
                m.clone()
            } else {
                int.clone()
            };
            out.push(Leak { field, yaml, mark });
        }
    }
    // Whole sections given a string, or a flow mapping keyed by a secret.
    for (field, section) in [
        ("redis", "redis: \"redis://:MARK@h\"\n"),
        ("redis", "redis: {redis://:MARK@h}\n"),
        ("tokens", "tokens: \"MARK\"\n"),
        ("tokens.keys", "tokens: {keys: \"MARK\"}\n"),
    ] {
        let m = mark("text");
        out.push(Leak {
            field,
            yaml: format!(
                "{HEAD}{}rooms: []\nroutes: []\n",
                section.replace("MARK", &m)
            ),
            mark: m,
        });
    }
    // password_hash: a number, a list, a mapping, a plain string that is no hash.
    for shape in ["int", "[MARK]", "{MARK}", "\"MARK\""] {
        let (m, int) = (mark("text"), mark("int"));
        let value = if shape == "int" {
            int.clone()
        } else {
            shape.replace("MARK", &m)
        };
        let yaml = static_iap("HASH").replace("\"HASH\"", &value);
        out.push(Leak {
            field: "iap.static.users[0].password_hash",
            yaml,
            mark: if shape == "int" { int } else { m },
        });
    }
    // The secrets file: values of the wrong shape.
    for shape in ["\"MARK\"", "int", "{value: int}", "[MARK]", "{MARK}"] {
        let (m, int) = (mark("text"), mark("int"));
        let value = shape.replace("MARK", &m).replace("int", &int);
        let file = dir.join(format!("secrets-{}.yaml", out.len()));
        write(
            &file,
            &format!("rooms:\n  acme:\n    worker:\n      gh: {value}\n"),
        );
        out.push(Leak {
            field: "secrets.file",
            yaml: format!(
                "{HEAD}secrets: {{file: {}}}\nrooms: []\nroutes: []\n",
                file.display()
            ),
            mark: if value.contains(&m) { m } else { int },
        });
    }
    out
}

/// Security property (issue 17, finding 4): whatever wrong shape a secret-bearing field
/// has, `check` names the field and the expected shape but never prints the value.
#[test]
fn check_never_prints_a_secret_bearing_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("routes.yaml");
    let cases = leaks(dir.path());
    assert!(cases.len() > 50);
    for leak in cases {
        write(&config, &leak.yaml);
        let check = run("check", &config);
        let output = format!("{}{}", check.stdout, check.stderr);
        assert_eq!(
            check.code,
            Some(1),
            "{}: {output}\n{}",
            leak.field,
            leak.yaml
        );
        assert!(
            output.contains(leak.field),
            "{}: the error names the field\n{output}\n{}",
            leak.field,
            leak.yaml
        );
        assert!(
            !output.contains(&leak.mark),
            "{}: the value {} leaked\n{output}\n{}",
            leak.field,
            leak.mark,
            leak.yaml
        );
    }
}

/// Security property (issue 17, findings 2 and 4): a reload that brings a wrong-shaped
/// secret or an unaffordable argon2 hash is rejected, logged without the value, and the
/// running config keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_reload_logs_no_secret_and_rechecks_argon2_costs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("routes.yaml");
    let good =
        "version: v1\nlisten: {http: 127.0.0.1:0, admin: 127.0.0.1:0}\nrooms: []\nroutes: []\n";
    write(&config, good);
    let mut rg = Proc::serve(&config, &[]);
    let admin = rg.addr("admin").await;
    let mut rejected = 0.0;
    let mut marks = Vec::new();
    for leak in leaks(dir.path()).into_iter().step_by(3) {
        let yaml = leak.yaml.replacen(
            HEAD,
            "version: v1\nlisten: {http: 127.0.0.1:0, admin: 127.0.0.1:0}\n",
            1,
        );
        write(&config, &yaml);
        rg.signal("HUP");
        rejected += 1.0;
        eventually("a rejected reload", || async {
            let n = metric(admin, "roomgate_config_reloads_total{result=\"error\"}").await;
            (n >= rejected).then_some(())
        })
        .await;
        marks.push(leak.mark);
    }
    write(
        &config,
        &static_iap(COSTLY_HASH).replacen(
            HEAD,
            "version: v1\nlisten: {http: 127.0.0.1:0, admin: 127.0.0.1:0}\n",
            1,
        ),
    );
    rg.signal("HUP");
    rg.wait_json("argon2 costs re-checked on reload", |v| {
        v["level"] == "ERROR"
            && v["error"].as_str().is_some_and(|e| {
                e.starts_with("iap.static.users[0].password_hash: argon2 memory (m)")
            })
    })
    .await;
    let log = rg.log().join("\n");
    for mark in &marks {
        assert!(
            !log.contains(mark.as_str()),
            "{mark} leaked into the log:\n{log}"
        );
    }
    assert!(!log.contains("RdescudvJCsgt3ub"));
    assert_eq!(
        metric(admin, "roomgate_config_reloads_total{result=\"ok\"}").await,
        0.0
    );
    rg.stop().await;
}

/// The reference documents every annotation `check` accepts: the keys come from the same
/// registry that parsing and the "closest known key" suggestions use.
#[test]
fn the_reference_lists_every_annotation_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md");
    let text = std::fs::read_to_string(path).expect("docs/reference.md exists");
    let missing: Vec<&str> = roomgate::config::annotations::REGISTRY
        .iter()
        .map(|a| a.key)
        .filter(|key| !text.contains(key))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/reference.md does not list {missing:?}"
    );
}
