//! The `redis` block, validated: exactly one topology, node addresses that parse, secrets
//! resolved, durability within bounds.
//!
//! Owns the checks and the typed result ([`RedisSettings`]); connecting is the `kv`
//! module's. Errors name the YAML path and never echo a URL or a password.

use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo};

use super::model::{Durability, Redis};
use super::validate::Checker;
use crate::sensitive::Secret;

/// Most seed nodes or sentinels a topology may list.
const MAX_NODES: usize = 64;
/// Most replicas a `WAIT` may ask for.
const MAX_REPLICAS: u32 = 16;
/// Longest `WAIT`: the provider is waiting for its answer meanwhile.
const MAX_DURABILITY_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared Redis: where it is, and what an acknowledged entry promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisSettings {
    pub topology: Topology,
    pub durability: Durability,
}

/// Where the shared Redis is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One primary at this URL (it may hold a password).
    Url(Secret),
    /// A Redis Cluster, through these seed nodes (`redis://host:port`).
    Cluster {
        nodes: Vec<String>,
        password: Option<Secret>,
    },
    /// The primary the sentinels at `nodes` know as `master`.
    Sentinel {
        master: String,
        nodes: Vec<String>,
        password: Option<Secret>,
    },
}

impl Topology {
    /// `url`, `cluster` or `sentinel`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Topology::Url(_) => "url",
            Topology::Cluster { .. } => "cluster",
            Topology::Sentinel { .. } => "sentinel",
        }
    }
}

/// Check the `redis` block; `None` when something is wrong (the errors are in `c`).
pub(super) fn check(c: &mut Checker<'_>, redis: &Redis) -> Option<RedisSettings> {
    let durability = check_durability(c, &redis.durability);
    let given = [
        redis.url.is_some(),
        redis.cluster.is_some(),
        redis.sentinel.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        c.err("redis", "give exactly one of url, cluster or sentinel");
        return None;
    }
    let topology = if let Some(url) = &redis.url {
        let url = c.secret("redis.url", url)?;
        if !valid_url(&url) {
            c.err("redis.url", "not a redis:// URL");
            return None;
        }
        Topology::Url(url)
    } else if let Some(cluster) = &redis.cluster {
        let nodes = check_nodes(c, "redis.cluster.nodes", &cluster.nodes);
        let password = optional_secret(c, "redis.cluster.password", &cluster.password);
        Topology::Cluster {
            nodes: nodes?,
            password: password?,
        }
    } else {
        let sentinel = redis.sentinel.as_ref()?;
        let master = sentinel.master.trim();
        let master_ok = !master.is_empty() && !master.contains(char::is_whitespace);
        if !master_ok {
            c.err(
                "redis.sentinel.master",
                "give the name the sentinels monitor",
            );
        }
        let nodes = check_nodes(c, "redis.sentinel.nodes", &sentinel.nodes);
        let password = optional_secret(c, "redis.sentinel.password", &sentinel.password);
        if !master_ok {
            return None;
        }
        Topology::Sentinel {
            master: master.to_owned(),
            nodes: nodes?,
            password: password?,
        }
    };
    Some(RedisSettings {
        topology,
        durability: durability?,
    })
}

fn check_durability(c: &mut Checker<'_>, d: &Durability) -> Option<Durability> {
    let mut ok = true;
    if d.replicas > MAX_REPLICAS {
        c.err(
            "redis.durability.replicas",
            format!("at most {MAX_REPLICAS}"),
        );
        ok = false;
    }
    // WAIT counts whole milliseconds, and `WAIT n 0` would block for ever.
    if d.timeout.0 < Duration::from_millis(1) || d.timeout.0 > MAX_DURABILITY_TIMEOUT {
        c.err(
            "redis.durability.timeout",
            format!("must be between 1ms and {MAX_DURABILITY_TIMEOUT:?}"),
        );
        ok = false;
    }
    ok.then_some(*d)
}

/// `Some(None)` when absent, `Some(Some(secret))` when it resolves, `None` on error.
fn optional_secret(
    c: &mut Checker<'_>,
    path: &str,
    r: &Option<super::SecretRef>,
) -> Option<Option<Secret>> {
    match r {
        None => Some(None),
        Some(r) => c.secret(path, r).map(Some),
    }
}

