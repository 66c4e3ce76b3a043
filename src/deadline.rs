//! Deadlines that activity moves ahead: the one mechanism for every wait roomgate bounds
//! by inactivity. A service's response head must come within `upstream_timeout` of the
//! last request-body frame it took; a tunnel closes `idle_timeout` after the last byte
//! either way.
//!
//! A [`Deadline`] is one atomic: the side that sees activity moves it with a store (no
//! lock, no timer), and the side that waits sleeps until it, looks again, and sleeps on
//! while it moved. Nothing here knows what the activity is.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// An instant that activity moves ahead, at millisecond resolution. It is stored rounded
/// up, so it may pass up to a millisecond late, never early.
#[derive(Debug)]
pub struct Deadline {
    epoch: Instant,
    /// Milliseconds since `epoch`, rounded up.
    ms: AtomicU64,
}

impl Deadline {
    /// A deadline `after` from now.
    pub fn after(after: Duration) -> Deadline {
        let epoch = Instant::now();
        let d = Deadline {
            epoch,
            ms: AtomicU64::new(0),
        };
        d.set(epoch + after);
        d
    }

    /// Move the deadline to `after` from now (activity happened).
    pub fn push(&self, after: Duration) {
        self.set(Instant::now() + after);
    }

    fn set(&self, at: Instant) {
        let since = at.saturating_duration_since(self.epoch);
        let ms = since.as_nanos().div_ceil(1_000_000) as u64;
        self.ms.store(ms, Ordering::Release);
    }

    /// When the deadline passes, as last moved.
    pub fn due(&self) -> Instant {
        self.epoch + Duration::from_millis(self.ms.load(Ordering::Acquire))
    }

    /// Resolve once the deadline has passed without being moved beyond now.
    pub async fn passed(&self) {
        self.passed_on(&mut None).await;
    }

    /// As [`Deadline::passed`], on a [`KeptTimer`]: a connection that carries one exchange
    /// after another keeps one.
    pub async fn passed_on(&self, timer: &mut KeptTimer) {
        // The timer, not the clock, says when `due` has come (a `due` already past is
        // ready at once).
        loop {
            let due = self.due();
            set_for(timer, due).await;
            if self.due() <= due {
                return;
            }
        }
    }

    /// The instant the deadline was first set from ([`Deadline::after`]).
    pub fn start(&self) -> Instant {
        self.epoch
    }
}

/// A tokio timer that is kept from one wait to the next, for when it is due: `None` until
/// the first wait. Set again while still registered, a timer moves with one atomic store,
/// where a new one is inserted into tokio's timer wheel and removed again.
pub type KeptTimer = Option<Pin<Box<Sleep>>>;

/// `timer`, made if there is none, set for `due`.
pub fn set_for(timer: &mut KeptTimer, due: Instant) -> Pin<&mut Sleep> {
    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
    if sleep.deadline() != due {
        sleep.as_mut().reset(due);
    }
    sleep.as_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_never_passes_early_and_at_most_a_millisecond_late() {
        for micros in [1u64, 999, 1000, 1001, 299_937] {
            let started = Instant::now();
            let d = Deadline::after(Duration::from_micros(micros));
            d.passed().await;
            let waited = started.elapsed();
            assert!(waited >= Duration::from_micros(micros), "{micros} µs");
            assert!(
                waited < Duration::from_micros(micros) + Duration::from_millis(1),
                "{micros} µs"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn activity_keeps_a_deadline_ahead_and_it_passes_once_activity_stops() {
        let d = Deadline::after(Duration::from_secs(5));
        let passed = d.passed();
        tokio::pin!(passed);
        for _ in 0..10 {
            tokio::select! {
                () = &mut passed => panic!("passed while active"),
                () = tokio::time::sleep(Duration::from_secs(4)) => {}
            }
            d.push(Duration::from_secs(5));
        }
        let quiet_from = Instant::now();
        passed.await;
        let waited = quiet_from.elapsed();
        assert!(waited >= Duration::from_secs(5), "{waited:?}");
        assert!(waited <= Duration::from_millis(5_001), "{waited:?}");
    }
}
