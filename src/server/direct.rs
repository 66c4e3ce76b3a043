//! roomgate's own HTTP/1.1 serving, for requests whose body (if any) came with the head.
//!
//! Every connection starts here. A request whose head [`h1::server`] serves (HTTP/1.1,
//! no upgrade, no body or a `Content-Length` body already read: nearly every GET, and a
//! webhook's small POST) is read, answered by the same pipeline hyper's
//! requests go to, and its response written, all in the connection's own task, with no
//! per-request task, box or timer. The first head that is anything else (a body still on
//! its way, chunked, an upgrade, HTTP/2's preface, HTTP/1.0, anything malformed or too large) hands the
//! connection to hyper for the rest of its life, with the bytes already read put back in
//! front (the framing watch reads them first): hyper then reads that head as if it had read it first, with its
//! checks, the framing watch and its error answers. So the requests served here are the
//! ones with nothing to get wrong, and everything else keeps hyper's behaviour.
//!
//! The connection's deadlines are the watcher's, from the same [`Activity`] atomics hyper's
//! requests update. Shutdown or a deadline closes a connection at once between requests
//! (and while a head is incomplete), and after the response in progress otherwise.
//!
//! While a request waits for its response, or a streamed response for its next chunk, the
//! client is watched: a client that closes the connection (or resets it) cancels the
//! request, which drops the exchange with the service, as nginx and hyper do.

use std::future::{poll_fn, Future};
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::SystemTime;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt;
use http::{header, Method, Response};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::oneshot;

use super::{answer, Activity, InFlight};
use crate::config::Limits;
use crate::error::Body;
use crate::h1::server::{self as h1, Parse};
use crate::proxy::ConnInfo;
use crate::state::Shared;

/// How much is read at a time, and kept for reading between requests.
const READ_SIZE: usize = 8 * 1024;
/// A first body chunk up to this size goes out in the same write as the head.
const COALESCE: usize = 16 * 1024;
/// What one look at the client reads while a response is pending.
const PROBE: usize = 64;

/// What one connection serves with.
pub(super) struct Front<'a> {
    pub shared: &'a Arc<Shared>,
    pub info: &'a Arc<ConnInfo>,
    pub https_port: Option<u16>,
    pub activity: &'a Arc<Activity>,
    pub limits: &'a Limits,
}

/// How serving here ended.
pub(super) enum Ended<T> {
    /// The connection is finished with.
    Done,
    /// hyper takes the connection, `read` (a head, and what followed it) to be read first.
    Elsewhere { read: Bytes, io: T },
}

/// Serve requests on `io` until it ends, `closing` says why it should, or a head comes
/// that hyper should read.
pub(super) async fn serve<T>(
    mut io: T,
    front: Front<'_>,
    closing: &mut oneshot::Receiver<&'static str>,
) -> Ended<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    // What the head clock was last told.
    let mut incomplete = false;
    loop {
        let simple = loop {
            if !buf.is_empty() {
                let parsed = h1::parse_request(&mut buf, front.limits.max_headers);
                // hyper answers a head that outgrows the limit (431).
                let elsewhere = match parsed {
                    Parse::Simple(s) => break s,
                    Parse::Partial => buf.len() >= front.limits.max_header_bytes,
                    Parse::Elsewhere => true,
                };
                if elsewhere {
                    // The framing watch keeps the head clock from here, from a clear start.
                    if incomplete {
                        front.activity.head.set(false);
                    }
                    return Ended::Elsewhere {
                        read: buf.freeze(),
                        io,
                    };
                }
            }
            if incomplete == buf.is_empty() {
                incomplete = !incomplete;
                front.activity.head.set(incomplete);
            }
            // Between requests nothing is kept for reading until bytes arrive.
            let idle = buf.is_empty();
            if idle {
                spare::put_read(std::mem::take(&mut buf));
            } else {
                buf.reserve(READ_SIZE);
            }
            let read = tokio::select! {
                biased;
                why = &mut *closing => {
                    tracing::debug!(reason = why.unwrap_or("shutdown"), "closing connection");
                    return Ended::Done;
                }
                read = read_more(&mut io, &mut buf, idle) => read,
            };
            match read {
                Ok(0) => return Ended::Done,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "connection ended with an error");
                    return Ended::Done;
                }
            }
        };
        if incomplete {
            incomplete = false;
            front.activity.head.set(false);
        }
        let activity = front.activity;
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        let served = activity.served.fetch_add(1, Ordering::AcqRel) + 1;
        let in_flight = InFlight(Arc::clone(activity));
        let head_request = simple.request.method() == Method::HEAD;
        let body = simple.body;
        let request = simple.request.map(|()| {
            if body.is_empty() {
                crate::error::empty()
            } else {
                crate::error::full(body)
            }
        });
        let mut watch = Watch::new();
        // In a block of its own, so the answer's space is free again for the writing.
        let response = {
            let answering = std::pin::pin!(answer(
                Arc::clone(front.shared),
                Arc::clone(front.info),
                front.https_port,
                request,
            ));
            watch.unless_gone(&mut io, &mut buf, answering).await
        };
        let Some(response) = response else {
            tracing::debug!("the client went away before the response");
            return Ended::Done;
        };
        let close = simple.close
            || served >= activity.max_requests
            || response
                .headers()
                .get(header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let mut out = spare::take_write();
        let written = write_response(
            &mut io,
            &mut out,
            Pending {
                buf: &mut buf,
                watch,
            },
            response,
            head_request,
            close,
        )
        .await;
        drop(in_flight);
        spare::put_write(out);
        if let Err(e) = written {
            tracing::debug!(error = %e, "connection ended with an error");
            return Ended::Done;
        }
        if close {
            let _ = io.shutdown().await;
            return Ended::Done;
        }
        // A deadline or shutdown that came while the response was being written.
        match closing.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => {}
            why => {
                tracing::debug!(reason = why.unwrap_or("shutdown"), "closing connection");
                let _ = io.shutdown().await;
                return Ended::Done;
            }
        }
    }
}

