//! The client side toward services: roomgate's own HTTP/1.1 exchange on connections
//! pooled per service address, and one shared h2c connection (hyper's) per address for
//! the ports that ask for it.
//!
//! Every HTTP/1.1 exchange with a service goes through here — requests with or without a
//! body, WebSocket handshakes and liveness probes — so one reader ([`head`], [`chunked`])
//! reads every service response. This module makes no security decision and does not
//! look at what it carries.
//!
//! The exchange runs on the request's own task ([`conn`]). A connection goes back to rest
//! ([`idle`]) as soon as its response is read to its end, which for a response whose body
//! came with its head is before the response is handed on. A request whose head a reused
//! connection would not take is sent on another. A bodiless idempotent request (RFC 9110
//! §9.2.2) that a reused connection dropped after taking it, before any answer, is sent
//! once more on a new connection, as nginx does; any other request then fails with
//! [`PoolError::Exchange`].
//!
//! The wait for a response head is bounded by a [`Deadline`] that the request body's
//! progress (each frame taken, each write the connection takes) moves ahead, so a slow
//! upload is not taken for a slow service: the timeout applies to a stalled upload, and
//! to the wait for the head from the last byte sent.

pub mod chunked;
mod conn;
mod framing;
pub mod head;
mod idle;
mod response;
mod upload;

pub use conn::Upgraded;
pub use idle::IDLE_LIFETIME;
pub use response::{Decode, Switched};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::body::{Body, BodyError};
use crate::deadline::Deadline;
use conn::{Conn, Failure};
use head::{BodyLength, Framing};
use idle::Idle;
use response::{respond, Home};
use upload::Upload;

/// Why an exchange through the pool failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Nothing accepted the connection (or it timed out connecting).
    Connect,
    /// The exchange broke after the request was handed to a connection.
    Exchange,
    /// The request body failed while it was being sent (a client's body cut short or
    /// badly framed): the service is not at fault.
    RequestBody,
    /// No response head before the deadline.
    Timeout,
}

/// Connections to services, per address (`host:port`).
pub struct Pool {
    idle: Arc<Idle>,
    h2c: Mutex<HashMap<String, http2::SendRequest<Body>, foldhash::fast::RandomState>>,
    connect_timeout: Duration,
}

impl Pool {
    pub fn new(connect_timeout: Duration, max_idle_per_address: usize) -> Pool {
        Pool {
            idle: Arc::new(Idle::new(max_idle_per_address)),
            h2c: Mutex::default(),
            connect_timeout,
        }
    }

