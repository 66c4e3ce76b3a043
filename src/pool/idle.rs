//! The connections resting between exchanges, per service address.
//!
//! A list is in the order its connections came back, so those idle for
//! [`IDLE_LIFETIME`] are a prefix, let go at checkout. A connection is checked in only
//! when its last exchange left it in step (the response read to its last byte, nothing
//! beyond it), and checked out only while the service has neither closed it nor sent
//! anything on it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::conn::{Conn, HEAD_READ};

/// How long an idle connection to a service is kept for reuse.
pub const IDLE_LIFETIME: Duration = Duration::from_secs(90);

/// A connection kept for reuse, and since when.
pub(super) struct Rested {
    pub(super) conn: Conn,
    pub(super) since: Instant,
}

/// The resting connections to every address.
pub(super) struct Idle {
    pub(super) lists: Mutex<HashMap<String, Vec<Rested>, foldhash::fast::RandomState>>,
    max_per_address: usize,
}

impl Idle {
    pub(super) fn new(max_per_address: usize) -> Idle {
        Idle {
            lists: Mutex::default(),
            max_per_address,
        }
    }

    /// The most recently returned connection to `address` that is still idle. Those
    /// rested too long, and those the service closed that the search passes, are let go.
    pub(super) fn checkout(&self, address: &str) -> Option<Conn> {
        let mut all = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let list = all.get_mut(address)?;
        // Rested since this instant or earlier: past their lifetime.
        let cutoff = Instant::now().checked_sub(IDLE_LIFETIME);
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
    pub(super) fn checkin(&self, address: &str, mut conn: Conn) {
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
