//! Hostile clients on raw sockets: slow heads, idle connections, oversized heads, too many
//! connections, request budgets, and the path table (smuggling: `edge_smuggling.rs`).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::raw::{exchange, read_response, read_until_closed};
use common::upstream::Upstream;
use common::*;
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

struct Limits {
    header_read_timeout: &'static str,
    idle_timeout: &'static str,
    max_connections: usize,
    upstream_timeout: &'static str,
}

const DEFAULT: Limits = Limits {
    header_read_timeout: "30s",
    idle_timeout: "30s",
    max_connections: 100,
    upstream_timeout: "30s",
};

fn yaml(public: u16, private: u16, l: &Limits) -> String {
    format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
{tokens}
limits:
  header_read_timeout: {hrt}
  idle_timeout: {idle}
  max_connections: {maxc}
  max_headers: 10
  max_header_bytes: 8192
  max_requests_per_connection: 2
  upstream_timeout: {upt}
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - num: {public}
            published: true
            public: true
            endpoints:
              - path: /locked
                annotations:
                  meshagent.request.validation.method: bearer
      - name: api
        ports:
          - {{num: {private}, published: true}}
routes:
  - domain: app.acme.test
    room: acme
    port: {public}
    paths: [{{path: /admin, match: prefix, port: {private}}}]
"#,
        tokens = tokens_block(),
        hrt = l.header_read_timeout,
        idle = l.idle_timeout,
        maxc = l.max_connections,
        upt = l.upstream_timeout,
    )
}

struct Setup {
    rg: roomgate::server::Running,
    public: Upstream,
    private: Upstream,
}

impl Setup {
    fn addr(&self) -> SocketAddr {
        self.rg.bound.http.expect("http")
    }
    fn forwarded(&self) -> usize {
        self.public.requests() + self.private.requests()
    }
}

async fn setup(l: &Limits) -> Setup {
    let public = Upstream::start().await;
    let private = Upstream::start().await;
    let rg = start(&yaml(public.addr.port(), private.addr.port(), l)).await;
    Setup {
        rg,
        public,
        private,
    }
}

/// A connection that has been served one GET and is kept alive.
async fn kept_alive(s: &Setup) -> TcpStream {
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    c.write_all(b"GET /first HTTP/1.1\r\nHost: app.acme.test\r\n\r\n")
        .await
        .expect("write");
    let resp = read_response(&mut c).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    c
}

/// A slowloris client (a head that never ends) is closed after `header_read_timeout`,
/// and another client is served meanwhile.
#[tokio::test]
async fn slowloris_client_is_closed_after_the_header_read_timeout() {
    let s = setup(&Limits {
        header_read_timeout: "300ms",
        ..DEFAULT
    })
    .await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(s.addr()).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: app.acme.test\r\nX-Slow: a")
        .await
        .expect("write");
    let r = get(s.addr(), "app.acme.test", "/meanwhile", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "another client is served");
    let slow = read_until_closed(&mut slow, WAIT).await;
    assert!(slow.closed, "the slow client is disconnected");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(!slow.text.contains(" 200 "));
    assert_eq!(s.public.requests(), 1);
}

/// A client that connects and sends nothing (not even enough to tell HTTP/1 from
/// HTTP/2) is closed after `header_read_timeout` too.
#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let s = setup(&Limits {
        header_read_timeout: "300ms",
        ..DEFAULT
    })
    .await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(s.addr()).await.expect("connect");
    let r = read_until_closed(&mut silent, WAIT).await;
    assert!(r.closed);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// A slow head on a kept-alive connection, after a first request was served, is held to
/// `header_read_timeout` from its first byte, not to the much longer `idle_timeout`.
#[tokio::test]
async fn slowloris_after_a_first_request_is_closed_after_the_header_read_timeout() {
    let s = setup(&Limits {
        header_read_timeout: "300ms",
        idle_timeout: "60s",
        ..DEFAULT
    })
    .await;
    let mut c = kept_alive(&s).await;
    let started = Instant::now();
    c.write_all(b"GET /second HTTP/1.1\r\nHost: app.acme.test\r\nX-Slow: a")
        .await
        .expect("write");
    let r = read_until_closed(&mut c, WAIT).await;
    assert!(r.closed, "the slow head is cut off");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(!r.text.contains(" 200 "));
    assert_eq!(
        s.public.requests(),
        1,
        "only the first request was forwarded"
    );
}

