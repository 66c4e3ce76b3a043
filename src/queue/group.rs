//! Enqueues grouped per hash slot (one group for every stream when Redis is not a
//! cluster): the messages waiting for a slot go to Redis in one script call, and the next
//! group forms while that one is out (a group commit).
//!
//! Each message is still acknowledged only once Redis answered the script that carried it
//! (and, with `redis.durability`, once the replicas confirmed it). A script that fails
//! fails every message of its group: each sender may retry, and dedup answers the retry of
//! a message the script did write with that message's entry. A message whose caller gave
//! up before its group left is not sent. Redis runs the same XADD and SET per message as it
//! would alone; roomgate's round trip, its command's framing and its reply's parsing are
//! paid once per group.

use std::sync::Arc;

use bytes::Bytes;
use redis::cluster_routing::Slot;
use redis::Value;
use tokio::sync::oneshot;

use super::lanes::Lanes;
use super::QueueMessage;
use crate::kv::{eval, Kv};

/// Most messages in one group.
const MAX_GROUP: usize = 64;

/// A group takes no further message once its values reach this many bytes.
const MAX_GROUP_BYTES: usize = 1 << 20;

/// Dedup and append, for each message of a group, in one atomic step.
///
/// KEYS: per message, its stream and its dedup key. ARGV: the dedup TTL in ms, the number
/// of fields n, the n field names, then n values per message. Returns one line per
/// message, in order: `0<id>` for a new entry, `1<id>` (the original entry's id) for a
/// delivery already enqueued.
///
/// A duplicate rewrites its dedup key's remaining lifetime: a write, so the `WAIT` after
/// it counts the replicas holding everything up to now, the original entry included (a
/// retry after a 503 is acknowledged only once that entry is replicated).
const ENQUEUE_SCRIPT: &str = r#"
local n = tonumber(ARGV[2])
local names = {unpack(ARGV, 3, 2 + n)}
local out = {}
for m = 1, #KEYS / 2 do
  local stream, dedup = KEYS[2 * m - 1], KEYS[2 * m]
  local seen = redis.call('GET', dedup)
  if seen then
    local ttl = redis.call('PTTL', dedup)
    if ttl > 0 then
      redis.call('PEXPIRE', dedup, ttl)
    end
    out[#out + 1] = '1' .. seen
  else
    local entry = {}
    local base = 2 + n * m
    for f = 1, n do
      entry[2 * f - 1] = names[f]
      entry[2 * f] = ARGV[base + f]
    end
    local id = redis.call('XADD', stream, '*', unpack(entry))
    redis.call('SET', dedup, id, 'PX', ARGV[1])
    out[#out + 1] = '0' .. id
  end
end
return table.concat(out, '\n')
"#;

/// What the script answers for one message: its entry id, and whether it was a duplicate.
pub(super) type Reply = Result<(String, bool), String>;

/// The Redis queue's enqueues, grouped per hash slot.
pub(super) struct Groups {
    kv: Kv,
    dedup_ttl_ms: u64,
    slots: Lanes<Option<Slot>, Waiting>,
}

/// A message waiting for its group.
struct Waiting {
    stream: String,
    dedup: String,
    values: Values,
    reply: oneshot::Sender<Reply>,
}

/// A message's field values, owned until its group is sent: the body shared, the rest
/// in one buffer.
struct Values {
    body: Bytes,
    rest: Vec<u8>,
    /// Where each value after the body ends in `rest`.
    ends: [usize; FIELDS - 1],
}

const FIELDS: usize = QueueMessage::FIELD_NAMES.len();

impl Values {
    fn of(msg: &QueueMessage<'_>) -> Values {
        let values = msg.values();
        let mut rest = Vec::with_capacity(values[1..].iter().map(|v| v.len()).sum());
        let ends = std::array::from_fn(|i| {
            rest.extend_from_slice(values[i + 1]);
            rest.len()
        });
        Values {
            body: msg.body().clone(),
            rest,
            ends,
        }
    }

    fn len(&self) -> usize {
        self.body.len() + self.rest.len()
    }

    /// The values in field order.
    fn each(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends);
        let rest = starts.zip(self.ends).map(|(a, b)| &self.rest[a..b]);
        std::iter::once(&self.body[..]).chain(rest)
    }
}

impl Groups {
    pub(super) fn new(kv: Kv, dedup_ttl_ms: u64) -> Groups {
        Groups {
            kv,
            dedup_ttl_ms,
            slots: Lanes::default(),
        }
    }

    pub(super) fn kv(&self) -> &Kv {
        &self.kv
    }

    /// Enqueue `msg` to `stream` under `dedup` with the next group of its slot.
    pub(super) async fn enqueue(
        self: &Arc<Self>,
        stream: String,
        dedup: String,
        msg: &QueueMessage<'_>,
    ) -> Reply {
        let (tx, rx) = oneshot::channel();
        let slot = self.kv.slot(&stream);
        let waiting = Waiting {
            stream,
            dedup,
            values: Values::of(msg),
            reply: tx,
        };
        if self.slots.push(&slot, waiting) {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let send = |group| this.send_group(group);
                this.slots.drain(slot, group_size, send).await;
            });
        }
        // Every group's command has its connection's deadline, so an answer comes; a
        // sender dropped unanswered means the task sending it is gone.
        rx.await
            .unwrap_or_else(|_| Err("the enqueue was dropped".to_owned()))
    }

    /// One script for the group; each caller gets its message's line of the answer, or the
    /// error that failed the group.
    async fn send_group(&self, group: Vec<Waiting>) {
        // A message whose caller gave up is not sent.
        let group: Vec<Waiting> = group.into_iter().filter(|w| !w.reply.is_closed()).collect();
        if group.is_empty() {
            return;
        }
        let mut keys = Vec::with_capacity(2 * group.len());
        for w in &group {
            keys.extend([w.stream.as_str(), w.dedup.as_str()]);
        }
        let values: usize = group.iter().map(|w| w.values.len()).sum();
        let names: usize = QueueMessage::FIELD_NAMES.iter().map(|n| n.len()).sum();
        // The TTL and the field count (at most 20 digits each), the names, the values.
        let more = (2 + FIELDS * (1 + group.len()), 40 + names + values);
        let mut cmd = eval(ENQUEUE_SCRIPT, &keys, more);
        cmd.arg(self.dedup_ttl_ms).arg(FIELDS);
        for name in QueueMessage::FIELD_NAMES {
            cmd.arg(name);
        }
        for w in &group {
            for value in w.values.each() {
                cmd.arg(value);
            }
        }
        // Every key of the group is in one slot, so the command goes to one node.
        let answer = self.kv.write(cmd).await;
        let mut lines = match answer.and_then(|reply| lines(reply, group.len())) {
            Ok(lines) => Ok(lines.into_iter()),
            Err(e) => Err(e),
        };
        for w in group {
            let reply = match &mut lines {
                Ok(lines) => lines.next().ok_or_else(unexpected),
                Err(e) => Err(e.clone()),
            };
            let _ = w.reply.send(reply);
        }
    }
}

