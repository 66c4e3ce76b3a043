//! Making a connection to each topology, and telling when one must be made again.
//!
//! A single primary and a Sentinel-found primary get one of the redis crate's
//! `MultiplexedConnection`s (commands from every task pipelined on one socket), which
//! never reconnects by itself: [`super::link`] drops one that [`Connector::is_stale`]
//! condemns, and the next command gets a new one from here. A cluster gets its
//! `ClusterConnection` (a connection per node, `MOVED`/`ASK`, slot refresh). Sentinel
//! lookups start from a different sentinel after each failed one, so a sentinel that
//! hangs cannot hold every lookup up. Nothing here logs or returns a URL or a password.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisError, RedisResult, ServerErrorKind, Value,
};

use super::KvError;
use crate::config::Topology;
use crate::sensitive::Secret;

/// TCP keepalive for roomgate's Redis sockets: an idle connection whose peer is gone (a
/// NAT that forgot it, a host that vanished) is found dead by the kernel within minutes,
/// before a command waits on it. Probes start after this much silence...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// ...and repeat this often until the system's probe count gives up.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// How often the cluster client tries a command again (after `MOVED`, `ASK`, a dropped
/// connection or `CLUSTERDOWN`) before reporting it failed, and its pauses between tries.
const CLUSTER_RETRIES: u32 = 3;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 50;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 500;

fn tcp_settings() -> redis::io::tcp::TcpSettings {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    redis::io::tcp::TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive)
}

/// What a connection is made from.
pub(super) enum Connector {
    Url {
        client: redis::Client,
        config: AsyncConnectionConfig,
        connect_timeout: Duration,
    },
    Cluster {
        client: redis::cluster::ClusterClient,
        connect_timeout: Duration,
    },
    Sentinel {
        master: String,
        sentinels: Vec<ConnectionAddr>,
        password: Option<Secret>,
        config: AsyncConnectionConfig,
        connect_timeout: Duration,
        /// Which sentinel the next lookup asks first.
        first: AtomicUsize,
    },
}

/// An open connection.
#[derive(Clone)]
pub(super) enum Live {
    /// To one node: `redis.url`, or the primary Sentinel named.
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

fn unusable(what: &str) -> KvError {
    KvError(format!("{what} is not a usable redis URL"))
}

fn node_config(connect_timeout: Duration) -> AsyncConnectionConfig {
    // No response timeout: the connection's deadline ([`super::link`]) bounds every command.
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(None)
}

impl Connector {
    /// Connects to `topology` get `connect_timeout`; each try of a cluster command gets
    /// `try_timeout`, so the cluster client can try again within the command's deadline.
    pub(super) fn new(
        topology: &Topology,
        connect_timeout: Duration,
        try_timeout: Duration,
    ) -> Result<Connector, KvError> {
        let password = |p: &Option<Secret>| match p {
            None => Ok(None),
            Some(p) => p
                .expose_str()
                .map(|p| Some(p.to_owned()))
                .ok_or_else(|| KvError("the redis password is not UTF-8".into())),
        };
        match topology {
            Topology::Url(url) => {
                let info = url
                    .expose_str()
                    .and_then(|u| u.trim().into_connection_info().ok())
                    .ok_or_else(|| unusable("redis.url"))?;
                let info = info.set_tcp_settings(tcp_settings());
                let client = redis::Client::open(info).map_err(|_| unusable("redis.url"))?;
                Ok(Connector::Url {
                    client,
                    config: node_config(connect_timeout),
                    connect_timeout,
                })
            }
            Topology::Cluster { nodes, password: p } => {
                let mut builder = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    .tcp_settings(tcp_settings())
                    .connection_timeout(connect_timeout)
                    .response_timeout(try_timeout)
                    // The command's deadline bounds all the tries.
                    .overall_response_timeout(None)
                    .retries(CLUSTER_RETRIES)
                    .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
                    .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS);
                if let Some(p) = password(p)? {
                    builder = builder.password(p);
                }
                let client = builder
                    .build()
                    .map_err(|_| unusable("a redis.cluster node"))?;
                Ok(Connector::Cluster {
                    client,
                    connect_timeout,
                })
            }
            Topology::Sentinel {
                master,
                nodes,
                password: p,
            } => {
                let sentinels = nodes
                    .iter()
                    .map(|n| n.as_str().into_connection_info().map(|i| i.addr().clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| unusable("a redis.sentinel node"))?;
                Ok(Connector::Sentinel {
                    master: master.clone(),
                    sentinels,
                    password: p.clone(),
                    config: node_config(connect_timeout),
                    connect_timeout,
                    first: AtomicUsize::new(0),
                })
            }
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Connector::Url { .. } => "url",
            Connector::Cluster { .. } => "cluster",
            Connector::Sentinel { .. } => "sentinel",
        }
    }

