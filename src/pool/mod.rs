//! The HTTP/1.1 keep-alive pool roomgate forwards through.
//!
//! Owns idle upstream connections per authority, of two kinds. A request without a body
//! goes through roomgate's own exchange ([`exchange`]), on the request's own task. A
//! request with a body goes through hyper's client connection, which streams the body
//! while it reads the response; the rest of these notes are about those connections.
//!
//! A sender goes back to its list as soon as the response head arrives; hyper marks it
//! ready again once that response's body is done, and checkout takes only ready senders.
//! So no task is spawned per response to return a connection. A request that a reused
//! connection closed before taking it is retried on another connection (it never left
//! roomgate). Tunnels (upgrades) and h2c use hyper-util's client; this module makes no
//! security decision.
//!
//! The response deadline is kept per connection, not per request: a request notes its
//! deadline on the connection it uses, and the connection's task, which looks at least
//! once per `timeout` it was opened with, drops the connection when the deadline passes
//! with no response head; the request then fails as timed out. So a request arms no timer.
//! A request body moves the deadline ahead with every frame hyper takes from it (hyper has
//! no hook for "request fully written", but it takes the last frame only then), so a slow
//! upload is not taken for a slow service: `timeout` applies to a stalled upload, and to
//! the wait for the response head from the last byte sent.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http::{Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::error::{Body, BodyError};

pub mod deadline;
mod exchange;

use deadline::Deadline;

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

/// An idle connection: its sender and its deadline.
struct Pooled {
    sender: SendRequest<Body>,
    deadline: Arc<Deadline>,
}

/// Idle connections per upstream authority.
pub struct Http1Pool {
    /// hyper connections, for requests with a body.
    idle: Mutex<HashMap<String, Vec<Pooled>, foldhash::fast::RandomState>>,
    /// roomgate's own connections, for requests without one.
    slots: Mutex<HashMap<String, Arc<exchange::Slot>, foldhash::fast::RandomState>>,
    connect_timeout: Duration,
    max_idle_per_authority: usize,
}

impl Http1Pool {
    pub fn new(connect_timeout: Duration, max_idle_per_authority: usize) -> Http1Pool {
        Http1Pool {
            idle: Mutex::default(),
            slots: Mutex::default(),
            connect_timeout,
            max_idle_per_authority,
        }
    }

    /// Send `req` (origin-form URI, `Host` set) to `authority`; fail with
    /// [`PoolError::Timeout`] when no response head came within `timeout`. The response
    /// comes without hop-by-hop fields: they described the connection to the service.
    pub fn send<'a>(
        &'a self,
        authority: &'a str,
        req: Request<Body>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Response<Body>, PoolError>> + Send + 'a {
        if req.body().is_end_stream() {
            let open = exchange::Open {
                authority,
                connect_timeout: self.connect_timeout,
                period: timeout,
            };
            return Either::Left(exchange::send(self.slot(authority), open, req, timeout));
        }
        // Boxed: hyper's exchange state would otherwise size every request's future,
        // and a request with a body is the rarer kind.
        Either::Right(Box::pin(async move {
            Ok(cleaned(self.send_streaming(authority, req, timeout).await?))
        }))
    }

    /// The own connections to `authority`.
    fn slot(&self, authority: &str) -> Arc<exchange::Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(authority) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(exchange::Slot::new(self.max_idle_per_authority));
        slots.insert(authority.to_owned(), Arc::clone(&slot));
        slot
    }

    /// Send `req`, whose body streams, over one of hyper's connections.
    async fn send_streaming(
        &self,
        authority: &str,
        mut req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, PoolError> {
        loop {
            let (mut conn, reused) = match self.checkout(authority) {
                Some(conn) => (conn, true),
                // Boxed: a new connection is rare, and its state (connect, handshake)
                // would otherwise size every request's future.
                None => (Box::pin(self.connect(authority, timeout)).await?, false),
            };
            conn.deadline.start(timeout);
            if !req.body().is_end_stream() {
                // (A request handed back for a retry is wrapped again; the old wrapper's
                // connection is gone and its deadline cleared, so it moves nothing.)
                req = req.map(|body| {
                    Paced {
                        body,
                        deadline: Arc::clone(&conn.deadline),
                        timeout,
                    }
                    .boxed()
                });
            }
            let sent = conn.sender.try_send_request(req).await;
            conn.deadline.finish();
            match sent {
                Ok(resp) => {
                    self.checkin(authority, conn);
                    return Ok(resp);
                }
                Err(_) if conn.deadline.expired() => return Err(PoolError::Timeout),
                Err(e) if caused_by_request_body(e.error()) => return Err(PoolError::RequestBody),
                Err(mut e) => match e.take_message() {
                    // A reused connection closed before taking the request: try another.
                    Some(back) if reused => req = back,
                    _ => return Err(PoolError::Exchange),
                },
            }
        }
    }

    fn checkout(&self, authority: &str) -> Option<Pooled> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle.get_mut(authority)?;
        list.retain(|c| !c.sender.is_closed());
        let ready = list.iter().position(|c| c.sender.is_ready())?;
        Some(list.swap_remove(ready))
    }

    fn checkin(&self, authority: &str, conn: Pooled) {
        if conn.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        match idle.get_mut(authority) {
            Some(list) if list.len() < self.max_idle_per_authority => list.push(conn),
            Some(_) => {}
            None => {
                idle.insert(authority.to_owned(), vec![conn]);
            }
        }
    }

    /// Open a connection whose task keeps its deadlines, looking at least every `period`.
    async fn connect(&self, authority: &str, period: Duration) -> Result<Pooled, PoolError> {
        let stream = dial(authority, self.connect_timeout).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| PoolError::Connect)?;
        let deadline = Arc::new(Deadline::new());
        let watched = Arc::clone(&deadline);
        // The deadline is watched by a task of its own: polled beside the connection, its
        // timer would be polled on every wake-up of every exchange. It reports through a
        // oneshot, which costs the connection two atomic loads per poll.
        let (mut expired_tx, expired) = oneshot::channel::<()>();
        tokio::spawn(async move {
            tokio::select! {
                () = expired_tx.closed() => {}
                () = watched.expiry(period) => {
                    let _ = expired_tx.send(());
                }
            }
        });
        tokio::spawn(async move {
            tokio::select! {
                biased;
                res = conn => if let Err(e) = res {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                },
                // Dropping the connection fails the waiting request.
                _ = expired => {
                    tracing::debug!("upstream response timed out; connection dropped");
                }
            }
        });
        Ok(Pooled { sender, deadline })
    }
}

