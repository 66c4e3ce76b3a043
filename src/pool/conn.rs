//! One HTTP/1.1 connection to a service, driven by whoever is using it.
//!
//! hyper's client connection comes in two halves: the handle requests are sent on and the
//! connection future that does the reading and writing. Here the request's own future
//! polls that connection future beside its response ([`exchange`]), and the response body
//! polls it while the body is read ([`Returning`]); no task is spawned per connection, and
//! no wake-up crosses from a connection task to the request's. A connection resting in the
//! pool is polled by nobody: a service that closed it is noticed by the next request to
//! take it, which then tries another (see [`Exchange::NotTaken`]).
//!
//! A connection that switches protocols (`101`) is the one exception: it is handed to a
//! task of its own, which hands the stream over to the upgrade.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::Body;

/// hyper's connection future, with upgrades on (boxed: its type cannot be named).
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send + Sync>>;

/// A connection: the handle requests are sent on, and the connection future (`None` once
/// it has ended).
pub(super) struct Conn {
    sender: http1::SendRequest<Body>,
    driver: Option<Driver>,
}

impl Conn {
    /// A new connection over `stream`; nothing is read or written until it is polled.
    pub(super) async fn handshake(stream: TcpStream) -> hyper::Result<Conn> {
        let (sender, driver) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Conn {
            sender,
            driver: Some(Box::pin(driver.with_upgrades())),
        })
    }

    /// Let the connection read and write what it can.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(driver) = &mut self.driver {
            if let Poll::Ready(ended) = driver.as_mut().poll(cx) {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                self.driver = None;
            }
        }
    }

    fn is_usable(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }

    /// Poll the connection until it ends, on a task of its own (a switch of protocols:
    /// the connection hands its stream to the upgrade, then ends).
    fn detach(self) {
        if let Some(driver) = self.driver {
            tokio::spawn(async move {
                if let Err(e) = driver.await {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
            });
        }
    }
}

/// How an [`exchange`] ended.
pub(super) enum Exchange {
    /// The response head, with the connection its body is read from.
    Answered(Response<Incoming>, Conn),
    /// The connection closed before it took the request; here is the request back.
    NotTaken(Request<Body>),
    /// The exchange broke after the connection took the request.
    Failed(hyper::Error),
}

/// Send `req` on `conn` and wait for the response head, polling the connection meanwhile.
///
/// The handle's readiness and the response come from the connection future, which only
/// this future polls: they are looked at after each poll of it without a waker of their
/// own, so that handing them over does not wake this task once more for nothing. The
/// wakers the connection future registers (its socket, the request body) bring this
/// future back whenever there is more for it to do.
pub(super) async fn exchange(mut conn: Conn, req: Request<Body>) -> Exchange {
    let ready = std::future::poll_fn(|cx| {
        conn.drive(cx);
        conn.sender.poll_ready(&mut unwoken())
    })
    .await;
    if ready.is_err() {
        return Exchange::NotTaken(req);
    }
    let mut sent = std::pin::pin!(conn.sender.try_send_request(req));
    let answer = std::future::poll_fn(|cx| {
        conn.drive(cx);
        sent.as_mut().poll(&mut unwoken())
    })
    .await;
    match answer {
        Ok(resp) => Exchange::Answered(resp, conn),
        Err(mut e) => match e.take_message() {
            Some(req) => Exchange::NotTaken(req),
            None => Exchange::Failed(e.into_error()),
        },
    }
}

/// A context whose waker does nothing, for what only [`Conn::drive`] moves on.
fn unwoken() -> Context<'static> {
    Context::from_waker(futures_util::task::noop_waker_ref())
}

/// The idle connections to one service address.
#[derive(Default)]
pub(super) struct Idle {
    list: Mutex<Vec<(Conn, Instant)>>,
}

impl Idle {
    /// The connection rested last that has rested less than `lifetime`; older ones, and
    /// ones already known to be closed, are let go.
    pub(super) fn checkout(&self, lifetime: std::time::Duration) -> Option<Conn> {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        list.retain(|(c, since)| c.is_usable() && now.duration_since(*since) < lifetime);
        list.pop().map(|(c, _)| c)
    }

    fn checkin(&self, conn: Conn, max: usize) {
        if !conn.is_usable() {
            return;
        }
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        if list.len() < max {
            list.push((conn, Instant::now()));
        }
    }
}

/// Where a connection goes back to once its response is read.
pub(super) struct Home {
    pub(super) idle: Arc<Idle>,
    pub(super) max: usize,
}

/// The response of an [`Exchange::Answered`], its body read through the connection: a
/// connection whose response switched protocols is detached; any other goes back to
/// `home` once its body has been read to the end, and is closed if the body is dropped
/// before that.
pub(super) fn returning(resp: Response<Incoming>, conn: Conn, home: Home) -> Response<Returning> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        conn.detach();
        return resp.map(|body| Returning { body, conn: None });
    }
    resp.map(|body| Returning {
        body,
        conn: Some((conn, home)),
    })
}

/// A service's response body, read through its connection.
pub struct Returning {
    body: Incoming,
    conn: Option<(Conn, Home)>,
}

impl Returning {
    /// Rest the connection in its pool if it is ready for another request: one more poll
    /// lets it finish with this exchange. One still busy (sending a request body the
    /// service answered before reading) is closed rather than left for the next request
    /// to wait on.
    fn give_back(&mut self) {
        if let Some((mut conn, home)) = self.conn.take() {
            conn.drive(&mut Context::from_waker(
                futures_util::task::noop_waker_ref(),
            ));
            if conn.sender.is_ready() {
                home.idle.checkin(conn, home.max);
            }
        }
    }
}

impl http_body::Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // While the connection is here, only its polling feeds the body (as in `exchange`).
        let frame = match &mut this.conn {
            Some((conn, _)) => {
                conn.drive(cx);
                ready!(Pin::new(&mut this.body).poll_frame(&mut unwoken()))
            }
            None => ready!(Pin::new(&mut this.body).poll_frame(cx)),
        };
        match &frame {
            None => this.give_back(),
            Some(Err(_)) => this.conn = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        // A body known to be complete is often dropped without its last poll (hyper stops
        // at the length it was told): its connection is as reusable as after that poll.
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}
