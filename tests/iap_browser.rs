//! End to end: a real OpenID Provider (npm `oidc-provider`), roomgate, an upstream, and
//! Debian's headless Chromium driven by `playwright-core` through the whole IAP flow.
//! Nothing is skipped: missing npm packages or Chromium fail with how to install them
//! (`bash scripts/test.sh`).

mod common;

use common::node::{node, node_modules, NodeServer};
use common::upstream::{free_port, Upstream};
use common::*;

const CLIENT_SECRET: &str = "browser-test-client-secret-0123456789";

fn yaml(port: u16, upstream: u16, issuer: &str) -> String {
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:{port}
iap:
  auth_url: http://auth.localhost:{port}
  provider: oidc
  oidc:
    issuer: {issuer}
    client_id: roomgate
    client_secret: {{value: "{CLIENT_SECRET}"}}
  cookie_keys: [{{value: "{key}"}}]
  secure_cookies: false
rooms:
  - name: acme
    participants:
      - {{email_domains: [acme.test], api: {{queues: {{}}}}}}
    services:
      - name: web
        ports:
          - num: {upstream}
            published: true
            annotations: {{meshagent.request.validation.method: cookie}}
routes:
  - {{domain: app.acme.localhost, room: acme, port: {upstream}}}
  - {{domain: docs.acme.localhost, room: acme, port: {upstream}}}
"#,
        key = common::iap::COOKIE_KEY
    )
}

/// The whole browser journey: a private route sends the browser to the provider and
/// back to the original path, where the upstream sees the user; a second domain needs no
/// second sign-in; sign-out clears the cookie and the next visit goes through sign-in
/// again; a signed-in non-participant gets the 403 page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_through_a_real_provider_and_reaches_two_domains() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("roomgate=info")
        .with_test_writer()
        .try_init();
    let modules = node_modules(&["oidc-provider", "playwright-core"]);
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: run `bash scripts/test.sh` (it installs Debian's chromium)"
    );
    let port = free_port();
    let mut op_cmd = node("op.mjs", &modules);
    op_cmd.env("OP_CLIENT_SECRET", CLIENT_SECRET).env(
        "OP_REDIRECT_URI",
        format!("http://auth.localhost:{port}/.roomgate/oidc/callback"),
    );
    let op = NodeServer::spawn(op_cmd);
    let issuer = op.ready["issuer"].as_str().expect("issuer").to_owned();

    let up = Upstream::start().await;
    let rg = start(&yaml(port, up.addr.port(), &issuer)).await;
    assert_eq!(rg.bound.http.map(|a| a.port()), Some(port));

    let profile = tempfile::tempdir().expect("profile dir");
    let args = serde_json::json!({
        "app": format!("http://app.acme.localhost:{port}/"),
        "second": format!("http://docs.acme.localhost:{port}/"),
        "email": "alice@acme.test",
        "outsider": "mallory@evilacme.test",
        "userDataDir": profile.path(),
    });
    let mut cmd = node("browser.mjs", &modules);
    cmd.arg(args.to_string());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run node browser.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("browser script output: {stdout}"));
    assert!(r.get("error").is_none(), "browser journey failed: {r:#}");

    // 1. Signed in through the provider, back on the original path.
    let first = &r["first"];
    assert_eq!(
        first["url"],
        format!("http://app.acme.localhost:{port}/hello?x=1")
    );
    assert_eq!(first["echo"]["path"], "/hello?x=1");
    assert_eq!(
        first["echo"]["headers"]["x-meshagent-user"],
        "alice@acme.test"
    );
    assert_eq!(
        first["echo"]["headers"]["x-meshagent-api-scope"],
        r#"{"queues":{}}"#
    );
    assert!(first["echo"]["headers"].get("cookie").is_none());
    assert!(first["visited"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u.as_str().unwrap_or("").starts_with(&issuer)));
    let cookie = &first["cookie"];
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["sameSite"], "Lax");
    assert_eq!(cookie["path"], "/");
    assert_eq!(cookie["domain"], "app.acme.localhost", "host-only");

    // 2. The second domain without the provider.
    let second = &r["second"];
    assert_eq!(second["sawProviderLogin"], false, "{second:#}");
    assert_eq!(
        second["echo"]["headers"]["x-meshagent-user"],
        "alice@acme.test"
    );

    // 3. Sign-out.
    assert_eq!(r["signout"]["cookieCleared"], true, "{:#}", r["signout"]);
    assert_eq!(r["signout"]["wentThroughSignIn"], true);

    // 4. Not a participant.
    assert_eq!(r["outsider"]["status"], 403);
    assert_eq!(r["outsider"]["code"], "not_a_participant");
    assert_eq!(r["outsider"]["user"], "mallory@evilacme.test");

    // What the upstream saw last (the sign-in after sign-out): alice, never the cookie.
    let last = up.seen.last_headers.lock().unwrap().clone();
    assert!(last
        .iter()
        .any(|(k, v)| k == "x-meshagent-user" && v == "alice@acme.test"));
    assert!(!last
        .iter()
        .any(|(k, v)| k == "cookie" && v.contains("__meshagent_iap")));
    drop(op);
}
