//! roomgate's own HTTP/1.1 exchange, for requests without a body (most proxied traffic:
//! GET, HEAD, DELETE, OPTIONS).
//!
//! The request's own task writes the head and reads the response head on the
//! connection; there is no connection task, no channel to one, and no wake-up between
//! tasks per request. A response body that arrived with its head is handed on as bytes
//! and the connection goes back to its idle list at once; a longer body is read by the
//! response body itself ([`ResponseBody`]), which returns the connection when it has
//! read the body to its last byte. A connection whose framing is in any doubt (an
//! error, bytes beyond the body, `Connection: close`, a body delimited by the close) is
//! never reused.
//!
//! Each connection has a watcher task for its response deadline. When the deadline
//! passes with no response head, the watcher shuts the socket down; the read waiting for
//! the head then ends, finds the deadline expired, and the exchange fails as timed out.
//! So a request arms no timer, as on the pool's hyper connections.
//!
//! An idle connection the service closed is found at checkout without a system call
//! (the reactor has marked it readable). A request that a reused connection drops
//! before answering is sent again on a new connection when its method is idempotent
//! (RFC 9110 §9.2.2), as nginx does; otherwise it fails with 502.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::deadline::Deadline;
use super::PoolError;
use crate::error::{empty, full, Body, BodyError};
use crate::h1::chunked::{self, Step};
use crate::h1::head::{self, Framing, Head, Parsed};

/// Room made in the read buffer before reading a response head.
const HEAD_READ: usize = 8 * 1024;
/// Room made in the read buffer before reading more of a body.
const BODY_READ: usize = 64 * 1024;

/// The idle connections to one upstream authority, most recently used last.
pub struct Slot {
    idle: Mutex<VecDeque<Conn>>,
    max_idle: usize,
}

impl Slot {
    pub fn new(max_idle: usize) -> Slot {
        Slot {
            idle: Mutex::new(VecDeque::new()),
            max_idle,
        }
    }

    /// The most recently used idle connection the service has not closed.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(conn) = idle.pop_back() {
            if conn.is_idle() {
                return Some(conn);
            }
        }
        None
    }

    /// Keep `conn` for the next request. The least recently used connection is dropped
    /// here if the service has closed it: an idle connection has no task to notice, and
    /// one at the bottom of the list may wait long for a checkout.
    fn checkin(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.front().is_some_and(|oldest| !oldest.is_idle()) {
            idle.pop_front();
        }
        if idle.len() < self.max_idle {
            idle.push_back(conn);
        }
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// How to open a connection.
#[derive(Clone, Copy)]
pub struct Open<'a> {
    pub authority: &'a str,
    pub connect_timeout: Duration,
    /// How often the deadline watcher looks at least (the response timeout).
    pub period: Duration,
}

/// Send a request whose body is empty to the service at `open.authority`, through the
/// connections of `slot`; fail with [`PoolError::Timeout`] when no response head came
/// within `timeout`.
// Not an `async fn` on purpose: its arguments would be kept twice in its state (as
// arguments, then as locals), and the request is large.
#[allow(clippy::manual_async_fn)]
pub fn send(
    slot: Arc<Slot>,
    open: Open<'_>,
    req: Request<Body>,
    timeout: Duration,
) -> impl Future<Output = Result<Response<Body>, PoolError>> + Send + '_ {
    async move {
        let head_request = req.method() == Method::HEAD;
        let mut idle = slot.checkout();
        loop {
            let (mut conn, reused) = match idle.take() {
                Some(conn) => (conn, true),
                // Boxed: a new connection is rare, and its state would otherwise size
                // every request's future.
                None => (Box::pin(Conn::open(open)).await?, false),
            };
            match conn.exchange(&req, head_request, timeout).await {
                Ok(head) => return Ok(respond(conn, head, &slot)),
                // The service closed a kept-alive connection as the request went out: it
                // never saw the request, or the method makes seeing it twice harmless.
                Err(Failure::Unanswered) if reused && req.method().is_idempotent() => {}
                Err(Failure::Timeout) => return Err(PoolError::Timeout),
                Err(failure) => {
                    tracing::debug!(upstream.authority = open.authority, error = %failure, "upstream exchange failed");
                    return Err(PoolError::Exchange);
                }
            }
        }
    }
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The connection closed (or broke) before a byte of the response.
    #[error("the connection closed before a response")]
    Unanswered,
    /// The connection broke during the response head.
    #[error("the connection closed during the response head")]
    Cut,
    #[error(transparent)]
    Head(head::HeadError),
    #[error("no response head in time")]
    Timeout,
}

