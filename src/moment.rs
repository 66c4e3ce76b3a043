//! An optional instant kept in one atomic: set on the request path, read by a
//! connection's watcher, with no lock and no timer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// `None` or an instant at millisecond resolution, relative to a fixed epoch. An instant
/// is stored rounded up, so what is read back is never earlier than what was set: a
/// deadline kept here may fire up to a millisecond late, never early.
#[derive(Debug)]
pub struct AtomicMoment {
    epoch: Instant,
    /// Milliseconds since `epoch`, plus one; 0 for `None`.
    ms: AtomicU64,
}

impl AtomicMoment {
    pub fn new(epoch: Instant) -> Self {
        AtomicMoment {
            epoch,
            ms: AtomicU64::new(0),
        }
    }

    pub fn set(&self, at: Instant) {
        self.ms.store(self.encode(at), Ordering::Release);
    }

    /// Set to `at` only if set: what was cleared stays cleared, even when a `clear` races
    /// with this.
    pub fn move_if_set(&self, at: Instant) {
        let ms = self.encode(at);
        let _ = self
            .ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur != 0).then_some(ms)
            });
    }

    fn encode(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        since.as_nanos().div_ceil(1_000_000) as u64 + 1
    }

    pub fn clear(&self) {
        self.ms.store(0, Ordering::Release);
    }

    pub fn get(&self) -> Option<Instant> {
        match self.ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms - 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_read_back_is_never_earlier_than_what_was_set() {
        let epoch = Instant::now();
        let m = AtomicMoment::new(epoch);
        assert_eq!(m.get(), None);
        for micros in [0u64, 1, 999, 1000, 1001, 299_937, 300_000] {
            let at = epoch + Duration::from_micros(micros);
            m.set(at);
            let back = m.get().expect("set");
            assert!(back >= at, "{micros} µs read back early");
            assert!(back - at < Duration::from_millis(1), "{micros} µs");
        }
        m.clear();
        assert_eq!(m.get(), None);
    }

    #[test]
    fn moving_a_cleared_moment_leaves_it_cleared() {
        let epoch = Instant::now();
        let m = AtomicMoment::new(epoch);
        m.move_if_set(epoch + Duration::from_secs(1));
        assert_eq!(m.get(), None);
        m.set(epoch);
        m.move_if_set(epoch + Duration::from_secs(1));
        assert_eq!(m.get(), Some(epoch + Duration::from_secs(1)));
    }
}
