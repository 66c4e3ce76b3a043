//! One connection to the shared Redis that follows it: made on first use, and dropped for
//! a fresh one when it stops being the way to the data.
//!
//! The cluster client follows `MOVED`/`ASK`, refreshes its slot map and replaces its
//! nodes' connections by itself. Everything else is ours. A connection to one node
//! (`redis.url`, or the primary Sentinel found) is made again here when it fails or is
//! closed. A connection that goes quiet without being closed (a failover, a NAT timeout,
//! a partition) answers nothing until the kernel gives up on it, and every command would
//! wait out its deadline on it. And a Sentinel-found primary's address is looked up once.
//! So every command runs under one deadline, connect included, and a command that misses
//! it drops the connection it went out on (any topology); so does a failed or closed
//! connection to one node, and, behind Sentinel, `READONLY` from a demoted primary: the
//! next command connects again (behind Sentinel, through a new lookup). Connecting after a
//! failure waits [`RETRY_AFTER`], so an outage costs one attempt per interval, not one per
//! request. Clones share the connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionLike;
use redis::cluster_routing::Slot;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::time::Instant;

use super::connect::{Connector, Live};
use super::{describe, KvError};
use crate::config::Topology;

/// After a failed connect, commands fail at once for this long.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// A handle on one shared connection to the configured Redis; implements the redis
/// crate's `ConnectionLike`, so `query_async` works on it. Each command gets an answer
/// within the connection's deadline or fails with a timeout ([`RedisError::is_timeout`]).
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Connector,
    /// The longest a command may take, connect included.
    deadline: Duration,
    current: ArcSwapOption<Live>,
    /// Held while connecting; holds the last failure.
    connecting: tokio::sync::Mutex<Option<(Instant, String)>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("topology", &self.kind())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection to `topology`, not yet made. A command may take `timeout` plus `wait`
    /// (the longest `WAIT` this connection will carry), connecting included; connects get
    /// half of `timeout`, and so does each try of a cluster command, so the cluster client
    /// can try again within the deadline.
    pub(super) fn new(
        topology: &Topology,
        timeout: Duration,
        wait: Duration,
    ) -> Result<Connection, KvError> {
        Ok(Connection {
            shared: Arc::new(Shared {
                connector: Connector::new(topology, timeout / 2, timeout / 2 + wait)?,
                deadline: timeout + wait,
                current: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// `url`, `cluster` or `sentinel`.
    pub fn kind(&self) -> &'static str {
        self.shared.connector.kind()
    }

    /// The longest a command on this connection may take, connecting included.
    pub(super) fn deadline(&self) -> Duration {
        self.shared.deadline
    }

    /// PING; on a cluster, any primary's answer will do.
    pub(super) async fn ping(&self) -> RedisResult<()> {
        self.shared
            .command(|live| async move { live.ping().await }, |_| None)
            .await
    }

    /// The cluster hash slot `key` lives in; `None` when this is not a Redis Cluster (one
    /// node holds every key).
    pub(super) fn slot(&self, key: &str) -> Option<Slot> {
        matches!(self.shared.connector, Connector::Cluster { .. }).then(|| Slot::for_key(key))
    }
}

impl Shared {
    /// Run `command` on the open connection (made first when there is none) within the
    /// deadline, then judge the connection by the outcome: a failure, a reply in which
    /// `demoted` finds `READONLY`, or a missed deadline may drop it ([`Shared::after`]).
    async fn command<T, F>(
        &self,
        command: impl FnOnce(Arc<Live>) -> F,
        demoted: impl FnOnce(&T) -> Option<RedisError>,
    ) -> RedisResult<T>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let timer = tokio::time::sleep(self.deadline);
        tokio::pin!(timer);
        let live = tokio::select! {
            biased;
            live = self.live() => live?,
            () = &mut timer => return Err(missed_deadline()),
        };
        let reply = tokio::select! {
            biased;
            reply = command(Arc::clone(&live)) => reply,
            () = &mut timer => Err(missed_deadline()),
        };
        match &reply {
            Ok(value) => self.after(&live, demoted(value).as_ref()),
            Err(e) => self.after(&live, Some(e)),
        }
        reply
    }

    /// The open connection, connecting first when there is none.
    async fn live(&self) -> RedisResult<Arc<Live>> {
        if let Some(live) = self.current.load_full() {
            return Ok(live);
        }
        // Boxed: connecting is rare, and its state would size every command's future.
        Box::pin(self.connect()).await
    }

    async fn connect(&self) -> RedisResult<Arc<Live>> {
        let mut failed = self.connecting.lock().await;
        if let Some(live) = self.current.load_full() {
            return Ok(live);
        }
        if let Some((at, why)) = failed.as_ref() {
            if at.elapsed() < RETRY_AFTER {
                return Err(RedisError::from((
                    ErrorKind::Io,
                    "connecting to redis failed moments ago",
                    why.clone(),
                )));
            }
        }
        match self.connector.connect().await {
            Ok(live) => {
                *failed = None;
                let live = Arc::new(live);
                self.current.store(Some(Arc::clone(&live)));
                Ok(live)
            }
            Err(e) => {
                *failed = Some((Instant::now(), describe(&e)));
                Err(e)
            }
        }
    }

    /// After a reply through `used`: drop it when `error` says it is no longer the way
    /// to the data (unless another caller replaced it already).
    fn after(&self, used: &Arc<Live>, error: Option<&RedisError>) {
        let Some(error) = error else { return };
        if !self.connector.is_stale(error) {
            return;
        }
        let was = self.current.compare_and_swap(used, None);
        if was.as_ref().is_some_and(|was| Arc::ptr_eq(was, used)) {
            tracing::warn!(
                redis.topology = self.connector.kind(),
                error = %describe(error),
                "a redis connection stopped answering; the next command connects again"
            );
        }
    }
}

/// The error of a command that missed its deadline: a timeout, so the connection it went
/// out on is dropped ([`Connector::is_stale`]).
fn missed_deadline() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "redis did not answer in time",
    ))
}

/// The first reply in `values` that shows the node is no longer a primary.
fn readonly_reply(values: &[Value]) -> Option<RedisError> {
    values.iter().find_map(|v| match v {
        Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::ReadOnly) => {
            Some(RedisError::from(e.clone()))
        }
        _ => None,
    })
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.shared.command(
            move |live| async move { live.send(cmd).await },
            |value| readonly_reply(std::slice::from_ref(value)),
        ))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.shared.command(
            move |live| async move { live.send_all(pipeline, offset, count).await },
            |values| readonly_reply(values),
        ))
    }

    fn get_db(&self) -> i64 {
        self.shared.connector.db()
    }
}
