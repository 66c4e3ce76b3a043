//! Webhook queues: verified deliveries appended to per-(room, queue) streams.
//!
//! Owns the stream layout (`roomgate:queue:{<room>:<queue>}`), delivery-id deduplication
//! and the two places a queue can live: Redis Streams (shared, durable) and memory (the
//! embedded single-instance mode, and unit tests). It must never report a message as
//! enqueued before the store acknowledged it, never wait on Redis without a deadline, and
//! never put a body, a header value or a Redis URL in an error or a log line.

mod group;
mod lanes;
mod memory;
mod message;
mod redis;

use std::time::Duration;

use time::OffsetDateTime;

use crate::kv::Kv;

pub use memory::MemoryQueue;
pub(crate) use message::json_string_body;
pub use message::{format_received_at, headers_json, Fields, MessageMeta, QueueMessage};
pub use redis::RedisQueue;

/// How long a delivery id is remembered: a redelivery within this window is acknowledged
/// with the original stream id and adds nothing.
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);

/// The stream a (room, queue) pair writes to. The braces are a Redis Cluster hash tag, so
/// the stream and its dedup keys share a slot.
pub fn stream_key(room: &str, queue: &str) -> String {
    ["roomgate:queue:{", room, ":", queue, "}"].concat()
}

/// The key that remembers a delivery id for one (room, queue): see [`dedup_scope`].
pub fn dedup_key(room: &str, queue: &str, provider: &str, path: &str, delivery_id: &str) -> String {
    let scope = dedup_scope(provider, path, delivery_id);
    ["roomgate:dedup:{", room, ":", queue, "}:", &scope].concat()
}

