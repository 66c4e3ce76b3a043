//! One pipelined Redis connection for the enqueue path.
//!
//! Every queued webhook is one `EVALSHA`. Through the redis crate's multiplexer each cost a
//! packed `Cmd`, a channel send to the pipeline task, a parser-combinator reply parse and a
//! oneshot: about a fifth of the user-space work of an ingest. Here a caller encodes its
//! command straight into the connection's output buffer and queues a oneshot for the
//! reply, under one lock; the connection's task writes whatever has accumulated in one
//! system call and hands each reply (decoded by `redis-protocol`) to the oldest waiter.
//! Redis answers in command order, so the queue of waiters is all the bookkeeping there is.
//!
//! A broken connection (end of stream, an I/O error, a reply that does not parse) fails
//! every waiter, whose callers answer 503 (dedup makes the provider's retry safe), and the
//! next call connects again. So does a silent one: a reply that misses its command's
//! deadline means the connection stopped answering (a failover, a NAT timeout, a
//! partition), and it is closed then rather than when the kernel gives up on it. Nothing is
//! re-sent here: a command that may have reached Redis is never written twice by this
//! module. Everything else the queue does (loading the script, stats, readiness) stays on
//! the redis crate's connection.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use redis::{ConnectionAddr, IntoConnectionInfo};
use redis_protocol::resp2::decode::decode;
pub(crate) use redis_protocol::resp2::types::OwnedFrame as Reply;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::sensitive::Secret;

/// After a failed connect, calls fail at once for this long instead of connecting again:
/// an outage costs one attempt per interval, not one per request.
const RETRY_AFTER: Duration = Duration::from_millis(50);

/// Bytes the reader asks for at a time.
const READ_CHUNK: usize = 16 * 1024;

/// TCP keepalive for roomgate's Redis sockets: an idle connection whose peer is gone (a
/// NAT that forgot it, a host that vanished) is found dead by the kernel within minutes,
/// before a command waits on it. Probes start after this much silence...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// ...and repeat this often until the system's probe count gives up.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// The keepalive settings both Redis clients (this pipe, the redis crate's) put on their
/// TCP sockets.
pub(crate) fn keepalive() -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
}

/// Why a call through the pipe failed. Display never shows the URL or the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PipeError {
    /// The URL is not one this pipe can use.
    Url(String),
    /// The connection could not be made (or was refused recently).
    Connect(String),
    /// Redis refused the handshake (`AUTH`, `SELECT`).
    Handshake(String),
    /// The connection broke before the reply came.
    Broken,
    /// The reply did not come before the command's deadline.
    TimedOut,
}

impl fmt::Display for PipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeError::Url(why) => write!(f, "the Redis URL cannot be used: {why}"),
            PipeError::Connect(why) => write!(f, "redis connection failed ({why})"),
            PipeError::Handshake(why) => write!(f, "redis refused the connection: {why}"),
            PipeError::Broken => f.write_str("the redis connection broke before it answered"),
            PipeError::TimedOut => f.write_str("redis did not answer in time"),
        }
    }
}

/// Where to connect and how to introduce ourselves.
struct Target {
    addr: Addr,
    username: Option<Secret>,
    password: Option<Secret>,
    db: i64,
}

enum Addr {
    Tcp(String, u16),
    Unix(PathBuf),
}

/// A lazily connected, pipelined connection. Dropping it closes the connection once the
/// replies in flight have come.
pub(crate) struct Pipe {
    target: Target,
    connect_timeout: Duration,
    current: Mutex<Option<Arc<Link>>>,
    /// Held while connecting; holds when the last attempt failed.
    connecting: tokio::sync::Mutex<Option<Instant>>,
}

