//! One canonical request, end to end: the path and host that routing and authorization
//! decide on are the ones the service receives, whatever encoding or duplicate the client
//! tries; forwarding claims from an untrusted client never reach the service; a queued
//! webhook is stamped with the real millisecond.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::raw::exchange;
use common::upstream::Upstream;
use common::*;
use hmac::{Hmac, Mac};
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::Sha256;
use tokio::net::TcpStream;

const HOST: &str = "app.acme.test";
const GH_SECRET: &str = "gh-edge-paths-secret";
const STRIPE_SECRET: &str = "whsec_edge_paths_secret";
const WAIT: Duration = Duration::from_secs(10);

struct Env {
    rg: roomgate::server::Running,
    web: Upstream,
    _dir: tempfile::TempDir,
}

impl Env {
    fn addr(&self) -> SocketAddr {
        self.rg.bound.http.expect("http")
    }
}

/// A public port whose `/admin` endpoint takes a participant token, whose
/// `/webhooks/stripe` verifies a Stripe signature and forwards, and whose `/hooks/gh`
/// verifies a GitHub signature and queues (embedded queue).
async fn setup() -> Env {
    let web = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = dir.path().join("secrets.yaml");
    std::fs::write(
        &secrets,
        format!(
            "rooms:\n  acme:\n    webhook-worker:\n      gh: {{value: \"{GH_SECRET}\"}}\n      stripe: {{value: \"{STRIPE_SECRET}\"}}\n"
        ),
    )
    .expect("write secrets");
    let rg = start(&yaml(web.addr.port(), &secrets)).await;
    Env { rg, web, _dir: dir }
}

fn yaml(web: u16, secrets: &Path) -> String {
    format!(
        r#"version: v1
listen: {{http: 127.0.0.1:0}}
{tokens}secrets:
  backend: file
  file: {secrets}
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - num: {web}
            published: true
            public: true
            endpoints:
              - path: /admin
                annotations:
                  meshagent.request.validation.method: bearer
              - path: /webhooks/stripe
                annotations:
                  meshagent.request.validation.method: stripe
                  meshagent.request.validation.secret: stripe
                  meshagent.request.processor: webhook-worker
              - path: /hooks/gh
                annotations:
                  meshagent.request.validation.method: github
                  meshagent.request.validation.secret: gh
                  meshagent.request.processor: webhook-worker
                  meshagent.request.queue: gh-events
routes:
  - {{domain: {HOST}, room: acme, port: {web}}}
"#,
        tokens = tokens_block(),
        secrets = secrets.display(),
    )
}

