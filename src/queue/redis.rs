//! The Redis Streams queue: one stream per (room, queue), shared by every instance.
//!
//! Owns the enqueue (dedup and XADD in one atomic script, on keys that share the stream's
//! hash tag, so it runs on one cluster node; messages go in groups per hash slot,
//! [`super::group`]) and the stream statistics. Where
//! Redis is, the deadlines and the replicas a write must reach are the shared Redis's
//! ([`crate::kv`]). It must report success only after Redis answered the script (and
//! the replicas `redis.durability` asks for confirmed it), and never logs or returns the
//! Redis URL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::group::Groups;
use super::{dedup_key, stream_key, Enqueued, QueueError, QueueMessage, QueueStats};
use crate::kv::{answer, Kv};

/// A queue in Redis Streams.
#[derive(Clone)]
pub struct RedisQueue {
    groups: Arc<Groups>,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("kv", self.groups.kv())
            .finish_non_exhaustive()
    }
}

impl RedisQueue {
    /// A queue in the shared Redis `kv`, remembering delivery ids for `dedup_ttl`.
    pub fn new(kv: Kv, dedup_ttl: Duration) -> RedisQueue {
        let dedup_ttl_ms = u64::try_from(dedup_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        RedisQueue {
            groups: Arc::new(Groups::new(kv, dedup_ttl_ms)),
        }
    }

    /// Dedup and XADD with the next group of the stream's slot ([`super::group`]); `Ok` only
    /// once Redis has answered the script that carried it (and enough replicas hold the
    /// entry).
    pub async fn enqueue(&self, msg: &QueueMessage<'_>) -> Result<Enqueued, QueueError> {
        let stream = stream_key(msg.room(), msg.queue());
        let dedup = dedup_key(
            msg.room(),
            msg.queue(),
            msg.provider(),
            msg.path(),
            msg.delivery_id(),
        );
        let (id, duplicate) = self
            .groups
            .enqueue(stream, dedup, msg)
            .await
            .map_err(QueueError::Unavailable)?;
        Ok(Enqueued {
            id,
            delivery_id: msg.delivery_id().to_owned(),
            duplicate,
        })
    }

    /// XLEN, the oldest entry, and pending entries summed over consumer groups.
    pub async fn stats(&self, room: &str, queue: &str) -> Result<QueueStats, QueueError> {
        let key = stream_key(room, queue);
        let mut conn = self.groups.kv().connection();
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN")
            .arg(&key)
            .cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .cmd("EXISTS")
            .arg(&key);
        type Oldest = Vec<(String, redis::Value)>;
        let (length, oldest, exists): (u64, Oldest, bool) = answer(pipe.query_async(&mut conn))
            .await
            .map_err(QueueError::Unavailable)?;
        let mut pending = 0;
        if exists {
            let groups: redis::streams::StreamInfoGroupsReply = answer(
                redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(&key)
                    .query_async(&mut conn),
            )
            .await
            .map_err(QueueError::Unavailable)?;
            pending = groups.groups.iter().map(|g| g.pending as u64).sum();
        }
        Ok(QueueStats {
            length,
            pending,
            oldest_id: oldest.into_iter().next().map(|(id, _)| id),
        })
    }

    /// Whether Redis answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), QueueError> {
        self.groups
            .kv()
            .ping()
            .await
            .map_err(QueueError::Unavailable)
    }
}