impl fmt::Debug for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipe")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Pipe {
    /// A pipe to the Redis at `url` (`redis://[user:password@]host[:port][/db]` or
    /// `redis+unix:///path`). Connects on first use.
    pub(crate) fn new(url: &str, connect_timeout: Duration) -> Result<Pipe, PipeError> {
        let info = url
            .into_connection_info()
            .map_err(|e| PipeError::Url(format!("{:?}", e.kind())))?;
        let addr = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Addr::Tcp(host.clone(), *port),
            ConnectionAddr::Unix(path) => Addr::Unix(path.clone()),
            _ => return Err(PipeError::Url("TLS is not supported".into())),
        };
        let settings = info.redis_settings();
        Ok(Pipe {
            target: Target {
                addr,
                username: settings.username().map(Secret::new),
                password: settings.password().map(Secret::new),
                db: settings.db(),
            },
            connect_timeout,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(None),
        })
    }

    /// Send the command `encode` writes (see [`command`]) and wait for its reply until
    /// `deadline`, connecting first if need be. This is the command's one timer.
    ///
    /// A reply that has not come by the deadline means the connection stopped answering:
    /// it is closed, every command still waiting on it fails, and the next call connects
    /// again. Without this a silent connection would stay in use, and every later call
    /// would wait out its deadline on it, until the kernel gave up on the socket.
    pub(crate) async fn call(
        &self,
        deadline: Instant,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Reply, PipeError> {
        let mut sent_on = None;
        match tokio::time::timeout_at(deadline, self.send(encode, &mut sent_on)).await {
            Ok(reply) => reply,
            Err(_) => {
                // None: the time went on connecting, which is no fault of an open link.
                if let Some(link) = sent_on {
                    link.abandon();
                }
                Err(PipeError::TimedOut)
            }
        }
    }

    /// Queue the command on the open connection and wait for its reply. `sent_on` is
    /// where the command went, for [`Pipe::call`] to abandon if the reply never comes.
    async fn send(
        &self,
        encode: impl FnOnce(&mut Vec<u8>),
        sent_on: &mut Option<Arc<Link>>,
    ) -> Result<Reply, PipeError> {
        let link = self.link().await?;
        let (link, reply) = match link.submit(encode) {
            Ok(reply) => (link, reply),
            // The connection broke before the command was queued: it never left, so it
            // may go out on a new one.
            Err(encode) => {
                let link = self.link().await?;
                let reply = link.submit(encode).map_err(|_| PipeError::Broken)?;
                (link, reply)
            }
        };
        *sent_on = Some(link);
        reply.await.map_err(|_| PipeError::Broken)
    }

    /// The open connection, connecting first when there is none.
    async fn link(&self) -> Result<Arc<Link>, PipeError> {
        match self.open_link() {
            Some(link) => Ok(link),
            // Boxed: connecting is rare, and its state would size every call's future.
            None => Box::pin(self.connect()).await,
        }
    }

    fn open_link(&self) -> Option<Arc<Link>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().filter(|link| link.is_open()).cloned()
    }

    async fn connect(&self) -> Result<Arc<Link>, PipeError> {
        let mut failed_at = self.connecting.lock().await;
        if let Some(link) = self.open_link() {
            return Ok(link);
        }
        if failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            return Err(PipeError::Connect("it failed moments ago".into()));
        }
        let opened = tokio::time::timeout(self.connect_timeout, self.open())
            .await
            .unwrap_or_else(|_| Err(PipeError::Connect("timed out".into())));
        match opened {
            Ok(link) => {
                *failed_at = None;
                let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(old) = current.replace(Arc::clone(&link)) {
                    old.close();
                }
                Ok(link)
            }
            Err(e) => {
                *failed_at = Some(Instant::now());
                Err(e)
            }
        }
    }

    /// Connect, introduce ourselves, and start the connection's task.
    async fn open(&self) -> Result<Arc<Link>, PipeError> {
        let (link, abandoned) = Link::new();
        let link = Arc::new(link);
        match &self.target.addr {
            Addr::Tcp(host, port) => {
                let mut stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(connect_error)?;
                stream.set_nodelay(true).map_err(connect_error)?;
                socket2::SockRef::from(&stream)
                    .set_tcp_keepalive(&keepalive())
                    .map_err(connect_error)?;
                self.handshake(&mut stream).await?;
                tokio::spawn(drive(Arc::clone(&link), stream, abandoned));
            }
            Addr::Unix(path) => {
                let mut stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_error)?;
                self.handshake(&mut stream).await?;
                tokio::spawn(drive(Arc::clone(&link), stream, abandoned));
            }
        }
        Ok(link)
    }

    /// `AUTH` and `SELECT` as the URL asks, each answered `OK` before the pipe is used.
    async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
    ) -> Result<(), PipeError> {
        let mut hello = Vec::new();
        let mut expected = 0;
        let target = &self.target;
        if let Some(password) = &target.password {
            match &target.username {
                Some(user) => command(&mut hello, &[b"AUTH", user.expose(), password.expose()]),
                None => command(&mut hello, &[b"AUTH", password.expose()]),
            }
            expected += 1;
        }
        if target.db != 0 {
            command(
                &mut hello,
                &[b"SELECT", itoa::Buffer::new().format(target.db).as_bytes()],
            );
            expected += 1;
        }
        if expected == 0 {
            return Ok(());
        }
        stream.write_all(&hello).await.map_err(connect_error)?;
        let mut buf = BytesMut::with_capacity(256);
        while expected > 0 {
            match decode(&buf) {
                Ok(Some((reply, used))) => {
                    buf.advance(used);
                    expected -= 1;
                    if let Reply::Error(e) = reply {
                        // Redis's own words (`WRONGPASS …`, `ERR DB index …`): they never
                        // echo the password.
                        return Err(PipeError::Handshake(e));
                    }
                }
                Ok(None) => {
                    if stream.read_buf(&mut buf).await.map_err(connect_error)? == 0 {
                        return Err(PipeError::Connect("closed during the handshake".into()));
                    }
                }
                Err(_) => return Err(PipeError::Handshake("a reply that does not parse".into())),
            }
        }
        Ok(())
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let current = self
            .current
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(link) = current.take() {
            link.close();
        }
    }
}

