//! Request smuggling: ambiguous HTTP/1 framing, and byte sequences that once split one
//! connection differently for two readers. Every client connection has one parser
//! (hyper), so whatever precedes a request on its connection, it is treated as it is
//! when sent alone; and a connection keeps the protocol it started with.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw::{exchange, read_response, read_until_closed};
use common::upstream::Upstream;
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);
const HOST: &str = "app.acme.test";

struct Setup {
    _rg: roomgate::server::Running,
    addr: SocketAddr,
    public: Upstream,
    private: Upstream,
}

impl Setup {
    /// Every request the services received since the last look, `METHOD target body`,
    /// the private service's marked as such.
    fn received(&self) -> Vec<String> {
        let mut all = self.public.take_log();
        all.extend(
            self.private
                .take_log()
                .into_iter()
                .map(|r| format!("private: {r}")),
        );
        all.sort();
        all
    }
}

async fn setup() -> Setup {
    let public = Upstream::start().await;
    let private = Upstream::start().await;
    let rg = start(&format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
{tokens}
limits:
  header_read_timeout: 5s
  idle_timeout: 5s
  upstream_timeout: 5s
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - {{num: {public}, published: true, public: true}}
      - name: api
        ports:
          - {{num: {private}, published: true}}
routes:
  - domain: {HOST}
    room: acme
    port: {public}
    paths: [{{path: /admin, match: prefix, port: {private}}}]
  - {{domain: "*.apps.acme.test", room: acme, port: {public}}}
"#,
        tokens = tokens_block(),
        public = public.addr.port(),
        private = private.addr.port(),
    ))
    .await;
    let addr = rg.bound.http.expect("http");
    Setup {
        _rg: rg,
        addr,
        public,
        private,
    }
}