/// What a delivery id is unique within: `<provider>:<path>:<delivery id>`. Ids are only
/// unique per provider and per sender (a Telegram `update_id` and a HubSpot `eventId` may
/// be equal; so may two bots' update ids), so two providers or two endpoints feeding one
/// queue never drop each other's deliveries as duplicates. A `%` or `:` in the path is
/// percent-encoded, so the first two `:` always end the provider and the path.
pub fn dedup_scope(provider: &str, path: &str, delivery_id: &str) -> String {
    let mut out = String::with_capacity(provider.len() + path.len() + delivery_id.len() + 8);
    out.push_str(provider);
    out.push(':');
    let mut rest = path;
    while let Some(at) = rest.find(['%', ':']) {
        out.push_str(&rest[..at]);
        out.push_str(if rest.as_bytes()[at] == b'%' {
            "%25"
        } else {
            "%3A"
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push(':');
    out.push_str(delivery_id);
    out
}

/// Why a message could not be enqueued (or stats read). Maps to 503 `queue_unavailable`
/// with `Retry-After`: the provider retries and, thanks to dedup, nothing is lost or
/// doubled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The store is unreachable, erroring, full or too slow. The detail is for the log.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

/// The outcome of an enqueue that the store acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The stream entry id (`<ms>-<seq>`): the original one for a redelivery.
    pub id: String,
    pub delivery_id: String,
    /// True when this delivery id was already enqueued and nothing was added.
    pub duplicate: bool,
}

/// What `roomgate queue stats` shows for one stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Entries in the stream.
    pub length: u64,
    /// Entries delivered to a consumer and not yet acknowledged, summed over groups.
    pub pending: u64,
    /// The oldest entry still in the stream.
    pub oldest_id: Option<String>,
}

impl QueueStats {
    /// Age of the oldest entry at `now`, from the milliseconds in its stream id.
    pub fn oldest_age(&self, now: OffsetDateTime) -> Option<Duration> {
        let id = self.oldest_id.as_deref()?;
        let ms: i128 = id.split('-').next()?.parse().ok()?;
        let now_ms = now.unix_timestamp_nanos() / 1_000_000;
        let age = u64::try_from(now_ms - ms).unwrap_or(0);
        Some(Duration::from_millis(age))
    }
}

/// A queue: Redis Streams when the config has a `redis` block, else memory.
#[derive(Clone, Debug)]
pub enum Queue {
    Memory(MemoryQueue),
    Redis(RedisQueue),
}

impl Queue {
    /// Redis Streams in the shared Redis when there is one, else the in-memory queue.
    /// The Redis connection is made on first use, so a Redis outage at start-up surfaces
    /// as `Unavailable` per request rather than as a failed start.
    pub fn new(kv: Option<&Kv>) -> Queue {
        match kv {
            Some(kv) => Queue::Redis(RedisQueue::new(kv.clone(), DEFAULT_DEDUP_TTL)),
            None => Queue::memory(),
        }
    }

    /// The in-memory queue of the embedded mode. Not durable: logs a warning saying so.
    pub fn memory() -> Queue {
        Queue::Memory(MemoryQueue::new(DEFAULT_DEDUP_TTL))
    }

    /// Append a message to its stream unless its delivery id was already enqueued within
    /// the dedup window, in which case the original entry id is returned.
    pub async fn enqueue(&self, msg: &QueueMessage<'_>) -> Result<Enqueued, QueueError> {
        match self {
            Queue::Memory(q) => q.enqueue(msg),
            Queue::Redis(q) => q.enqueue(msg).await,
        }
    }

    /// Length, pending count and oldest entry of one stream.
    pub async fn stats(&self, room: &str, queue: &str) -> Result<QueueStats, QueueError> {
        match self {
            Queue::Memory(q) => Ok(q.stats(room, queue)),
            Queue::Redis(q) => q.stats(room, queue).await,
        }
    }

    /// True when the store answers (for `/readyz`).
    pub async fn ready(&self) -> bool {
        match self {
            Queue::Memory(_) => true,
            Queue::Redis(q) => q.ping().await.is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// The request path holds the queue in shared state and awaits it inside spawned tasks.
    #[test]
    fn the_queue_and_its_futures_can_cross_threads() {
        fn shared<T: Send + Sync + Clone>(_: &T) {}
        fn sendable<T: Send>(_: T) {}
        let q = Queue::memory();
        shared(&q);
        let (v, h) = message::tests::verified(b"x", Some("d"));
        let msg = QueueMessage::new(v, message::tests::meta(), &h, OffsetDateTime::UNIX_EPOCH);
        sendable(q.enqueue(&msg));
        sendable(q.stats("acme", "q"));
        sendable(q.ready());
    }

    #[test]
    fn stream_and_dedup_keys_share_a_hash_tag() {
        assert_eq!(stream_key("acme", "q"), "roomgate:queue:{acme:q}");
        assert_eq!(
            dedup_key("acme", "q", "github", "/hooks/gh", "d1"),
            "roomgate:dedup:{acme:q}:github:/hooks/gh:d1"
        );
    }

    #[test]
    fn the_same_id_from_another_provider_or_endpoint_has_another_dedup_key() {
        let key = |provider, path| dedup_key("acme", "q", provider, path, "100");
        assert_ne!(key("telegram", "/hooks"), key("hubspot", "/hooks"));
        assert_ne!(key("telegram", "/hooks/a"), key("telegram", "/hooks/b"));
        assert_eq!(key("telegram", "/hooks/a"), key("telegram", "/hooks/a"));
    }

    #[test]
    fn a_colon_in_the_path_cannot_make_two_scopes_meet() {
        assert_ne!(dedup_scope("p", "/a:b", "c"), dedup_scope("p", "/a", "b:c"));
        assert_eq!(dedup_scope("p", "/a:b%", "c"), "p:/a%3Ab%25:c");
        assert_eq!(dedup_scope("p", "%:é/", "c"), "p:%25%3Aé/:c");
        assert_eq!(dedup_scope("p", "/plain", "c"), "p:/plain:c");
    }

    #[test]
    fn oldest_age_comes_from_the_stream_id() {
        let stats = QueueStats {
            length: 1,
            pending: 0,
            oldest_id: Some("1714566896000-0".into()),
        };
        let now = datetime!(2024-05-01 12:35:06 UTC);
        assert_eq!(stats.oldest_age(now), Some(Duration::from_secs(10)));
        assert_eq!(QueueStats::default().oldest_age(now), None);
    }
}
