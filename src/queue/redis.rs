//! The Redis Streams queue: one stream per (room, queue), shared by every instance.
//!
//! Owns the enqueue script (dedup and XADD in one atomic step) and the deadlines around
//! every round trip. It must report success only after Redis answered the script, and
//! answer `Unavailable` promptly when Redis is down or slow; it never logs or returns the
//! Redis URL (it may hold a password).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{
    Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Script, Value,
};
use tokio::time::Instant;

use super::pipe::{bulk, command_head, keepalive, Pipe, PipeError, Reply};
use super::{dedup_key, stream_key, Enqueued, QueueError, QueueMessage, QueueStats};
use crate::sensitive::Secret;

/// Dedup and append in one step. KEYS: stream, dedup key. ARGV: dedup TTL in ms, then the
/// entry's field/value pairs. Returns `{stream id, 1 if duplicate else 0}`.
const ENQUEUE_SCRIPT: &str = r#"
local seen = redis.call('GET', KEYS[2])
if seen then
  return {seen, 1}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {id, 0}
"#;

/// The constant parts of every enqueue command, encoded once.
struct Template {
    /// The argument count, `EVALSHA`, the script's hash, the key count.
    head: Box<[u8]>,
    /// The dedup TTL in milliseconds, as an argument.
    ttl: Box<[u8]>,
    /// The entry's field names, each as an argument.
    field_names: [Box<[u8]>; QueueMessage::FIELDS],
}

impl Template {
    fn new(script: &Script, dedup_ttl: Duration) -> Template {
        let arg = |bytes: &[u8]| {
            let mut arg = Vec::new();
            bulk(&mut arg, bytes);
            arg.into_boxed_slice()
        };
        let mut head = Vec::new();
        command_head(&mut head, 6 + 2 * QueueMessage::FIELDS);
        for part in [&b"EVALSHA"[..], script.get_hash().as_bytes(), b"2"] {
            bulk(&mut head, part);
        }
        let ttl = u64::try_from(dedup_ttl.as_millis()).unwrap_or(u64::MAX);
        Template {
            head: head.into_boxed_slice(),
            ttl: arg(itoa::Buffer::new().format(ttl).as_bytes()),
            field_names: QueueMessage::FIELD_NAMES.map(|name| arg(name.as_bytes())),
        }
    }
}

/// A queue in Redis Streams. Clones share one pipelined connection for enqueues and one
/// multiplexed connection for everything else.
#[derive(Clone)]
pub struct RedisQueue {
    pipe: Arc<Pipe>,
    conn: ManagedConnection,
    script: Script,
    template: Arc<Template>,
    dedup_ttl: Duration,
    timeout: Duration,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("dedup_ttl", &self.dedup_ttl)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The redis crate's multiplexed connection for everything but enqueues (script loading,
/// stats, readiness, secrets, sessions): a `ConnectionManager`, replaced by a fresh one
/// when a reply misses its response timeout.
///
/// The manager reconnects by itself after an I/O error or the end of the stream, but a
/// response timeout is not one of those to it (redis 1.8 retries such errors on the same
/// connection). A connection that goes quiet without being closed (a failover, a NAT
/// timeout, a partition) would then stay in use, and every command would wait out its
/// deadline on it. Clones share the connection.
#[derive(Clone)]
pub(crate) struct ManagedConnection {
    shared: Arc<Managed>,
}

struct Managed {
    client: redis::Client,
    timeout: Duration,
    current: ArcSwap<ConnectionManager>,
}

impl fmt::Debug for ManagedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the client: its connection info holds the password.
        f.debug_struct("ManagedConnection")
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

/// A connection to the Redis at `url` for callers that run each operation under
/// [`bounded`] with `timeout`. Connects lazily. Its TCP sockets keep alive, so an idle
/// connection to a vanished peer is found dead; connects and replies each get half of
/// `timeout`, so that a silent reply fails by its response timeout (and the connection is
/// replaced) before the caller's deadline drops the command unseen.
pub(crate) fn connection(url: &Secret, timeout: Duration) -> Result<ManagedConnection, RedisError> {
    let url = url.expose_str().ok_or_else(|| {
        RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "the Redis URL is not UTF-8",
        ))
    })?;
    let info = url.trim().into_connection_info()?;
    let tcp = info.tcp_settings().clone().set_keepalive(keepalive());
    let client = redis::Client::open(info.set_tcp_settings(tcp))?;
    let current = manager(&client, timeout)?;
    Ok(ManagedConnection {
        shared: Arc::new(Managed {
            client,
            timeout,
            current: ArcSwap::from_pointee(current),
        }),
    })
}

