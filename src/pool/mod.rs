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
//! upload is not taken for a slow service. The timeout applies to the wait for the head
//! from the last byte sent, and to an upload that stalls: the client's fault
//! ([`PoolError::RequestBody`]) when it was the client's body that stopped coming.

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

use http::{Method, Request, Response, Uri};
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

    /// Send `req` (origin-form target, `Host` set) to `address` over HTTP/1.1, with the
    /// fields of `added` (none of them in `req`'s map) after its own; fail with
    /// [`PoolError::Timeout`] when no response head came within `timeout` of the upload's
    /// last progress, or with [`PoolError::RequestBody`] when the client's body stalled
    /// that long. A `101` answer carries the switched connection ([`Switched`]).
    pub async fn send(
        &self,
        address: &str,
        req: Request<Body>,
        added: &[(&str, &[u8])],
        timeout: Duration,
    ) -> Result<Response<Body>, PoolError> {
        let (mut parts, body) = req.into_parts();
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
        let head_request = parts.method == Method::HEAD;
        let deadline = Deadline::after(timeout);
        let mut fresh_only = false;
        // The request head as encoded for a connection that did not carry it.
        let mut encoded: Option<Vec<u8>> = None;
        // The deadline's timer: the first connection's, returned with the one that
        // carries the exchange.
        let mut timer = None;
        loop {
            let reused_conn = if fresh_only {
                None
            } else {
                self.idle.checkout(address, deadline.start())
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
            if timer.is_none() {
                timer = conn.timer.take();
            }
            match encoded.take() {
                Some(wire) => conn.give_head(wire),
                None => {
                    conn.encode(&parts, added, length);
                    // Encoded, the client's fields and target are let go before the wait
                    // for the service: they are slices of hyper's read buffer for the
                    // client's connection, which a slow service would otherwise keep
                    // alive beside the one hyper reads on into. The emptied map carries
                    // the response's fields.
                    parts.headers.clear();
                    parts.uri = Uri::default();
                }
            }
            let map = &mut parts.headers;
            let answer = tokio::select! {
                biased;
                answer = conn.exchange(head_request, map, upload.as_mut(), &deadline, timeout) => answer,
                () = deadline.passed_on(&mut timer) => {
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
                    conn.timer = timer;
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
                Failure::Unsent if reused => encoded = Some(conn.take_head()),
                Failure::Unanswered if reused && resendable => {
                    tracing::debug!(upstream.authority = %address, "a kept-alive connection dropped the request; sending it once more");
                    encoded = Some(conn.take_head());
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
mod tests;