/// Node addresses: `redis://host:port`, without a password (that has its own field, so
/// that it can come from a secret reference).
fn check_nodes(c: &mut Checker<'_>, path: &str, nodes: &[String]) -> Option<Vec<String>> {
    if nodes.is_empty() || nodes.len() > MAX_NODES {
        c.err(path, format!("list between 1 and {MAX_NODES} nodes"));
        return None;
    }
    let mut ok = true;
    for (i, node) in nodes.iter().enumerate() {
        let problem = match node.trim().into_connection_info() {
            Err(_) => Some("not a redis://host:port URL"),
            Ok(info) => match info.addr() {
                ConnectionAddr::Tcp(..) if info.redis_settings().password().is_some() => {
                    Some("a node URL carries no password: use the password field")
                }
                ConnectionAddr::Tcp(..) => None,
                _ => Some("not a redis://host:port URL"),
            },
        };
        if let Some(problem) = problem {
            c.err(format!("{path}[{i}]"), problem);
            ok = false;
        }
    }
    ok.then(|| nodes.iter().map(|n| n.trim().to_owned()).collect())
}

/// A URL the redis client accepts (`redis://`, `redis+unix://`).
fn valid_url(url: &Secret) -> bool {
    url.expose_str()
        .is_some_and(|u| u.trim().into_connection_info().is_ok())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, LoadContext};

    fn load(redis: &str) -> Result<Config, Vec<String>> {
        let src = format!("version: v1\nlisten: {{http: 127.0.0.1:0}}\nredis:\n{redis}\n");
        let ctx = LoadContext {
            vars: [("PW".to_owned(), "s3cret-pw".to_owned())].into(),
            base_dir: std::env::temp_dir(),
        };
        Config::from_yaml_str(&src, &ctx).map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn each_topology_loads_with_its_defaults() {
        let c = load("  url: {value: \"redis://127.0.0.1:6379/2\"}").unwrap();
        let r = c.redis.unwrap();
        assert_eq!(r.topology.kind(), "url");
        assert_eq!(r.durability.replicas, 0);
        assert_eq!(r.durability.timeout.0.as_millis(), 500);
        let c = load(
            "  cluster:\n    nodes: [\"redis://10.0.0.1:7000\", \" redis://10.0.0.2:7000 \"]\n    password: {env: PW}\n  durability: {replicas: 1, timeout: 250ms}",
        )
        .unwrap();
        let r = c.redis.unwrap();
        let super::Topology::Cluster { nodes, password } = &r.topology else {
            panic!("a cluster")
        };
        assert_eq!(nodes, &["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
        assert_eq!(password.as_ref().unwrap().expose(), b"s3cret-pw");
        assert_eq!(r.durability.replicas, 1);
        let c =
            load("  sentinel: {master: roomgate, nodes: [\"redis://10.0.0.5:26379\"]}").unwrap();
        let super::Topology::Sentinel { master, .. } = c.redis.unwrap().topology else {
            panic!("a sentinel group")
        };
        assert_eq!(master, "roomgate");
    }

    #[test]
    fn none_or_two_topologies_are_an_error_at_redis() {
        for bad in [
            "  durability: {replicas: 1}",
            "  url: {value: \"redis://a:1\"}\n  cluster: {nodes: [\"redis://b:2\"]}",
        ] {
            assert_eq!(
                load(bad).unwrap_err(),
                ["redis: give exactly one of url, cluster or sentinel"],
                "{bad}"
            );
        }
    }

    /// Security property: a password written into a node's plain-string URL would sit in
    /// the config in clear; it is refused, and no error echoes it.
    #[test]
    fn a_node_url_with_a_password_is_refused_without_echoing_it() {
        let errors = load(
            "  cluster:\n    nodes: [\"redis://:hunter2@10.0.0.1:7000\", \"http://x\", \"redis://ok:1\"]",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "redis.cluster.nodes[0]: a node URL carries no password: use the password field",
                "redis.cluster.nodes[1]: not a redis://host:port URL",
            ]
        );
        assert!(!errors.concat().contains("hunter2"));
    }

    #[test]
    fn sentinel_needs_a_master_and_nodes() {
        let errors = load("  sentinel: {master: \" \", nodes: []}").unwrap_err();
        assert_eq!(
            errors,
            [
                "redis.sentinel.master: give the name the sentinels monitor",
                "redis.sentinel.nodes: list between 1 and 64 nodes",
            ]
        );
        let missing = load("  sentinel: {nodes: [\"redis://s:26379\"]}").unwrap_err();
        assert!(missing[0].starts_with("redis.sentinel"), "{missing:?}");
    }

    #[test]
    fn durability_is_bounded() {
        let errors =
            load("  url: {value: \"redis://a:1\"}\n  durability: {replicas: 17, timeout: 0s}")
                .unwrap_err();
        assert_eq!(
            errors,
            [
                "redis.durability.replicas: at most 16",
                "redis.durability.timeout: must be between 1ms and 10s",
            ]
        );
    }
}
