//! Real Redis topologies and a real load balancer on free loopback ports: a Redis Cluster
//! (`redis-cli --cluster create`), a Sentinel group (`redis-server --sentinel`) and
//! haproxy. Everything is stopped when dropped; every wait polls a condition under a
//! deadline.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis::{free_port, RedisServer};

/// Poll `ok` every 50 ms until it holds; panic with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until `len` (a sum of stream lengths, `None` while unreadable) has grown by `by`
/// from its first readable value; panic with `what` after 30 s.
pub fn wait_for_growth(what: &str, by: u64, mut len: impl FnMut() -> Option<u64>) {
    let mut base = None;
    wait_until(what, Duration::from_secs(30), || match (base, len()) {
        (None, now) => {
            base = now;
            false
        }
        (Some(base), Some(now)) => now >= base + by,
        (Some(_), None) => false,
    });
}

/// Run the roomgate binary with `args`, `--config config` and `stdin` as its input; its
/// stdout, or a panic with its stderr.
pub fn roomgate_cli(args: &[&str], config: &std::path::Path, stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(super::bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("roomgate");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("roomgate exits");
    assert!(
        out.status.success(),
        "roomgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `field` in an `INFO` reply.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}:")))
        .map(str::to_owned)
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    pub primary: bool,
    pub failed: bool,
    /// The primary's id, for a replica.
    pub primary_id: Option<String>,
    /// Slot ranges (`a-b` or `a`), for a primary.
    pub slots: Vec<(u16, u16)>,
}

/// A Redis Cluster: three primaries with one replica each, and a second replica on the
/// first primary (the one failover tests kill), so `WAIT 1` can still succeed after its
/// failover. Nodes fail over after one second without an answer, and a shard without a
/// primary does not stop the others (`cluster-require-full-coverage no`).
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

fn cluster_args() -> Vec<String> {
    [
        "--cluster-node-timeout",
        "1000",
        "--cluster-require-full-coverage",
        "no",
        "--cluster-replica-validity-factor",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..7)
            .map(|_| RedisServer::start_args(true, &cluster_args()))
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &nodes[..6] {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok(&[0, 1, 2, 3, 4, 5]);
        // The seventh node: a second replica of the first primary.
        let first = cluster.primaries()[0].clone();
        let seventh = cluster.nodes[6].port;
        let out = Command::new("redis-cli")
            .args([
                "--cluster",
                "add-node",
                &format!("127.0.0.1:{seventh}"),
                &format!("127.0.0.1:{}", first.port),
                "--cluster-slave",
                "--cluster-master-id",
                &first.id,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster add-node");
        assert!(
            out.status.success(),
            "add-node: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_ok(&[0, 1, 2, 3, 4, 5, 6]);
        wait_until("every replica in sync", Duration::from_secs(30), || {
            cluster.primaries().iter().all(|p| {
                let want = if p.id == first.id { 2 } else { 1 };
                cluster.synced_replicas(p.port) == want
            })
        });
        cluster
    }

    /// Wait until the nodes at these indexes all say `cluster_state:ok` and know every
    /// other node.
    fn wait_ok(&self, indexes: &[usize]) {
        wait_until("the cluster to form", Duration::from_secs(30), || {
            indexes.iter().all(|&i| {
                let info = self.nodes[i].cli(&["CLUSTER", "INFO"]);
                info_field(&info, "cluster_state").as_deref() == Some("ok")
                    && info_field(&info, "cluster_known_nodes")
                        .and_then(|n| n.parse::<usize>().ok())
                        == Some(indexes.len())
            })
        });
    }

    /// Replicas of the primary at `port` that are online and caught up.
    pub fn synced_replicas(&self, port: u16) -> usize {
        let info = self.node(port).cli(&["INFO", "replication"]);
        let offset = info_field(&info, "master_repl_offset");
        info.lines()
            .filter(|l| l.starts_with("slave") && l.contains("state=online"))
            .filter(|l| {
                offset
                    .as_ref()
                    .is_some_and(|o| l.contains(&format!("offset={o},")))
            })
            .count()
    }

    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }

    pub fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }

    /// `redis://127.0.0.1:port` of every node, for `redis.cluster.nodes`.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// `CLUSTER NODES`, as a node that answers sees it.
    pub fn topology(&self) -> Vec<ClusterNode> {
        let text = self
            .nodes
            .iter()
            .filter(|n| n.ping())
            .map(|n| n.cli(&["CLUSTER", "NODES"]))
            .find(|t| !t.trim().is_empty())
            .expect("a live node");
        text.lines().filter_map(parse_node).collect()
    }

    /// Live primaries that serve slots, the first one's slots starting at 0.
    pub fn primaries(&self) -> Vec<ClusterNode> {
        let mut primaries: Vec<ClusterNode> = self
            .topology()
            .into_iter()
            .filter(|n| n.primary && !n.failed && !n.slots.is_empty())
            .collect();
        primaries.sort_by_key(|n| n.slots[0].0);
        primaries
    }

    /// The live primary serving `slot`.
    pub fn primary_of_slot(&self, slot: u16) -> ClusterNode {
        self.primaries()
            .into_iter()
            .find(|p| p.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .expect("a primary for the slot")
    }

    /// The slot of `key`, as the cluster computes it.
    pub fn slot(&self, key: &str) -> u16 {
        self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("a slot")
    }
}

fn parse_node(line: &str) -> Option<ClusterNode> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    if parts.len() < 8 {
        return None;
    }
    let port = parts[1]
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let flags = parts[2];
    let slots = parts[8..]
        .iter()
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => {
                let a = s.parse().ok()?;
                Some((a, a))
            }
        })
        .collect();
    Some(ClusterNode {
        id: parts[0].to_owned(),
        port,
        primary: flags.contains("master"),
        failed: flags.contains("fail"),
        primary_id: (parts[3] != "-").then(|| parts[3].to_owned()),
        slots,
    })
}

