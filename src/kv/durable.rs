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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::cluster_routing::Slot;
use redis::{Cmd, Value};
use tokio::sync::oneshot;

use super::link::Connection;
use super::{answer, describe};
use crate::config::Durability;

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
    /// Writes not yet sent, per lane. A lane present here has a task sending its groups.
    lanes: Mutex<HashMap<Option<Slot>, Vec<Pending>>>,
}

impl Writer {
    pub(super) fn new(conn: Connection, durability: Durability) -> Writer {
        Writer {
            conn,
            replicas: durability.replicas,
            wait: durability.timeout.0,
            lanes: Mutex::new(HashMap::new()),
        }
    }

    fn lanes(&self) -> MutexGuard<'_, HashMap<Option<Slot>, Vec<Pending>>> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Send `cmd`, which writes keys in `key`'s slot, with the next group of its lane.
    pub(super) async fn write(self: &Arc<Self>, key: &str, cmd: Cmd) -> Reply {
        let lane = self.conn.is_cluster().then(|| Slot::for_key(key));
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut lanes = self.lanes();
            let pending = Pending { cmd, reply: tx };
            match lanes.get_mut(&lane) {
                Some(waiting) => {
                    waiting.push(pending);
                    false
                }
                None => {
                    lanes.insert(lane, vec![pending]);
                    true
                }
            }
        };
        if lead {
            tokio::spawn(Arc::clone(self).send_groups(lane));
        }
        // The group's own deadline (its connection's: one round trip plus the `WAIT`)
        // ends it; this one only guards against the task vanishing (a runtime shutting
        // down).
        let deadline = self.conn.deadline();
        match tokio::time::timeout(deadline + Duration::from_millis(100), rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err("the redis write was dropped".into()),
            Err(_) => Err(format!("redis did not answer within {deadline:?}")),
        }
    }

    /// Send the lane's groups one after the other until it has no writes left.
    async fn send_groups(self: Arc<Self>, lane: Option<Slot>) {
        let _done = LaneEnd {
            writer: &self,
            lane,
        };
        loop {
            let group: Vec<Pending> = {
                let mut lanes = self.lanes();
                let Some(waiting) = lanes.get_mut(&lane) else {
                    return;
                };
                if waiting.is_empty() {
                    lanes.remove(&lane);
                    return;
                }
                let take = waiting.len().min(MAX_GROUP);
                waiting.drain(..take).collect()
            };
            let group: Vec<Pending> = group.into_iter().filter(|p| !p.reply.is_closed()).collect();
            if !group.is_empty() {
                self.send_group(group).await;
            }
        }
    }

    /// One pipeline: the writes, then `WAIT`; each caller gets its write's reply, or an
    /// error when the write or the `WAIT` fell short.
    async fn send_group(&self, group: Vec<Pending>) {
        let mut pipe = redis::pipe();
        for p in &group {
            pipe.add_command(p.cmd.clone());
        }
        let wait_ms = u64::try_from(self.wait.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        pipe.cmd("WAIT").arg(self.replicas).arg(wait_ms);
        let mut conn = self.conn.clone();
        let count = group.len() + 1;
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
        for p in group {
            let reply = match (&mut replies, &confirmed) {
                (Ok(values), Ok(())) => values
                    .next()
                    .ok_or_else(|| "a reply is missing".to_owned())
                    .and_then(|v| v.extract_error().map_err(|e| describe(&e))),
                (_, Err(e)) => Err(e.clone()),
                (Err(e), _) => Err(e.clone()),
            };
            let _ = p.reply.send(reply);
        }
    }
}

/// Removes its lane if the task sending the lane's groups panics, so a later write starts
/// a new task rather than waiting on a vanished one. The writes still waiting then fail at
/// once (their senders are dropped).
struct LaneEnd<'a> {
    writer: &'a Writer,
    lane: Option<Slot>,
}

impl Drop for LaneEnd<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.writer.lanes().remove(&self.lane);
        }
    }
}