    pub(super) fn db(&self) -> i64 {
        match self {
            Connector::Url { client, .. } => client.get_connection_info().redis_settings().db(),
            Connector::Cluster { .. } | Connector::Sentinel { .. } => 0,
        }
    }

    /// Connect (for Sentinel: look the primary up first), within twice the connect
    /// timeout.
    pub(super) async fn connect(&self) -> RedisResult<Live> {
        let budget = 2 * self.connect_timeout();
        match tokio::time::timeout(budget, self.open()).await {
            Ok(live) => live,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting to redis timed out",
            ))),
        }
    }

    fn connect_timeout(&self) -> Duration {
        match self {
            Connector::Url {
                connect_timeout, ..
            }
            | Connector::Cluster {
                connect_timeout, ..
            }
            | Connector::Sentinel {
                connect_timeout, ..
            } => *connect_timeout,
        }
    }

    async fn open(&self) -> RedisResult<Live> {
        match self {
            Connector::Url { client, config, .. } => client
                .get_multiplexed_async_connection_with_config(config)
                .await
                .map(Live::Node),
            Connector::Cluster { client, .. } => {
                client.get_async_connection().await.map(Live::Cluster)
            }
            Connector::Sentinel {
                master,
                sentinels,
                password,
                config,
                first,
                ..
            } => {
                let start = first.load(Ordering::Relaxed) % sentinels.len().max(1);
                let order = sentinels[start..]
                    .iter()
                    .chain(&sentinels[..start])
                    .cloned();
                let mut builder =
                    SentinelClientBuilder::new(order, master, SentinelServerType::Master)?
                        .set_client_to_redis_tcp_settings(tcp_settings())
                        .set_client_to_sentinel_tcp_settings(tcp_settings());
                if let Some(p) = password.as_ref().and_then(Secret::expose_str) {
                    builder = builder.set_client_to_redis_password(p);
                }
                let found = async {
                    let client = builder.build()?.async_get_client().await?;
                    client
                        .get_multiplexed_async_connection_with_config(config)
                        .await
                }
                .await;
                if found.is_err() {
                    first.fetch_add(1, Ordering::Relaxed);
                }
                found.map(Live::Node)
            }
        }
    }

    /// Whether `error`, from a connection this connector made, means the connection must
    /// be made again: it went silent (any topology); a connection to one node failed or
    /// was closed; behind Sentinel, the primary it reached was demoted. The cluster client
    /// replaces its nodes' connections by itself.
    pub(super) fn is_stale(&self, error: &RedisError) -> bool {
        if error.is_timeout() {
            return true;
        }
        let failed = || {
            error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped()
        };
        match self {
            Connector::Cluster { .. } => false,
            Connector::Url { .. } => failed(),
            Connector::Sentinel { .. } => {
                failed()
                    || matches!(
                        error.kind(),
                        ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
                    )
            }
        }
    }
}

impl Live {
    /// Send one command and read its reply.
    pub(super) async fn send(&self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Live::Node(n) => n.clone().send_packed_command(cmd).await,
            Live::Cluster(c) => c.clone().req_packed_command(cmd).await,
        }
    }

    /// Send `count` of `pipeline`'s commands and read their replies, skipping `offset`.
    pub(super) async fn send_all(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Live::Node(n) => {
                n.clone()
                    .send_packed_commands(pipeline, offset, count)
                    .await
            }
            Live::Cluster(c) => c.clone().req_packed_commands(pipeline, offset, count).await,
        }
    }

    /// PING; on a cluster, routed to every primary and answered by the first that can.
    pub(super) async fn ping(&self) -> RedisResult<()> {
        let reply = match self.clone() {
            Live::Node(mut n) => n.send_packed_command(&redis::cmd("PING")).await?,
            Live::Cluster(mut c) => {
                let any_primary = RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllMasters,
                    Some(ResponsePolicy::OneSucceeded),
                ));
                c.route_command(redis::cmd("PING"), any_primary).await?
            }
        };
        reply.extract_error().map(|_| ())
    }
}
