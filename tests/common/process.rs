//! The real `roomgate` binary as a child process, with its JSON log lines at hand.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// A running `roomgate serve`, killed on drop.
pub struct Proc {
    child: Child,
    pub pid: u32,
    lines: Arc<Mutex<Vec<String>>>,
    count: watch::Receiver<usize>,
}

impl Proc {
    /// `roomgate serve --config <path>` with JSON logs.
    pub fn serve(config: &Path, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(super::bin());
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .env("ROOMGATE_LOG_FORMAT", "json")
            .env("ROOMGATE_LOG", "info")
            .env("ROOMGATE_WORKER_THREADS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn roomgate");
        let pid = child.id().expect("pid");
        let stderr = child.stderr.take().expect("stderr");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, count) = watch::channel(0usize);
        let store = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let n = {
                    let mut l = store.lock().expect("lock");
                    l.push(line);
                    l.len()
                };
                let _ = tx.send(n);
            }
        });
        Proc {
            child,
            pid,
            lines,
            count,
        }
    }

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// The first JSON log line (from the start) that satisfies `pred`, waiting up to 15s.
    pub async fn wait_json(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .lines
                .lock()
                .expect("lock")
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| pred(v));
            if let Some(v) = found {
                return v;
            }
            match tokio::time::timeout_at(deadline, self.count.changed()).await {
                Ok(Ok(())) => {}
                _ => panic!(
                    "no log line: {what}\nlog so far:\n{}",
                    self.log().join("\n")
                ),
            }
        }
    }

    /// The address a listener (`http`, `https`, `admin`) bound, from its `listening` line.
    pub async fn addr(&mut self, listener: &str) -> SocketAddr {
        let line = self
            .wait_json(&format!("listening {listener}"), |v| {
                v["message"] == "listening" && v["listener"] == listener
            })
            .await;
        line["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("listening addr")
    }

    /// Send a signal (`HUP`, `TERM`) with the `kill` command.
    pub fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Wait for the process to exit (up to `limit`).
    /// SIGTERM, then a clean exit (status 0) in time.
    pub async fn stop(&mut self) {
        self.signal("TERM");
        let status = self.exit(Duration::from_secs(20)).await;
        assert!(status.success(), "exit status {status:?}");
    }

    pub async fn exit(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("roomgate exits in time")
            .expect("wait")
    }
}

/// Poll `probe` until it returns `Some`, up to 15s (the admin listener is the witness of
/// a reload; polling it is the synchronisation).
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A sample value from the admin `/metrics` text, e.g.
/// `roomgate_config_reloads_total{result="ok"}`; absent samples read as 0.
pub async fn metric(admin: SocketAddr, sample: &str) -> f64 {
    let r = super::get(admin, "admin", "/metrics", &[]).await;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines()
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// The config hash the admin `/ports` reports.
pub async fn config_hash(admin: SocketAddr) -> String {
    let r = super::get(admin, "admin", "/ports", &[]).await;
    r.json()["config_hash"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
