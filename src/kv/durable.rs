//! Durable writes: each write is followed by `WAIT replicas timeout` on the connection that
//! carried it, and is reported done only when enough replicas confirmed it.
//!
//! `WAIT` covers every write its connection made before it, and blocks that connection
//! until it returns. So writes are grouped: the writes waiting for a slot (on a cluster,
//! one lane per hash slot; otherwise one lane) go out as one pipeline — the writes, then
//! one `WAIT` — and the next group forms while that one is out. A pipeline goes to one
//! node on one connection (the cluster client routes it by its first key, and sends it
//! again whole after `MOVED`), so the `WAIT` always counts the replicas of the node that
//! took the writes, and one shard's missing replicas hold up only its own slots. A write
//! whose caller gave up before its group left is not sent.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::cluster_routing::Slot;
use redis::{Cmd, Value};
use tokio::sync::oneshot;

use super::link::Connection;
use super::{answer, describe};
use crate::config::Durability;
use crate::lanes::Lanes;

/// Most writes in one group.
const MAX_GROUP: usize = 128;

type Reply = Result<Value, String>;

struct Pending {
    cmd: Cmd,
    reply: oneshot::Sender<Reply>,
}

/// Writes that wait for replicas, on a connection of their own.
pub(super) struct Writer {
    conn: Connection,
    replicas: u32,
    wait: Duration,
    /// Writes not yet sent, per hash slot (one lane when not a cluster).
    lanes: Lanes<Option<Slot>, Pending>,
}

impl Writer {
    pub(super) fn new(conn: Connection, durability: Durability) -> Writer {
        Writer {
            conn,
            replicas: durability.replicas,
            wait: durability.timeout.0,
            lanes: Lanes::default(),
        }
    }

    /// Send `cmd`, which writes keys in `key`'s slot, with the next group of its lane.
    pub(super) async fn write(self: &Arc<Self>, key: &str, cmd: Cmd) -> Reply {
        let lane = self.conn.slot(key);
        let (tx, rx) = oneshot::channel();
        if self.lanes.push(&lane, Pending { cmd, reply: tx }) {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let size = |waiting: &[Pending]| waiting.len().min(MAX_GROUP);
                this.lanes
                    .drain(lane, size, |group| this.send_group(group))
                    .await;
            });
        }
        // Every group's pipeline has its connection's deadline (one round trip plus the
        // `WAIT`), so an answer comes; a sender dropped unanswered means the task sending
        // it is gone.
        rx.await
            .unwrap_or_else(|_| Err("the redis write was dropped".into()))
    }

    /// One pipeline: the writes, then `WAIT`; each caller gets its write's reply, or an
    /// error when the write or the `WAIT` fell short.
    async fn send_group(&self, group: Vec<Pending>) {
        // A write whose caller gave up is not sent.
        let group: Vec<Pending> = group.into_iter().filter(|p| !p.reply.is_closed()).collect();
        if group.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        let mut waiting = Vec::with_capacity(group.len());
        for p in group {
            pipe.add_command(p.cmd);
            waiting.push(p.reply);
        }
        let wait_ms = u64::try_from(self.wait.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        pipe.cmd("WAIT").arg(self.replicas).arg(wait_ms);
        let mut conn = self.conn.clone();
        let count = waiting.len() + 1;
        let replies = answer(conn.req_packed_commands(&pipe, 0, count)).await;
        let mut replies = match replies {
            Ok(replies) if replies.len() == count => Ok(replies),
            Ok(_) => Err("redis gave an unexpected reply to a pipeline".to_owned()),
            Err(e) => Err(e),
        }
        .map(Vec::into_iter);
        let confirmed = match &mut replies {
            Ok(values) => match values.next_back().map(Value::extract_error) {
                Some(Ok(Value::Int(n))) if n >= i64::from(self.replicas) => Ok(()),
                Some(Ok(Value::Int(n))) => Err(format!(
                    "only {n} of {} replicas confirmed the write within {:?}",
                    self.replicas, self.wait
                )),
                Some(Err(e)) => Err(format!("WAIT failed: {}", describe(&e))),
                _ => Err("redis gave an unexpected reply to WAIT".to_owned()),
            },
            Err(e) => Err(e.clone()),
        };
        for reply_to in waiting {
            let reply = match (&mut replies, &confirmed) {
                (Ok(values), Ok(())) => values
                    .next()
                    .ok_or_else(|| "a reply is missing".to_owned())
                    .and_then(|v| v.extract_error().map_err(|e| describe(&e))),
                (_, Err(e)) => Err(e.clone()),
                (Err(e), _) => Err(e.clone()),
            };
            let _ = reply_to.send(reply);
        }
    }
}
