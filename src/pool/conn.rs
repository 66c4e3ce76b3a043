//! One HTTP/1.1 connection to a service, and one exchange on it: the request head and
//! body written, the response read up to its final head.
//!
//! The exchange runs on the request's own task: no connection task, no channel to one,
//! and no wake-up between tasks. A request body ([`Upload`]) is written while the
//! connection is also read, so a service that answers before it has taken the whole body
//! (a `413`, or an echo that streams back as it reads) is heard; the rest of the body then
//! goes on being written while the response is read, and the connection is never reused.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::head::{self, BodyLength, Head, HeadError};
use super::upload::{Sending, Upload};
use super::PoolError;
use crate::deadline::{Deadline, KeptTimer};

/// Room made in the read buffer before reading a response head.
pub(super) const HEAD_READ: usize = 8 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    /// The request head could not be written: the service never took the request, and
    /// its body was not touched.
    #[error("the connection closed before the request was written")]
    Unsent,
    /// The connection closed (or broke) before a byte of the response.
    #[error("the connection closed before a response")]
    Unanswered,
    /// The connection broke during the response head.
    #[error("the connection closed during the response head")]
    Cut,
    #[error(transparent)]
    Head(HeadError),
    /// The client's request body failed (cut short, badly framed, longer or shorter than
    /// it said): the service is not at fault.
    #[error("the request body failed")]
    RequestBody,
}

/// A connection to a service and what was read from it beyond the last response.
pub(super) struct Conn {
    pub(super) io: TcpStream,
    pub(super) buf: BytesMut,
    /// The request head being written; its allocation is kept for the next one.
    wire: Vec<u8>,
    /// The timer the exchanges' deadlines wait on ([`Deadline::passed_on`]), kept from
    /// one exchange to the next. While the connection rests it holds the waker of the
    /// last exchange's task (and so that task's memory) until the next exchange or the
    /// last deadline, at most `upstream_timeout` on; firing, it wakes that task once, for
    /// nothing.
    pub(super) timer: KeptTimer,
}

/// A final response head, and whether the whole request was written before it came (a
/// connection whose request was cut short is out of step, never reused).
pub(super) struct Answer {
    pub(super) head: Head,
    pub(super) in_step: bool,
    /// The head came while the connection was still taking the request body: the rest
    /// of the upload is to be written while the response body is read.
    pub(super) uploading: bool,
}

impl Conn {
    /// A TCP connection to `address` within `timeout`, with Nagle off.
    pub(super) async fn open(address: &str, timeout: Duration) -> Result<Conn, PoolError> {
        let io = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| PoolError::Connect)?
            .map_err(|_| PoolError::Connect)?;
        let _ = io.set_nodelay(true);
        Ok(Conn {
            io,
            buf: BytesMut::new(),
            wire: Vec::new(),
            timer: None,
        })
    }

    /// True while the service has neither closed the resting connection nor sent anything
    /// on it. Costs no system call unless the reactor saw the socket become readable.
    pub(super) fn is_idle(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Encode the head of the request `parts` describes, the `added` fields after its own
    /// and its body framed as `length` says, for [`Conn::exchange`] to send.
    pub(super) fn encode(&mut self, parts: &Parts, added: &[(&str, &[u8])], length: BodyLength) {
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        self.wire.clear();
        head::encode_request(
            &parts.method,
            target,
            (&parts.headers, added),
            length,
            &mut self.wire,
        );
    }

    /// The encoded head of a request this connection will not carry, for another.
    pub(super) fn take_head(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.wire)
    }

    /// Carry a request head another connection encoded.
    pub(super) fn give_head(&mut self, wire: Vec<u8>) {
        self.wire = wire;
    }

    /// Write the encoded request head, then `upload`, and read up to the final response
    /// head, its fields into `map` (see [`head::parse_response`]). The upload's progress
    /// moves `deadline` `timeout` ahead; the caller bounds the whole exchange by it.
    pub(super) async fn exchange(
        &mut self,
        head_request: bool,
        map: &mut HeaderMap,
        upload: Option<&mut Upload>,
        deadline: &Deadline,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        if self.io.write_all(&self.wire).await.is_err() {
            return Err(Failure::Unsent);
        }
        let Some(upload) = upload else {
            let head = read_head(&mut self.io, &mut self.buf, head_request, map).await?;
            return Ok(Answer {
                head,
                in_step: true,
                uploading: false,
            });
        };
        // Boxed: writing a body beside the read is the larger state, and every request's
        // future would otherwise carry (and copy) it.
        Box::pin(self.stream_body(upload, head_request, map, deadline, timeout)).await
    }

    /// Write `upload` while reading up to the final response head (its fields into `map`).
    async fn stream_body(
        &mut self,
        upload: &mut Upload,
        head_request: bool,
        map: &mut HeaderMap,
        deadline: &Deadline,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let (mut from, mut to) = self.io.split();
        let reading = read_head(&mut from, &mut self.buf, head_request, map);
        tokio::pin!(reading);
        let mut in_step = false;
        let mut uploading = true;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(head) = reading.as_mut().poll(cx) {
                return Poll::Ready(head.map(|head| Answer {
                    head,
                    in_step,
                    uploading,
                }));
            }
            if uploading {
                match upload.poll_send(cx, &mut to, &mut || deadline.push(timeout)) {
                    Poll::Pending => {}
                    Poll::Ready(Ok(())) => {
                        uploading = false;
                        in_step = true;
                    }
                    Poll::Ready(Err(Sending::Body)) => {
                        return Poll::Ready(Err(Failure::RequestBody))
                    }
                    // The service stopped reading: its answer may still come.
                    Poll::Ready(Err(Sending::Io)) => uploading = false,
                }
            }
            Poll::Pending
        })
        .await
    }

    /// The connection, now carrying the protocol the service switched to, with what was
    /// read of that protocol already.
    pub(super) fn into_upgraded(self) -> Upgraded {
        Upgraded {
            io: self.io,
            read: self.buf.freeze(),
        }
    }
}

/// Read up to the final response head from `io` into `buf`, its fields into `map` (see
/// [`head::parse_response`]); interim (1xx) heads are skipped.
async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    head_request: bool,
    map: &mut HeaderMap,
) -> Result<Head, Failure> {
    let mut answered = !buf.is_empty();
    loop {
        if !buf.is_empty() {
            if let Some(head) =
                head::parse_response(buf, head_request, map).map_err(Failure::Head)?
            {
                return Ok(head);
            }
        }
        buf.reserve(HEAD_READ);
        match io.read_buf(buf).await {
            Ok(0) | Err(_) if !answered => return Err(Failure::Unanswered),
            Ok(0) | Err(_) => return Err(Failure::Cut),
            Ok(_) => answered = true,
        }
    }
}

/// A connection after `101 Switching Protocols`: the socket, and what the service sent
/// after the head, which comes first in the protocol switched to.
pub struct Upgraded {
    pub io: TcpStream,
    pub read: Bytes,
}