/// Security: a percent-encoded unreserved character is that character (RFC 3986
/// §6.2.2.2), so `/%61dmin` meets the `/admin` endpoint's policy exactly as `/admin` does,
/// and a verify-then-forward webhook endpoint cannot be reached unverified as
/// `/webhooks/%73tripe`. Most services decode such a path to the protected one.
#[tokio::test]
async fn encoded_letters_meet_the_same_endpoint_policy_as_the_plain_path() {
    let env = setup().await;
    let addr = env.addr();
    let plain = get(addr, HOST, "/admin/users", &[]).await;
    assert_eq!(plain.status, StatusCode::UNAUTHORIZED);
    assert_eq!(plain.error_code(), "missing_auth");
    for encoded in [
        "/%61dmin/users",
        "/%61%64%6D%69%6E/users",
        "/%61dmin%2fusers",
        "//%61dmin/./users",
        "/x/..;/admin/users",
    ] {
        let r = get(addr, HOST, encoded, &[]).await;
        let want = if encoded.contains("%2f") || encoded.contains(";") {
            (StatusCode::BAD_REQUEST, "invalid_path")
        } else {
            (plain.status, "missing_auth")
        };
        assert_eq!((r.status, r.error_code().as_str()), want, "{encoded}");
    }

    let plain = send(addr, "POST", HOST, "/webhooks/stripe", &[], b"{}").await;
    assert_eq!(plain.status, StatusCode::UNAUTHORIZED);
    for encoded in [
        "/webhooks/%73tripe",
        "/%77ebhooks/s%74ripe",
        "/webhooks/%73%74ripe",
    ] {
        let r = send(addr, "POST", HOST, encoded, &[], b"{}").await;
        assert_eq!(r.status, plain.status, "{encoded}");
        assert_eq!(r.error_code(), plain.error_code(), "{encoded}");
    }
    assert_eq!(env.web.requests(), 0, "nothing unauthorized was forwarded");

    // With a token, the encoded path is allowed and the service gets the canonical one.
    let t = token("acme", "alice", None);
    let r = get(
        addr,
        HOST,
        "/%61dmin/users?q=%61",
        &[("authorization", &format!("Bearer {t}"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["path"], "/admin/users?q=%61");
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("alice")
    );
}

/// Security: `;` parameters do not take a path out of an endpoint's policy. Tomcat,
/// Jetty and Spring strip them and would serve `/admin;x=1` as `/admin`, so it meets
/// `/admin`'s policy here; with the token, the service receives the path as sent.
#[tokio::test]
async fn path_parameters_meet_the_same_endpoint_policy_as_the_plain_path() {
    let env = setup().await;
    let addr = env.addr();
    for path in [
        "/admin;x=1",
        "/admin;x=1/users",
        "/;x/admin/users",
        "/admin;/users",
    ] {
        let r = get(addr, HOST, path, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.error_code(), "missing_auth", "{path}");
    }
    for path in ["/webhooks/stripe;x", "/hooks;a/gh;b"] {
        let r = send(addr, "POST", HOST, path, &[], b"{}").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.error_code(), "missing_signature", "{path}");
    }
    assert_eq!(env.web.requests(), 0, "nothing unauthorized was forwarded");

    let t = token("acme", "alice", None);
    let r = get(
        addr,
        HOST,
        "/admin;jsessionid=abc/users",
        &[("authorization", &format!("Bearer {t}"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["path"], "/admin;jsessionid=abc/users");
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("alice")
    );
    // Parameters elsewhere leave a public path public.
    let r = get(addr, HOST, "/docs;v=2/intro", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["path"], "/docs;v=2/intro");
}

/// The service receives the one canonical path: escaped unreserved characters decoded,
/// other escapes with upper-case hex, UTF-8 intact.
#[tokio::test]
async fn the_service_receives_the_canonical_path() {
    let env = setup().await;
    for (sent, received) in [
        ("/%7Euser", "/~user"),
        ("/%7euser/%2e/x", "/~user/x"),
        ("/a%3fb%c3%a9//c", "/a%3Fb%C3%A9/c"),
        ("/caf%C3%A9//x?y=1", "/caf%C3%A9/x?y=1"),
    ] {
        let r = get(env.addr(), HOST, sent, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{sent}");
        assert_eq!(r.json()["path"], received, "{sent}");
    }
}

/// A request with two `Host` lines names no host: 400 `invalid_header`, whichever line
/// names the route, and nothing reaches a service (RFC 9112 §3.2).
#[tokio::test]
async fn two_host_headers_are_refused() {
    let env = setup().await;
    for hosts in [
        "Host: app.acme.test\r\nHost: evil.test",
        "Host: evil.test\r\nHost: app.acme.test",
        "Host: app.acme.test\r\nHost: app.acme.test",
    ] {
        let raw = exchange(
            env.addr(),
            format!("GET / HTTP/1.1\r\n{hosts}\r\nConnection: close\r\n\r\n").as_bytes(),
            WAIT,
        )
        .await;
        assert_eq!(raw.status(), Some(400), "{hosts}: {}", raw.text);
        assert!(raw.text.contains("\"invalid_header\""), "{}", raw.text);
    }
    assert_eq!(env.web.requests(), 0);
}

/// Security: the host routed and authorized on is the host the service receives. An
/// absolute-form target's authority wins over `Host` (RFC 9112 §3.2.2), so the service
/// never sees `Host: evil.test` on a request routed as app.acme.test.
#[tokio::test]
async fn an_absolute_form_authority_is_the_host_the_service_receives() {
    let env = setup().await;
    let raw = exchange(
        env.addr(),
        b"GET http://app.acme.test/abs HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n",
        WAIT,
    )
    .await;
    assert_eq!(raw.status(), Some(200), "{}", raw.text);
    let body = &raw.text[raw.text.find("\r\n\r\n").expect("head") + 4..];
    let echo: serde_json::Value = serde_json::from_str(body).expect("echo JSON");
    assert_eq!(echo["path"], "/abs");
    assert_eq!(echo["headers"]["host"], HOST);
    assert_eq!(echo["headers"]["x-forwarded-host"], HOST);
}

/// The same over HTTP/2: `:authority` routes, and a `host` header naming another host
/// is replaced by it.
#[tokio::test]
async fn an_h2_authority_is_the_host_the_service_receives() {
    let env = setup().await;
    let tcp = TcpStream::connect(env.addr()).await.expect("connect");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let req = Request::get(format!("http://{HOST}/h2"))
        .header("host", "evil.test")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let r = read(send.send_request(req).await.expect("response")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.echoed_header("host").as_deref(), Some(HOST));
}

/// Security: what a proxy before roomgate saw is believed only from `trusted_proxies`
/// (none here); a client's `Forwarded`, `X-Real-IP` and the like never reach the service.
#[tokio::test]
async fn forwarding_claims_from_an_untrusted_client_are_dropped() {
    let env = setup().await;
    let claims = [
        ("forwarded", "for=6.6.6.6;proto=https;host=bank.test"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-prefix", "/admin"),
        ("x-real-ip", "6.6.6.6"),
        ("x-original-url", "/admin"),
    ];
    let mut headers = claims.to_vec();
    headers.push(("x-end-to-end", "kept"));
    let r = get(env.addr(), HOST, "/", &headers).await;
    assert_eq!(r.status, StatusCode::OK);
    for (name, _) in claims {
        assert_eq!(r.echoed_header(name), None, "{name}");
    }
    assert_eq!(r.echoed_header("x-end-to-end").as_deref(), Some("kept"));
    assert_eq!(
        r.echoed_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
}

/// A queued webhook's `received_at` is the wall clock at millisecond resolution: each
/// stamp lies between the clock read (to the millisecond) just before the request and
/// just after the reply. A stamp of whole seconds falls before that window.
#[tokio::test]
async fn received_at_carries_the_real_millisecond() {
    let env = setup().await;
    let roomgate::queue::Queue::Memory(queue) = &env.rg.shared.queue else {
        panic!("the embedded queue");
    };
    let stamp = |t: std::time::SystemTime| {
        roomgate::queue::format_received_at(time::OffsetDateTime::from(t))
    };
    for i in 0..5 {
        let body = format!("{{\"n\":{i}}}");
        let mut mac = Hmac::<Sha256>::new_from_slice(GH_SECRET.as_bytes()).expect("key");
        mac.update(body.as_bytes());
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let before = stamp(std::time::SystemTime::now());
        let r = send(
            env.addr(),
            "POST",
            HOST,
            "/hooks/gh",
            &[
                ("x-hub-signature-256", &sig),
                ("x-github-delivery", &format!("edge-paths-{i}")),
                ("x-github-event", "push"),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await;
        let after = stamp(std::time::SystemTime::now());
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let taken = queue.take("acme", "gh-events", 10);
        assert_eq!(taken.len(), 1);
        let at = taken[0].1.received_at();
        // Same fixed-width format: the order of the strings is the order of the instants.
        assert!(
            before.as_str() <= at && at <= after.as_str(),
            "{before} <= {at} <= {after}"
        );
    }
}
