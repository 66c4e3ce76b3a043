//! Credentials stop at roomgate: an `Authorization` header roomgate verified (a
//! participant token, an embed token) is removed before forwarding unless the port says
//! `roomgate.forward_authorization: "true"`; one it did not consume (public and webhook
//! ports) reaches the service unchanged. A real upstream reports what it received.

mod common;

use common::embed::{self as e, App, Setup};
use common::upstream::Upstream;
use common::*;
use http::StatusCode;

/// Room `acme`: a private port (strips), a private port that keeps `Authorization`, a
/// public port, and a GitHub webhook endpoint that forwards (no queue).
fn yaml(private: u16, keeping: u16, public: u16, hooks: u16, secrets_file: &str) -> String {
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
  admin: 127.0.0.1:0
{tokens}
secrets:
  backend: file
  file: {secrets_file}
rooms:
  - name: acme
    services:
      - name: api
        ports:
          - {{num: {private}, published: true}}
          - num: {keeping}
            published: true
            annotations: {{roomgate.forward_authorization: "true"}}
          - {{num: {public}, published: true, public: true}}
      - name: hooks
        ports:
          - num: {hooks}
            published: true
            public: true
            endpoints:
              - path: /hook
                annotations:
                  meshagent.request.validation.method: github
                  meshagent.request.validation.secret: gh
                  meshagent.request.processor: webhook-worker
routes:
  - {{domain: private.acme.test, room: acme, port: {private}}}
  - {{domain: keeping.acme.test, room: acme, port: {keeping}}}
  - {{domain: public.acme.test, room: acme, port: {public}}}
  - {{domain: hooks.acme.test, room: acme, port: {hooks}}}
"#,
        tokens = tokens_block()
    )
}

/// Security property (issue 21, point 6): the participant token a private port verified
/// never reaches the service (it could replay it against the room's other ports), unless
/// the port asks for it; the identity headers arrive either way.
#[tokio::test]
async fn a_verified_participant_token_is_removed_unless_the_port_keeps_it() {
    let private = Upstream::start().await;
    let keeping = Upstream::start().await;
    let public = Upstream::start().await;
    let hooks = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = dir.path().join("secrets.yaml");
    std::fs::write(
        &secrets,
        format!(
            "rooms:\n  acme:\n    webhook-worker:\n      gh: {{value: \"{}\"}}\n",
            common::ingest::SECRET
        ),
    )
    .expect("write secrets");
    let rg = start(&yaml(
        private.addr.port(),
        keeping.addr.port(),
        public.addr.port(),
        hooks.addr.port(),
        &secrets.display().to_string(),
    ))
    .await;
    let addr = rg.bound.http.expect("http");
    let bearer = format!("Bearer {}", token("acme", "alice", None));
    let auth = [("authorization", bearer.as_str())];

    let r = get(addr, "private.acme.test", "/", &auth).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("alice")
    );
    assert_eq!(r.echoed_header("authorization"), None);

    let r = get(addr, "keeping.acme.test", "/", &auth).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("alice")
    );
    assert_eq!(r.echoed_header("authorization"), Some(bearer.clone()));

    // Not consumed: a public port forwards the header as the client sent it.
    let r = get(addr, "public.acme.test", "/", &auth).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.echoed_header("x-meshagent-user"), None);
    assert_eq!(r.echoed_header("authorization"), Some(bearer.clone()));

    // Not consumed either: a webhook endpoint verified the signature, not the header.
    let body = br#"{"action":"opened"}"#;
    let sig = common::ingest::signature(body);
    let r = send(
        addr,
        "POST",
        "hooks.acme.test",
        "/hook",
        &[
            ("x-hub-signature-256", &sig),
            ("x-github-delivery", "d-1"),
            ("x-github-event", "push"),
            ("content-type", "application/json"),
            ("authorization", "Basic dXNlcjpwYXNz"),
        ],
        body,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.echoed_header("authorization").as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
    assert_eq!(hooks.requests(), 1);
}

/// Security property (issue 21, point 6): an embed access token sent as
/// `Authorization: Bearer mtok_…` is removed before the service, unless the port keeps
/// it; the embed token header never goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embed_token_in_authorization_is_removed_unless_the_port_keeps_it() {
    let app = App::start().await;
    let other = App::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_file = dir.path().join("keys.json");
    let akey = e::assertion_key(dir.path(), "assertion-es256.pem");
    let base = e::yaml(&Setup {
        listen: "  http: 127.0.0.1:0\n  admin: 127.0.0.1:0",
        redis: None,
        app: app.addr.port(),
        other: other.addr.port(),
        keys_file: &keys_file,
        assertion_key: &akey,
    });
    // The first embed port (room acme) keeps it; room other's port does not.
    let yaml = base.replacen(
        r#"annotations: {roomgate.embed: "true"}"#,
        r#"annotations: {roomgate.embed: "true", roomgate.forward_authorization: "true"}"#,
        1,
    );
    assert_ne!(yaml, base);
    let cfg = config(&yaml, &[]);
    let store = roomgate::embed::keys::store(&cfg).expect("store");
    let rooms = vec!["acme".to_owned(), "other".to_owned()];
    let (_, key) = roomgate::embed::keys::create(
        &*store,
        &cfg,
        "backend",
        &rooms,
        roomgate::state::system_clock(),
    )
    .await
    .expect("create key");
    let rg = start(&yaml).await;
    let addr = rg.bound.http.expect("http");

    for (room, domain, kept) in [
        ("acme", "app.acme.test", true),
        ("other", "other.test", false),
    ] {
        let body = serde_json::json!({
            "room": room,
            "domain": domain,
            "path": "/",
            "user": "cust-42",
            "allowed_origins": ["https://host.test:8443"],
            "ttl": "30m",
        });
        let minted = e::mint_raw(addr, &key, &body.to_string()).await;
        assert_eq!(
            minted.status,
            201,
            "{}",
            String::from_utf8_lossy(&minted.body)
        );
        let token = minted.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        let bearer = format!("Bearer {token}");
        let r = send(
            addr,
            "POST",
            domain,
            "/api",
            &[("authorization", &bearer)],
            b"{}",
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let echo = r.json();
        assert_eq!(echo["headers"]["x-meshagent-user"], "cust-42");
        let forwarded = echo["headers"]["authorization"].as_str();
        assert_eq!(forwarded, kept.then_some(bearer.as_str()), "{room}");

        let r = send(
            addr,
            "POST",
            domain,
            "/api",
            &[("x-roomgate-embed-token", &token)],
            b"{}",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.json()["headers"].get("x-roomgate-embed-token").is_none());
    }
}

#[test]
fn forward_authorization_takes_true_or_false_only() {
    let yaml = yaml(1, 2, 3, 4, "/nonexistent/secrets.yaml").replace(
        r#"roomgate.forward_authorization: "true""#,
        r#"roomgate.forward_authorization: "yes""#,
    );
    let ctx = roomgate::config::LoadContext::default();
    let e = match roomgate::config::Config::from_yaml_str(&yaml, &ctx) {
        Ok(_) => panic!("a config with forward_authorization: \"yes\" was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains(r#"roomgate.forward_authorization: "yes" is not "true" or "false""#),
        "{e}"
    );
}
