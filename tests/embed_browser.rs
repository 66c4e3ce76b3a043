//! End to end in a real browser: Debian's headless Chromium driven by `playwright-core`
//! embeds a room app through `embed.js` on a host page served from its own HTTPS origin.
//! Nothing is skipped: missing npm packages or Chromium fail with how to install them
//! (`bash scripts/test.sh`).

mod common;

use common::embed::{self as e, App, Setup};
use common::node::{node, node_modules};
use common::*;

/// The allowed host page mounts the iframe, the app inside receives its token by
/// `postMessage` (and a refreshed one) and calls the API with the header; the same
/// launch on a page of another origin is blocked by `frame-ancestors`; a launch URL
/// works once; and no token appears in any URL the browser requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_embeds_the_app_on_an_allowed_origin_only() {
    let modules = node_modules(&["playwright-core"]);
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: run `bash scripts/test.sh` (it installs Debian's chromium)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = tls::issue(dir.path());
    let app = App::start().await;
    let keys_file = dir.path().join("keys.json");
    let akey = e::assertion_key(dir.path(), "assertion-es256.pem");
    let listen = format!(
        "  https: 127.0.0.1:0\ntls:\n  certificates: [{{cert: {}, key: {}}}]",
        certs.a.cert.display(),
        certs.a.key.display()
    );
    // `*.apps.test` is what the test certificate covers.
    let yaml = e::yaml(&Setup {
        listen: &listen,
        redis: None,
        app: app.addr.port(),
        other: app.addr.port(),
        keys_file: &keys_file,
        assertion_key: &akey,
    })
    .replace("app.acme.test", "app.apps.test");
    let cfg = config(&yaml, &[]);
    let store = roomgate::embed::keys::store(&cfg).expect("store");
    let (_, key) = roomgate::embed::keys::create(
        &*store,
        &cfg,
        "saas-backend",
        &["acme".to_owned()],
        roomgate::state::system_clock(),
    )
    .await
    .expect("key");
    let rg = start(&yaml).await;
    let port = rg.bound.https.expect("https").port();

    let profile = tempfile::tempdir().expect("profile dir");
    let args = serde_json::json!({
        "rg": format!("https://app.apps.test:{port}"),
        "key": key,
        "cert": certs.a.cert,
        "certKey": certs.a.key,
        "room": "acme",
        "domain": "app.apps.test",
        "userDataDir": profile.path(),
    });
    let mut cmd = node("embed.mjs", &modules);
    cmd.arg(args.to_string());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run node embed.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("browser script output: {stdout}"));
    assert!(r.get("error").is_none(), "browser journey failed: {r:#}");

    // 1. The app got its token from the allowed host page and called the API with it.
    let allowed = &r["allowed"];
    assert_eq!(allowed["status"], 200, "{allowed:#}");
    let seen = &allowed["echo"];
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/api/data");
    assert_eq!(seen["headers"]["x-meshagent-user"], "customer-of-host.test");
    assert_eq!(
        seen["headers"]["x-meshagent-api-scope"],
        r#"{"plan":"pro"}"#
    );
    assert!(seen["headers"]["x-meshagent-embed-session"]
        .as_str()
        .unwrap_or("")
        .starts_with("es_"));
    assert!(seen["headers"].get("x-roomgate-embed-token").is_none());
    assert!(seen["headers"]["x-meshagent-assertion"].is_string());
    assert_eq!(
        allowed["frameUrl"],
        format!("https://app.apps.test:{port}/app"),
        "the launch left the iframe on the app, the code out of its URL"
    );
    let cookie = &allowed["cookie"];
    assert_eq!(cookie["secure"], true, "{cookie:#}");
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["sameSite"], "None");
    assert_eq!(cookie["path"], "/");

    // 2. The page of a non-allowed origin never shows the app.
    let blocked = &r["blocked"];
    assert_eq!(blocked["rendered"], false, "{blocked:#}");
    assert!(
        !blocked["console"].as_array().unwrap().is_empty(),
        "Chromium reports the frame-ancestors refusal: {blocked:#}"
    );

    // 3. A used launch URL fails.
    assert_eq!(r["reuse"]["status"], 401, "{:#}", r["reuse"]);
    assert!(r["reuse"]["body"]
        .as_str()
        .unwrap()
        .contains("invalid_token"));

    // 4. No token in any URL the browser requested.
    let tokens: Vec<&str> = r["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        tokens.len() >= 3,
        "first, refreshed and the second page's: {tokens:?}"
    );
    let visited = r["visited"].as_array().unwrap();
    assert!(visited.len() > 5, "{visited:?}");
    for url in visited {
        let url = url.as_str().unwrap();
        assert!(!url.contains("mtok_"), "{url}");
        for t in &tokens {
            assert!(!url.contains(&t[5..]), "a token in {url}");
        }
    }
}