    /// Send `req` (origin-form target, `Host` set) to `address` over HTTP/1.1; fail with
    /// [`PoolError::Timeout`] when no response head came within `timeout` of the upload's
    /// last progress, or with [`PoolError::RequestBody`] when the client's body stalled
    /// that long. A `101` answer carries the switched connection ([`Switched`]).
    pub async fn send(
        &self,
        address: &str,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Body>, PoolError> {
        let (parts, body) = req.into_parts();
        let length = if body.is_end_stream() {
            BodyLength::None
        } else {
            body.size_hint()
                .exact()
                .map_or(BodyLength::Chunked, BodyLength::Exact)
        };
        let mut upload = (length != BodyLength::None).then(|| Upload::new(body, length));
        // Sent again, on a new connection, if a reused one drops it unanswered.
        let resendable = length == BodyLength::None && parts.method.is_idempotent();
        let deadline = Deadline::after(timeout);
        let mut fresh_only = false;
        loop {
            let reused_conn = if fresh_only {
                None
            } else {
                self.idle.checkout(address)
            };
            let reused = reused_conn.is_some();
            let mut conn = match reused_conn {
                Some(conn) => conn,
                // Boxed: dialling is rare, and its state would otherwise size every
                // request's future.
                None => {
                    let conn = Box::pin(Conn::open(address, self.connect_timeout)).await?;
                    // The time taken to connect is not the service's to answer in.
                    deadline.push(timeout);
                    conn
                }
            };
            let answer = tokio::select! {
                biased;
                answer = conn.exchange(&parts, length, upload.as_mut(), &deadline, timeout) => answer,
                () = deadline.passed() => {
                    // A client that stopped sending its body is not a slow service.
                    return Err(if upload.as_ref().is_some_and(Upload::awaiting_client) {
                        PoolError::RequestBody
                    } else {
                        PoolError::Timeout
                    });
                }
            };
            let failure = match answer {
                Ok(answer) if answer.head.framing == Framing::Switched && !answer.in_step => {
                    // A switch before the request's body was whole: the service reads
                    // the rest of that body as the new protocol's.
                    tracing::debug!(upstream.authority = %address, "service switched protocols before the request body was sent");
                    return Err(PoolError::Exchange);
                }
                Ok(answer) => {
                    let home = Home {
                        idle: &self.idle,
                        address,
                    };
                    let rest = if answer.uploading {
                        upload.take()
                    } else {
                        None
                    };
                    return Ok(respond(conn, answer, home, rest));
                }
                Err(failure) => failure,
            };
            match failure {
                // Never taken by the connection, body untouched: try another.
                Failure::Unsent if reused => continue,
                Failure::Unanswered if reused && resendable => {
                    tracing::debug!(upstream.authority = %address, "a kept-alive connection dropped the request; sending it once more");
                    fresh_only = true;
                }
                Failure::RequestBody => return Err(PoolError::RequestBody),
                failure => {
                    tracing::debug!(upstream.authority = %address, error = %failure, "upstream exchange failed");
                    return Err(PoolError::Exchange);
                }
            }
        }
    }

    /// Send `req` (absolute URI) to `address` over the address's shared h2c connection.
    pub async fn send_h2c(
        &self,
        address: &str,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, PoolError> {
        let deadline = Deadline::after(timeout);
        let mut sender = match self.shared_h2c(address) {
            Some(sender) => sender,
            None => self.connect_h2c(address).await?,
        };
        tokio::select! {
            biased;
            sent = sender.send_request(req) => sent.map_err(|e| {
                if caused_by_request_body(&e) {
                    PoolError::RequestBody
                } else {
                    tracing::debug!(upstream.authority = %address, error = %e, "upstream h2c exchange failed");
                    PoolError::Exchange
                }
            }),
            () = deadline.passed() => Err(PoolError::Timeout),
        }
    }

    fn shared_h2c(&self, address: &str) -> Option<http2::SendRequest<Body>> {
        let all = self.h2c.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(address).filter(|s| !s.is_closed()).cloned()
    }

    async fn connect_h2c(&self, address: &str) -> Result<http2::SendRequest<Body>, PoolError> {
        let stream = Conn::open(address, self.connect_timeout).await?.io;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|_| PoolError::Connect)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream h2c connection ended with an error");
            }
        });
        self.h2c
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(address.to_owned(), sender.clone());
        Ok(sender)
    }
}

/// True when a client exchange failed because the request body did: hyper keeps the
/// body's error as the cause, and a [`BodyError`] can only come from a request body (what
/// roomgate buffers itself never fails).
pub fn caused_by_request_body(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.is::<BodyError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
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
            .send(address, req, Duration::from_secs(5))
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
            .send(&address, post("/up", streamed), Duration::from_secs(5))
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
        use tokio::io::AsyncWriteExt;
        let (listener, address) = listen().await;
        let service = tokio::spawn(async move {
            let (mut early, _) = listener.accept().await.expect("accept");
            read_request(&mut early, 0).await;
            early
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
                .await
                .expect("write");
            // The next request comes on a connection of its own.
            let (mut next, _) = listener.accept().await.expect("accept");
            read_request(&mut next, 0).await;
            next.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .expect("write");
            drop(early);
        });
        let pool = Pool::new(Duration::from_secs(5), 8);
        // A body that never ends: only the early answer can end this exchange.
        let (_keep, body) = fed_body();
        let resp = pool
            .send(&address, post("/up", body), Duration::from_secs(30))
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
            let (mut s, _) = listener.accept().await.expect("accept");
            read_request(&mut s, 0).await;
            s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nfirst")
                .await
                .expect("write");
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
            .send(&address, req, Duration::from_secs(5))
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
            .send(&address, req, Duration::from_secs(5))
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
        let stalled = pool.send(&address, post("/up", body), timeout).await;
        assert_eq!(stalled.err(), Some(PoolError::RequestBody));
        drop(tx);
        let silent = pool
            .send(&address, post("/up", crate::body::full("whole")), timeout)
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
            let (mut s, _) = listener.accept().await.expect("accept");
            read_request(&mut s, 0).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .expect("write");
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
}
