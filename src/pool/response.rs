//! A service's response as the pool hands it on: its head, and a body that reads the rest
//! from the connection.
//!
//! A body that came whole with its head is handed on as bytes, and the connection goes
//! back to rest at once. A longer body is read by the response body itself
//! ([`ResponseBody`]), which returns the connection when it has read the body to its last
//! byte; a body dropped before its end closes the connection. A connection whose framing
//! is in any doubt (an error, bytes beyond the body, `Connection: close`, a body
//! delimited by the close) is never reused.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

use super::chunked::{self, ChunkError, Step};
use super::conn::{Answer, Conn, Upgraded};
use super::head::{Framing, Head};
use super::idle::Idle;
use super::upload::{Sending, Upload};
use crate::body::{empty, full, Body, BodyError};

/// Room made in the read buffer before reading more of a body.
const BODY_READ: usize = 64 * 1024;

/// Where a connection goes back to once its response is read.
pub(super) struct Home<'a> {
    pub(super) idle: &'a Arc<Idle>,
    pub(super) address: &'a str,
}

/// On a `101` response: the connection, switched to the protocol the service named.
/// Taken once, by the tunnel.
#[derive(Clone)]
pub struct Switched(Arc<Mutex<Option<Upgraded>>>);

impl Switched {
    /// The switched connection of `resp`, if it has one not taken yet.
    pub fn take<B>(resp: &mut Response<B>) -> Option<Upgraded> {
        let switched = resp.extensions_mut().remove::<Switched>()?;
        let taken = switched
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        taken
    }
}

/// The response to hand on for `answer`, read on `conn`; `rest`, the part of the request
/// body still to write while the response body is read.
pub(super) fn respond(
    mut conn: Conn,
    answer: Answer,
    home: Home<'_>,
    rest: Option<Upload>,
) -> Response<Body> {
    let Answer { head, in_step, .. } = answer;
    let Head {
        status,
        headers,
        framing,
        reusable,
    } = head;
    let reusable = reusable && in_step;
    let mut switched = None;
    let body = match framing {
        Framing::Empty => {
            release(conn, reusable, &home);
            empty()
        }
        Framing::Switched => {
            switched = Some(Switched(Arc::new(Mutex::new(Some(conn.into_upgraded())))));
            empty()
        }
        Framing::Length(n) if conn.buf.len() as u64 >= n => {
            let data = conn.buf.split_to(n as usize).freeze();
            release(conn, reusable, &home);
            if data.is_empty() {
                empty()
            } else {
                full(data)
            }
        }
        framing => ResponseBody {
            conn: Some(conn),
            decode: Decode::of(framing),
            upload: rest,
            reusable,
            idle: Arc::clone(home.idle),
            address: home.address.to_owned(),
        }
        .boxed(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    if let Some(switched) = switched {
        resp.extensions_mut().insert(switched);
    }
    resp
}

/// Back to rest when the exchange left the connection in step; closed otherwise.
fn release(conn: Conn, reusable: bool, home: &Home<'_>) {
    if reusable && conn.buf.is_empty() {
        home.idle.checkin(home.address, conn);
    }
}

/// How the rest of a body is delimited, and the reading of it from a buffer: the same
/// steps whatever fills the buffer (the connection, or a fuzz input).
pub enum Decode {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(chunked::Decoder),
    UntilClose,
}

impl Decode {
    /// The reading of a body framed by `framing`.
    pub fn of(framing: Framing) -> Decode {
        match framing {
            Framing::Length(n) => Decode::Length(n),
            Framing::Chunked => Decode::Chunked(chunked::Decoder::default()),
            Framing::UntilClose => Decode::UntilClose,
            Framing::Empty | Framing::Switched => Decode::Length(0),
        }
    }

    /// The next piece of the body from what is buffered.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        Ok(match self {
            Decode::Length(0) => Step::Done,
            Decode::Length(_) if buf.is_empty() => Step::More,
            Decode::Length(left) => {
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                Step::Data(buf.split_to(take as usize).freeze())
            }
            Decode::Chunked(d) => d.next(buf)?,
            Decode::UntilClose if buf.is_empty() => Step::More,
            Decode::UntilClose => Step::Data(buf.split().freeze()),
        })
    }

    /// True once the body's last byte is read.
    pub fn ended(&self) -> bool {
        match self {
            Decode::Length(left) => *left == 0,
            Decode::Chunked(d) => d.is_done(),
            Decode::UntilClose => false,
        }
    }

    /// The end of the stream is the end of the body only when the body is delimited by
    /// it; otherwise the body was cut short.
    pub fn ends_at_close(&self) -> bool {
        matches!(self, Decode::UntilClose)
    }
}

/// A response body still arriving on its connection.
struct ResponseBody {
    /// `None` once the body is read (or failed).
    conn: Option<Conn>,
    decode: Decode,
    /// The request body, still being written to the service that answered early.
    upload: Option<Upload>,
    reusable: bool,
    idle: Arc<Idle>,
    address: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the service's response body ended early")]
struct Truncated;

#[derive(Debug, thiserror::Error)]
#[error("the request body failed while the response was read")]
struct RequestCut;

impl ResponseBody {
    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            let home = Home {
                idle: &self.idle,
                address: &self.address,
            };
            release(conn, self.reusable, &home);
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let (Some(upload), Some(conn)) = (this.upload.as_mut(), this.conn.as_mut()) {
            match upload.poll_send(cx, &mut conn.io, &mut || {}) {
                Poll::Pending => {}
                // Sent whole, or the service stopped reading it.
                Poll::Ready(Ok(())) | Poll::Ready(Err(Sending::Io)) => this.upload = None,
                Poll::Ready(Err(Sending::Body)) => {
                    this.upload = None;
                    this.conn = None;
                    return Poll::Ready(Some(Err(BodyError::new(RequestCut))));
                }
            }
        }
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decode.next(&mut conn.buf) {
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(BodyError::new(e))));
                }
                Ok(Step::Data(data)) => {
                    if this.decode.ended() {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::Done) => {
                    this.release();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
            }
            conn.buf.reserve(BODY_READ);
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf);
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    this.conn = None;
                    if this.decode.ends_at_close() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(BodyError::new(Truncated))));
                }
                Poll::Ready(Err(e)) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(BodyError::new(e))));
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.conn, &self.decode) {
            (None, _) => SizeHint::with_exact(0),
            (Some(_), Decode::Length(left)) => SizeHint::with_exact(*left),
            _ => SizeHint::default(),
        }
    }
}
