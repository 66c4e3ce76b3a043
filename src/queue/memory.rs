//! The in-memory queue: the embedded single-instance mode, and the unit tests' queue.
//!
//! Owns streams and dedup entries held in this process only. It must behave like the Redis
//! queue (ids, dedup, stats) but it is not durable: a restart loses every message, which
//! is why constructing it logs a warning. It is bounded, so a flood answers `Unavailable`
//! (503) instead of exhausting memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use super::{Enqueued, QueueError, QueueMessage, QueueStats};

/// Most entries one in-memory stream holds before enqueue answers `Unavailable`.
pub const MEMORY_STREAM_CAPACITY: usize = 10_000;

#[derive(Default, Debug)]
struct Stream {
    entries: VecDeque<(String, QueueMessage)>,
    /// Delivery id → (stream id, expiry).
    seen: HashMap<String, (String, OffsetDateTime)>,
    last_ms: i128,
    last_seq: u64,
}

/// Streams in this process's memory. Clones share the same streams.
#[derive(Clone, Debug)]
pub struct MemoryQueue {
    streams: Arc<Mutex<HashMap<(String, String), Stream>>>,
    dedup_ttl: Duration,
}

impl MemoryQueue {
    /// A new, empty in-memory queue remembering delivery ids for `dedup_ttl`.
    pub fn new(dedup_ttl: Duration) -> MemoryQueue {
        tracing::warn!(
            "queues are in memory: messages are NOT durable and are lost on restart; \
             configure redis.url for production"
        );
        MemoryQueue {
            streams: Arc::default(),
            dedup_ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Stream>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append unless the delivery id was seen within the dedup window. The message's
    /// `received_at` is the clock (so tests control it).
    pub fn enqueue(&self, msg: &QueueMessage) -> Result<Enqueued, QueueError> {
        let now = msg.received();
        let mut streams = self.lock();
        let stream = streams
            .entry((msg.room().to_owned(), msg.queue().to_owned()))
            .or_default();
        stream.seen.retain(|_, (_, expires)| *expires > now);
        if let Some((id, _)) = stream.seen.get(msg.delivery_id()) {
            return Ok(Enqueued {
                id: id.clone(),
                delivery_id: msg.delivery_id().to_owned(),
                duplicate: true,
            });
        }
        if stream.entries.len() >= MEMORY_STREAM_CAPACITY {
            return Err(QueueError::Unavailable(format!(
                "in-memory stream is full ({MEMORY_STREAM_CAPACITY} entries)"
            )));
        }
        let ms = now.unix_timestamp_nanos() / 1_000_000;
        if ms > stream.last_ms {
            stream.last_ms = ms;
            stream.last_seq = 0;
        } else {
            stream.last_seq += 1;
        }
        let id = format!("{}-{}", stream.last_ms, stream.last_seq);
        stream.entries.push_back((id.clone(), msg.clone()));
        stream.seen.insert(
            msg.delivery_id().to_owned(),
            (id.clone(), now + self.dedup_ttl),
        );
        Ok(Enqueued {
            id,
            delivery_id: msg.delivery_id().to_owned(),
            duplicate: false,
        })
    }

    /// Length and oldest entry; nothing is ever pending in memory.
    pub fn stats(&self, room: &str, queue: &str) -> QueueStats {
        let streams = self.lock();
        match streams.get(&(room.to_owned(), queue.to_owned())) {
            Some(s) => QueueStats {
                length: s.entries.len() as u64,
                pending: 0,
                oldest_id: s.entries.front().map(|(id, _)| id.clone()),
            },
            None => QueueStats::default(),
        }
    }

    /// Remove and return up to `max` of the oldest entries (the embedded consumer).
    pub fn take(&self, room: &str, queue: &str, max: usize) -> Vec<(String, QueueMessage)> {
        let mut streams = self.lock();
        match streams.get_mut(&(room.to_owned(), queue.to_owned())) {
            Some(s) => {
                let n = max.min(s.entries.len());
                s.entries.drain(..n).collect()
            }
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::tests::{meta, verified};
    use super::*;
    use time::macros::datetime;

    fn message(delivery: Option<&str>, at: OffsetDateTime) -> QueueMessage {
        let (v, h) = verified(b"{\"n\":1}", delivery);
        QueueMessage::new(v, meta(), &h, at)
    }

    #[test]
    fn a_redelivery_returns_the_original_id_and_adds_nothing() {
        let q = MemoryQueue::new(Duration::from_secs(60));
        let t = datetime!(2024-05-01 12:00 UTC);
        let first = q.enqueue(&message(Some("d1"), t)).unwrap();
        let again = q
            .enqueue(&message(Some("d1"), t + Duration::from_secs(5)))
            .unwrap();
        assert!(!first.duplicate);
        assert!(again.duplicate);
        assert_eq!(again.id, first.id);
        assert_eq!(q.stats("acme", "github-events").length, 1);
    }

    #[test]
    fn a_delivery_id_is_forgotten_after_the_dedup_window() {
        let q = MemoryQueue::new(Duration::from_secs(60));
        let t = datetime!(2024-05-01 12:00 UTC);
        let first = q.enqueue(&message(Some("d1"), t)).unwrap();
        let later = q
            .enqueue(&message(Some("d1"), t + Duration::from_secs(61)))
            .unwrap();
        assert!(!later.duplicate);
        assert_ne!(later.id, first.id);
        assert_eq!(q.stats("acme", "github-events").length, 2);
    }

    #[test]
    fn distinct_deliveries_in_the_same_millisecond_get_increasing_ids() {
        let q = MemoryQueue::new(Duration::from_secs(60));
        let t = datetime!(2024-05-01 12:00 UTC);
        let a = q.enqueue(&message(Some("a"), t)).unwrap();
        let b = q.enqueue(&message(Some("b"), t)).unwrap();
        assert_eq!(a.id, "1714564800000-0");
        assert_eq!(b.id, "1714564800000-1");
        let stats = q.stats("acme", "github-events");
        assert_eq!(stats.oldest_id.as_deref(), Some("1714564800000-0"));
        let taken = q.take("acme", "github-events", 10);
        assert_eq!(taken.len(), 2);
        assert_eq!(q.stats("acme", "github-events").length, 0);
    }
}
