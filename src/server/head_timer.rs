//! hyper's `header_read_timeout`, counted from a head's first byte.
//!
//! hyper arms its HTTP/1 header timer whenever it waits for a request head, which on a
//! kept-alive connection is as soon as the last response is written: counted as hyper
//! counts it, every idle keep-alive connection would be closed at `header_read_timeout`.
//! The [`HeadTimer`] given to hyper for that one timer counts the way nginx's
//! `client_header_timeout` and `keepalive_timeout` do: while no byte of the next head has
//! arrived, the wait is the connection's `idle_timeout`; from the first byte read, the
//! head has `header_read_timeout` to be complete. A connection's first head has
//! `header_read_timeout` from the start.
//!
//! hyper stays the only reader of the connection: [`Counted`] only counts the reads that
//! returned bytes, and never looks at them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::deadline::{set_for, KeptTimer};

/// A connection's IO, counting the reads that returned bytes.
pub struct Counted<T> {
    io: T,
    reads: Arc<AtomicU64>,
}

impl<T> Counted<T> {
    pub fn new(io: T) -> (Self, Arc<AtomicU64>) {
        let reads = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            io,
            reads: Arc::clone(&reads),
        };
        (counted, reads)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.reads.fetch_add(1, Ordering::Relaxed);
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The timer hyper's HTTP/1 connection keeps its head deadline with (one per connection).
///
/// hyper asks for a new sleep for every head it waits for and drops it once the head is
/// read. Each of those waits polls the connection's one tokio timer ([`ConnSleep`]), which
/// stays registered between heads: moving a registered deadline later is one atomic
/// store, where a timer per head would be inserted into tokio's wheel and removed again
/// for every request. Left behind after a head, it wakes the connection once, for
/// nothing, if the request outlasts it.
pub struct HeadTimer {
    reads: Arc<AtomicU64>,
    /// `header_read_timeout`, which hyper adds to `now()` for each head's deadline.
    header: Duration,
    idle: Duration,
    /// Set once the connection's first head wait has begun.
    begun: AtomicBool,
    timer: ConnSleep,
}

/// The connection's one tokio timer, made at its first wait.
type ConnSleep = Arc<Mutex<KeptTimer>>;

impl HeadTimer {
    pub fn new(reads: Arc<AtomicU64>, header: Duration, idle: Duration) -> Self {
        HeadTimer {
            reads,
            header,
            idle,
            begun: AtomicBool::new(false),
            timer: ConnSleep::default(),
        }
    }

    /// The wait for a head due at `deadline`: hyper's `now()` plus `header_read_timeout`,
    /// so the wait began at `deadline - header` (no second reading of the clock).
    fn head_wait(&self, deadline: std::time::Instant) -> HeadSleep {
        let deadline = Instant::from_std(deadline);
        let first = !self.begun.swap(true, Ordering::Relaxed);
        HeadSleep {
            timer: Arc::clone(&self.timer),
            started: deadline.checked_sub(self.header).unwrap_or(deadline),
            header: self.header,
            idle: (!first).then_some(self.idle),
            seen: self.reads.load(Ordering::Relaxed),
            reads: Arc::clone(&self.reads),
            first_byte: None,
        }
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.head_wait(deadline))
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeadSleep>() {
            Some(mut mine) => mine.set(self.head_wait(new_deadline)),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// One wait for a request head, on the connection's timer.
pub struct HeadSleep {
    timer: ConnSleep,
    started: Instant,
    // `header_read_timeout`, as hyper asked for it.
    header: Duration,
    // `idle_timeout` before the first byte; `None` for the connection's first head.
    idle: Option<Duration>,
    // The connection's read count when the wait began.
    seen: u64,
    reads: Arc<AtomicU64>,
    first_byte: Option<Instant>,
}

impl HeadSleep {
    /// When the wait ends, as far as is known now.
    fn due(&self) -> Instant {
        match (self.idle, self.first_byte) {
            (None, _) => self.started + self.header,
            (Some(idle), None) => self.started + idle,
            (Some(_), Some(at)) => at + self.header,
        }
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // hyper looks at its timer right after each read that left the head incomplete,
        // so the first byte is noticed when it is read.
        if this.first_byte.is_none() && this.reads.load(Ordering::Relaxed) != this.seen {
            this.first_byte = Some(Instant::now());
        }
        let due = this.due();
        let mut slot = this.timer.lock().unwrap_or_else(PoisonError::into_inner);
        set_for(&mut slot, due).poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    fn timer(reads: &Arc<AtomicU64>) -> HeadTimer {
        HeadTimer::new(
            Arc::clone(reads),
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
    }

    fn head_wait(t: &HeadTimer) -> Pin<Box<dyn hyper::rt::Sleep>> {
        t.sleep(Duration::from_secs(1))
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_head_has_the_header_timeout_from_the_start() {
        let reads = Arc::new(AtomicU64::new(0));
        let t = timer(&reads);
        let started = Instant::now();
        head_wait(&t).await;
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_the_wait_is_idle_until_a_byte_arrives_then_the_head_timeout() {
        let reads = Arc::new(AtomicU64::new(0));
        let t = timer(&reads);
        drop(head_wait(&t));
        // Kept alive, nothing sent: idle_timeout, not header_read_timeout.
        let started = Instant::now();
        head_wait(&t).await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));

        // A head begins after 30 s quiet: it has the header timeout from its first byte.
        let mut wait = head_wait(&t);
        tokio::select! {
            () = &mut wait => panic!("closed while idle"),
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        reads.fetch_add(1, Ordering::Relaxed);
        let first_byte = Instant::now();
        wait.await;
        assert_eq!(first_byte.elapsed(), Duration::from_secs(1));
    }

    /// The connection's one timer, left set by a wait whose head came, neither ends the
    /// next wait early nor, once fired, ends the one after it at once.
    #[tokio::test(start_paused = true)]
    async fn each_wait_has_its_own_time_on_the_connections_timer() {
        let reads = Arc::new(AtomicU64::new(0));
        let t = timer(&reads);
        let mut first = head_wait(&t);
        tokio::select! {
            () = &mut first => panic!("the first head's time is 1 s"),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        drop(first);
        for _ in 0..2 {
            let started = Instant::now();
            head_wait(&t).await;
            assert_eq!(started.elapsed(), Duration::from_secs(60));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_wait_starts_afresh() {
        let reads = Arc::new(AtomicU64::new(0));
        let t = timer(&reads);
        let mut wait = head_wait(&t);
        reads.fetch_add(1, Ordering::Relaxed);
        t.reset(&mut wait, t.now() + Duration::from_secs(1));
        let started = Instant::now();
        wait.await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(60),
            "a later head wait"
        );
    }
}