/// A lazy `ConnectionManager` with few, short reconnect retries, so that an outage is
/// reported instead of waited out.
fn manager(client: &redis::Client, timeout: Duration) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout / 2))
        .set_response_timeout(Some(timeout / 2))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(250));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

impl Managed {
    /// After a reply through `used`: when it timed out, swap in a fresh manager, which
    /// connects on the next command (unless another caller swapped already). The old
    /// one's connection closes once the commands still holding it are done.
    fn replace_if_silent<T>(&self, used: &Arc<ConnectionManager>, reply: &RedisResult<T>) {
        if !reply.as_ref().is_err_and(RedisError::is_timeout) {
            return;
        }
        match manager(&self.client, self.timeout) {
            Ok(fresh) => {
                let was = self.current.compare_and_swap(used, Arc::new(fresh));
                if Arc::ptr_eq(&*was, used) {
                    tracing::warn!(
                        "a redis connection did not answer in time; the next command reconnects"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %describe(&e), "a silent redis connection could not be replaced");
            }
        }
    }
}

impl ConnectionLike for ManagedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let used = self.shared.current.load_full();
            let reply = (*used).clone().send_packed_command(cmd).await;
            self.shared.replace_if_silent(&used, &reply);
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let used = self.shared.current.load_full();
            let replies = (*used)
                .clone()
                .send_packed_commands(pipeline, offset, count)
                .await;
            self.shared.replace_if_silent(&used, &replies);
            replies
        })
    }

    fn get_db(&self) -> i64 {
        self.shared
            .client
            .get_connection_info()
            .redis_settings()
            .db()
    }
}

/// Describe a Redis error without echoing anything it might carry from the URL.
pub(crate) fn describe(e: &RedisError) -> String {
    if e.is_timeout() {
        "redis timed out".into()
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        format!("redis connection failed ({:?})", e.kind())
    } else {
        format!("redis error ({:?}): {}", e.kind(), e.detail().unwrap_or(""))
    }
}

/// Run one Redis operation under a hard deadline.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    op: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, op).await {
        Ok(done) => done.map_err(|e| describe(&e)),
        Err(_) => Err(format!("redis did not answer within {timeout:?}")),
    }
}

impl RedisQueue {
    /// A queue at `url`. Connects lazily: the first operation opens the connection.
    pub fn connect(
        url: &Secret,
        dedup_ttl: Duration,
        timeout: Duration,
    ) -> Result<RedisQueue, QueueError> {
        let invalid = || QueueError::Unavailable("the Redis URL is not valid".into());
        let conn = connection(url, timeout).map_err(|_| invalid())?;
        let text = url.expose_str().ok_or_else(invalid)?;
        let pipe = Pipe::new(text.trim(), timeout / 2)
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        let script = Script::new(ENQUEUE_SCRIPT);
        let template = Template::new(&script, dedup_ttl);
        Ok(RedisQueue {
            pipe: Arc::new(pipe),
            conn,
            script,
            template: Arc::new(template),
            dedup_ttl,
            timeout,
        })
    }

    /// Dedup and XADD in one script; `Ok` only once Redis has answered it.
    pub async fn enqueue(&self, msg: &QueueMessage) -> Result<Enqueued, QueueError> {
        // One deadline for the whole enqueue, kept by the pipe's call: a reply that misses
        // it also tells the pipe that its connection stopped answering.
        let deadline = Instant::now() + self.timeout;
        let reply = match self.evalsha(msg, deadline).await {
            // A Redis that restarted or flushed its scripts: load it, then run it again
            // (boxed: rare, and it would otherwise size every enqueue's future).
            Ok(Reply::Error(e)) if e.starts_with("NOSCRIPT") => {
                Box::pin(self.load_and_evalsha(msg, deadline)).await
            }
            reply => reply,
        };
        let (id, duplicate) = reply.and_then(enqueued).map_err(QueueError::Unavailable)?;
        Ok(Enqueued {
            id,
            delivery_id: msg.delivery_id().to_owned(),
            duplicate,
        })
    }

    /// Run the enqueue script for `msg` through the pipe.
    async fn evalsha(&self, msg: &QueueMessage, deadline: Instant) -> Result<Reply, String> {
        self.pipe
            .call(deadline, |out| self.enqueue_command(out, msg))
            .await
            .map_err(|e| match e {
                PipeError::TimedOut => self.late(),
                e => e.to_string(),
            })
    }

    /// Load the enqueue script, then run it for `msg`, both by `deadline`.
    async fn load_and_evalsha(
        &self,
        msg: &QueueMessage,
        deadline: Instant,
    ) -> Result<Reply, String> {
        let mut conn = self.conn.clone();
        let load = tokio::time::timeout_at(deadline, self.script.load_async(&mut conn)).await;
        match load {
            Ok(Ok(_)) => self.evalsha(msg, deadline).await,
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(self.late()),
        }
    }

