//! Durable writes: each write goes out in one pipeline with `WAIT replicas timeout` behind
//! it, on the connection that carried it, and is reported done only when enough replicas
//! confirmed it.
//!
//! `WAIT` covers every write its connection made before it, and blocks that connection
//! until it returns, so durable writes have a connection of their own. A pipeline goes to
//! one node (the cluster client routes it by its first key, and sends it again whole after
//! `MOVED`), so the `WAIT` counts the replicas of the node that took the write, and one
//! shard's missing replicas hold up only its own slots. Writes are not grouped here: the
//! one writer, the queue, already sends its enqueues in groups, one at a time per slot
//! ([`crate::queue`]), so each group pays for one `WAIT`.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, Value};

use super::link::Connection;
use super::{answer, describe};
use crate::config::Durability;

/// Writes that wait for replicas, on a connection of their own.
pub(super) struct Writer {
    conn: Connection,
    replicas: u32,
    wait: Duration,
}

impl Writer {
    pub(super) fn new(conn: Connection, durability: Durability) -> Writer {
        Writer {
            conn,
            replicas: durability.replicas,
            wait: durability.timeout.0,
        }
    }

    /// `cmd`, then `WAIT`: the write's reply once enough replicas hold it, else an error
    /// that says what fell short.
    pub(super) async fn write(&self, cmd: Cmd) -> Result<Value, String> {
        let wait_ms = u64::try_from(self.wait.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut pipe = redis::pipe();
        pipe.add_command(cmd)
            .cmd("WAIT")
            .arg(self.replicas)
            .arg(wait_ms);
        let mut conn = self.conn.clone();
        let replies = answer(conn.req_packed_commands(&pipe, 0, 2)).await?;
        let [reply, waited]: [Value; 2] = replies
            .try_into()
            .map_err(|_| "redis gave an unexpected reply to a pipeline".to_owned())?;
        match waited.extract_error() {
            Ok(Value::Int(n)) if n >= i64::from(self.replicas) => {}
            Ok(Value::Int(n)) => {
                return Err(format!(
                    "only {n} of {} replicas confirmed the write within {:?}",
                    self.replicas, self.wait
                ))
            }
            Err(e) => return Err(format!("WAIT failed: {}", describe(&e))),
            Ok(_) => return Err("redis gave an unexpected reply to WAIT".to_owned()),
        }
        reply.extract_error().map_err(|e| describe(&e))
    }
}
