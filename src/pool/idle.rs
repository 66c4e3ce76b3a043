//! The connections resting between exchanges, per service address.
//!
//! A list is in the order its connections came back, so those idle for
//! [`IDLE_LIFETIME`] are a prefix, let go at checkout. A connection is checked in only
//! when its last exchange left it in step (the response read to its last byte, nothing
//! beyond it), and checked out only while the service has neither closed it nor sent
//! anything on it. A resting connection has no task of its own, so a reaper looks over
//! every list each [`REAP_EVERY`] and closes those the service closed or that rested
//! too long: an address that gets no more requests keeps no sockets half-closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::conn::{Conn, HEAD_READ};

/// How long an idle connection to a service is kept for reuse.
pub const IDLE_LIFETIME: Duration = Duration::from_secs(90);
/// How often the reaper looks over the resting connections.
const REAP_EVERY: Duration = Duration::from_secs(5);

/// A connection kept for reuse, and since when.
pub(super) struct Rested {
    pub(super) conn: Conn,
    pub(super) since: Instant,
}

/// The resting connections to every address.
pub(super) struct Idle {
    pub(super) lists: Mutex<HashMap<String, Vec<Rested>, foldhash::fast::RandomState>>,
    max_per_address: usize,
    /// Set once the reaper runs (from the first checkin, inside the runtime).
    reaping: AtomicBool,
}

impl Idle {
    pub(super) fn new(max_per_address: usize) -> Idle {
        Idle {
            lists: Mutex::default(),
            max_per_address,
            reaping: AtomicBool::new(false),
        }
    }

    /// Close every resting connection the service closed (or wrote on), or that rested
    /// past its lifetime; drop the lists left empty.
    pub(super) fn reap(&self) {
        let cutoff = Instant::now().checked_sub(IDLE_LIFETIME);
        let gone: Vec<Rested> = {
            let mut all = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
            let mut gone = Vec::new();
            for list in all.values_mut() {
                gone.extend(list.extract_if(.., |rested| {
                    cutoff.is_some_and(|t| rested.since <= t) || !rested.conn.is_idle()
                }));
            }
            all.retain(|_, list| !list.is_empty());
            gone
        };
        // Closed outside the lock.
        drop(gone);
    }

    /// Start the reaper, once; it ends with the pool.
    fn reap_in_background(self: &Arc<Self>) {
        if self.reaping.load(Ordering::Relaxed) || self.reaping.swap(true, Ordering::Relaxed) {
            return;
        }
        let idle = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REAP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                let Some(idle) = idle.upgrade() else {
                    return;
                };
                idle.reap();
            }
        });
    }

    /// The most recently returned connection to `address` that is still idle at `now`.
    /// Those rested too long, and those the service closed that the search passes, are
    /// let go.
    pub(super) fn checkout(&self, address: &str, now: Instant) -> Option<Conn> {
        let mut all = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let list = all.get_mut(address)?;
        // Rested since this instant or earlier: past their lifetime.
        let cutoff = now.checked_sub(IDLE_LIFETIME);
        let expired = list.partition_point(|c| cutoff.is_some_and(|t| c.since <= t));
        list.drain(..expired);
        while let Some(rested) = list.pop() {
            if rested.conn.is_idle() {
                return Some(rested.conn);
            }
        }
        None
    }

    /// Keep `conn` for the next exchange with `address`. A resting connection keeps no
    /// more read space than a response head needs.
    pub(super) fn checkin(self: &Arc<Self>, address: &str, mut conn: Conn) {
        self.reap_in_background();
        debug_assert!(conn.buf.is_empty());
        if conn.buf.capacity() > HEAD_READ {
            conn.buf = bytes::BytesMut::new();
        }
        let rested = Rested {
            conn,
            since: Instant::now(),
        };
        let mut all = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        match all.get_mut(address) {
            Some(list) if list.len() < self.max_per_address => list.push(rested),
            Some(_) => {}
            None => {
                all.insert(address.to_owned(), vec![rested]);
            }
        }
    }
}
