//! The Redis Streams queue: one stream per (room, queue), shared by every instance.
//!
//! Owns the enqueue script (dedup and XADD in one atomic step, on keys that share the
//! stream's hash tag, so it runs on one cluster node) and the stream statistics. Where
//! Redis is, the deadlines and the replicas a write must reach are the shared Redis's
//! ([`crate::kv`]). It must report success only after Redis answered the script (and
//! the replicas `redis.durability` asks for confirmed it), and never logs or returns the
//! Redis URL.

use std::fmt;
use std::time::Duration;

use redis::Value;

use super::{dedup_key, stream_key, Enqueued, QueueError, QueueMessage, QueueStats};
use crate::kv::{answer, eval, Kv};

/// Dedup and append in one step. KEYS: stream, dedup key. ARGV: dedup TTL in ms, then the
/// entry's field/value pairs. Returns `{stream id, 1 if duplicate else 0}`.
///
/// A duplicate rewrites its dedup key's remaining lifetime: a write, so the `WAIT` after
/// it counts the replicas holding everything up to now, the original entry included (a
/// retry after a 503 is acknowledged only once that entry is replicated).
const ENQUEUE_SCRIPT: &str = r#"
local seen = redis.call('GET', KEYS[2])
if seen then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
  return {seen, 1}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {id, 0}
"#;

/// A queue in Redis Streams.
#[derive(Clone)]
pub struct RedisQueue {
    kv: Kv,
    dedup_ttl_ms: u64,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("kv", &self.kv)
            .field("dedup_ttl_ms", &self.dedup_ttl_ms)
            .finish()
    }
}

impl RedisQueue {
    /// A queue in the shared Redis `kv`, remembering delivery ids for `dedup_ttl`.
    pub fn new(kv: Kv, dedup_ttl: Duration) -> RedisQueue {
        RedisQueue {
            kv,
            dedup_ttl_ms: u64::try_from(dedup_ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        }
    }

    /// Dedup and XADD in one script; `Ok` only once Redis has answered it (and enough
    /// replicas hold the entry).
    pub async fn enqueue(&self, msg: &QueueMessage<'_>) -> Result<Enqueued, QueueError> {
        let stream = stream_key(msg.room(), msg.queue());
        let dedup = dedup_key(
            msg.room(),
            msg.queue(),
            msg.provider(),
            msg.path(),
            msg.delivery_id(),
        );
        let fields = msg.fields();
        let field_bytes: usize = fields.iter().map(|(n, v)| n.len() + v.len()).sum();
        // The dedup window (at most 20 digits), then each field's name and value.
        let more = (1 + 2 * fields.len(), 20 + field_bytes);
        let mut cmd = eval(ENQUEUE_SCRIPT, &[&stream, &dedup], more);
        cmd.arg(self.dedup_ttl_ms);
        for (name, value) in fields {
            cmd.arg(name).arg(value);
        }
        let reply = self
            .kv
            .write(&stream, cmd)
            .await
            .map_err(QueueError::Unavailable)?;
        let (id, duplicate) = enqueued(reply).map_err(QueueError::Unavailable)?;
        Ok(Enqueued {
            id,
            delivery_id: msg.delivery_id().to_owned(),
            duplicate,
        })
    }

    /// XLEN, the oldest entry, and pending entries summed over consumer groups.
    pub async fn stats(&self, room: &str, queue: &str) -> Result<QueueStats, QueueError> {
        let key = stream_key(room, queue);
        let mut conn = self.kv.connection();
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
        self.kv.ping().await.map_err(QueueError::Unavailable)
    }
}

/// The script's answer, `[entry id, 1 if a duplicate else 0]`.
fn enqueued(reply: Value) -> Result<(String, bool), String> {
    let unexpected = || "redis gave an unexpected reply to the enqueue script".to_owned();
    let Value::Array(parts) = reply else {
        return Err(unexpected());
    };
    match &parts[..] {
        [Value::BulkString(id), Value::Int(duplicate)] => {
            let id = String::from_utf8(id.clone()).map_err(|_| "a stream id that is not UTF-8")?;
            Ok((id, *duplicate == 1))
        }
        _ => Err(unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_answer_is_an_id_and_a_duplicate_flag() {
        let reply = |dup| Value::Array(vec![Value::BulkString(b"1-0".to_vec()), Value::Int(dup)]);
        assert_eq!(enqueued(reply(0)), Ok(("1-0".to_owned(), false)));
        assert_eq!(enqueued(reply(1)), Ok(("1-0".to_owned(), true)));
        assert!(enqueued(Value::Okay).is_err());
        assert!(enqueued(Value::Array(vec![Value::Int(1)])).is_err());
    }
}