/// The ambiguous framings: each either refused with 400, or (both `Content-Length` and
/// `Transfer-Encoding`) read by its chunked coding with the connection closed after the
/// answer (RFC 9112 §6.1); either way `GET /admin/smuggled` never reaches a service.
fn ambiguous_forms() -> Vec<(&'static str, String)> {
    let head = format!("POST / HTTP/1.1\r\nHost: {HOST}\r\n");
    let smuggled = format!("GET /admin/smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    vec![
        (
            "CL then TE",
            format!("{head}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"),
        ),
        (
            "TE then CL",
            format!("{head}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{smuggled}"),
        ),
        (
            "duplicate CL, different values",
            format!("{head}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde{smuggled}"),
        ),
        (
            "duplicate CL, equal values",
            format!("{head}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd{smuggled}"),
        ),
        (
            "CL list",
            format!("{head}Content-Length: 4, 4\r\n\r\nabcd{smuggled}"),
        ),
        ("CL not a number", format!("{head}Content-Length: abc\r\n\r\n{smuggled}")),
        ("CL with a sign", format!("{head}Content-Length: +4\r\n\r\nabcd{smuggled}")),
        (
            "TE not chunked",
            format!("{head}Transfer-Encoding: gzip\r\n\r\n{smuggled}"),
        ),
        (
            "TE chunked not final",
            format!("{head}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n{smuggled}"),
        ),
        (
            "TE obfuscated",
            format!("{head}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{smuggled}"),
        ),
        (
            "TE on HTTP/1.0",
            format!("POST / HTTP/1.0\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"),
        ),
        (
            "a fragment in the target",
            format!("GET /admin#x HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
        ),
        (
            "a request hidden in a body",
            {
                let inner = format!("GET /admin/inner#x HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
                format!("POST /fake HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {}\r\n\r\n{inner}", inner.len())
            },
        ),
    ]
}

/// The last request of every exchange: answered, then the connection closes.
fn closing() -> String {
    format!("GET /end HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n")
}

/// Security: every ambiguous framing is refused with 400 (and the connection closed), or
/// read by its chunked coding and the connection closed after the answer; nothing
/// smuggled behind it reaches a service.
#[tokio::test]
async fn ambiguous_framing_is_refused_or_read_one_way_and_smuggles_nothing() {
    let s = setup().await;
    for (name, form) in ambiguous_forms().into_iter().take(11) {
        let r = exchange(s.addr, format!("{form}{}", closing()).as_bytes(), WAIT).await;
        assert!(r.closed, "{name}: connection closed");
        match r.status() {
            Some(400) => {
                r.assert_error(400, "invalid_header", name);
                assert_eq!(r.text.matches("HTTP/1.1").count(), 1, "{name}: one answer");
            }
            Some(200) if name.contains("CL") && name.contains("TE") => {
                assert_eq!(r.text.matches("HTTP/1.1").count(), 1, "{name}: one answer");
            }
            // Equal lengths are one length (RFC 9110 §8.6): the request, then the next.
            Some(200) if name.contains("equal") || name == "CL list" => {}
            other => panic!("{name}: {other:?}: {}", r.text),
        }
        let received = s.received();
        assert!(
            received
                .iter()
                .all(|r| !r.contains("/admin") && !r.starts_with("private")),
            "{name}: {received:?}"
        );
    }
    // Control: well-framed chunked and Content-Length bodies are served.
    let ok = format!(
        "POST / HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
    );
    let r = exchange(s.addr, ok.as_bytes(), WAIT).await;
    assert_eq!(r.status(), Some(200), "{}", r.text);
    assert_eq!(s.received(), ["POST / abcd"]);
}

/// A chunked request whose trailer section ends with a bare LF: once a prefix that two
/// readers split differently.
fn bare_lf_trailer() -> String {
    format!(
        "POST /p1 HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: a\n\n"
    )
}

/// Security: any byte sequence leaves a request treated as it is alone. Each ambiguous
/// form is sent alone and after the bare-LF trailer prefix; after the prefix, nothing
/// reaches a service that did not reach it alone (the prefix's own `/p1` aside).
#[tokio::test]
async fn whatever_precedes_a_request_it_is_treated_as_when_sent_alone() {
    let s = setup().await;
    for (name, form) in ambiguous_forms() {
        let alone = exchange(s.addr, format!("{form}{}", closing()).as_bytes(), WAIT).await;
        assert!(alone.closed, "{name}: alone, the connection ends");
        let received_alone = s.received();

        let bytes = format!("{}{form}{}", bare_lf_trailer(), closing());
        let after = exchange(s.addr, bytes.as_bytes(), WAIT).await;
        assert!(
            after.closed,
            "{name}: after the prefix, the connection ends"
        );
        let received_after: Vec<String> = s
            .received()
            .into_iter()
            .filter(|r| !r.starts_with("POST /p1 "))
            .collect();
        for r in &received_after {
            assert!(
                received_alone.contains(r),
                "{name}: after the prefix the service received {r:?}, which it did not \
                 receive for the request alone ({received_alone:?})"
            );
        }
    }
}

/// RFC 9113 §3.3: the HTTP/2 preface starts a connection and never continues one. After
/// an HTTP/1.1 exchange, a preface is a malformed request: the connection closes, and no
/// HTTP/2 frame is ever sent.
#[tokio::test]
async fn an_http2_preface_in_the_middle_of_an_http1_connection_is_refused() {
    let s = setup().await;
    let mut c = TcpStream::connect(s.addr).await.expect("connect");
    c.write_all(format!("GET /first HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    assert!(read_response(&mut c).await.starts_with("HTTP/1.1 200"));
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("write");
    // A SETTINGS frame would be `00 00 xx 04 00 00 00 00 00`; an HTTP/1.1 400 is allowed.
    let r = read_until_closed(&mut c, WAIT).await;
    assert!(r.closed, "the connection is closed");
    assert!(
        r.text.is_empty() || r.text.starts_with("HTTP/1.1 400"),
        "{:?}",
        r.text
    );
    assert_eq!(s.received(), ["GET /first "]);
}

/// Security: a host with an empty label (`.apps.test`) never matches a wildcard route; it
/// is refused as a malformed Host.
#[tokio::test]
async fn a_host_with_an_empty_label_is_an_invalid_header() {
    let s = setup().await;
    let r = exchange(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: x.apps.acme.test\r\nConnection: close\r\n\r\n",
        WAIT,
    )
    .await;
    assert_eq!(r.status(), Some(200), "the wildcard serves a whole label");
    assert_eq!(s.received(), ["GET / "]);
    for host in [
        ".apps.acme.test",
        "x..apps.acme.test",
        ".app.acme.test",
        "app.acme.test..",
    ] {
        let r = exchange(
            s.addr,
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
            WAIT,
        )
        .await;
        r.assert_error(400, "invalid_header", host);
    }
    assert!(s.received().is_empty());
}