/// One upstream connection and what was read from it beyond the last response.
pub struct Conn {
    io: TcpStream,
    buf: BytesMut,
    /// The request head being written; kept for the next one.
    wire: Vec<u8>,
    deadline: Arc<Deadline>,
    /// Dropped with the connection, which ends its watcher.
    _watch: oneshot::Sender<()>,
}

impl Conn {
    async fn open(open: Open<'_>) -> Result<Conn, PoolError> {
        let io = super::dial(open.authority, open.connect_timeout).await?;
        // The watcher's handle on the socket: shutting it down ends a read in progress.
        let shut = socket2::SockRef::from(&io)
            .try_clone()
            .map_err(|_| PoolError::Connect)?;
        let deadline = Arc::new(Deadline::new());
        let watched = Arc::clone(&deadline);
        let (watch, mut dropped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            tokio::select! {
                _ = &mut dropped => {}
                () = watched.expiry(open.period) => {
                    tracing::debug!("upstream response timed out; connection shut down");
                    let _ = shut.shutdown(std::net::Shutdown::Both);
                }
            }
        });
        Ok(Conn {
            io,
            buf: BytesMut::new(),
            wire: Vec::new(),
            deadline,
            _watch: watch,
        })
    }

    /// True while the service has neither closed the idle connection nor sent anything
    /// on it. Costs no system call unless the reactor saw the socket become readable.
    fn is_idle(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Write the head of `req` and read up to the final response head.
    async fn exchange(
        &mut self,
        req: &Request<Body>,
        head_request: bool,
        timeout: Duration,
    ) -> Result<Head, Failure> {
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        self.wire.clear();
        head::encode_request(req.method(), target, req.headers(), &mut self.wire);
        self.deadline.start(timeout);
        let got = self.round_trip(head_request).await;
        self.deadline.finish();
        match got {
            Err(_) if self.deadline.expired() => Err(Failure::Timeout),
            got => got,
        }
    }

    async fn round_trip(&mut self, head_request: bool) -> Result<Head, Failure> {
        if self.io.write_all(&self.wire).await.is_err() {
            return Err(Failure::Unanswered);
        }
        let mut answered = false;
        loop {
            while !self.buf.is_empty() {
                match head::parse_response(&mut self.buf, head_request) {
                    Ok(Some(Parsed::Final(head))) => return Ok(head),
                    Ok(Some(Parsed::Interim)) => {}
                    Ok(None) => break,
                    Err(e) => return Err(Failure::Head(e)),
                }
            }
            self.buf.reserve(HEAD_READ);
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) if !answered => return Err(Failure::Unanswered),
                Ok(0) | Err(_) => return Err(Failure::Cut),
                Ok(_) => answered = true,
            }
        }
    }
}

