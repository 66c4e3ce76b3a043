//! The Redis every instance shares: one primary, a Redis Cluster, or a Sentinel-managed
//! primary, as the config's `redis` block says.
//!
//! Owns the connections (made on first use, replaced when they go silent, following a
//! failover: the cluster client's `MOVED`/`ASK` and slot refresh, or a new lookup through
//! the sentinels), the deadline of every command ([`Connection`]), readiness
//! ([`Kv::ping`]), and durable writes ([`Kv::write`]: `WAIT` for the configured replicas
//! on the connection that carried the write). Queues, sessions, secrets and the CLI use
//! it; what their keys mean is theirs. It never logs or returns a URL or a password.

mod connect;
mod durable;
mod link;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike as _;
use redis::cluster_routing::Slot;
use redis::{Cmd, RedisError, Value};

use crate::config::{Durability, RedisSettings};

pub use link::Connection;

/// Longest wait for any one Redis round trip (connect included) before an operation is
/// reported unavailable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The shared Redis. Clones share its connections.
#[derive(Clone)]
pub struct Kv {
    /// For everything but durable writes.
    conn: Connection,
    /// For writes that `WAIT` for replicas: a `WAIT` holds up the commands behind it on
    /// its connection, so it has one of its own.
    durable: Option<Arc<durable::Writer>>,
    durability: Durability,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("topology", &self.conn.kind())
            .field("deadline", &self.conn.deadline())
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

/// Why a [`Kv`] could not be made from its settings (nothing is connected yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redis settings unusable: {0}")]
pub struct KvError(pub String);

impl Kv {
    /// The Redis `settings` describe, each round trip bounded by `timeout`. Connects on
    /// first use, so a Redis that is down now is reported per operation (and by
    /// [`Kv::ping`]), not here.
    pub fn connect(settings: &RedisSettings, timeout: Duration) -> Result<Kv, KvError> {
        let durability = settings.durability;
        let conn = Connection::new(&settings.topology, timeout, Duration::ZERO)?;
        let durable = if durability.replicas > 0 {
            let wait = durability.timeout.0;
            let conn = Connection::new(&settings.topology, timeout, wait)?;
            Some(Arc::new(durable::Writer::new(conn, durability)))
        } else {
            None
        };
        Ok(Kv {
            conn,
            durable,
            durability,
        })
    }

    /// A handle on the shared connection, for `query_async` (through [`answer`]).
    pub fn connection(&self) -> Connection {
        self.conn.clone()
    }

    /// `url`, `cluster` or `sentinel`.
    pub fn kind(&self) -> &'static str {
        self.conn.kind()
    }

    /// Whether Redis answers now (a cluster: any of its primaries), within the deadline.
    pub async fn ping(&self) -> Result<(), String> {
        answer(self.conn.ping()).await
    }

    /// The cluster hash slot `key` lives in; `None` when Redis is not a cluster (one node
    /// holds every key). Keys of one slot can go in one command.
    pub fn slot(&self, key: &str) -> Option<Slot> {
        self.conn.slot(key)
    }

    /// Run `cmd`, a write to the keys of one hash slot, and answer once it is as durable
    /// as `redis.durability` asks: with `replicas: 0` when the primary has it; otherwise
    /// once `WAIT` on the same connection has seen that many replicas hold it. Fewer
    /// replicas within the durability timeout, like any other failure, is an `Err` (for
    /// the log). A server error reply is an `Err` too. Each call pays for its own `WAIT`:
    /// a caller with many writes groups them first.
    pub async fn write(&self, cmd: Cmd) -> Result<Value, String> {
        match &self.durable {
            Some(writer) => writer.write(cmd).await,
            None => {
                let mut conn = self.conn.clone();
                let reply = answer(conn.req_packed_command(&cmd)).await?;
                reply.extract_error().map_err(|e| describe(&e))
            }
        }
    }
}

/// Describe a Redis error without echoing anything it might carry from the URL.
pub fn describe(e: &RedisError) -> String {
    if e.is_timeout() {
        "redis timed out".into()
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        format!("redis connection failed ({:?})", e.kind())
    } else {
        format!("redis error ({:?}): {}", e.kind(), e.detail().unwrap_or(""))
    }
}

/// The outcome of one Redis operation on a [`Connection`], its error described for the
/// log. The connection bounds every command it carries, so this never waits longer than
/// the operation's commands may.
pub async fn answer<T>(op: impl Future<Output = Result<T, RedisError>>) -> Result<T, String> {
    op.await.map_err(|e| describe(&e))
}

/// `EVAL` of `script` with `keys`, room made for `args` more arguments of `bytes` bytes in
/// all (added by the caller), so the command is built without growing. Scripts go in
/// full, never by hash: a new primary after a failover has no script cache, and `EVAL`
/// needs none.
pub fn eval(script: &str, keys: &[&str], (args, bytes): (usize, usize)) -> Cmd {
    let key_bytes: usize = keys.iter().map(|k| k.len()).sum();
    // "EVAL", the script, the key count (at most 20 digits), the keys, then the rest.
    let mut cmd = Cmd::with_capacity(
        3 + keys.len() + args,
        4 + script.len() + 20 + key_bytes + bytes,
    );
    cmd.arg("EVAL").arg(script).arg(keys.len());
    for key in keys {
        cmd.arg(*key);
    }
    cmd
}