/// The name the sentinels monitor.
pub const MASTER: &str = "roomgate";

/// A primary with two replicas, watched by three sentinels (quorum 2) that fail it over
/// after one second without an answer.
pub struct SentinelGroup {
    pub data: Vec<RedisServer>,
    pub sentinels: Vec<Sentinel>,
}

pub struct Sentinel {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    fn start(primary: u16) -> Sentinel {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let conf = dir.path().join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 5000\n\
                     sentinel parallel-syncs {MASTER} 2\n",
                    dir.path().display()
                ),
            )
            .expect("sentinel.conf");
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server --sentinel");
            let mut s = Sentinel {
                child: Some(child),
                port,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Some(Ok(Some(_))) = s.child.as_mut().map(Child::try_wait) {
                    break;
                }
                if s.cli(&["PING"]).trim() == "PONG" {
                    return s;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            s.stop();
        }
        panic!("redis-server --sentinel did not start");
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The port of the primary this sentinel names now.
    pub fn primary_port(&self) -> Option<u16> {
        let out = self.cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER]);
        out.lines().nth(1)?.trim().parse().ok()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SentinelGroup {
    pub fn start() -> SentinelGroup {
        let primary = RedisServer::start();
        let replicaof = [
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            primary.port.to_string(),
        ];
        let mut data = vec![primary];
        for _ in 0..2 {
            data.push(RedisServer::start_args(false, &replicaof));
        }
        let group = SentinelGroup {
            sentinels: (0..3).map(|_| Sentinel::start(data[0].port)).collect(),
            data,
        };
        wait_until("two replicas in sync", Duration::from_secs(30), || {
            group.synced_replicas() == 2
        });
        wait_until(
            "the sentinels to know each other and the replicas",
            Duration::from_secs(30),
            || {
                group.sentinels.iter().all(|s| {
                    let master = s.cli(&["SENTINEL", "MASTER", MASTER]);
                    let field = |name: &str| {
                        let mut lines = master.lines();
                        while let Some(l) = lines.next() {
                            if l.trim() == name {
                                return lines.next().map(|v| v.trim().to_owned());
                            }
                        }
                        None
                    };
                    field("num-slaves").as_deref() == Some("2")
                        && field("num-other-sentinels").as_deref() == Some("2")
                })
            },
        );
        group
    }

    /// `redis://127.0.0.1:port` of every sentinel, for `redis.sentinel.nodes`.
    pub fn seeds(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port))
            .collect()
    }

    /// The data node the sentinels name as primary now.
    pub fn primary(&self) -> &RedisServer {
        let port = self
            .sentinels
            .iter()
            .find_map(Sentinel::primary_port)
            .expect("a sentinel that names a primary");
        self.data
            .iter()
            .find(|n| n.port == port)
            .expect("a data node")
    }

    pub fn primary_mut(&mut self) -> &mut RedisServer {
        let port = self.primary().port;
        self.data
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a data node")
    }

    /// Replicas of the current primary that are online and caught up.
    pub fn synced_replicas(&self) -> usize {
        let info = self.primary().cli(&["INFO", "replication"]);
        let offset = info_field(&info, "master_repl_offset");
        info.lines()
            .filter(|l| l.starts_with("slave") && l.contains("state=online"))
            .filter(|l| {
                offset
                    .as_ref()
                    .is_some_and(|o| l.contains(&format!("offset={o},")))
            })
            .count()
    }
}

/// haproxy in front of `backends` (round robin, one decision per request), adding
/// `x-served-by: <backend index>` to every response.
pub struct Haproxy {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// haproxy on `port` (one found free beforehand, so that configs could name it).
    pub fn start_on(port: u16, backends: &[u16]) -> Haproxy {
        Self::start_with(Some(port), backends)
    }

    pub fn start(backends: &[u16]) -> Haproxy {
        Self::start_with(None, backends)
    }

    fn start_with(fixed: Option<u16>, backends: &[u16]) -> Haproxy {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = fixed.unwrap_or_else(free_port);
            let servers: String = backends
                .iter()
                .enumerate()
                .map(|(i, p)| format!("  server s{i} 127.0.0.1:{p}\n"))
                .collect();
            let conf = dir.path().join("haproxy.cfg");
            std::fs::write(
                &conf,
                format!(
                    "global\n  maxconn 1000\n\
                     defaults\n  mode http\n  option http-server-close\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
                     frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
                     backend be\n  balance roundrobin\n  http-response set-header x-served-by %s\n{servers}"
                ),
            )
            .expect("haproxy.cfg");
            let child = Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn haproxy (scripts/test.sh installs it)");
            let mut h = Haproxy {
                child: Some(child),
                port,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Some(Ok(Some(_))) = h.child.as_mut().map(Child::try_wait) {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return h;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            h.stop();
        }
        panic!("haproxy did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.stop();
    }
}
