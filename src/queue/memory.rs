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

use super::{dedup_scope, Enqueued, QueueError, QueueMessage, QueueStats};

/// Most entries one in-memory stream holds before enqueue answers `Unavailable`.
pub const MEMORY_STREAM_CAPACITY: usize = 10_000;

#[derive(Default, Debug)]
struct Stream {
    entries: VecDeque<(String, QueueMessage<'static>)>,
    seen: Seen,
    last_ms: i128,
    last_seq: u64,
}

/// The delivery ids of one stream's dedup window: a map for lookup, and the same ids in
/// the order they were remembered with their expiries, so that forgetting the expired ones
/// costs O(1) amortised per enqueue instead of a scan of the whole window.
#[derive(Default, Debug)]
struct Seen {
    /// Dedup scope (`provider:path:delivery id`) → (stream id, expiry).
    ids: HashMap<String, (String, OffsetDateTime)>,
    /// (expiry, scope), oldest first.
    expiries: VecDeque<(OffsetDateTime, String)>,
}

impl Seen {
    /// Forget every id whose window has ended at `now`, oldest first, stopping at the
    /// first one still inside it.
    fn expire(&mut self, now: OffsetDateTime) {
        while let Some((expires, _)) = self.expiries.front() {
            if *expires > now {
                break;
            }
            if let Some((expires, scope)) = self.expiries.pop_front() {
                // The id may have been remembered again since (a later expiry): keep that.
                if self.ids.get(&scope).is_some_and(|(_, e)| *e == expires) {
                    self.ids.remove(&scope);
                }
            }
        }
    }

    /// The stream id a scope was enqueued as, while its window lasts at `now`. (The
    /// expiry is checked here too, so a clock that steps back cannot revive an id.)
    fn get(&self, scope: &str, now: OffsetDateTime) -> Option<&str> {
        self.ids
            .get(scope)
            .filter(|(_, expires)| *expires > now)
            .map(|(id, _)| id.as_str())
    }

    fn remember(&mut self, scope: String, id: String, expires: OffsetDateTime) {
        self.expiries.push_back((expires, scope.clone()));
        self.ids.insert(scope, (id, expires));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
    }
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
            "queues are in memory: messages are NOT durable, are lost on restart and no \
             worker can read them; configure redis.url for production"
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
        stream.seen.expire(now);
        let scope = dedup_scope(msg.provider(), msg.path(), msg.delivery_id());
        if let Some(id) = stream.seen.get(&scope, now) {
            return Ok(Enqueued {
                id: id.to_owned(),
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
        stream
            .entries
            .push_back((id.clone(), msg.clone().into_owned()));
        stream
            .seen
            .remember(scope, id.clone(), now + self.dedup_ttl);
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
    pub fn take(
        &self,
        room: &str,
        queue: &str,
        max: usize,
    ) -> Vec<(String, QueueMessage<'static>)> {
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

    fn message(delivery: Option<&str>, at: OffsetDateTime) -> QueueMessage<'static> {
        let (v, h) = verified(b"{\"n\":1}", delivery);
        QueueMessage::new(v, meta(), &h, at).into_owned()
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

    /// A Telegram update verified with its shared token, its `update_id` the delivery id.
    fn telegram(update_id: u64, path: &str, at: OffsetDateTime) -> QueueMessage<'static> {
        let body = bytes::Bytes::from(format!("{{\"update_id\":{update_id}}}"));
        let mut headers = http::HeaderMap::new();
        headers.insert("x-telegram-bot-api-secret-token", "tg".parse().unwrap());
        let req = crate::webhook::WebhookRequest {
            method: &http::Method::POST,
            headers: &headers,
            url: "https://hooks.acme.test/tg",
            body: &body,
        };
        let secret = [crate::sensitive::Secret::new("tg")];
        let v = crate::webhook::verify(
            crate::webhook::Provider::Telegram,
            &req,
            body.clone(),
            &secret,
            0,
            None,
        )
        .unwrap();
        let meta = super::super::MessageMeta {
            path: path.into(),
            ..meta()
        };
        QueueMessage::new(v, meta, &headers, at).into_owned()
    }

    /// Ids are unique per provider and per sender only: the same id from another provider
    /// or another endpoint on the same queue is another delivery.
    #[test]
    fn the_same_id_from_another_provider_or_endpoint_is_not_a_duplicate() {
        let q = MemoryQueue::new(Duration::from_secs(60));
        let t = datetime!(2024-05-01 12:00 UTC);
        let github = q.enqueue(&message(Some("100"), t)).unwrap();
        let bot_a = q.enqueue(&telegram(100, "/tg/a", t)).unwrap();
        let bot_b = q.enqueue(&telegram(100, "/tg/b", t)).unwrap();
        let retry = q.enqueue(&telegram(100, "/tg/a", t)).unwrap();
        assert_eq!(
            [github.duplicate, bot_a.duplicate, bot_b.duplicate],
            [false; 3]
        );
        assert!(retry.duplicate);
        assert_eq!(retry.id, bot_a.id);
        assert_eq!(q.stats("acme", "github-events").length, 3);
    }

    #[test]
    fn ids_leave_the_window_oldest_first_as_the_clock_passes_them() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let mut seen = Seen::default();
        seen.remember("a".into(), "1-0".into(), t + Duration::from_secs(10));
        seen.remember("b".into(), "2-0".into(), t + Duration::from_secs(20));
        seen.expire(t + Duration::from_secs(9));
        assert_eq!(seen.len(), 2);
        seen.expire(t + Duration::from_secs(10));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen.get("a", t + Duration::from_secs(10)), None);
        assert_eq!(seen.get("b", t + Duration::from_secs(19)), Some("2-0"));
        seen.expire(t + Duration::from_secs(20));
        assert_eq!(seen.len(), 0);
        assert!(seen.expiries.is_empty());
    }

    #[test]
    fn an_id_remembered_again_outlives_its_first_expiry() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let mut seen = Seen::default();
        seen.remember("a".into(), "1-0".into(), t + Duration::from_secs(10));
        // Expired but not yet swept (the clock stepped back at the last sweep).
        assert_eq!(seen.get("a", t + Duration::from_secs(15)), None);
        seen.remember("a".into(), "2-0".into(), t + Duration::from_secs(25));
        seen.expire(t + Duration::from_secs(15));
        assert_eq!(seen.get("a", t + Duration::from_secs(20)), Some("2-0"));
        seen.expire(t + Duration::from_secs(25));
        assert_eq!(seen.len(), 0);
    }

    /// The queue sweeps the window on every enqueue: an old id costs nothing once past it.
    #[test]
    fn enqueue_forgets_ids_past_the_window() {
        let q = MemoryQueue::new(Duration::from_secs(60));
        let t = datetime!(2024-05-01 12:00 UTC);
        for (i, d) in ["a", "b", "c"].into_iter().enumerate() {
            q.enqueue(&message(Some(d), t + Duration::from_secs(i as u64)))
                .unwrap();
        }
        q.enqueue(&message(Some("d"), t + Duration::from_secs(61)))
            .unwrap();
        let streams = q.lock();
        let seen = &streams[&("acme".to_owned(), "github-events".to_owned())].seen;
        assert_eq!(seen.len(), 2, "a and b are past the window");
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
