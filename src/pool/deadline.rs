//! The response deadline of a pooled upstream connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::moment::AtomicMoment;

/// The response deadline of the exchange in progress on one connection.
#[derive(Debug)]
pub struct Deadline {
    /// Set while a request awaits its response head.
    due: AtomicMoment,
    /// Set by the connection's task when it gave up on the exchange.
    expired: AtomicBool,
}

impl Deadline {
    pub fn new() -> Deadline {
        Deadline {
            due: AtomicMoment::new(Instant::now()),
            expired: AtomicBool::new(false),
        }
    }

    pub fn start(&self, timeout: Duration) {
        self.due.set(Instant::now() + timeout);
    }

    /// The request body made progress: the exchange, if still waiting for its head, has
    /// `timeout` from now.
    pub fn progress(&self, timeout: Duration) {
        self.due.move_if_set(Instant::now() + timeout);
    }

    pub fn finish(&self) {
        self.due.clear();
    }

    /// Resolve once an exchange is past its deadline. Requests do not wake this; it looks
    /// at least every `period`, so a deadline set after a look is found before it passes
    /// (when it is at least `period` away) and waited for exactly.
    pub async fn expiry(&self, period: Duration) {
        loop {
            let now = Instant::now();
            let wake = match self.due.get() {
                Some(due) if now >= due => {
                    self.expired.store(true, Ordering::Release);
                    return;
                }
                Some(due) => due.min(now + period),
                None => now + period,
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline::new()
    }
}

impl Deadline {
    /// When the exchange in progress must have its response head, if one is in progress.
    pub fn due(&self) -> Option<Instant> {
        self.due.get()
    }

    /// True once the connection's watcher gave up on the exchange in progress.
    pub fn expired(&self) -> bool {
        self.expired.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_set_between_looks_expires_exactly_when_due() {
        let d = Deadline::new();
        let period = Duration::from_secs(10);
        let expiry = d.expiry(period);
        tokio::pin!(expiry);
        tokio::select! {
            () = &mut expiry => panic!("expired with no exchange"),
            () = tokio::time::sleep(Duration::from_secs(25)) => {}
        }
        let started = Instant::now();
        d.start(period);
        expiry.await;
        assert!(d.expired.load(Ordering::Acquire));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(10), "{waited:?}");
        assert!(waited <= Duration::from_millis(10_001), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_exchange_never_expires() {
        let d = Deadline::new();
        let expiry = d.expiry(Duration::from_secs(1));
        tokio::pin!(expiry);
        d.start(Duration::from_secs(1));
        tokio::select! {
            () = &mut expiry => panic!("expired too early"),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        d.finish();
        tokio::select! {
            () = &mut expiry => panic!("expired after the response head came"),
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        assert!(!d.expired.load(Ordering::Acquire));
    }
}
