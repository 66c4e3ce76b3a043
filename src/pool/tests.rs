//! The pool against real test services on loopback sockets.

use super::*;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;

/// A listener for a test service on a free port, and its address.
async fn listen() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    (listener, address)
}

/// GET / through the pool; the response body as text.
async fn get(pool: &Pool, address: &str) -> String {
    let req = Request::builder()
        .uri("/")
        .header(http::header::HOST, address)
        .body(crate::body::empty())
        .expect("request");
    let resp = pool
        .send(address, req, &[], Duration::from_secs(5))
        .await
        .expect("answered");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(body.to_vec()).expect("utf-8")
}

/// A request body fed frame by frame through the sender returned.
fn fed_body() -> (
    tokio::sync::mpsc::Sender<Result<Frame<Bytes>, BodyError>>,
    Body,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    });
    (tx, http_body_util::StreamBody::new(stream).boxed())
}

/// A data frame of `bytes`.
fn data(bytes: &'static [u8]) -> Result<Frame<Bytes>, BodyError> {
    Ok(Frame::data(Bytes::from_static(bytes)))
}

/// `POST {path}` to the test service, with `body`.
fn post(path: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header(http::header::HOST, "svc.test")
        .body(body)
        .expect("request")
}

/// A service that closes a kept-alive connection while it rests in the pool: the next
/// request to that service goes on a new connection instead of failing.
#[tokio::test]
async fn a_connection_the_service_closed_while_resting_is_replaced() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (listener, address) = listen().await;
    let (closed_tx, mut closed) = tokio::sync::mpsc::channel::<()>(2);
    let service = tokio::spawn(async move {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.expect("read");
                assert!(n > 0, "the request head was cut short");
                head.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .expect("write");
            drop(s);
            closed_tx.send(()).await.expect("signal");
        }
    });
    let pool = Pool::new(Duration::from_secs(5), 8);
    for _ in 0..2 {
        assert_eq!(get(&pool, &address).await, "ok");
        // The service has closed its side before the next request is sent.
        closed.recv().await.expect("closed");
    }
    service.await.expect("service");
}

/// A kept connection is reused until it has rested [`IDLE_LIFETIME`]; then it is let
/// go (the service sees it close) and the request goes on a new one.
#[tokio::test]
async fn a_connection_rested_past_its_lifetime_is_closed_and_replaced() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (listener, address) = listen().await;
    // Each connection answers with its own number and reports its close.
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel::<usize>();
    tokio::spawn(async move {
        for n in 0usize.. {
            let (mut s, _) = listener.accept().await.expect("accept");
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    let read = s.read(&mut buf).await.unwrap_or(0);
                    if read == 0 {
                        let _ = closed_tx.send(n);
                        return;
                    }
                    head.extend_from_slice(&buf[..read]);
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        head.clear();
                        let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{n}");
                        s.write_all(resp.as_bytes()).await.expect("write");
                    }
                }
            });
        }
    });
    let pool = Pool::new(Duration::from_secs(5), 8);
    let rested = |by: Duration| {
        let mut all = pool.idle.lists.lock().expect("lock");
        for idle in all.get_mut(&address).expect("kept") {
            idle.since -= by;
        }
    };
    assert_eq!(get(&pool, &address).await, "0");
    rested(IDLE_LIFETIME - Duration::from_secs(1));
    assert_eq!(
        get(&pool, &address).await,
        "0",
        "a connection within its lifetime is reused"
    );
    rested(IDLE_LIFETIME);
    assert_eq!(
        get(&pool, &address).await,
        "1",
        "a connection past its lifetime is not reused"
    );
    assert_eq!(
        closed.recv().await,
        Some(0),
        "the rested connection is closed"
    );
    assert_eq!(get(&pool, &address).await, "1");
}

/// Accept one connection, read a bodiless request on it and answer with `reply`; the
/// connection, for what the test does next.
async fn answer_one(listener: &tokio::net::TcpListener, reply: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let (mut s, _) = listener.accept().await.expect("accept");
    read_request(&mut s, 0).await;
    s.write_all(reply).await.expect("write");
    s
}

/// What a service read of one request: the head, then `body_bytes` more.
async fn read_request(s: &mut tokio::net::TcpStream, body_bytes: usize) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if got.len() >= end + 4 + body_bytes {
                return String::from_utf8(got).expect("utf-8");
            }
        }
        let n = s.read(&mut buf).await.expect("read");
        assert!(
            n > 0,
            "the request was cut short: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// A body of known size goes with its `Content-Length`; a streamed one is chunked.
#[tokio::test]
async fn request_bodies_are_framed_by_what_is_known_of_their_size() {
    use tokio::io::AsyncWriteExt;
    let (listener, address) = listen().await;
    let chunked_wire = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let service = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut seen = Vec::new();
        for body_bytes in [5, chunked_wire.len()] {
            seen.push(read_request(&mut s, body_bytes).await);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .expect("write");
        }
        seen
    });
    let pool = Pool::new(Duration::from_secs(5), 8);
    let resp = pool
        .send(
            &address,
            post("/up", crate::body::full("hello")),
            &[],
            Duration::from_secs(5),
        )
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    let (tx, streamed) = fed_body();
    tx.send(data(b"hello")).await.expect("send");
    tx.send(data(b" world")).await.expect("send");
    drop(tx);
    let resp = pool
        .send(&address, post("/up", streamed), &[], Duration::from_secs(5))
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    let seen = service.await.expect("service");
    assert_eq!(
        seen[0],
        "POST /up HTTP/1.1\r\nhost: svc.test\r\ncontent-length: 5\r\n\r\nhello"
    );
    assert_eq!(
        seen[1],
        format!("POST /up HTTP/1.1\r\nhost: svc.test\r\ntransfer-encoding: chunked\r\n\r\n{chunked_wire}")
    );
}