/// Between requests a keep-alive connection is idle, not reading a head: it stays open
/// past `header_read_timeout` and serves its next request.
#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_read_timeout() {
    let s = setup(&Limits {
        header_read_timeout: "200ms",
        idle_timeout: "60s",
        ..DEFAULT
    })
    .await;
    let mut c = kept_alive(&s).await;
    // Five head deadlines pass with nothing sent: the connection is still there.
    let quiet = read_until_closed(&mut c, Duration::from_secs(1)).await;
    assert!(!quiet.closed, "closed while idle: {:?}", quiet.text);
    c.write_all(b"GET /second HTTP/1.1\r\nHost: app.acme.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_response(&mut c).await.starts_with("HTTP/1.1 200"));
    assert_eq!(s.public.requests(), 2);
}

/// An idle keep-alive connection is closed after `idle_timeout` (hyper has no idle timer).
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let s = setup(&Limits {
        idle_timeout: "300ms",
        ..DEFAULT
    })
    .await;
    let mut c = kept_alive(&s).await;
    let idle_since = Instant::now();
    let r = read_until_closed(&mut c, WAIT).await;
    assert!(r.closed, "idle connection closed");
    assert!(idle_since.elapsed() >= Duration::from_millis(250));
}

/// A response still streaming is not idle: it outlives `idle_timeout`.
#[tokio::test]
async fn a_streaming_response_outlives_the_idle_timeout() {
    let s = setup(&Limits {
        idle_timeout: "300ms",
        ..DEFAULT
    })
    .await;
    let req = http::Request::get(format!("http://{}/download?chunks=1", s.addr()))
        .header("host", "app.acme.test")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let resp = client().request(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut got = 0usize;
    while got < 65536 {
        let frame = body.frame().await.expect("frame").expect("ok");
        got += frame.data_ref().map_or(0, |d| d.len());
    }
    // Witness that more than idle_timeout has passed: another connection, idle since its
    // response, is closed.
    let mut witness = TcpStream::connect(s.addr()).await.expect("connect");
    witness
        .write_all(b"GET / HTTP/1.1\r\nHost: app.acme.test\r\n\r\n")
        .await
        .expect("write");
    read_response(&mut witness).await;
    assert!(read_until_closed(&mut witness, WAIT).await.closed);
    s.public.seen.proceed.notify_one();
    while let Some(frame) = body.frame().await {
        got += frame.expect("frame").data_ref().map_or(0, |d| d.len());
    }
    assert_eq!(got, 2 * 65536, "the whole download arrived");
}

/// A head larger than `max_header_bytes`, or with more than `max_headers` fields, is
/// answered 431 and not forwarded.
#[tokio::test]
async fn oversized_heads_and_too_many_headers_get_431() {
    let s = setup(&DEFAULT).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: app.acme.test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let r = exchange(s.addr(), big.as_bytes(), WAIT).await;
    r.assert_error(431, "headers_too_large", "oversized head");
    let mut many = String::from("GET / HTTP/1.1\r\nHost: app.acme.test\r\n");
    for i in 0..20 {
        many.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    let r = exchange(s.addr(), many.as_bytes(), WAIT).await;
    r.assert_error(431, "headers_too_large", "too many headers");
    assert_eq!(s.forwarded(), 0);
}

/// A head hyper cannot parse is answered by hyper itself, before any service: the answer
/// is still a JSON error with a stable code, and the connection closes.
#[tokio::test]
async fn an_unparseable_head_gets_a_json_error() {
    let s = setup(&DEFAULT).await;
    for (name, bytes) in [
        (
            "header line without a colon",
            "GET / HTTP/1.1\r\nHost: app.acme.test\r\nno colon here\r\n\r\n",
        ),
        (
            "space before the colon",
            "GET / HTTP/1.1\r\nHost : app.acme.test\r\n\r\n",
        ),
        (
            "bad method token",
            "G(T / HTTP/1.1\r\nHost: app.acme.test\r\n\r\n",
        ),
        (
            "unknown version",
            "GET / HTTP/7.1\r\nHost: app.acme.test\r\n\r\n",
        ),
    ] {
        let r = exchange(s.addr(), bytes.as_bytes(), WAIT).await;
        r.assert_error(400, "invalid_header", name);
        assert!(
            r.text.contains("content-type: application/json"),
            "{name}: {}",
            r.text
        );
        assert!(r.closed, "{name}: connection closed");
    }
    assert_eq!(s.forwarded(), 0);
}

/// Over `max_connections`, a new connection waits (it is not refused, nothing crashes)
/// and is served once a slot frees.
#[tokio::test]
async fn over_max_connections_a_new_connection_waits_for_a_slot() {
    let s = setup(&Limits {
        max_connections: 1,
        ..DEFAULT
    })
    .await;
    let mut first = TcpStream::connect(s.addr()).await.expect("connect");
    first
        .write_all(b"GET /1 HTTP/1.1\r\nHost: app.acme.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_response(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut second = TcpStream::connect(s.addr()).await.expect("connect");
    second
        .write_all(b"GET /2 HTTP/1.1\r\nHost: app.acme.test\r\n\r\n")
        .await
        .expect("write");
    let waited = tokio::time::timeout(Duration::from_millis(300), read_response(&mut second)).await;
    assert!(
        waited.is_err(),
        "the second connection must wait for a slot"
    );
    drop(first);
    let resp = tokio::time::timeout(WAIT, read_response(&mut second))
        .await
        .expect("served once the slot is free");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

/// `max_requests_per_connection`: the last allowed response says `Connection: close` and
/// the connection is closed.
#[tokio::test]
async fn the_request_budget_closes_the_connection() {
    let s = setup(&DEFAULT).await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    c.write_all(b"GET /1 HTTP/1.1\r\nHost: app.acme.test\r\n\r\n")
        .await
        .expect("write");
    let first = read_response(&mut c).await;
    assert!(!first.to_ascii_lowercase().contains("connection: close"));
    c.write_all(b"GET /2 HTTP/1.1\r\nHost: app.acme.test\r\n\r\n")
        .await
        .expect("write");
    let second = read_response(&mut c).await;
    assert!(
        second.to_ascii_lowercase().contains("connection: close"),
        "{second}"
    );
    assert!(read_until_closed(&mut c, WAIT).await.closed);
}

/// One exchange for the path table: status and, when forwarded, the path the service saw.
async fn path_case(s: &Setup, target: &str, auth: Option<&str>) -> (u16, Option<String>) {
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req =
        format!("GET {target} HTTP/1.1\r\nHost: app.acme.test\r\n{auth}Connection: close\r\n\r\n");
    let r = exchange(s.addr(), req.as_bytes(), WAIT).await;
    let status = r.status().unwrap_or(0);
    let path = r.text.split_once("\r\n\r\n").and_then(|(_, body)| {
        serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["path"].as_str().map(str::to_owned))
    });
    (status, path)
}

/// Security: routing, endpoint matching, authorization and forwarding all see the one
/// canonical path. Dot-segments and repeated slashes are resolved once (so `/x/../admin`
/// is the private `/admin` and needs the token); a fragment is dropped by the one parser
/// before anything sees the path (`/public#/../admin` is `/public`, `/admin#x` is the
/// private `/admin`); what parsers read differently (`%23`, NUL, `%2F`, `%5C`, `\`) is
/// refused.
#[tokio::test]
async fn path_normalisation_table_routing_and_authorization_agree() {
    let s = setup(&DEFAULT).await;
    let t = token("acme", "bob", None);
    // (target, token?, status, path the service saw)
    let table: &[(&str, bool, u16, Option<&str>)] = &[
        ("/admin/y", false, 401, None),
        ("/x/../admin/y", false, 401, None),
        ("//admin/y", false, 401, None),
        ("/./admin/y", false, 401, None),
        ("/%2e%2e/admin/y", false, 401, None),
        ("/x/%2E%2E/admin", false, 401, None),
        ("/x/../admin/y", true, 200, Some("/admin/y")),
        ("//admin///y/./z/..", true, 200, Some("/admin/y/")),
        ("/admin/../open", false, 200, Some("/open")),
        ("/a//b/./c/../d?q=1", false, 200, Some("/a/b/d?q=1")),
        ("/../../etc", false, 200, Some("/etc")),
        ("/locked/../open", false, 200, Some("/open")),
        ("/open/../locked/x", false, 401, None),
        ("//locked", false, 401, None),
        ("/open/..%2Flocked", false, 400, None),
        ("/admin%2Fy", false, 400, None),
        ("/x%2f..%2fadmin", true, 400, None),
        ("/a%23b", false, 400, None),
        ("/public#/../admin", false, 200, Some("/public")),
        ("/admin#/../open", false, 401, None),
        ("/admin/y#x", true, 200, Some("/admin/y")),
        ("/a%00b", false, 400, None),
        ("/a%5Cb", false, 400, None),
        ("/a\\b", false, 400, None),
        ("/a%zzb", false, 400, None),
    ];
    for (target, with_token, status, seen) in table {
        let (got, path) = path_case(&s, target, with_token.then_some(t.as_str())).await;
        assert_eq!(got, *status, "{target}");
        assert_eq!(path.as_deref(), *seen, "{target}");
    }
}

/// A request body that breaks while it is being forwarded (cut short by the client, or a
/// malformed chunk) is the client's fault: 400 `invalid_body`, not a 502 blamed on the
/// service.
#[tokio::test]
async fn a_request_body_that_breaks_mid_forward_is_the_clients_fault() {
    let s = setup(&DEFAULT).await;
    let cases: [&[u8]; 2] = [
        b"POST /upload HTTP/1.1\r\nHost: app.acme.test\r\nContent-Length: 100000\r\n\r\nonly a few bytes",
        b"POST /upload HTTP/1.1\r\nHost: app.acme.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let mut c = TcpStream::connect(s.addr()).await.expect("connect");
        c.write_all(bytes).await.expect("write");
        if i == 0 {
            // The upload reached the service; then the client gives up on its body (it
            // still reads the answer).
            tokio::time::timeout(WAIT, s.public.seen.first_chunk.notified())
                .await
                .expect("the body's first bytes reached the service");
            c.shutdown().await.expect("half-close");
        }
        let raw = read_until_closed(&mut c, WAIT).await;
        assert_eq!(raw.status(), Some(400), "case {i}: {}", raw.text);
        assert!(raw.text.contains("invalid_body"), "case {i}: {}", raw.text);
    }
}

/// An upload slower than `upstream_timeout` in all, but never stalled that long, is not
/// cut off as a slow service: the response deadline counts from the upload's progress.
#[tokio::test]
async fn a_slow_upload_is_not_taken_for_a_slow_service() {
    let s = setup(&Limits {
        upstream_timeout: "2s",
        ..DEFAULT
    })
    .await;
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    let chunk = [b'x'; 1000];
    c.write_all(b"POST /upload HTTP/1.1\r\nHost: app.acme.test\r\nContent-Length: 6000\r\n\r\n")
        .await
        .expect("write");
    c.write_all(&chunk).await.expect("write");
    tokio::time::timeout(WAIT, s.public.seen.first_chunk.notified())
        .await
        .expect("the upload reached the service");
    let started = Instant::now();
    for _ in 0..5 {
        // Pacing, not synchronisation: 3 s of upload in all against a 2 s timeout.
        tokio::time::sleep(Duration::from_millis(600)).await;
        c.write_all(&chunk).await.expect("write");
    }
    assert!(started.elapsed() > Duration::from_secs(2));
    let resp = tokio::time::timeout(WAIT, read_response(&mut c))
        .await
        .expect("answered");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("6000"), "{resp}");
}
