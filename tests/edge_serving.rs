//! HTTP/1.1 as clients see it on one connection: roomgate serves requests whose body (if
//! any) came with the head itself, and hands a connection to hyper at the first head that
//! is anything else, so these tests mix both on one connection, pipeline, stream, ask
//! HEAD and close.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw::{head_field as field, read_response, read_until_closed, Raw};
use common::upstream::Upstream;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

async fn setup() -> (roomgate::server::Running, Upstream, SocketAddr) {
    let up = Upstream::start().await;
    let (rg, addr) = through(up.addr).await;
    (rg, up, addr)
}

/// roomgate in front of `upstream`, published as app.acme.test.
async fn through(upstream: SocketAddr) -> (roomgate::server::Running, SocketAddr) {
    let rg = common::start(&format!(
        r#"version: v1
listen:
  http: 127.0.0.1:0
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - {{num: {port}, published: true, public: true}}
routes:
  - {{domain: app.acme.test, room: acme, port: {port}}}
"#,
        port = upstream.port()
    ))
    .await;
    let addr = rg.bound.http.expect("http");
    (rg, addr)
}

/// The JSON the echo upstream answered with, from the body of a response.
fn echoed(response: &str) -> serde_json::Value {
    let (_, body) = response.split_once("\r\n\r\n").expect("a head");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// GETs, a POST with its body, a chunked POST (hyper's from there on), then a GET, on one kept-alive connection: each is forwarded as sent and
/// answered in turn.
#[tokio::test]
async fn gets_and_a_post_share_one_connection() {
    let (_rg, up, addr) = setup().await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    let steps: [(&[u8], &str, &str, &str); 5] = [
        (
            b"GET /a?x=1 HTTP/1.1\r\nHost: app.acme.test\r\n\r\n",
            "GET",
            "/a?x=1",
            "",
        ),
        (
            b"DELETE /b HTTP/1.1\r\nHost: app.acme.test\r\n\r\n",
            "DELETE",
            "/b",
            "",
        ),
        (
            b"POST /c HTTP/1.1\r\nHost: app.acme.test\r\nContent-Length: 5\r\n\r\nhello",
            "POST",
            "/c",
            "hello",
        ),
        (
            b"POST /e HTTP/1.1\r\nHost: app.acme.test\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nworld\r\n0\r\n\r\n",
            "POST",
            "/e",
            "world",
        ),
        (
            b"GET /d HTTP/1.1\r\nHost: app.acme.test\r\n\r\n",
            "GET",
            "/d",
            "",
        ),
    ];
    for (raw, method, path, body) in steps {
        c.write_all(raw).await.expect("write");
        let resp = read_response(&mut c).await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        let seen = echoed(&resp);
        assert_eq!(seen["method"], method, "{resp}");
        assert_eq!(seen["path"], path, "{resp}");
        assert_eq!(seen["body"], body, "{resp}");
        assert_eq!(seen["headers"]["x-forwarded-host"], "app.acme.test");
        assert!(field(&resp, "x-request-id").is_some(), "{resp}");
    }
    assert_eq!(up.requests(), 5);
}

/// Three requests written at once (a POST with its body among them) are answered in
/// order; the last asked to close, so the connection ends after it.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_rg, up, addr) = setup().await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(
        b"GET /1 HTTP/1.1\r\nHost: app.acme.test\r\n\r\n\
          POST /2 HTTP/1.1\r\nHost: app.acme.test\r\nContent-Length: 3\r\n\r\nabc\
          GET /3 HTTP/1.1\r\nHost: app.acme.test\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let Raw { text, closed } = read_until_closed(&mut c, WAIT).await;
    assert!(closed, "{text}");
    let answers: Vec<&str> = text.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 3, "{text}");
    for (i, answer) in answers.iter().enumerate() {
        let path = format!("\"path\":\"/{}\"", i + 1);
        assert!(answer.starts_with("200 OK\r\n"), "{text}");
        assert!(
            answer.contains(&path),
            "answer {i} is not for {path}: {text}"
        );
    }
    assert!(answers[1].contains("\"body\":\"abc\""), "{text}");
    assert_eq!(field(answers[2], "connection"), Some("close"), "{text}");
    assert_eq!(field(answers[0], "connection"), None, "{text}");
    assert_eq!(up.requests(), 3);
}

/// A response the service streams without a length reaches the client chunked, whole and
/// correctly terminated.
#[tokio::test]
async fn a_streamed_response_is_chunked_and_arrives_whole() {
    let (_rg, up, addr) = setup().await;
    // The upstream waits for this after its first chunk; the permit is kept until then.
    up.seen.proceed.notify_one();
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(
        b"GET /download?chunks=2 HTTP/1.1\r\nHost: app.acme.test\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let Raw { text, closed } = read_until_closed(&mut c, WAIT).await;
    assert!(closed);
    let (head, mut rest) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(field(head, "transfer-encoding"), Some("chunked"), "{head}");
    assert_eq!(field(head, "content-length"), None, "{head}");
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size, 16).expect("hex size");
        if size == 0 {
            assert_eq!(after, "\r\n", "the chunked body ends with its last chunk");
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").expect("CRLF after data");
    }
    assert_eq!(body.len(), 3 * 65536);
    assert!(body.bytes().all(|b| b == b'x'));
}