/// A TCP connection to `authority` within `timeout`, with Nagle off.
async fn dial(authority: &str, timeout: Duration) -> Result<TcpStream, PoolError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(authority))
        .await
        .map_err(|_| PoolError::Connect)?
        .map_err(|_| PoolError::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A response from one of hyper's clients, with roomgate's body type and without its
/// hop-by-hop fields. `Upgrade` is kept on a `101`, with `Connection: upgrade`. Its
/// `Content-Length` is settled as on roomgate's own exchange: hyper keeps the service's
/// fields as they came, even beside a `Transfer-Encoding` it framed the body by.
pub fn cleaned(resp: Response<Incoming>) -> Response<Body> {
    let upgrade = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
    let mut resp = resp.map(|b| b.map_err(BodyError::new).boxed());
    let coded = resp.headers().contains_key(http::header::TRANSFER_ENCODING);
    crate::h1::head::settle_length(resp.headers_mut(), coded);
    crate::headers::strip_hop_by_hop(resp.headers_mut(), upgrade);
    if upgrade {
        resp.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
    }
    resp
}

/// A request body on its way to the service; see the module notes on deadlines.
struct Paced {
    body: Body,
    deadline: Arc<Deadline>,
    timeout: Duration,
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if polled.is_ready() {
            this.deadline.progress(this.timeout);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn an_upload_in_progress_keeps_the_deadline_ahead_and_the_head_wait_counts_from_its_end()
    {
        let d = Arc::new(Deadline::new());
        let timeout = Duration::from_secs(5);
        let expiry = d.expiry(timeout);
        tokio::pin!(expiry);
        d.start(timeout);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BodyError>>(1);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|frame| (frame, rx))
        });
        let mut body = Paced {
            body: http_body_util::StreamBody::new(stream).boxed(),
            deadline: Arc::clone(&d),
            timeout,
        };
        // Twenty seconds of upload, a chunk every four: longer than the timeout in all.
        for _ in 0..5 {
            tokio::select! {
                () = &mut expiry => panic!("a slow upload was taken for a slow service"),
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
        expiry.await;
        let waited = ended.elapsed();
        assert!(waited >= timeout, "{waited:?}");
        assert!(waited <= timeout + Duration::from_millis(1), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_still_sent_after_the_response_head_moves_no_deadline() {
        let d = Arc::new(Deadline::new());
        let timeout = Duration::from_secs(1);
        d.start(timeout);
        let mut body = Paced {
            body: crate::error::full("late"),
            deadline: Arc::clone(&d),
            timeout,
        };
        d.finish();
        body.frame().await.expect("frame").expect("data");
        assert_eq!(d.due(), None);
    }
}
