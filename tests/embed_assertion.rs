//! The identity assertion as a service checks it: the Python (PyJWT) and Node.js
//! (`jose`) verifiers documented in docs/embed.md, taken from the document and run
//! against assertions roomgate signed, with the JWKS from the admin listener.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::embed::{self as e, App, Setup};
use common::node::node_modules;
use common::*;

/// The fenced code block after `<!-- snippet: NAME -->` in docs/embed.md.
fn snippet(name: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/embed.md"))
        .expect("docs/embed.md");
    let marker = format!("<!-- snippet: {name} -->");
    let after = &doc[doc.find(&marker).expect("snippet marker") + marker.len()..];
    let start = after.find("```").expect("code block");
    let body = &after[start..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    body[..body.find("\n```").expect("closing fence")].to_owned() + "\n"
}

fn python() -> String {
    std::env::var("ROOMGATE_TEST_PYTHON").unwrap_or_else(|_| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/.cache/venv/bin/python");
        assert!(
            Path::new(p).exists(),
            "the Python venv is missing: run `bash scripts/test.sh`, which installs it"
        );
        p.to_owned()
    })
}

/// Run a verifier with the assertion on stdin; its claims, or `None` when it refused.
fn run(
    mut cmd: Command,
    jwks: &str,
    assertion: &str,
    domain: &str,
    origin: &str,
) -> Option<serde_json::Value> {
    let mut child = cmd
        .env("ROOMGATE_JWKS_URL", jwks)
        .args([domain, origin])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the verifier");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(assertion.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("claims JSON"))
}

/// Security: what a service relies on — a roomgate assertion verifies with the published
/// keys in both documented verifiers; a tampered one, or one presented to another
/// service's domain, does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_verifiers_accept_assertions_and_refuse_forgeries() {
    let modules = node_modules(&["jose"]);
    let app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let akey = e::assertion_key(dir.path(), "assertion-es256.pem");
    let yaml = e::yaml(&Setup {
        listen: "  http: 127.0.0.1:0\n  admin: 127.0.0.1:0",
        redis: None,
        app: app.addr.port(),
        other: app.addr.port(),
        keys_file: &dir.path().join("keys.json"),
        assertion_key: &akey,
    });
    let rg = start(&yaml).await;
    let addr = rg.bound.http.unwrap();
    let jwks = format!(
        "http://{}/.well-known/roomgate/jwks.json",
        rg.bound.admin.unwrap()
    );
    let participant = format!(
        "Bearer {}",
        token("acme", "alice", Some(serde_json::json!({"q": 1})))
    );
    let r = get(
        addr,
        "app.acme.test",
        "/x",
        &[("authorization", &participant)],
    )
    .await;
    assert_eq!(r.status, 200);
    let assertion = r.echoed_header("x-meshagent-assertion").expect("assertion");
    let (domain, origin) = ("app.acme.test", "http://app.acme.test");

    let py = dir.path().join("verify_assertion.py");
    std::fs::write(&py, snippet("verify_assertion.py")).unwrap();
    let js_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&modules, js_dir.path().join("node_modules")).unwrap();
    let js: PathBuf = js_dir.path().join("verify-assertion.mjs");
    std::fs::write(&js, snippet("verify-assertion.mjs")).unwrap();
    let verifiers = || {
        let mut p = Command::new(python());
        p.arg(&py);
        let mut n = Command::new("node");
        n.arg(&js);
        [("python", p), ("node", n)]
    };

    for (name, cmd) in verifiers() {
        let claims = run(cmd, &jwks, &assertion, domain, origin)
            .unwrap_or_else(|| panic!("{name} refused a genuine assertion"));
        assert_eq!(claims["sub"], "alice", "{name}");
        assert_eq!(claims["room"], "acme", "{name}");
        assert_eq!(claims["api"], serde_json::json!({"q": 1}), "{name}");
        assert_eq!(claims["aud"], domain, "{name}");
    }

    // Tampered: another user in the payload, the signature kept.
    let parts: Vec<&str> = assertion.split('.').collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = "mallory".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.to_string()),
        parts[2]
    );
    for (name, cmd) in verifiers() {
        assert!(
            run(cmd, &jwks, &forged, domain, origin).is_none(),
            "{name} accepted a forgery"
        );
    }
    for (name, cmd) in verifiers() {
        assert!(
            run(cmd, &jwks, &assertion, "other.test", "http://other.test").is_none(),
            "{name} accepted an assertion meant for another domain"
        );
    }
}