/// Read what the client sent into `buf`. When `fresh`, the bytes are read into space on
/// the stack of this poll and `buf` is allocated only once some have arrived, so an idle
/// connection holds no read buffer (as nginx frees its buffer on idle keep-alive
/// connections).
async fn read_more<T: AsyncRead + Unpin>(
    io: &mut T,
    buf: &mut BytesMut,
    fresh: bool,
) -> io::Result<usize> {
    if !fresh {
        return io.read_buf(buf).await;
    }
    poll_fn(|cx| {
        let mut space = [MaybeUninit::<u8>::uninit(); READ_SIZE];
        let mut space = ReadBuf::uninit(&mut space);
        ready!(Pin::new(&mut *io).poll_read(cx, &mut space))?;
        let read = space.filled();
        if !read.is_empty() {
            *buf = spare::take_read();
            buf.extend_from_slice(read);
        }
        Poll::Ready(Ok(read.len()))
    })
    .await
}

/// Read and write buffers of connections that went idle, kept per thread for the next
/// connection that needs one: idle connections hold none, and a busy thread allocates
/// none.
mod spare {
    use std::cell::RefCell;
    use std::thread::LocalKey;

    use bytes::BytesMut;

    use super::{COALESCE, READ_SIZE};

    /// At most this many of each kind per thread (read: 256 KiB; write: at most 1 MiB).
    const KEEP: usize = 32;
    /// A write buffer grown past this is let go (a head with a coalesced first chunk fits).
    const WRITE_MAX: usize = 2 * COALESCE;

    type List<T> = &'static LocalKey<RefCell<Vec<T>>>;

    thread_local! {
        static READS: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
        static WRITES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    fn pop<T>(list: List<T>) -> Option<T> {
        list.with(|list| list.borrow_mut().pop())
    }

    fn push<T>(list: List<T>, item: T) {
        list.with(|list| {
            let mut list = list.borrow_mut();
            if list.len() < KEEP {
                list.push(item);
            }
        });
    }

    /// A read buffer with room for `READ_SIZE` bytes.
    pub(super) fn take_read() -> BytesMut {
        pop(&READS).unwrap_or_else(|| BytesMut::with_capacity(READ_SIZE))
    }

    /// Keep `buf` (empty) for [`take_read`], if nothing else still shares its storage.
    pub(super) fn put_read(mut buf: BytesMut) {
        if buf.is_empty() && buf.try_reclaim(READ_SIZE) {
            push(&READS, buf);
        }
    }

    /// An empty write buffer.
    pub(super) fn take_write() -> Vec<u8> {
        pop(&WRITES).unwrap_or_else(|| Vec::with_capacity(1024))
    }

    /// Keep `out` for [`take_write`], unless it grew large.
    pub(super) fn put_write(mut out: Vec<u8>) {
        if out.capacity() <= WRITE_MAX {
            out.clear();
            push(&WRITES, out);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn an_idle_buffer_is_taken_again_once_nothing_shares_it() {
            let mut buf = take_read();
            buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            let storage = buf.as_ptr();
            let head = buf.split().freeze();
            // The head is still in use: the buffer is not kept.
            put_read(std::mem::take(&mut buf));
            let other = take_read();
            assert_ne!(other.as_ptr(), storage);

            let mut buf = BytesMut::with_capacity(READ_SIZE);
            buf.extend_from_slice(&head);
            let storage = buf.as_ptr();
            let head = buf.split().freeze();
            drop(head);
            put_read(buf);
            let again = take_read();
            assert_eq!(again.as_ptr(), storage, "the same storage, from its start");
            assert!(again.is_empty() && again.capacity() >= READ_SIZE);
        }

        #[test]
        fn a_write_buffer_comes_back_empty_unless_it_grew_large() {
            let mut out = take_write();
            out.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
            let storage = out.as_ptr();
            put_write(out);
            let again = take_write();
            assert_eq!(again.as_ptr(), storage);
            assert!(again.is_empty());

            put_write(Vec::with_capacity(WRITE_MAX + 1));
            let next = take_write();
            assert!(next.capacity() <= WRITE_MAX, "a large buffer is let go");
        }
    }
}

/// Watching the client while its response is pending.
struct Watch {
    /// False once the client sent more (a pipelined request): from then on it is not
    /// read again until that request's turn, and only a failed write tells it left.
    reading: bool,
}

impl Watch {
    fn new() -> Watch {
        Watch { reading: true }
    }

    /// Wait for `fut` while reading from the client. `None` when the connection ended
    /// first (closed, half-closed or reset): the caller drops `fut`, cancelling it. What
    /// the client sends meanwhile is kept in `buf`, after what is already there. `fut` is
    /// pinned where the caller made it, so a large future is not moved.
    async fn unless_gone<T, F>(
        &mut self,
        io: &mut T,
        buf: &mut BytesMut,
        mut fut: Pin<&mut F>,
    ) -> Option<F::Output>
    where
        T: AsyncRead + Unpin,
        F: Future,
    {
        if !self.reading {
            return Some(fut.await);
        }
        let mut probe = [0u8; PROBE];
        let mut probe = ReadBuf::new(&mut probe);
        let first = poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(First::Done(out));
            }
            Pin::new(&mut *io).poll_read(cx, &mut probe).map(|read| {
                if read.is_ok() && !probe.filled().is_empty() {
                    First::Sent
                } else {
                    First::Gone
                }
            })
        })
        .await;
        match first {
            First::Done(out) => Some(out),
            First::Gone => None,
            First::Sent => {
                buf.extend_from_slice(probe.filled());
                self.reading = false;
                Some(fut.await)
            }
        }
    }
}