    /// Why an enqueue that ran out of time failed.
    fn late(&self) -> String {
        format!("redis did not answer within {:?}", self.timeout)
    }

    /// `EVALSHA` of the enqueue script, written straight into the connection's buffer
    /// (the body is copied once).
    fn enqueue_command(&self, out: &mut Vec<u8>, msg: &QueueMessage) {
        let stream = stream_key(msg.room(), msg.queue());
        let dedup = dedup_key(
            msg.room(),
            msg.queue(),
            msg.provider(),
            msg.path(),
            msg.delivery_id(),
        );
        let values = msg.values();
        let template = &*self.template;
        let data: usize = values.iter().map(|v| v.len() + 40).sum::<usize>()
            + stream.len()
            + dedup.len()
            + template.head.len()
            + 64;
        out.reserve(data);
        out.extend_from_slice(&template.head);
        bulk(out, stream.as_bytes());
        bulk(out, dedup.as_bytes());
        out.extend_from_slice(&template.ttl);
        for (name, value) in template.field_names.iter().zip(values) {
            out.extend_from_slice(name);
            bulk(out, value);
        }
    }

    /// XLEN, the oldest entry, and pending entries summed over consumer groups.
    pub async fn stats(&self, room: &str, queue: &str) -> Result<QueueStats, QueueError> {
        let key = stream_key(room, queue);
        let mut conn = self.conn.clone();
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
        let (length, oldest, exists): (u64, Oldest, bool) =
            bounded(self.timeout, pipe.query_async(&mut conn))
                .await
                .map_err(QueueError::Unavailable)?;
        let mut pending = 0;
        if exists {
            let groups: redis::streams::StreamInfoGroupsReply = bounded(
                self.timeout,
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

    /// PING under the deadline.
    /// Whether the server is a Redis Cluster node (`INFO cluster`); `None` when it cannot
    /// be asked now (a Redis that is down at start-up is reported per request instead).
    pub async fn cluster_enabled(&self) -> Option<bool> {
        let mut conn = self.conn.clone();
        let info: String = bounded(
            CLUSTER_CHECK_TIMEOUT,
            redis::cmd("INFO").arg("cluster").query_async(&mut conn),
        )
        .await
        .ok()?;
        Some(info.lines().any(|l| l.trim() == "cluster_enabled:1"))
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: String = bounded(self.timeout, redis::cmd("PING").query_async(&mut conn))
            .await
            .map_err(QueueError::Unavailable)?;
        Ok(())
    }
}

/// How long the start-up check for a Redis Cluster waits for an answer.
const CLUSTER_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// An error only a Redis Cluster gives: a key that lives on another node, or a cluster
/// that cannot serve.
fn is_cluster_reply(error: &str) -> bool {
    ["MOVED ", "ASK ", "CLUSTERDOWN", "CROSSSLOT"]
        .iter()
        .any(|p| error.starts_with(p))
}

/// The script's answer, `[entry id, 1 if a duplicate else 0]`, or what went wrong.
fn enqueued(reply: Reply) -> Result<(String, bool), String> {
    let Reply::Array(mut parts) = reply else {
        return Err(match reply {
            Reply::Error(e) if is_cluster_reply(&e) => format!(
                "redis error: {e} (redis.url is a Redis Cluster node; roomgate needs a single \
                 primary)"
            ),
            Reply::Error(e) => format!("redis error: {e}"),
            _ => "redis gave an unexpected reply to the enqueue script".into(),
        });
    };
    match (parts.pop(), parts.pop(), parts.is_empty()) {
        (Some(Reply::Integer(duplicate)), Some(Reply::BulkString(id)), true) => {
            let id = String::from_utf8(id).map_err(|_| "a stream id that is not UTF-8")?;
            Ok((id, duplicate == 1))
        }
        _ => Err("redis gave an unexpected reply to the enqueue script".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key on another node, or a cluster that cannot serve: the 503's log line says
    /// the URL is a cluster node, not just what Redis answered.
    #[test]
    fn a_cluster_redirect_is_reported_as_such() {
        for e in [
            "MOVED 12416 127.0.0.1:7002",
            "ASK 12416 127.0.0.1:7002",
            "CLUSTERDOWN Hash slot not served",
            "CROSSSLOT Keys in request don't hash to the same slot",
        ] {
            let err = enqueued(Reply::Error(e.into())).expect_err("an error");
            assert!(err.contains("Redis Cluster"), "{err}");
        }
        let err = enqueued(Reply::Error("ERR something else".into())).expect_err("an error");
        assert!(!err.contains("Cluster"), "{err}");
    }
}
