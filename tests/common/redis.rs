//! A real `redis-server` on a free loopback port, stopped when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use roomgate::config::{Durability, RedisSettings, Topology};
use roomgate::kv::Kv;
use roomgate::sensitive::Secret;

/// The shared Redis at `url` (one primary), as `redis: {url: ...}` would make it.
pub fn kv_at(url: &str) -> Kv {
    kv_durable(url, Durability::default())
}

/// [`kv_at`] with `durability`.
pub fn kv_durable(url: &str, durability: Durability) -> Kv {
    let settings = RedisSettings {
        topology: Topology::Url(Secret::new(url)),
        durability,
    };
    Kv::connect(&settings, roomgate::kv::DEFAULT_TIMEOUT).expect("usable settings")
}

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Append-only file with fsync on every write: acknowledged writes survive a kill.
    persistent: bool,
    /// `requirepass`, when the server asks for one.
    password: Option<String>,
    /// `cluster-enabled yes`: a Redis Cluster node (with no slots assigned).
    cluster: bool,
    /// More `redis-server` arguments.
    extra: Vec<String>,
}

/// A free port whose cluster bus port (10000 higher, so at most 55535) is free too.
pub fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port <= 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    /// Start a fresh, empty redis-server (no persistence) and wait until it answers PING.
    pub fn start() -> RedisServer {
        Self::start_with(false, None)
    }

    /// A server whose acknowledged writes survive `stop()`/`restart()`.
    pub fn start_persistent() -> RedisServer {
        Self::start_with(true, None)
    }

    /// A server that requires `AUTH password` (`requirepass`).
    pub fn start_with_password(password: &str) -> RedisServer {
        Self::start_with(false, Some(password.to_owned()))
    }

    /// A Redis Cluster node (`cluster-enabled yes`), not yet part of a cluster.
    pub fn start_cluster_node() -> RedisServer {
        Self::start_server(false, None, true)
    }

    /// A server with more `redis-server` arguments (say, `--replicaof`), and
    /// `cluster-enabled yes` when `cluster`.
    pub fn start_args(cluster: bool, extra: &[String]) -> RedisServer {
        Self::start_full(false, None, cluster, extra)
    }

    fn start_with(persistent: bool, password: Option<String>) -> RedisServer {
        Self::start_server(persistent, password, false)
    }

    fn start_server(persistent: bool, password: Option<String>, cluster: bool) -> RedisServer {
        Self::start_full(persistent, password, cluster, &[])
    }

    fn start_full(
        persistent: bool,
        password: Option<String>,
        cluster: bool,
        extra: &[String],
    ) -> RedisServer {
        for _ in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: if cluster {
                    free_cluster_port()
                } else {
                    free_port()
                },
                dir: tempfile::tempdir().expect("tempdir"),
                persistent,
                password: password.clone(),
                cluster,
                extra: extra.to_vec(),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start (is it installed? .ci/run installs it)");
    }

    fn spawn(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        if self.cluster {
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ]);
        }
        let child = command
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                if self.persistent { "yes" } else { "no" },
                "--appendfsync",
                "always",
                "--dir",
                self.dir.path().to_str().expect("utf-8 tempdir"),
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        self.wait_ready()
    }

    /// Poll PING until the server answers or has exited (readiness, not a sleep).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return false;
                }
            }
            if self.ping() {
                return true;
            }
            std::thread::yield_now();
            std::thread::park_timeout(Duration::from_millis(20));
        }
        false
    }

    /// True when the server answers PING.
    pub fn ping(&self) -> bool {
        self.redis_cli()
            .arg("ping")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
            .unwrap_or(false)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Run a redis-cli command against this server and return its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.redis_cli().args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `redis-cli` for this server, authenticated when it needs a password.
    fn redis_cli(&self) -> Command {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        if let Some(password) = &self.password {
            command.args(["--no-auth-warning", "-a", password]);
        }
        command
    }

    /// Send `sig` (`STOP`, `CONT`) to the server process.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("a running server").id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} {pid}");
    }

    /// Stop the server (SIGKILL), keeping the port reserved for [`RedisServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port (empty: there is no persistence).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
