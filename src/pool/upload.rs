//! A request body on its way to a service, written as the connection takes it.
//!
//! An [`Upload`] keeps what it has taken from the body and not yet written, so writing
//! can stop at any point and go on later: while the response head is awaited, and, when
//! the service answers before it has the whole body (an echo, a progress stream), while
//! the response body is read. Its framing is the one the request head stated: the exact
//! `Content-Length`, or chunks.

use std::collections::VecDeque;
use std::io::{IoSlice, Write as _};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http_body::Body as _;
use tokio::io::AsyncWrite;

use super::head::BodyLength;
use crate::body::Body;

/// Why a request body was not sent whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sending {
    /// The client's body failed, or did not match the length it stated.
    Body,
    /// The connection would not take more.
    Io,
}

/// A request body being written. Trailer fields of a chunked body are not sent: the
/// `Trailer` field that would announce them is hop-by-hop.
pub(super) struct Upload {
    body: Body,
    chunked: bool,
    /// Taken from the body, not yet written: a chunk's size line, its data, its CRLF.
    pending: VecDeque<Bytes>,
    /// Bytes the stated `Content-Length` still expects.
    left: u64,
    /// The body's end is taken (and, when chunked, the last chunk queued).
    ended: bool,
    /// The last poll waited on the client's body, not on the connection.
    awaiting_client: bool,
}

impl Upload {
    /// `length` is `Exact` or `Chunked`: the framing the request head stated.
    pub(super) fn new(body: Body, length: BodyLength) -> Upload {
        Upload {
            body,
            chunked: length == BodyLength::Chunked,
            pending: VecDeque::with_capacity(3),
            left: match length {
                BodyLength::Exact(n) => n,
                _ => 0,
            },
            ended: false,
            awaiting_client: false,
        }
    }

    /// True when the upload is waiting for the client to send more of its body: a
    /// deadline passing now is the client's stall, not the service's.
    pub(super) fn awaiting_client(&self) -> bool {
        self.awaiting_client
    }

    /// Write what the connection takes, taking frames from the body as it goes: ready
    /// once the whole body and its end are written. `progress` is called for every frame
    /// taken and every write that took bytes.
    pub(super) fn poll_send<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut W,
        progress: &mut dyn FnMut(),
    ) -> Poll<Result<(), Sending>> {
        loop {
            while !self.pending.is_empty() {
                let mut slices = [IoSlice::new(&[]); 3];
                for (slot, bytes) in slices.iter_mut().zip(&self.pending) {
                    *slot = IoSlice::new(bytes);
                }
                let queued = self.pending.len().min(slices.len());
                let written = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..queued]))
                    .map_err(|_| Sending::Io)?;
                if written == 0 {
                    return Poll::Ready(Err(Sending::Io));
                }
                progress();
                self.consume(written);
            }
            if self.ended {
                return Poll::Ready(Ok(()));
            }
            self.awaiting_client = true;
            let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
            self.awaiting_client = false;
            progress();
            match frame {
                None => {
                    self.ended = true;
                    if self.chunked {
                        self.pending.push_back(Bytes::from_static(b"0\r\n\r\n"));
                    } else if self.left != 0 {
                        return Poll::Ready(Err(Sending::Body));
                    }
                }
                Some(Err(_)) => return Poll::Ready(Err(Sending::Body)),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        let mut size = [0u8; 20];
                        let mut line = &mut size[..];
                        let _ = write!(line, "{:x}\r\n", data.len());
                        let written = 20 - line.len();
                        self.pending
                            .push_back(Bytes::copy_from_slice(&size[..written]));
                        self.pending.push_back(data);
                        self.pending.push_back(Bytes::from_static(b"\r\n"));
                    } else {
                        self.left = self
                            .left
                            .checked_sub(data.len() as u64)
                            .ok_or(Sending::Body)?;
                        self.pending.push_back(data);
                    }
                }
            }
        }
    }

    /// Drop the first `n` pending bytes.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.pending.front_mut() else {
                return;
            };
            let step = n.min(front.len());
            front.advance(step);
            n -= step;
            if front.is_empty() {
                self.pending.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// What an upload writes to a sink that takes at most `step` bytes per write.
    async fn written(body: Body, length: BodyLength, step: usize) -> Result<Vec<u8>, Sending> {
        struct Trickle {
            out: Vec<u8>,
            step: usize,
        }
        impl AsyncWrite for Trickle {
            fn poll_write(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                let n = buf.len().min(this.step);
                this.out.extend_from_slice(&buf[..n]);
                Poll::Ready(Ok(n))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<std::io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let mut sink = Trickle {
            out: Vec::new(),
            step,
        };
        let mut upload = Upload::new(body, length);
        let mut progress = 0;
        std::future::poll_fn(|cx| upload.poll_send(cx, &mut sink, &mut || progress += 1)).await?;
        assert!(progress > 0);
        Ok(sink.out)
    }

    fn frames(parts: &[&'static str]) -> Body {
        let frames = parts
            .iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect::<Vec<Result<_, crate::body::BodyError>>>();
        http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed()
    }

    #[tokio::test]
    async fn a_body_is_written_whole_in_its_framing_however_little_each_write_takes() {
        for step in [1, 3, 1024] {
            let chunked = written(frames(&["hello", "", " world"]), BodyLength::Chunked, step)
                .await
                .expect("sent");
            assert_eq!(
                chunked, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                "step {step}"
            );
            let exact = written(frames(&["hello", " world"]), BodyLength::Exact(11), step)
                .await
                .expect("sent");
            assert_eq!(exact, b"hello world", "step {step}");
        }
    }

    #[tokio::test]
    async fn a_body_longer_or_shorter_than_its_stated_length_fails() {
        let long = written(frames(&["hello", " world"]), BodyLength::Exact(5), 1024).await;
        assert_eq!(long.err(), Some(Sending::Body));
        let short = written(frames(&["hello"]), BodyLength::Exact(11), 1024).await;
        assert_eq!(short.err(), Some(Sending::Body));
    }
}
