//! HTTP/1.1 as clients see it on one connection: roomgate serves requests whose body (if
//! any) came with the head itself, and hands a connection to hyper at the first head that
//! is anything else, so these tests mix both on one connection, pipeline, stream, ask
//! HEAD and close.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw::{
    dechunked, exchange, head_field as field, head_fields, read_response, read_until_closed, Raw,
};
use common::upstream::Upstream;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);
/// No field values, to compare with.
const NONE: [&str; 0] = [];

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
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(field(head, "transfer-encoding"), Some("chunked"), "{head}");
    assert_eq!(field(head, "content-length"), None, "{head}");
    let (body, after) = dechunked(rest);
    assert_eq!(after, "", "nothing follows the last chunk");
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
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
    let (closed_tx, closed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        upstream_request(&mut s, &mut buf)
            .await
            .expect("the request ended early");
        s.write_all(reply).await.expect("reply");
        let _ = arrived_tx.send(());
        // Hold until roomgate lets go of the connection.
        let mut rest = [0u8; 4096];
        while let Ok(n) = s.read(&mut rest).await {
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

/// Read one request from an upstream connection into `buf`, which keeps what follows it:
/// the head, then its body by `Content-Length`, or up to its last chunk (the bodies
/// forwarded in these tests carry no trailers). Returns the request line; `None` when
/// the connection ended first.
async fn upstream_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if !matches!(s.read_buf(buf).await, Ok(n) if n > 0) {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let end = loop {
        let body = &buf[head_end..];
        let end = if field(&head, "transfer-encoding").is_some() {
            let last = b"\r\n0\r\n\r\n";
            if body.starts_with(&last[2..]) {
                Some(last.len() - 2)
            } else {
                body.windows(last.len())
                    .position(|w| w == last)
                    .map(|i| i + last.len())
            }
        } else {
            let len: usize =
                field(&head, "content-length").map_or(0, |v| v.parse().expect("a length"));
            (body.len() >= len).then_some(len)
        };
        if let Some(end) = end {
            break head_end + end;
        }
        if !matches!(s.read_buf(buf).await, Ok(n) if n > 0) {
            return None;
        }
    };
    buf.drain(..end);
    head.lines().next().map(str::to_owned)
}

/// A service on a raw socket that answers every request with the bytes `script` gives for
/// its path, exactly as written, on every connection roomgate opens (404 for other paths).
async fn scripted_upstream(script: &'static [(&'static str, &'static [u8])]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(line) = upstream_request(&mut s, &mut buf).await {
                    let path = line.split(' ').nth(1).unwrap_or_default();
                    let reply = script.iter().find(|(p, _)| *p == path).map_or(
                        &b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"[..],
                        |(_, r)| *r,
                    );
                    if s.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A chunked body of 12 bytes with a stale `Content-Length: 5` beside it.
const TE_AND_LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nc\r\nhello world!\r\n0\r\n\r\n";
/// A HEAD answer with its length stated twice.
const LENGTH_TWICE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
/// A HEAD answer that states no length, as for a GET answered chunked.
const NO_LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
const SCRIPT: &[(&str, &[u8])] = &[
    ("/te-cl", TE_AND_LENGTH),
    ("/cl-twice", LENGTH_TWICE),
    ("/no-length", NO_LENGTH),
];

/// The head and body of the response at the start of `text`, the body read by the head's
/// own framing (chunked, a length, or to the close; none for an answer to HEAD), and what
/// follows it.
#[track_caller]
fn framed(text: &str, head_request: bool) -> (&str, String, &str) {
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a head: {text:?}"));
    if head_request {
        return (head, String::new(), rest);
    }
    if field(head, "transfer-encoding") == Some("chunked") {
        let (body, rest) = dechunked(rest);
        return (head, body, rest);
    }
    match field(head, "content-length") {
        Some(n) => {
            let n: usize = n.parse().expect("a length");
            let n = n.min(rest.len());
            (head, rest[..n].to_owned(), &rest[n..])
        }
        None => (head, rest.to_owned(), ""),
    }
}

/// A service's chunked answer with a stale `Content-Length` beside it reaches every
/// HTTP/1 client whole. RFC 9112 §6.3: the coding wins, and an intermediary removes the
/// length; roomgate re-frames the body, and no path tells the client that the first 5
/// bytes are all of it (hyper's serving, for HTTP/1.0 and absolute-form requests, and
/// hyper's client, for requests with a body, kept the length).
#[tokio::test]
async fn a_transfer_coded_answer_reaches_http1_clients_whole_without_its_stale_length() {
    let (_rg, addr) = through(scripted_upstream(SCRIPT).await).await;
    // (what, the bytes sent, how many answers they get)
    let requests: [(&str, &[u8], usize); 6] = [
        (
            "kept-alive GET, then another",
            b"GET /te-cl HTTP/1.1\r\nHost: app.acme.test\r\n\r\n\
              GET /te-cl HTTP/1.1\r\nHost: app.acme.test\r\nConnection: close\r\n\r\n",
            2,
        ),
        (
            "HTTP/1.0 GET",
            b"GET /te-cl HTTP/1.0\r\nHost: app.acme.test\r\n\r\n",
            1,
        ),
        (
            "absolute-form GET",
            b"GET http://app.acme.test/te-cl HTTP/1.1\r\nHost: app.acme.test\r\nConnection: close\r\n\r\n",
            1,
        ),
        (
            "POST with its body",
            b"POST /te-cl HTTP/1.1\r\nHost: app.acme.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            1,
        ),
        (
            "chunked POST",
            b"POST /te-cl HTTP/1.1\r\nHost: app.acme.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
              3\r\nabc\r\n0\r\n\r\n",
            1,
        ),
        (
            "HTTP/1.0 POST",
            b"POST /te-cl HTTP/1.0\r\nHost: app.acme.test\r\nContent-Length: 3\r\n\r\nabc",
            1,
        ),
    ];
    for (what, raw, answers) in requests {
        let Raw { text, closed } = exchange(addr, raw, WAIT).await;
        assert!(closed, "{what}: {text}");
        let mut rest = text.as_str();
        for _ in 0..answers {
            let (head, body, after) = framed(rest, false);
            assert!(head.contains(" 200 OK\r\n"), "{what}: {text}");
            assert_eq!(head_fields(head, "content-length"), NONE, "{what}: {text}");
            assert_eq!(body, "hello world!", "{what}: {text}");
            rest = after;
        }
        assert_eq!(rest, "", "{what}: {text}");
    }
}

/// The same answer reaches an h2c client whole; with the stale length it was a stream
/// error (PROTOCOL_ERROR, more DATA than stated).
#[tokio::test]
async fn a_transfer_coded_answer_reaches_an_h2_client_whole_without_its_stale_length() {
    let (_rg, addr) = through(scripted_upstream(SCRIPT).await).await;
    let mut send = common::h2c(addr).await;
    for (method, body) in [(Method::GET, ""), (Method::POST, "abc")] {
        let req = Request::builder()
            .method(method.clone())
            .uri("http://app.acme.test/te-cl")
            .body(Full::new(bytes::Bytes::from_static(body.as_bytes())))
            .expect("request");
        let resp = send.send_request(req).await.expect("response");
        let reply = common::read(resp).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}");
        assert!(
            !reply.headers.contains_key("content-length"),
            "{method}: {:?}",
            reply.headers
        );
        assert_eq!(reply.body, "hello world!", "{method}");
    }
}

/// The heads of the HEAD answers for `path`: asked twice over HTTP/1.1 on one connection
/// (roomgate's own serving) and once over HTTP/1.0 (through hyper), each labelled with
/// how it was asked. Every answer is a 200 and nothing follows the last one.
async fn head_answers(addr: SocketAddr, path: &str) -> Vec<(&'static str, String)> {
    let http11 = format!(
        "HEAD {path} HTTP/1.1\r\nHost: app.acme.test\r\n\r\n\
         HEAD {path} HTTP/1.1\r\nHost: app.acme.test\r\nConnection: close\r\n\r\n"
    );
    let http10 = format!("HEAD {path} HTTP/1.0\r\nHost: app.acme.test\r\n\r\n");
    let mut heads = Vec::new();
    for (what, raw, answers) in [("HTTP/1.1", http11, 2), ("HTTP/1.0", http10, 1)] {
        let Raw { text, closed } = exchange(addr, raw.as_bytes(), WAIT).await;
        assert!(closed, "{what}: {text}");
        let mut rest = text.as_str();
        for _ in 0..answers {
            let (head, _, after) = framed(rest, true);
            assert!(head.contains(" 200 OK\r\n"), "{what}: {text}");
            heads.push((what, head.to_owned()));
            rest = after;
        }
        assert_eq!(rest, "", "{what}: {text}");
    }
    heads
}

/// A HEAD answer whose length came twice, equal, reaches the client with it once (RFC
/// 9110 §8.6). Both lines were written on roomgate's own serving, and through hyper
/// (HTTP/1.0, h2) the connection was dropped with no answer.
#[tokio::test]
async fn equal_repeated_lengths_reach_the_client_once() {
    let (_rg, addr) = through(scripted_upstream(SCRIPT).await).await;
    for (what, head) in head_answers(addr, "/cl-twice").await {
        assert_eq!(
            head_fields(&head, "content-length"),
            ["5"],
            "{what}: {head}"
        );
    }
    let mut send = common::h2c(addr).await;
    let req = Request::head("http://app.acme.test/cl-twice")
        .body(Full::new(bytes::Bytes::new()))
        .expect("request");
    let reply = common::read(send.send_request(req).await.expect("response")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let lengths: Vec<_> = reply.headers.get_all("content-length").iter().collect();
    assert_eq!(lengths, ["5"], "h2");
}

/// A HEAD answer that states no length (its GET would be chunked) reaches the client with
/// none, on roomgate's own serving as through hyper's: a `content-length: 0` made up from
/// the empty body that stands in for the GET's would tell the client that body is empty.
#[tokio::test]
async fn a_head_answer_without_a_length_gets_none() {
    let (_rg, addr) = through(scripted_upstream(SCRIPT).await).await;
    for (what, head) in head_answers(addr, "/no-length").await {
        assert_eq!(head_fields(&head, "content-length"), NONE, "{what}: {head}");
        assert_eq!(
            field(&head, "content-type"),
            Some("text/plain"),
            "{what}: {head}"
        );
    }
}
