//! Proxy core, end to end: real roomgate on 127.0.0.1:0, real upstream servers.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::upstream::{free_ports, Upstream};
use common::*;
use http::StatusCode;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

fn yaml(public_port: u16, private_port: u16, extra_ports: &str, extra_routes: &str) -> String {
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
  admin: 127.0.0.1:0
{tokens}
limits:
  upstream_timeout: 500ms
  upstream_connect_timeout: 1s
  liveness_interval: 50ms
  liveness_wait: 20s
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - {{num: {public_port}, published: true, public: true}}
      - name: api
        ports:
          - {{num: {private_port}, published: true}}
{extra_ports}
  - name: other
    services:
      - name: web
        ports:
          - {{num: {public_port}, published: true, public: true}}
routes:
  - {{domain: public.acme.test, room: acme, port: {public_port}}}
  - {{domain: private.acme.test, room: acme, port: {private_port}}}
{extra_routes}
"#,
        tokens = tokens_block()
    )
}

async fn setup() -> (roomgate::server::Running, Upstream, Upstream) {
    let public = Upstream::start().await;
    let private = Upstream::start().await;
    let rg = start(&yaml(public.addr.port(), private.addr.port(), "", "")).await;
    (rg, public, private)
}

#[tokio::test]
async fn public_route_forwards_with_host_path_and_forwarded_headers() {
    let (rg, public, _) = setup().await;
    let addr = rg.bound.http.unwrap();
    let r = get(addr, "Public.ACME.test.:8080", "/a/./b//c?x=1", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let echo = r.json();
    assert_eq!(echo["path"], "/a/b/c?x=1");
    assert_eq!(echo["headers"]["host"], "Public.ACME.test.:8080");
    assert_eq!(echo["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "http");
    assert_eq!(echo["headers"]["x-forwarded-host"], "public.acme.test");
    assert!(echo["headers"]["x-request-id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(r.headers.contains_key("x-request-id"));
    assert_eq!(public.requests(), 1);
}

/// Security: a client can never set the identity headers the upstream trusts, in any
/// case, and the underscore alias is refused before anything reaches the upstream.
#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let (rg, public, private) = setup().await;
    let addr = rg.bound.http.unwrap();
    let r = get(
        addr,
        "public.acme.test",
        "/",
        &[
            ("X-MeshAgent-User", "mallory"),
            ("x-MESHAGENT-api-scope", "{\"admin\":true}"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.echoed_header("x-meshagent-user"), None);
    assert_eq!(r.echoed_header("x-meshagent-api-scope"), None);

    let r = get(
        addr,
        "public.acme.test",
        "/",
        &[("X_MESHAGENT_USER", "mallory")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_header");
    assert_eq!(
        public.requests(),
        1,
        "the underscore request must not be forwarded"
    );

    // On a private port, a valid token's identity replaces any spoofed copy.
    let t = token("acme", "bob", None);
    let r = get(
        addr,
        "private.acme.test",
        "/",
        &[
            ("authorization", &format!("Bearer {t}")),
            ("X-MESHAGENT-USER", "mallory"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.echoed_header("x-meshagent-user").as_deref(), Some("bob"));
    assert_eq!(private.requests(), 1);
}

#[tokio::test]
async fn private_port_requires_a_participant_token() {
    let (rg, _, private) = setup().await;
    let addr = rg.bound.http.unwrap();

    let r = get(addr, "private.acme.test", "/", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "missing_auth");
    assert_eq!(r.headers["www-authenticate"], "Bearer");

    let t = token(
        "acme",
        "alice",
        Some(serde_json::json!({"queues": {"list": true}})),
    );
    let r = get_private(addr, "/x", &t).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("alice")
    );
    assert_eq!(
        r.echoed_header("x-meshagent-api-scope").as_deref(),
        Some(r#"{"queues":{"list":true}}"#)
    );

    let t = token("acme", "carol", None);
    let r = get_private(addr, "/", &t).await;
    assert_eq!(
        r.echoed_header("x-meshagent-api-scope").as_deref(),
        Some("{}")
    );
    assert_eq!(private.requests(), 2);
}

/// A participant name outside ASCII reaches the upstream intact; one that cannot be a
/// header value is refused rather than forwarded without an identity.
#[tokio::test]
async fn identity_headers_carry_utf8_names_and_never_go_missing() {
    let (rg, _, private) = setup().await;
    let addr = rg.bound.http.unwrap();
    let t = token("acme", "José Müller", None);
    let r = get_private(addr, "/", &t).await;
    assert_eq!(r.status, StatusCode::OK);
    let seen = private.seen.last_headers.lock().unwrap().clone();
    let user = seen
        .iter()
        .find(|(k, _)| k == "x-meshagent-user")
        .map(|(_, v)| v.clone());
    assert_eq!(user.as_deref(), Some("José Müller"));

    // `mint` refuses such a name; a token signed elsewhere may still carry one.
    let t = signed_token(&serde_json::json!({
        "name": "mallory\r\nx-meshagent-api-scope: {\"admin\":true}",
        "kid": "test",
        "grants": [{"name": "room", "scope": "acme"}],
    }));
    let r = get_private(addr, "/", &t).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "invalid_token");
    assert_eq!(private.requests(), 1);
}

/// Security: a token granting another room does not open this one.
#[tokio::test]
async fn token_for_another_room_is_forbidden() {
    let (rg, _, private) = setup().await;
    let t = token("other", "bob", None);
    let r = get_private(rg.bound.http.unwrap(), "/", &t).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "forbidden");
    assert_eq!(private.requests(), 0);
}

/// Security: a token signed with any key but the configured one is rejected.
#[tokio::test]
async fn token_signed_with_the_wrong_key_is_invalid() {
    let (rg, _, private) = setup().await;
    let forged = roomgate::auth::token::mint(
        "test",
        &roomgate::sensitive::Secret::new("a-different-secret-of-sufficient-length-000"),
        "acme",
        "mallory",
        None,
        None,
        roomgate::state::system_clock(),
    )
    .unwrap();
    let r = get(
        rg.bound.http.unwrap(),
        "private.acme.test",
        "/",
        &[("authorization", &format!("Bearer {forged}"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "invalid_token");
    assert_eq!(private.requests(), 0);
}

/// Security: credentials are never read from the URL.
#[tokio::test]
async fn token_in_the_query_string_is_not_accepted() {
    let (rg, _, private) = setup().await;
    let t = token("acme", "bob", None);
    for q in [format!("/?token={t}"), format!("/?access_token={t}")] {
        let r = get(rg.bound.http.unwrap(), "private.acme.test", &q, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.error_code(), "missing_auth");
        assert!(r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Authorization"));
    }
    assert_eq!(private.requests(), 0);
}

#[tokio::test]
async fn unknown_host_or_reserved_path_is_no_route() {
    let (rg, public, _) = setup().await;
    let addr = rg.bound.http.unwrap();
    let r = get(addr, "nowhere.test", "/", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "no_route");
    assert_eq!(r.headers["content-type"], "application/json");
    let r = get(addr, "public.acme.test", "/.roomgate/anything", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The admin paths are not served on the public listener.
    let r = get(addr, "public.acme.test", "/metrics", &[]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "forwarded to the app, not roomgate's metrics"
    );
    assert!(!String::from_utf8_lossy(&r.body).contains("roomgate_requests"));
    assert_eq!(public.requests(), 1);
}

#[tokio::test]
async fn iap_cookie_and_hop_by_hop_headers_are_not_forwarded() {
    let (rg, _, _) = setup().await;
    let r = get(
        rg.bound.http.unwrap(),
        "public.acme.test",
        "/",
        &[
            (
                "cookie",
                "theme=dark; __meshagent_iap=session-secret; lang=en",
            ),
            ("connection", "x-private-hop"),
            ("x-private-hop", "1"),
            ("proxy-authorization", "Basic abc"),
        ],
    )
    .await;
    assert_eq!(
        r.echoed_header("cookie").as_deref(),
        Some("theme=dark; lang=en")
    );
    assert_eq!(r.echoed_header("x-private-hop"), None);
    assert_eq!(r.echoed_header("proxy-authorization"), None);
}

#[tokio::test]
async fn wildcard_domains_and_longest_path_routes() {
    let public = Upstream::start().await;
    let private = Upstream::start().await;
    let routes = format!(
        "  - domain: \"*.apps.acme.test\"\n    room: acme\n    port: {}\n    paths:\n      - {{path: /api, port: {}}}\n      - {{path: /api/public, match: exact, port: {}}}\n  - {{domain: exact.apps.acme.test, room: acme, port: {}}}\n",
        public.addr.port(),
        private.addr.port(),
        public.addr.port(),
        private.addr.port()
    );
    let rg = start(&yaml(public.addr.port(), private.addr.port(), "", &routes)).await;
    let addr = rg.bound.http.unwrap();
    assert_eq!(
        get(addr, "x.apps.acme.test", "/", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(addr, "x.apps.acme.test", "/apiary", &[]).await.status,
        StatusCode::OK,
        "segment boundary"
    );
    assert_eq!(
        get(addr, "x.apps.acme.test", "/api/v1", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(addr, "x.apps.acme.test", "/api/public", &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get(addr, "x.apps.acme.test", "/api/public/x", &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(addr, "exact.apps.acme.test", "/", &[]).await.status,
        StatusCode::UNAUTHORIZED,
        "exact beats wildcard"
    );
    assert_eq!(
        get(addr, "a.b.apps.acme.test", "/", &[]).await.status,
        StatusCode::NOT_FOUND,
        "one label only"
    );
    assert_eq!(public.requests(), 3);
    assert_eq!(private.requests(), 0);
}

/// Security: routing and authorization see the same normalised path, so dot-segments
/// cannot walk from a public path into a private one.
#[tokio::test]
async fn dot_segments_cannot_bypass_a_private_path() {
    let public = Upstream::start().await;
    let private = Upstream::start().await;
    let routes = format!(
        "  - domain: mixed.acme.test\n    room: acme\n    port: {}\n    paths:\n      - {{path: /admin, port: {}}}\n",
        public.addr.port(),
        private.addr.port()
    );
    let rg = start(&yaml(public.addr.port(), private.addr.port(), "", &routes)).await;
    let addr = rg.bound.http.unwrap();
    for p in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "//admin",
        "/./admin/",
    ] {
        let r = get(addr, "mixed.acme.test", p, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{p}");
    }
    for p in ["/admin%2fx", "/admin%5Cx", "/a%00b", "/a%23b"] {
        let r = get(addr, "mixed.acme.test", p, &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{p}");
        assert_eq!(r.error_code(), "invalid_path");
    }
    assert_eq!(public.requests() + private.requests(), 0);
}

#[tokio::test]
async fn connection_refused_is_bad_gateway() {
    let [dead, private] = free_ports();
    let public = Upstream::start().await;
    let extra = format!("      - name: dead\n        ports:\n          - {{num: {dead}, published: true, public: true}}\n");
    let routes = format!("  - {{domain: dead.acme.test, room: acme, port: {dead}}}\n");
    let rg = start(&yaml(public.addr.port(), private, &extra, &routes)).await;
    let r = get(rg.bound.http.unwrap(), "dead.acme.test", "/", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.error_code(), "bad_gateway");
}

/// No response head within `upstream_timeout` (500ms here) is 504, on a new upstream
/// connection as on a pooled one, and the pool serves the next request afterwards.
#[tokio::test]
async fn slow_upstream_is_gateway_timeout() {
    let (rg, public, _) = setup().await;
    let addr = rg.bound.http.unwrap();
    let started = std::time::Instant::now();
    let r = get(addr, "public.acme.test", "/hang", &[]).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.error_code(), "upstream_timeout");
    assert!(started.elapsed() >= Duration::from_millis(500));

    // A pooled connection, then a hang on it.
    assert_eq!(
        get(addr, "public.acme.test", "/ok", &[]).await.status,
        StatusCode::OK
    );
    let started = std::time::Instant::now();
    let r = get(addr, "public.acme.test", "/hang", &[]).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.error_code(), "upstream_timeout");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    assert_eq!(
        get(addr, "public.acme.test", "/after", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(public.requests(), 4);
}

/// A service that starts listening only after the first request arrived: the request
/// waits for liveness, then reaches it exactly once.
#[tokio::test]
async fn cold_start_waits_for_liveness_then_sends_once() {
    let public = Upstream::start().await;
    // Reserve the port and release it so nothing listens yet.
    let [cold, private] = free_ports();
    let extra = format!(
        "      - name: cold\n        ports:\n          - {{num: {cold}, published: true, public: true, liveness: /healthz}}\n"
    );
    let routes = format!("  - {{domain: cold.acme.test, room: acme, port: {cold}}}\n");
    let rg = start(&yaml(public.addr.port(), private, &extra, &routes)).await;
    let addr = rg.bound.http.unwrap();
    let admin = rg.bound.admin.unwrap();

    let request = tokio::spawn(async move {
        send(
            addr,
            "POST",
            "cold.acme.test",
            "/work",
            &[("content-type", "text/plain")],
            b"replay me",
        )
        .await
    });
    // Wait until roomgate reports the port as not ready (the request is waiting).
    loop {
        let ports = get(admin, "admin", "/ports", &[]).await.json();
        let state = ports["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == cold)
            .map(|p| p["state"].as_str().unwrap().to_owned());
        if state.as_deref() == Some("not_ready") {
            break;
        }
        tokio::task::yield_now().await;
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cold))
        .await
        .expect("bind the cold port");
    let upstream = Upstream::serve_on(listener);
    let r = request.await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["body"], "replay me");
    assert_eq!(
        upstream.requests(),
        1,
        "the original request is sent exactly once"
    );
    let ports = get(admin, "admin", "/ports", &[]).await.json();
    let entry = ports["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == cold)
        .unwrap()
        .clone();
    assert_eq!(entry["state"], "ready");
    assert_eq!(entry["liveness"], "/healthz");
    let metrics =
        String::from_utf8_lossy(&get(admin, "admin", "/metrics", &[]).await.body).into_owned();
    assert!(
        metrics.contains("roomgate_liveness_waits_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn cold_start_gives_up_with_upstream_not_ready() {
    let public = Upstream::start().await;
    let [cold, private] = free_ports();
    let extra = format!(
        "      - name: cold\n        ports:\n          - {{num: {cold}, published: true, public: true, liveness: /healthz}}\n"
    );
    let routes = format!("  - {{domain: cold.acme.test, room: acme, port: {cold}}}\n");
    let cfg = yaml(public.addr.port(), private, &extra, &routes)
        .replace("liveness_wait: 20s", "liveness_wait: 300ms");
    let rg = start(&cfg).await;
    let r = get(rg.bound.http.unwrap(), "cold.acme.test", "/", &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "upstream_not_ready");
    assert!(r.headers.contains_key("retry-after"));
}

/// A download larger than anything roomgate buffers streams through: the client sees the
/// first chunk while the upstream is still holding back the rest.
#[tokio::test]
async fn response_bodies_stream_without_buffering() {
    let (rg, public, _) = setup().await;
    let req = http::Request::builder()
        .uri(format!(
            "http://{}/download?chunks=64",
            rg.bound.http.unwrap()
        ))
        .header("host", "public.acme.test")
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
    // Only now does the upstream produce the remaining 4 MiB.
    public.seen.proceed.notify_one();
    let mut total = first.data_ref().unwrap().len();
    while let Some(f) = body.frame().await {
        total += f.unwrap().data_ref().map(|d| d.len()).unwrap_or(0);
    }
    assert_eq!(total, 65 * 65536);
}

/// An upload streams too: the upstream sees the first chunk before the client has sent
/// the rest.
#[tokio::test]
async fn request_bodies_stream_without_buffering() {
    let (rg, public, _) = setup().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    });
    let body = StreamBody::new(Box::pin(stream));
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}/upload", rg.bound.http.unwrap()))
        .header("host", "public.acme.test")
        .body(body)
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let pending = tokio::spawn(async move { client.request(req).await });
    tx.send(Bytes::from(vec![b'a'; 1024])).await.unwrap();
    public.seen.first_chunk.notified().await;
    for _ in 0..32 {
        tx.send(Bytes::from(vec![b'b'; 65536])).await.unwrap();
    }
    drop(tx);
    let r = read(pending.await.unwrap().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        (1024 + 32 * 65536).to_string()
    );
}

/// The service's connection stays on roomgate's side: hop-by-hop fields of its response
/// (and the fields its `Connection` names) never reach the client, a chunked body arrives
/// whole, and the kept-alive connection to the service carries the next requests.
#[tokio::test]
async fn the_services_connection_fields_stay_behind_and_its_connection_is_reused() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while s.read(&mut byte).await.is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                    if head.ends_with(b"\r\n\r\n") {
                        head.clear();
                        let answer = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop-Secret\r\n\
                            X-Hop-Secret: s\r\nKeep-Alive: timeout=30\r\nProxy-Authenticate: Basic\r\n\
                            Transfer-Encoding: chunked\r\nX-End: e\r\n\r\n\
                            5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
                        if s.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    let private = Upstream::start().await;
    let rg = start(&yaml(port, private.addr.port(), "", "")).await;
    let addr = rg.bound.http.unwrap();
    for _ in 0..3 {
        let r = get(addr, "public.acme.test", "/x", &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], b"hello world");
        assert_eq!(r.headers["x-end"], "e");
        for hop in ["x-hop-secret", "keep-alive", "proxy-authenticate"] {
            assert!(!r.headers.contains_key(hop), "{hop} reached the client");
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn admin_listener_serves_health_and_metrics() {
    let (rg, _, _) = setup().await;
    let admin = rg.bound.admin.unwrap();
    let _ = get(rg.bound.http.unwrap(), "public.acme.test", "/", &[]).await;
    let _ = get(rg.bound.http.unwrap(), "private.acme.test", "/", &[]).await;
    assert_eq!(
        get(admin, "admin", "/healthz", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(admin, "admin", "/readyz", &[]).await.status,
        StatusCode::OK
    );
    let m = String::from_utf8_lossy(&get(admin, "admin", "/metrics", &[]).await.body).into_owned();
    assert!(m.contains(r#"roomgate_requests_total{route="public.acme.test",status_class="2xx",outcome="forwarded"} 1"#), "{m}");
    assert!(m.contains(r#"roomgate_requests_total{route="private.acme.test",status_class="4xx",outcome="missing_auth"} 1"#), "{m}");
    assert!(
        m.contains("roomgate_request_duration_seconds_bucket"),
        "{m}"
    );
    let ports = get(admin, "admin", "/ports", &[]).await.json();
    assert!(ports["ports"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["state"] == "unchecked" && p["liveness"].is_null()));
    let _ = Duration::from_secs(0);
}

/// GET on the private route with `token` as the bearer credential.
async fn get_private(addr: std::net::SocketAddr, path: &str, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    get(addr, "private.acme.test", path, &[("authorization", &auth)]).await
}