/// What happened first while a response was pending.
enum First<O> {
    /// It was ready.
    Done(O),
    /// The client sent more.
    Sent,
    /// The connection ended.
    Gone,
}

/// The connection's read side while a response is written.
struct Pending<'a> {
    buf: &'a mut BytesMut,
    watch: Watch,
}

/// Write `response` and its body. An error (the client went away, the body failed or
/// was not the length it stated) means the connection cannot carry another response.
async fn write_response<T>(
    io: &mut T,
    out: &mut Vec<u8>,
    mut pending: Pending<'_>,
    response: Response<Body>,
    head_request: bool,
    close: bool,
) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (parts, mut body) = response.into_parts();
    let framing = h1::framing(
        parts.status,
        head_request,
        http_body::Body::size_hint(&body).exact(),
    );
    out.clear();
    with_date(|date| h1::encode_response(parts.status, &parts.headers, framing, date, close, out));
    drop(parts);
    if framing.has_body() {
        let chunked = framing == h1::Framing::Chunked;
        let mut written = 0u64;
        loop {
            // A frame that is ready now joins what is waiting to be written; otherwise
            // that goes out before waiting.
            let frame = match body.frame().now_or_never() {
                Some(frame) => frame,
                None => {
                    flush(io, out).await?;
                    let next = std::pin::pin!(body.frame());
                    match pending.watch.unless_gone(io, pending.buf, next).await {
                        Some(frame) => frame,
                        None => return Err(io::ErrorKind::ConnectionAborted.into()),
                    }
                }
            };
            let data = match frame {
                None => break,
                Some(Err(e)) => return Err(io::Error::other(e)),
                // Trailers are not sent to HTTP/1 clients.
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => data,
                    _ => continue,
                },
            };
            written += data.len() as u64;
            if chunked {
                h1::chunk_size_line(data.len(), out);
            }
            if out.len() + data.len() <= COALESCE {
                out.extend_from_slice(&data);
            } else {
                write_both(io, out, data).await?;
            }
            if chunked {
                out.extend_from_slice(b"\r\n");
            }
        }
        match framing {
            h1::Framing::Length(n) if written != n => {
                return Err(io::Error::other("the body was not the length it stated"))
            }
            h1::Framing::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
            _ => {}
        }
    }
    flush(io, out).await
}

/// Write what `out` holds and flush it to the client.
async fn flush<T: AsyncWrite + Unpin>(io: &mut T, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    io.flush().await
}

/// Write what `out` holds, then `data`, in vectored writes where the connection takes them.
async fn write_both<T: AsyncWrite + Unpin>(
    io: &mut T,
    out: &mut Vec<u8>,
    data: Bytes,
) -> io::Result<()> {
    {
        let mut both = Buf::chain(&out[..], data);
        io.write_all_buf(&mut both).await?;
    }
    out.clear();
    Ok(())
}

/// Call `f` with the current time as an HTTP date, formatted once a second per thread.
fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, String)> = const {
            std::cell::RefCell::new((u64::MAX, String::new()))
        };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second {
            *date = (second, httpdate::fmt_http_date(now));
        }
        f(date.1.as_bytes())
    })
}