fn connect_error(e: io::Error) -> PipeError {
    PipeError::Connect(format!("{:?}", e.kind()))
}

/// Append one command, a RESP array of bulk strings, to `out`.
pub(crate) fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    command_head(out, args.len());
    for arg in args {
        bulk(out, arg);
    }
}

/// The array header of a command with `args` arguments; follow it with as many [`bulk`]s.
pub(crate) fn command_head(out: &mut Vec<u8>, args: usize) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One argument of a command: `$<length>\r\n<arg>\r\n`. The header is assembled on the
/// stack, so the argument costs two copies into `out` (this runs 14 times per enqueue).
pub(crate) fn bulk(out: &mut Vec<u8>, arg: &[u8]) {
    let mut len = itoa::Buffer::new();
    let len = len.format(arg.len()).as_bytes();
    let mut head = [0u8; 24];
    head[0] = b'$';
    head[1..=len.len()].copy_from_slice(len);
    head[len.len() + 1..len.len() + 3].copy_from_slice(b"\r\n");
    out.reserve(len.len() + arg.len() + 5);
    out.extend_from_slice(&head[..len.len() + 3]);
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// The state one connection shares between its callers and its task.
struct Link {
    shared: Mutex<Shared>,
}

struct Shared {
    /// Commands not yet handed to the task.
    out: Vec<u8>,
    /// One per command sent and not yet answered, oldest first.
    waiting: VecDeque<oneshot::Sender<Reply>>,
    /// The task, when it waits for output.
    task: Option<Waker>,
    /// Broken: no more commands. Closing: no more commands; end after the last reply.
    broken: bool,
    closing: bool,
    /// Ends the task at once, wherever it waits (a write to a full socket included).
    abandon: Option<oneshot::Sender<()>>,
}

impl Link {
    /// A link, and what its task watches to learn it was abandoned.
    fn new() -> (Link, oneshot::Receiver<()>) {
        let (abandon, abandoned) = oneshot::channel();
        let shared = Shared {
            out: Vec::new(),
            waiting: VecDeque::new(),
            task: None,
            broken: false,
            closing: false,
            abandon: Some(abandon),
        };
        let link = Link {
            shared: Mutex::new(shared),
        };
        (link, abandoned)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_open(&self) -> bool {
        let shared = self.lock();
        !shared.broken && !shared.closing
    }

    /// Queue a command, or hand `encode` back when the connection no longer takes any.
    fn submit<F: FnOnce(&mut Vec<u8>)>(&self, encode: F) -> Result<oneshot::Receiver<Reply>, F> {
        let (tx, rx) = oneshot::channel();
        let mut shared = self.lock();
        if shared.broken || shared.closing {
            return Err(encode);
        }
        encode(&mut shared.out);
        shared.waiting.push_back(tx);
        if let Some(task) = shared.task.take() {
            task.wake();
        }
        Ok(rx)
    }

    fn close(&self) {
        let mut shared = self.lock();
        shared.closing = true;
        if let Some(task) = shared.task.take() {
            task.wake();
        }
    }

    /// The connection is gone: fail every waiter and take no more.
    fn break_all(&self) {
        self.lock().end();
    }

    /// A reply missed its deadline, so the connection is taken for dead: fail every
    /// waiter now (their replies, if they ever came, would be as late), take no more
    /// commands, and have the task close the socket. Waiters are never moved to another
    /// connection: replies come back in the order of *this* connection's commands, so a
    /// late one could only ever be matched to the wrong caller there.
    fn abandon(&self) {
        let mut shared = self.lock();
        shared.end();
        if let Some(abandon) = shared.abandon.take() {
            let _ = abandon.send(());
        }
    }
}

impl Shared {
    /// Fail every waiter (dropping its sender) and take no more commands.
    fn end(&mut self) {
        self.broken = true;
        self.out = Vec::new();
        self.waiting.clear();
        self.task = None;
    }
}

/// The connection's task: write what callers queued, read replies, until the connection
/// breaks, a caller abandons it, or the pipe is dropped and every reply has come. The
/// stream is dropped (the socket closed) when it returns.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    link: Arc<Link>,
    mut stream: S,
    abandoned: oneshot::Receiver<()>,
) {
    let mut io = Io {
        write: Vec::with_capacity(READ_CHUNK),
        written: 0,
        read: BytesMut::with_capacity(READ_CHUNK),
    };
    let ended = tokio::select! {
        // First: once abandoned, nothing more is read from or written to the socket.
        biased;
        _ = abandoned => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "a reply did not come before its deadline",
        )),
        ended = poll_fn(|cx| io.poll(cx, &link, &mut stream)) => ended,
    };
    if let Err(e) = ended {
        tracing::warn!(error = %e, "the redis queue connection broke; the next enqueue reconnects");
    }
    link.break_all();
}