/// HEAD is answered with the length a GET would have and no body, so the next response
/// on the connection starts right after the head.
#[tokio::test]
async fn head_gets_the_length_without_the_body() {
    let (_rg, _up, addr) = setup().await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(
        b"HEAD /h HTTP/1.1\r\nHost: app.acme.test\r\n\r\n\
          GET /g HTTP/1.1\r\nHost: app.acme.test\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let Raw { text, closed } = read_until_closed(&mut c, WAIT).await;
    assert!(closed);
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let length: usize = field(head, "content-length")
        .expect("a length")
        .parse()
        .expect("a number");
    assert!(length > 0, "{text}");
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert_eq!(echoed(rest)["path"], "/g");
}

/// roomgate's own answers are framed like forwarded ones, and every answer has a Date.
#[tokio::test]
async fn own_answers_are_framed_and_dated() {
    let (_rg, _up, addr) = setup().await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n")
        .await
        .expect("write");
    let resp = read_response(&mut c).await;
    assert!(resp.starts_with("HTTP/1.1 404 Not Found\r\n"), "{resp}");
    let (head, body) = resp.split_once("\r\n\r\n").expect("a head");
    assert_eq!(
        field(head, "content-length"),
        Some(&*body.len().to_string())
    );
    assert_eq!(echoed(&resp)["error"], "no_route");
    let date = field(head, "date").expect("a date");
    assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    c.write_all(b"GET / HTTP/1.1\r\nHost: app.acme.test\r\n\r\n")
        .await
        .expect("write");
    let resp = read_response(&mut c).await;
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(field(&resp, "date").is_some(), "{resp}");
}

/// An upstream on a raw socket that takes one request, answers with `reply` (if any) and
/// then holds the connection open. It says when the request arrived and when roomgate
/// closed the connection.
async fn holding_upstream(
    reply: &'static [u8],
) -> (
    SocketAddr,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
    let (closed_tx, closed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "the request ended early");
            head.extend_from_slice(&buf[..n]);
        }
        s.write_all(reply).await.expect("reply");
        let _ = arrived_tx.send(());
        // Hold until roomgate lets go of the connection.
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        let _ = closed_tx.send(());
    });
    (addr, arrived, closed)
}

/// Send `request` through roomgate to an upstream that answers with `reply` and holds
/// on; once the request arrived (and the client read `first` of the response, if
/// given), the client leaves. roomgate must let go of the upstream connection at once:
/// without that, it would wait for the upstream deadline (60 s).
async fn leave_and_expect_cancel(request: &[u8], reply: &'static [u8], first: Option<&str>) {
    use tokio::io::AsyncReadExt;
    let (upstream, arrived, closed) = holding_upstream(reply).await;
    let (_rg, addr) = through(upstream).await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(request).await.expect("write");
    tokio::time::timeout(WAIT, arrived)
        .await
        .expect("the request reached the upstream")
        .expect("arrived");
    if let Some(first) = first {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).contains(first) {
            let n = tokio::time::timeout(WAIT, c.read(&mut buf))
                .await
                .expect("the first part in time")
                .expect("read");
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    }
    drop(c);
    tokio::time::timeout(WAIT, closed)
        .await
        .expect("roomgate closed the upstream connection when the client left")
        .expect("closed");
}

/// A client that goes away while its request waits for the service cancels the request.
#[tokio::test]
async fn a_client_that_leaves_before_the_response_cancels_the_upstream_request() {
    leave_and_expect_cancel(
        b"GET /slow HTTP/1.1\r\nHost: app.acme.test\r\n\r\n",
        b"",
        None,
    )
    .await;
}

/// The same while a streamed response waits for its next chunk (an event stream, say),
/// after the first event reached the client.
#[tokio::test]
async fn a_client_that_leaves_a_stream_cancels_the_upstream_response() {
    leave_and_expect_cancel(
        b"GET /events HTTP/1.1\r\nHost: app.acme.test\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n7\r\ndata: 1\r\n",
        Some("data: 1"),
    )
    .await;
}

/// The same for a request hyper serves (a chunked upload).
#[tokio::test]
async fn a_client_that_leaves_after_a_chunked_upload_cancels_the_upstream_request() {
    leave_and_expect_cancel(
        b"POST /upload HTTP/1.1\r\nHost: app.acme.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"",
        None,
    )
    .await;
}
