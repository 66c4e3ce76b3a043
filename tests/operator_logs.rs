//! What an operator reads from the binary (issue 21): one log format for every line once
//! it is chosen, usage errors for log settings roomgate cannot use, no colour codes in a
//! file, durations to the microsecond, config errors that name their place, and listeners
//! that name their key and announce themselves only when all are bound.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::process::Proc;
use common::upstream::Upstream;

const CONFIG: &str = "version: v1\nlisten:\n  http: 127.0.0.1:0\n  admin: 127.0.0.1:0\n";

/// Run the binary to its end with these arguments and environment (stdin closed).
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::bin());
    cmd.args(args)
        .env_remove("ROOMGATE_LOG")
        .env_remove("ROOMGATE_LOG_FORMAT")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run roomgate")
}

fn serve(config: &Path, env: &[(&str, &str)]) -> Output {
    run(&["serve", "--config", &config.display().to_string()], env)
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("routes.yaml");
    std::fs::write(&path, text).expect("write");
    path
}

/// Every line of `text` parsed as JSON; panics on a line that is not.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}\n{text}")))
        .collect()
}

#[test]
fn with_json_logs_config_errors_are_json_lines_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        "version: v1\nlisten: {http: 127.0.0.1:0}\nlimitz: {}\n",
    );
    let out = serve(&config, &[("ROOMGATE_LOG_FORMAT", "json")]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&String::from_utf8_lossy(&out.stderr));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "invalid config" && l["error"] == "limitz: unknown field"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l["level"] == "ERROR"), "{lines:?}");

    // A file that cannot be read is a config error as well.
    let out = serve(
        &dir.path().join("absent.yaml"),
        &[("ROOMGATE_LOG_FORMAT", "json")],
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&String::from_utf8_lossy(&out.stderr));
    assert!(
        lines.iter().any(|l| l["error"]
            .as_str()
            .is_some_and(|e| e.contains("absent.yaml does not exist"))),
        "{lines:?}"
    );
}

#[test]
fn log_settings_roomgate_cannot_use_are_usage_errors_naming_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), CONFIG);
    let out = serve(&config, &[("ROOMGATE_LOG_FORMAT", "xml")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: ROOMGATE_LOG_FORMAT=\"xml\" is not a log format (json or pretty)"
    );

    // The format is known: the error is written in it.
    let out = serve(
        &config,
        &[
            ("ROOMGATE_LOG_FORMAT", "json"),
            ("ROOMGATE_LOG", "bogus==="),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let lines = json_lines(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["message"], "usage error");
    let error = lines[0]["error"].as_str().expect("error");
    assert!(
        error.starts_with("ROOMGATE_LOG=\"bogus===\" is not a log filter"),
        "{error}"
    );

    let out = serve(&config, &[("ROOMGATE_LOG", "bogus===")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ROOMGATE_LOG=\"bogus===\""));
}

/// Pretty logs written to a pipe or a file carry no ANSI colour codes.
#[test]
fn pretty_logs_off_a_terminal_have_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        "version: v1\nlisten: {http: 127.0.0.1:0}\nlimitz: {}\n",
    );
    let out = serve(&config, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("limitz: unknown field"), "{stderr}");
    assert!(stderr.contains("ERROR"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

/// A listener that cannot bind names its key and address once; none says "listening".
#[test]
fn a_busy_listener_is_named_once_and_nothing_announces_itself() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        &format!("version: v1\nlisten:\n  http: 127.0.0.1:0\n  admin: {busy}\n"),
    );
    let out = serve(&config, &[("ROOMGATE_LOG_FORMAT", "json")]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&String::from_utf8_lossy(&out.stderr));
    assert!(
        lines.iter().all(|l| l["message"] != "listening"),
        "{lines:?}"
    );
    let last = lines.last().expect("a line");
    assert_eq!(last["level"], "ERROR");
    let error = last["error"].as_str().expect("error");
    assert!(
        error.starts_with(&format!("listen.admin: cannot listen on {busy}: ")),
        "{error}"
    );
    assert_eq!(error.matches("in use").count(), 1, "{error}");
}

/// A YAML syntax error names the line, the column and the nearest YAML path.
#[test]
fn a_yaml_syntax_error_names_line_column_and_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        "version: v1\nlisten: {http: 127.0.0.1:0}\nrooms:\n  - name: a\n  - name: b\n  - name: c\n    services:\n      - name: web\n        ports: [80, 81\n",
    );
    let out = run(&["check", "--config", &config.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("  "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.starts_with("  rooms[2].services[0].ports: "), "{line}");
    assert!(line.contains("line 10 column 1"), "{line}");
}

/// Access-log durations are numbers in milliseconds with at most three decimals.
#[tokio::test]
async fn durations_are_logged_to_the_microsecond() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        &format!(
            "version: v1\nlisten: {{http: 127.0.0.1:0}}\nrooms:\n  - name: acme\n    services:\n      - name: web\n        ports:\n          - {{num: {}, published: true, public: true}}\nroutes:\n  - {{domain: a.test, room: acme, port: {}}}\n",
            upstream.addr.port(),
            upstream.addr.port()
        ),
    );
    let mut rg = Proc::serve(&config, &[]);
    let http = rg.addr("http").await;
    for _ in 0..5 {
        assert_eq!(common::get(http, "a.test", "/", &[]).await.status, 200);
    }
    rg.wait_json("an access line", |v| v["message"] == "request")
        .await;
    let mut checked = 0;
    for line in rg.log() {
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if v["message"] == "request" {
            assert!(v["duration_ms"].is_f64(), "{line}");
            let ms = v["duration_ms"].to_string();
            let decimals = ms.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= 3, "duration_ms={ms}");
            checked += 1;
        }
    }
    assert!(checked >= 1);
    rg.stop().await;
}

/// `secrets list` with no secrets says so on stderr (stdout stays an empty list), for a
/// missing secrets file and for a room without secrets; a stored secret is listed.
#[test]
fn secrets_list_says_when_there_are_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), CONFIG);
    let config = config.display().to_string();
    let secrets_file = dir.path().join("secrets.yaml");
    let list = |identity: Option<&str>| {
        let mut args = vec!["secrets", "list", "--room", "acme", "--config", &config];
        if let Some(i) = identity {
            args.extend(["--identity", i]);
        }
        run(&args, &[])
    };

    let out = list(None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "no secrets for room acme in the secrets file {}, which does not exist",
            secrets_file.display()
        )
    );

    let mut set = Command::new(common::bin())
        .args([
            "secrets",
            "set",
            "--room",
            "acme",
            "--identity",
            "worker",
            "--id",
            "gh",
        ])
        .args(["--config", &config])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("secrets set");
    {
        use std::io::Write;
        let mut stdin = set.stdin.take().expect("stdin");
        stdin.write_all(b"s3cret\n").expect("write the value");
    }
    assert!(set.wait().expect("wait").success());

    let out = list(None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "worker\tgh\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    let out = list(Some("other"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "no secrets for room acme of other in the secrets file {}",
            secrets_file.display()
        )
    );
}