/// A service that answers before taking the whole body is heard, and the connection,
/// out of step, is not reused.
#[tokio::test]
async fn an_answer_before_the_body_is_taken_is_heard_and_its_connection_not_reused() {
    let (listener, address) = listen().await;
    let service = tokio::spawn(async move {
        let early = answer_one(
            &listener,
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        // The next request comes on a connection of its own.
        answer_one(&listener, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        drop(early);
    });
    let pool = Pool::new(Duration::from_secs(5), 8);
    // A body that never ends: only the early answer can end this exchange.
    let (_keep, body) = fed_body();
    let resp = pool
        .send(&address, post("/up", body), &[], Duration::from_secs(30))
        .await
        .expect("answered");
    assert_eq!(resp.status(), 413);
    assert_eq!(get(&pool, &address).await, "ok");
    service.await.expect("service");
}

/// After a `101`, the switched connection comes with what the service sent right
/// after the head.
#[tokio::test]
async fn a_switched_connection_keeps_what_came_after_the_head() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (listener, address) = listen().await;
    tokio::spawn(async move {
        let mut s = answer_one(
            &listener,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nfirst",
        )
        .await;
        let mut echo = [0u8; 4];
        s.read_exact(&mut echo).await.expect("read");
        s.write_all(&echo).await.expect("write");
    });
    let pool = Pool::new(Duration::from_secs(5), 8);
    let req = Request::builder()
        .uri("/ws")
        .header(http::header::HOST, "svc.test")
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "websocket")
        .body(crate::body::empty())
        .expect("request");
    let mut resp = pool
        .send(&address, req, &[], Duration::from_secs(5))
        .await
        .expect("answered");
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["upgrade"], "websocket");
    assert_eq!(resp.headers()["connection"], "upgrade");
    let Upgraded { mut io, read } = Switched::take(&mut resp).expect("switched");
    assert!(Switched::take(&mut resp).is_none(), "taken once");
    assert_eq!(&read[..], b"first");
    io.write_all(b"ping").await.expect("write");
    let mut echo = [0u8; 4];
    io.read_exact(&mut echo).await.expect("read");
    assert_eq!(&echo, b"ping");
}

/// A service that answers as it reads (an echo) gets the rest of the body while its
/// answer is read: the upload goes on past the response head.
#[tokio::test]
async fn an_echo_gets_the_rest_of_the_body_while_its_answer_is_read() {
    use crate::pool::chunked::{Decoder, Step};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (listener, address) = listen().await;
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = bytes::BytesMut::new();
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let _ = buf.split_to(end + 4);
                break;
            }
            assert!(s.read_buf(&mut buf).await.expect("read") > 0);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
            .await
            .expect("write");
        let mut decoder = Decoder::default();
        loop {
            match decoder.next(&mut buf).expect("chunked") {
                Step::Data(data) => s.write_all(&data).await.expect("write"),
                Step::Done => break,
                Step::More => assert!(s.read_buf(&mut buf).await.expect("read") > 0),
            }
        }
    });
    let pool = Pool::new(Duration::from_secs(5), 8);
    let (tx, body) = fed_body();
    tx.send(data(b"hello")).await.expect("send");
    let req = post("/echo", body);
    let resp = pool
        .send(&address, req, &[], Duration::from_secs(5))
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    // Only now does the rest of the body exist.
    tx.send(data(b"world")).await.expect("send");
    drop(tx);
    let echoed = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .expect("the echo ends: the rest of the body reached the service")
        .expect("body")
        .to_bytes();
    assert_eq!(&echoed[..], b"helloworld");
}

/// The deadline's passing is the client's fault when its body stalled, and the
/// service's when the whole body was sent and no answer came.
#[tokio::test]
async fn a_stalled_upload_is_the_clients_and_a_silent_service_the_services() {
    let (listener, address) = listen().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            // Reads nothing, answers nothing.
            held.push(s);
        }
    });
    let pool = Pool::new(Duration::from_secs(5), 8);
    let (tx, body) = fed_body();
    tx.send(data(b"he")).await.expect("send");
    let timeout = Duration::from_millis(300);
    let stalled = pool.send(&address, post("/up", body), &[], timeout).await;
    assert_eq!(stalled.err(), Some(PoolError::RequestBody));
    drop(tx);
    let silent = pool
        .send(
            &address,
            post("/up", crate::body::full("whole")),
            &[],
            timeout,
        )
        .await;
    assert_eq!(silent.err(), Some(PoolError::Timeout));
}

/// A resting connection the service closed is closed by the reaper, without waiting
/// for another request to its address.
#[tokio::test]
async fn a_connection_the_service_closed_is_reaped_while_it_rests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (listener, address) = listen().await;
    let (half_closed_tx, half_closed) = tokio::sync::oneshot::channel::<()>();
    let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut s = answer_one(&listener, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        s.shutdown().await.expect("half-close");
        half_closed_tx.send(()).expect("signal");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        let _ = closed_tx.send(());
    });
    let pool = Pool::new(Duration::from_secs(5), 8);
    assert_eq!(get(&pool, &address).await, "ok");
    half_closed.await.expect("half-closed");
    // Once the reactor has seen the service's close.
    tokio::task::yield_now().await;
    pool.idle.reap();
    assert!(pool.idle.lists.lock().expect("lock").is_empty());
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the service saw roomgate close the connection")
        .expect("signal");
}
