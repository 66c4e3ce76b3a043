//! The client side toward services: hyper's HTTP/1.1 client connection, pooled per
//! service address, and one shared h2c connection per address for the ports that ask for
//! it.
//!
//! Every exchange with a service goes through here — requests with or without a body,
//! WebSocket handshakes (each connection is driven with upgrades on) and liveness probes —
//! so one HTTP/1.1 implementation reads every service response. This module makes no
//! security decision and does not look at what it carries.
//!
//! Each connection is driven by the request using it and then by its response body
//! ([`conn`]); it goes back to its address's list once that body has been read to the end.
//! A connection idle for [`IDLE_LIFETIME`] is let go. A request a reused connection closed
//! before taking it is sent on another. A bodiless idempotent request (RFC 9110 §9.2.2)
//! that a reused connection dropped after taking it, before any answer, is sent once more
//! on a new connection, as nginx does; any other request then fails with
//! [`PoolError::Exchange`].
//!
//! The wait for a response head is bounded by a [`Deadline`] that the request body's
//! progress moves ahead (see [`Paced`]), so a slow upload is not taken for a slow
//! service: the timeout applies to a stalled upload, and to the wait for the head from
//! the last byte sent.

mod conn;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Method, Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::body::{Body, BodyError, Watched, Watcher};
use crate::deadline::Deadline;
use conn::{exchange, returning, Conn, Exchange, Home, Idle};

pub use conn::Returning;

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

/// Connections to services, per address (`host:port`).
pub struct Pool {
    http1: Mutex<HashMap<String, Arc<Idle>, foldhash::fast::RandomState>>,
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
    ) -> Result<Response<Returning>, PoolError> {
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
        let idle = self.idle(address);
        // Kept to be sent once more if a reused connection drops it unanswered.
        let mut again = Resend::of(&req);
        loop {
            let (conn, reused) = match idle.checkout(IDLE_LIFETIME) {
                Some(conn) => (conn, true),
                None => (self.connect(address).await?, false),
            };
            let sent = tokio::select! {
                biased;
                sent = exchange(conn, req) => sent,
                () = deadline.passed() => return Err(PoolError::Timeout),
            };
            match sent {
                Exchange::Answered(resp, conn) => {
                    let home = Home {
                        idle,
                        max: self.max_idle_per_address,
                    };
                    return Ok(returning(resp, conn, home));
                }
                Exchange::NotTaken(back) if reused => {
                    // Never taken by the connection: try another.
                    req = back;
                }
                Exchange::NotTaken(_) => return Err(PoolError::Exchange),
                Exchange::Failed(e) if caused_by_request_body(&e) => {
                    return Err(PoolError::RequestBody)
                }
                Exchange::Failed(e) => {
                    return match again.take() {
                        Some(copy) if reused => {
                            tracing::debug!(upstream.authority = %address, "a kept-alive connection dropped the request; sending it once more");
                            self.send_fresh(address, copy.request(), deadline, idle)
                                .await
                        }
                        _ => {
                            tracing::debug!(upstream.authority = %address, error = %e, "upstream exchange failed");
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
        idle: Arc<Idle>,
    ) -> Result<Response<Returning>, PoolError> {
        let conn = self.connect(address).await?;
        let sent = tokio::select! {
            biased;
            sent = exchange(conn, req) => sent,
            () = deadline.passed() => return Err(PoolError::Timeout),
        };
        match sent {
            Exchange::Answered(resp, conn) => {
                let home = Home {
                    idle,
                    max: self.max_idle_per_address,
                };
                Ok(returning(resp, conn, home))
            }
            Exchange::NotTaken(_) | Exchange::Failed(_) => Err(PoolError::Exchange),
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

    /// The idle connections to `address`.
    fn idle(&self, address: &str) -> Arc<Idle> {
        let mut all = self.http1.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(idle) = all.get(address) {
            return Arc::clone(idle);
        }
        Arc::clone(all.entry(address.to_owned()).or_default())
    }

    /// A new HTTP/1.1 connection (upgrades on), polled by the requests that use it.
    async fn connect(&self, address: &str) -> Result<Conn, PoolError> {
        let stream = dial(address, self.connect_timeout).await?;
        Conn::handshake(stream)
            .await
            .map_err(|_| PoolError::Connect)
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
    use tokio::time::Instant;

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
