//! The client side toward services: hyper's HTTP/1.1 client connection, pooled per
//! service address, and one shared h2c connection per address for the ports that ask for
//! it.
//!
//! Every exchange with a service goes through here — requests with or without a body,
//! WebSocket handshakes (each connection is driven with upgrades on) and liveness probes —
//! so one HTTP/1.1 implementation reads every service response. This module makes no
//! security decision and does not look at what it carries.
//!
//! A connection goes back to its address's list as soon as its response head arrives;
//! hyper marks it ready again once that response's body is done, and checkout takes only
//! ready connections, so no task is spawned per response to return one. A connection
//! idle for [`IDLE_LIFETIME`] is let go (hyper closes a connection whose handle is
//! dropped once its last exchange is done). A request a reused connection closed before
//! taking it is sent on another. A bodiless idempotent request (RFC 9110 §9.2.2) that a
//! reused connection dropped after taking it, before any answer, is sent once more on a
//! new connection, as nginx does; any other request then fails with
//! [`PoolError::Exchange`].
//!
//! The wait for a response head is bounded by a [`Deadline`] that the request body's
//! progress moves ahead (see [`Paced`]), so a slow upload is not taken for a slow
//! service: the timeout applies to a stalled upload, and to the wait for the head from
//! the last byte sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Method, Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::{Body, BodyError, Watched, Watcher};
use crate::deadline::Deadline;

/// How long an idle connection to a service is kept for reuse.
pub const IDLE_LIFETIME: Duration = Duration::from_secs(90);

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

/// An HTTP/1.1 connection kept for reuse.
struct Idle {
    sender: http1::SendRequest<Body>,
    since: Instant,
}

/// Connections to services, per address (`host:port`).
pub struct Pool {
    http1: Mutex<HashMap<String, Vec<Idle>, foldhash::fast::RandomState>>,
    h2c: Mutex<HashMap<String, http2::SendRequest<Body>, foldhash::fast::RandomState>>,
    connect_timeout: Duration,
    max_idle_per_address: usize,
}

impl Pool {
    pub fn new(connect_timeout: Duration, max_idle_per_address: usize) -> Pool {
        Pool {
            http1: Mutex::default(),
            h2c: Mutex::default(),
            connect_timeout,
            max_idle_per_address,
        }
    }

    /// Send `req` (origin-form target, `Host` set) to `address` over HTTP/1.1; fail with
    /// [`PoolError::Timeout`] when no response head came within `timeout` of the last
    /// request-body frame.
    pub async fn send(
        &self,
        address: &str,
        mut req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, PoolError> {
        // Shared with the request body when there is one, which moves it ahead.
        let paced = (!req.body().is_end_stream()).then(|| Arc::new(Deadline::after(timeout)));
        let unpaced;
        let deadline = match &paced {
            Some(deadline) => {
                let pace = Paced {
                    deadline: Arc::clone(deadline),
                    timeout,
                };
                req = req.map(|body| Body::new(Watched::new(body, pace)));
                deadline.as_ref()
            }
            None => {
                unpaced = Deadline::after(timeout);
                &unpaced
            }
        };
        // Kept to be sent once more if a reused connection drops it unanswered.
        let mut again = Resend::of(&req);
        loop {
            // Dialling and resending are boxed: their state (a connect and a handshake,
            // over 2 KiB) would otherwise size every request's future, which is moved
            // into its box and polled in place on every request.
            let (mut sender, reused) = match self.checkout(address) {
                Some(sender) => (sender, true),
                None => (Box::pin(self.connect(address)).await?, false),
            };
            let sent = tokio::select! {
                biased;
                sent = sender.try_send_request(req) => sent,
                () = deadline.passed() => return Err(PoolError::Timeout),
            };
            match sent {
                Ok(resp) => {
                    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                        self.checkin(address, sender);
                    }
                    return Ok(resp);
                }
                Err(e) if caused_by_request_body(e.error()) => return Err(PoolError::RequestBody),
                Err(mut e) => {
                    if let (Some(back), true) = (e.take_message(), reused) {
                        // Never taken by the connection: try another.
                        req = back;
                        continue;
                    }
                    return match again.take() {
                        Some(copy) if reused => {
                            tracing::debug!(upstream.authority = %address, "a kept-alive connection dropped the request; sending it once more");
                            Box::pin(self.send_fresh(address, copy.request(), deadline)).await
                        }
                        _ => {
                            tracing::debug!(upstream.authority = %address, error = %e.error(), "upstream exchange failed");
                            Err(PoolError::Exchange)
                        }
                    };
                }
            }
        }
    }

