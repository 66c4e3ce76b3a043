//! The one client toward services: a pool of kept-alive HTTP/1.1 connections per service
//! address, used by requests with and without a body alike, and what happens when a
//! kept-alive connection is dropped by the service.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn yaml(port: u16) -> String {
    format!(
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
"#
    )
}

/// Read one request (head, and a `Content-Length` body) from `s`; `None` at the end.
async fn request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some(head)
}

/// A service that counts its connections and answers every request with `200 ok`,
/// except that each connection's `drop_on`-th request is read and then the connection
/// is closed without an answer.
async fn service(drop_on: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut n = 0;
                while request(&mut s).await.is_some() {
                    n += 1;
                    if n == drop_on {
                        return;
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if s.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// Requests with and without a body share one pool of connections to a service: a GET, a
/// POST, a DELETE and a chunked PUT, one after the other, use one connection.
#[tokio::test]
async fn requests_with_and_without_a_body_share_one_kept_alive_connection() {
    let (up, accepted) = service(usize::MAX).await;
    let rg = start(&yaml(up.port())).await;
    let addr = rg.bound.http.expect("http");
    for (method, body) in [
        ("GET", &b""[..]),
        ("POST", b"hello"),
        ("DELETE", b""),
        ("PUT", b"world"),
    ] {
        let r = send(addr, method, "app.acme.test", "/x", &[], body).await;
        assert_eq!(r.status, StatusCode::OK, "{method}");
        assert_eq!(&r.body[..], b"ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for all");
}

/// A GET that a kept-alive connection takes and then drops without an answer (the
/// service closed it as it went idle) is sent once more on a new connection, as nginx
/// does: the method is idempotent and nothing was answered. A POST in the same spot is
/// not repeated: the client gets 502.
#[tokio::test]
async fn a_dropped_idempotent_request_is_sent_once_more_and_a_post_is_not() {
    // Every connection answers its first request and drops its second.
    let (up, accepted) = service(2).await;
    let rg = start(&yaml(up.port())).await;
    let addr = rg.bound.http.expect("http");

    let first = get(addr, "app.acme.test", "/1", &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    // Taken by the kept-alive connection, dropped, sent again on a new one.
    let again = get(addr, "app.acme.test", "/2", &[]).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    // The new connection is now kept alive with one request answered: a POST on it is
    // dropped, and never sent twice.
    let post = send(addr, "POST", "app.acme.test", "/3", &[], b"once").await;
    assert_eq!(post.status, StatusCode::BAD_GATEWAY);
    assert_eq!(post.error_code(), "bad_gateway");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "not sent again");
}