struct Io {
    /// Bytes being written, taken from `Shared::out`, and how many are out.
    write: Vec<u8>,
    written: usize,
    read: BytesMut,
}

impl Io {
    /// Ready with `Ok` when the pipe closed and every reply came, with `Err` when the
    /// connection broke.
    fn poll<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        link: &Link,
        stream: &mut S,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.written == self.write.len() {
                self.write.clear();
                self.written = 0;
                let mut shared = link.lock();
                if shared.out.is_empty() {
                    if shared.closing && shared.waiting.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    if !shared
                        .task
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        shared.task = Some(cx.waker().clone());
                    }
                } else {
                    std::mem::swap(&mut shared.out, &mut self.write);
                }
            }
            let mut wrote_all = false;
            while self.written < self.write.len() {
                match Pin::new(&mut *stream).poll_write(cx, &self.write[self.written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        self.written += n;
                        wrote_all = self.written == self.write.len();
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
            if let Poll::Ready(Err(e)) = self.poll_replies(cx, link, stream) {
                return Poll::Ready(Err(e));
            }
            // Callers may have queued more while that was written: look again. Otherwise
            // every source of progress has a waker registered.
            if !wrote_all {
                return Poll::Pending;
            }
        }
    }

    /// Read what has arrived and answer the waiters; `Pending` once the socket is drained.
    fn poll_replies<S: AsyncRead + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        link: &Link,
        stream: &mut S,
    ) -> Poll<io::Result<()>> {
        loop {
            self.read.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut *stream), cx, &mut self.read) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Poll::Ready(Ok(_)) => self.deliver(link)?,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Hand every complete reply in the read buffer to its waiter.
    fn deliver(&mut self, link: &Link) -> io::Result<()> {
        let mut shared = link.lock();
        loop {
            let (reply, used) = match decode(&self.read) {
                Ok(Some(decoded)) => decoded,
                Ok(None) => return Ok(()),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a reply that does not parse",
                    ))
                }
            };
            self.read.advance(used);
            let Some(waiter) = shared.waiting.pop_front() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a reply nobody asked for",
                ));
            };
            // A waiter that gave up (its deadline passed) no longer listens.
            let _ = waiter.send(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_an_array_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"SET", b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        out.clear();
        let long = vec![b'x'; 1234567];
        bulk(&mut out, &long);
        assert_eq!(&out[..11], b"$1234567\r\nx");
        assert_eq!(out.len(), 10 + long.len() + 2);
        assert!(out.ends_with(b"x\r\n"));
    }

    #[test]
    fn urls_it_cannot_use_are_refused_without_echoing_them() {
        let err = Pipe::new("http://user:hunter2@example.test/", Duration::from_secs(1))
            .expect_err("not a redis URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

    fn ping(out: &mut Vec<u8>) {
        command(out, &[b"PING"]);
    }

    /// A pipe whose open connection runs over `stream`, one end of an in-memory duplex
    /// (the other end plays Redis). Nothing listens at its URL: a test that needs a new
    /// connection would fail to make one.
    fn pipe_over(stream: tokio::io::DuplexStream) -> Pipe {
        let pipe = Pipe::new(
            "redis+unix:///nonexistent/redis.sock",
            Duration::from_secs(1),
        )
        .expect("a usable URL");
        let (link, abandoned) = Link::new();
        let link = Arc::new(link);
        tokio::spawn(drive(Arc::clone(&link), stream, abandoned));
        *pipe.current.lock().expect("unpoisoned") = Some(link);
        pipe
    }

    /// A reply already read from the socket, as the task holds it.
    fn io_holding(bytes: &[u8]) -> Io {
        Io {
            write: Vec::new(),
            written: 0,
            read: BytesMut::from(bytes),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_in_time_keeps_the_connection() {
        let (ours, mut redis) = tokio::io::duplex(4096);
        let pipe = pipe_over(ours);
        let answer = tokio::spawn(async move {
            let mut got = vec![0; PING.len()];
            redis.read_exact(&mut got).await.expect("the command");
            redis.write_all(b"+PONG\r\n").await.expect("the reply");
            (got, redis)
        });
        let reply = pipe
            .call(Instant::now() + Duration::from_secs(2), ping)
            .await;
        assert_eq!(reply, Ok(Reply::SimpleString("PONG".into())));
        let (got, _redis) = answer.await.expect("the fake redis");
        assert_eq!(got, PING);
        assert!(pipe.open_link().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_that_misses_its_deadline_closes_the_connection() {
        let (ours, mut redis) = tokio::io::duplex(4096);
        let pipe = pipe_over(ours);
        let started = Instant::now();
        let reply = pipe.call(started + Duration::from_secs(2), ping).await;
        assert_eq!(reply, Err(PipeError::TimedOut));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        // The next call would connect again rather than wait on this one.
        assert!(pipe.open_link().is_none());
        // The socket is closed: the peer reads the command, then the end of the stream.
        let mut got = Vec::new();
        redis.read_to_end(&mut got).await.expect("read to the end");
        assert_eq!(got, PING);
    }

    /// Commands queued behind the one that timed out would only wait out their own
    /// deadlines on a connection that does not answer: they fail as soon as it is dropped.
    #[tokio::test(start_paused = true)]
    async fn commands_waiting_on_an_abandoned_connection_fail_at_once() {
        let (ours, _redis) = tokio::io::duplex(4096);
        let pipe = pipe_over(ours);
        let started = Instant::now();
        let (first, second) =
            tokio::join!(pipe.call(started + Duration::from_secs(1), ping), async {
                let reply = pipe.call(started + Duration::from_secs(30), ping).await;
                (reply, started.elapsed())
            },);
        assert_eq!(first, Err(PipeError::TimedOut));
        assert_eq!(second, (Err(PipeError::Broken), Duration::from_secs(1)));
    }

    /// Replies come in the order of one connection's commands. A reply that arrives on an
    /// abandoned connection is never handed to anyone, and a new connection's callers get
    /// their own.
    #[test]
    fn a_late_reply_on_an_abandoned_connection_reaches_no_one() {
        let (old, _abandoned) = Link::new();
        let Ok(mut gave_up) = old.submit(ping) else {
            panic!("queued")
        };
        old.abandon();
        assert!(old.submit(ping).is_err(), "it takes no more commands");
        assert!(matches!(
            gave_up.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert!(io_holding(b"+late\r\n").deliver(&old).is_err());

        let (new, _abandoned) = Link::new();
        let Ok(mut waiting) = new.submit(ping) else {
            panic!("queued")
        };
        io_holding(b"+own\r\n").deliver(&new).expect("delivered");
        assert_eq!(waiting.try_recv(), Ok(Reply::SimpleString("own".into())));
    }
}