    /// Send `req` on a new connection, once.
    async fn send_fresh(
        &self,
        address: &str,
        req: Request<Body>,
        deadline: &Deadline,
    ) -> Result<Response<Incoming>, PoolError> {
        let mut sender = self.connect(address).await?;
        let sent = tokio::select! {
            biased;
            sent = sender.try_send_request(req) => sent,
            () = deadline.passed() => return Err(PoolError::Timeout),
        };
        let resp = sent.map_err(|_| PoolError::Exchange)?;
        self.checkin(address, sender);
        Ok(resp)
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

    /// The most recently returned ready connection to `address`. A list is in the order
    /// its connections came back, so those idle too long are a prefix, let go here; the
    /// search from the end lets go of closed ones it passes. Connections still busy with
    /// a response body stay.
    fn checkout(&self, address: &str) -> Option<http1::SendRequest<Body>> {
        let mut all = self.http1.lock().unwrap_or_else(PoisonError::into_inner);
        let list = all.get_mut(address)?;
        let now = Instant::now();
        let expired = list.partition_point(|c| now.duration_since(c.since) >= IDLE_LIFETIME);
        list.drain(..expired);
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            if list[i].sender.is_closed() {
                list.remove(i);
            } else if list[i].sender.is_ready() {
                return Some(list.remove(i).sender);
            }
        }
        None
    }

    fn checkin(&self, address: &str, sender: http1::SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let idle = Idle {
            sender,
            since: Instant::now(),
        };
        let mut all = self.http1.lock().unwrap_or_else(PoisonError::into_inner);
        match all.get_mut(address) {
            Some(list) if list.len() < self.max_idle_per_address => list.push(idle),
            Some(_) => {}
            None => {
                all.insert(address.to_owned(), vec![idle]);
            }
        }
    }

    /// A new HTTP/1.1 connection, driven by a task of its own until hyper is done with
    /// it (upgrades included).
    async fn connect(&self, address: &str) -> Result<http1::SendRequest<Body>, PoolError> {
        let stream = dial(address, self.connect_timeout).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| PoolError::Connect)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    fn shared_h2c(&self, address: &str) -> Option<http2::SendRequest<Body>> {
        let all = self.h2c.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(address).filter(|s| !s.is_closed()).cloned()
    }

    async fn connect_h2c(&self, address: &str) -> Result<http2::SendRequest<Body>, PoolError> {
        let stream = dial(address, self.connect_timeout).await?;
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

/// A TCP connection to `address` within `timeout`, with Nagle off.
async fn dial(address: &str, timeout: Duration) -> Result<TcpStream, PoolError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| PoolError::Connect)?
        .map_err(|_| PoolError::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The head of a bodiless idempotent request, kept to send it once more.
struct Resend {
    method: Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
}

impl Resend {
    fn of(req: &Request<Body>) -> Option<Resend> {
        (req.method().is_idempotent() && req.body().is_end_stream()).then(|| Resend {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        })
    }

    fn request(self) -> Request<Body> {
        let mut req = Request::new(crate::body::empty());
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        req
    }
}

/// A request body on its way to a service: each frame taken moves the response deadline
/// `timeout` ahead. hyper has no hook for "request fully written", but it takes the last
/// frame only then, so the wait for the head counts from the last byte sent.
struct Paced {
    deadline: Arc<Deadline>,
    timeout: Duration,
}

impl Watcher for Paced {
    fn on_frame(&mut self) {
        self.deadline.push(self.timeout);
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
            let mut all = pool.http1.lock().expect("lock");
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

    #[tokio::test(start_paused = true)]
    async fn an_upload_in_progress_keeps_the_deadline_ahead_and_the_head_wait_counts_from_its_end()
    {
        let timeout = Duration::from_secs(5);
        let deadline = Arc::new(Deadline::after(timeout));
        let passed = deadline.passed();
        tokio::pin!(passed);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BodyError>>(1);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|frame| (frame, rx))
        });
        let pace = Paced {
            deadline: Arc::clone(&deadline),
            timeout,
        };
        let mut body = Watched::new(http_body_util::StreamBody::new(stream).boxed(), pace);
        // Twenty seconds of upload, a chunk every four: longer than the timeout in all.
        for _ in 0..5 {
            tokio::select! {
                () = &mut passed => panic!("a slow upload was taken for a slow service"),
                () = tokio::time::sleep(Duration::from_secs(4)) => {}
            }
            tx.send(Ok(Frame::data(Bytes::from_static(b"chunk"))))
                .await
                .expect("send");
            body.frame().await.expect("frame").expect("data");
        }
        drop(tx);
        assert!(body.frame().await.is_none());
        let ended = Instant::now();
        passed.await;
        let waited = ended.elapsed();
        assert!(waited >= timeout, "{waited:?}");
        assert!(waited <= timeout + Duration::from_millis(1), "{waited:?}");
    }
}