/// The response to hand on: a body that came whole with its head is bytes, and the
/// connection is free at once; otherwise the body reads it from the connection.
fn respond(mut conn: Conn, head: Head, slot: &Arc<Slot>) -> Response<Body> {
    let Head {
        status,
        headers,
        framing,
        reusable,
    } = head;
    let body = match framing {
        Framing::Empty => {
            release(conn, reusable, slot);
            empty()
        }
        Framing::Length(n) if conn.buf.len() as u64 >= n => {
            let data = conn.buf.split_to(n as usize).freeze();
            release(conn, reusable, slot);
            if data.is_empty() {
                empty()
            } else {
                full(data)
            }
        }
        framing => ResponseBody {
            conn: Some(conn),
            decode: match framing {
                Framing::Length(n) => Decode::Length(n),
                Framing::Chunked => Decode::Chunked(chunked::Decoder::default()),
                _ => Decode::UntilClose,
            },
            reusable,
            slot: Arc::clone(slot),
        }
        .boxed(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Back to the idle list when the exchange left the connection clean; closed otherwise.
/// An idle connection keeps no more read space than a response head needs.
fn release(mut conn: Conn, reusable: bool, slot: &Slot) {
    if reusable && conn.buf.is_empty() {
        if conn.buf.capacity() > HEAD_READ {
            conn.buf = BytesMut::new();
        }
        slot.checkin(conn);
    }
}

enum Decode {
    Length(u64),
    Chunked(chunked::Decoder),
    UntilClose,
}

/// A response body still arriving on its connection.
struct ResponseBody {
    /// `None` once the body is read (or failed).
    conn: Option<Conn>,
    decode: Decode,
    reusable: bool,
    slot: Arc<Slot>,
}

#[derive(Debug, thiserror::Error)]
#[error("the service's response body ended early")]
struct Truncated;

impl ResponseBody {
    /// The next piece of the body from what is buffered.
    fn next(&mut self, buf: &mut BytesMut) -> Result<Step, BodyError> {
        Ok(match &mut self.decode {
            Decode::Length(_) if buf.is_empty() => Step::More,
            Decode::Length(left) => {
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                Step::Data(buf.split_to(take as usize).freeze())
            }
            Decode::Chunked(d) => d.next(buf).map_err(BodyError::new)?,
            Decode::UntilClose if buf.is_empty() => Step::More,
            Decode::UntilClose => Step::Data(buf.split().freeze()),
        })
    }

    fn ended(&self) -> bool {
        match &self.decode {
            Decode::Length(left) => *left == 0,
            Decode::Chunked(d) => d.is_done(),
            Decode::UntilClose => false,
        }
    }

    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            release(conn, self.reusable, &self.slot);
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
        loop {
            let Some(mut conn) = this.conn.take() else {
                return Poll::Ready(None);
            };
            let step = match this.next(&mut conn.buf) {
                Ok(step) => step,
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            match step {
                Step::Data(data) => {
                    this.conn = Some(conn);
                    if this.ended() {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Step::Done => {
                    this.conn = Some(conn);
                    this.release();
                    return Poll::Ready(None);
                }
                Step::More => {}
            }
            conn.buf.reserve(BODY_READ);
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf);
            match read {
                Poll::Pending => {
                    this.conn = Some(conn);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(0)) if matches!(this.decode, Decode::UntilClose) => {
                    return Poll::Ready(None)
                }
                Poll::Ready(Ok(0)) => return Poll::Ready(Some(Err(BodyError::new(Truncated)))),
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(BodyError::new(e)))),
                Poll::Ready(Ok(_)) => this.conn = Some(conn),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;
    use tokio::sync::Notify;

    /// A service on a loopback port that runs `serve` on each connection it accepts
    /// (with the connection's number) and counts them.
    struct Service {
        authority: String,
        accepted: Arc<AtomicUsize>,
    }

    async fn service<F, Fut>(serve: F) -> Service
    where
        F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authority = listener.local_addr().expect("addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(n, stream));
            }
        });
        Service {
            authority,
            accepted,
        }
    }

    /// Read one bodiless request head; `None` at the end of the stream.
    async fn request(s: &mut TcpStream) -> Option<String> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            head.push(byte[0]);
        }
        Some(String::from_utf8(head).expect("utf-8"))
    }

    /// Answer every request on the connection with `answer`.
    fn answering(
        answer: &'static str,
    ) -> impl Fn(usize, TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static
    {
        move |_, mut s| {
            Box::pin(async move {
                while request(&mut s).await.is_some() {
                    if s.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            })
        }
    }

    fn get(method: Method) -> Request<Body> {
        let mut req = Request::new(empty());
        *req.method_mut() = method;
        *req.uri_mut() = http::Uri::from_static("/x");
        req.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_static("svc.test"),
        );
        req
    }

    async fn send_to(
        svc: &Service,
        slot: &Arc<Slot>,
        req: Request<Body>,
    ) -> Result<Response<Body>, PoolError> {
        let open = Open {
            authority: &svc.authority,
            connect_timeout: Duration::from_secs(5),
            period: Duration::from_secs(5),
        };
        send(Arc::clone(slot), open, req, Duration::from_secs(5)).await
    }

    async fn text(resp: Response<Body>) -> Result<String, BodyError> {
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_body_that_came_with_its_head_frees_the_connection_for_the_next_request() {
        let svc = service(answering(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok",
        ))
        .await;
        let slot = Arc::new(Slot::new(8));
        for _ in 0..3 {
            let resp = send_to(&svc, &slot, get(Method::GET)).await.expect("sent");
            assert_eq!(slot.idle(), 1, "back in the pool before the body is read");
            assert_eq!(resp.headers()["x-a"], "1");
            assert_eq!(text(resp).await.expect("body"), "ok");
        }
        assert_eq!(svc.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_chunked_body_streams_and_frees_the_connection_after_its_last_chunk() {
        let go = Arc::new(Notify::new());
        let release = Arc::clone(&go);
        let svc = service(move |_, mut s| {
            let go = Arc::clone(&release);
            async move {
                while request(&mut s).await.is_some() {
                    let first =
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n";
                    s.write_all(first.as_bytes()).await.expect("write");
                    go.notified().await;
                    s.write_all(b"5\r\n rest\r\n0\r\nX-Trailer: t\r\n\r\n")
                        .await
                        .expect("write");
                }
            }
        })
        .await;
        let slot = Arc::new(Slot::new(8));
        for _ in 0..2 {
            let resp = send_to(&svc, &slot, get(Method::GET)).await.expect("sent");
            let mut body = resp.into_body();
            let first = body.frame().await.expect("frame").expect("data");
            // The service holds the rest back until the first chunk was seen.
            assert_eq!(first.into_data().expect("data"), "first");
            assert_eq!(slot.idle(), 0);
            go.notify_one();
            let rest = body.collect().await.expect("rest").to_bytes();
            assert_eq!(rest, " rest");
            assert_eq!(slot.idle(), 1);
            let idle = slot.checkout().expect("idle connection");
            assert!(
                idle.buf.capacity() <= HEAD_READ,
                "idle with the body's read space"
            );
            slot.checkin(idle);
        }
        assert_eq!(svc.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_delimited_by_the_close_is_read_to_its_end_and_the_connection_dropped() {
        let svc = service(|_, mut s| async move {
            request(&mut s).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil the close").await;
        })
        .await;
        let slot = Arc::new(Slot::new(8));
        let resp = send_to(&svc, &slot, get(Method::GET)).await.expect("sent");
        assert_eq!(text(resp).await.expect("body"), "until the close");
        assert_eq!(slot.idle(), 0);
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_not_an_end() {
        for answer in [
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
        ] {
            let svc = service(move |_, mut s| async move {
                request(&mut s).await;
                let _ = s.write_all(answer.as_bytes()).await;
            })
            .await;
            let slot = Arc::new(Slot::new(8));
            let resp = send_to(&svc, &slot, get(Method::GET)).await.expect("sent");
            assert!(text(resp).await.is_err(), "{answer:?}");
            assert_eq!(slot.idle(), 0);
        }
    }

    #[tokio::test]
    async fn bytes_beyond_the_body_keep_the_connection_out_of_the_pool() {
        let svc = service(answering(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
        ))
        .await;
        let slot = Arc::new(Slot::new(8));
        for _ in 0..2 {
            let resp = send_to(&svc, &slot, get(Method::GET)).await.expect("sent");
            assert_eq!(text(resp).await.expect("body"), "ok");
            assert_eq!(slot.idle(), 0);
        }
        assert_eq!(svc.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn interim_responses_are_skipped_and_a_head_request_has_no_body() {
        let svc = service(answering(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        ))
        .await;
        let slot = Arc::new(Slot::new(8));
        let resp = send_to(&svc, &slot, get(Method::HEAD)).await.expect("sent");
        assert_eq!(resp.status(), http::StatusCode::OK);
        assert_eq!(resp.headers()["content-length"], "5");
        assert!(!resp.headers().contains_key("link"));
        assert_eq!(text(resp).await.expect("body"), "");
        assert_eq!(slot.idle(), 1);
    }

    #[tokio::test]
    async fn an_unasked_switch_or_a_malformed_head_fails_the_exchange() {
        for answer in [
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
            "NOT HTTP\r\n\r\n",
        ] {
            let svc = service(answering(answer)).await;
            let slot = Arc::new(Slot::new(8));
            let got = send_to(&svc, &slot, get(Method::GET)).await;
            assert_eq!(got.err(), Some(PoolError::Exchange), "{answer:?}");
            assert_eq!(slot.idle(), 0);
        }
    }

    /// The service takes the second request on its first connection and closes without
    /// answering; its later connections answer.
    async fn dropping_the_second_request(seen: Arc<Mutex<Vec<String>>>) -> Service {
        service(move |n, mut s| {
            let seen = Arc::clone(&seen);
            async move {
                let mut served = 0;
                while let Some(head) = request(&mut s).await {
                    seen.lock()
                        .expect("lock")
                        .push(head.lines().next().unwrap_or("").to_owned());
                    served += 1;
                    if n == 0 && served == 2 {
                        return;
                    }
                    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if s.write_all(ok).await.is_err() {
                        return;
                    }
                }
            }
        })
        .await
    }

    #[tokio::test]
    async fn an_idempotent_request_a_kept_alive_connection_dropped_is_sent_again() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let svc = dropping_the_second_request(Arc::clone(&seen)).await;
        let slot = Arc::new(Slot::new(8));
        send_to(&svc, &slot, get(Method::GET)).await.expect("first");
        let resp = send_to(&svc, &slot, get(Method::GET))
            .await
            .expect("sent again");
        assert_eq!(text(resp).await.expect("body"), "ok");
        assert_eq!(svc.accepted.load(Ordering::SeqCst), 2);
        assert_eq!(seen.lock().expect("lock").len(), 3);
    }

    #[tokio::test]
    async fn a_post_a_kept_alive_connection_dropped_is_not_sent_again() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let svc = dropping_the_second_request(Arc::clone(&seen)).await;
        let slot = Arc::new(Slot::new(8));
        send_to(&svc, &slot, get(Method::GET)).await.expect("first");
        let got = send_to(&svc, &slot, get(Method::POST)).await;
        assert_eq!(got.err(), Some(PoolError::Exchange));
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen, ["GET /x HTTP/1.1", "POST /x HTTP/1.1"]);
    }

    #[tokio::test]
    async fn no_response_head_in_time_is_a_timeout_and_the_connection_is_dropped() {
        let svc = service(|_, mut s| async move {
            // Takes the request, never answers, keeps the connection open.
            request(&mut s).await;
            let _ = request(&mut s).await;
        })
        .await;
        let slot = Arc::new(Slot::new(8));
        let timeout = Duration::from_millis(300);
        let open = Open {
            authority: &svc.authority,
            connect_timeout: Duration::from_secs(5),
            period: timeout,
        };
        let started = std::time::Instant::now();
        let got = send(Arc::clone(&slot), open, get(Method::GET), timeout).await;
        assert_eq!(got.err(), Some(PoolError::Timeout));
        assert!(started.elapsed() >= timeout, "{:?}", started.elapsed());
        assert_eq!(slot.idle(), 0);
    }

    #[tokio::test]
    async fn idle_connections_the_service_closed_are_not_kept() {
        // The service closes every connection as soon as it is accepted.
        let svc = service(|_, s| async move { drop(s) }).await;
        let open = Open {
            authority: &svc.authority,
            connect_timeout: Duration::from_secs(5),
            period: Duration::from_secs(5),
        };
        let (first, second) = (
            Conn::open(open).await.expect("open"),
            Conn::open(open).await.expect("open"),
        );
        first.io.readable().await.expect("first closed");
        second.io.readable().await.expect("second closed");
        let slot = Slot::new(8);
        slot.checkin(first);
        slot.checkin(second);
        assert_eq!(slot.idle(), 1, "the oldest, closed, was dropped at checkin");
        assert!(
            slot.checkout().is_none(),
            "a closed connection was handed out"
        );
        assert_eq!(slot.idle(), 0);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let authority = format!("127.0.0.1:{port}");
        let open = Open {
            authority: &authority,
            connect_timeout: Duration::from_secs(5),
            period: Duration::from_secs(5),
        };
        let slot = Arc::new(Slot::new(8));
        let got = send(
            Arc::clone(&slot),
            open,
            get(Method::GET),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(got.err(), Some(PoolError::Connect));
    }
}