/// How many of the waiting messages the next group takes: at most [`MAX_GROUP`], and no
/// more once their values reach [`MAX_GROUP_BYTES`].
fn group_size(waiting: &[Waiting]) -> usize {
    let mut bytes = 0;
    waiting
        .iter()
        .take(MAX_GROUP)
        .take_while(|w| {
            let under = bytes < MAX_GROUP_BYTES;
            bytes += w.values.len();
            under
        })
        .count()
}

/// The script's answer for a group of `count`: per message, its entry id and whether it
/// was a duplicate.
fn lines(reply: Value, count: usize) -> Result<Vec<(String, bool)>, String> {
    let Value::BulkString(text) = reply else {
        return Err(unexpected());
    };
    let text = String::from_utf8(text).map_err(|_| unexpected())?;
    let lines: Vec<(String, bool)> = text
        .split('\n')
        .map(|line| match line.split_at_checked(1) {
            Some(("0", id)) if !id.is_empty() => Ok((id.to_owned(), false)),
            Some(("1", id)) if !id.is_empty() => Ok((id.to_owned(), true)),
            _ => Err(unexpected()),
        })
        .collect::<Result<_, _>>()?;
    if lines.len() == count {
        Ok(lines)
    } else {
        Err(unexpected())
    }
}

fn unexpected() -> String {
    "redis gave an unexpected reply to the enqueue script".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_has_one_line_per_message() {
        let reply = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(
            lines(reply("01-0\n11-0\n02-5"), 3),
            Ok(vec![
                ("1-0".to_owned(), false),
                ("1-0".to_owned(), true),
                ("2-5".to_owned(), false),
            ])
        );
        assert!(lines(reply("01-0"), 2).is_err());
        assert!(lines(reply("01-0\n"), 1).is_err());
        assert!(lines(reply("2x"), 1).is_err());
        assert!(lines(reply("0"), 1).is_err());
        assert!(lines(Value::Okay, 1).is_err());
        assert!(lines(Value::Array(vec![]), 0).is_err());
    }

    #[test]
    fn values_come_back_in_field_order() {
        let (v, h) = super::super::message::tests::verified(b"the body", Some("d1"));
        let msg = QueueMessage::new(
            v,
            super::super::message::tests::meta(),
            &h,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let values = Values::of(&msg);
        let got: Vec<&[u8]> = values.each().collect();
        assert_eq!(got, msg.values().to_vec());
        assert_eq!(
            values.len(),
            msg.values().iter().map(|v| v.len()).sum::<usize>()
        );
    }
}
