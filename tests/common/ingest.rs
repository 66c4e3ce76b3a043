//! Webhook traffic for the fleet tests: a config with one GitHub queue endpoint per queue,
//! signed deliveries, a concurrent load that records every answer, and the accounting
//! against what the streams hold afterwards.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use http::StatusCode;
use sha2::Sha256;
use tokio::sync::watch;

use super::Reply;

pub const SECRET: &str = "github-webhook-secret";
pub const ROOM: &str = "acme";
pub const HOST: &str = "hooks.acme.test";
/// 32 bytes, base64: `secrets.key` when secrets live in Redis.
pub const SECRETS_KEY: &str = "c2VjcmV0cy1rZXktMDEyMzQ1Njc4OWFiY2RlZjAxMjM=";

/// The stream of `queue` in room [`ROOM`].
pub fn stream(queue: &str) -> String {
    format!("roomgate:queue:{{{ROOM}:{queue}}}")
}

/// A config listening on `listen` (`127.0.0.1:0` for any port) with `redis` (a whole
/// `redis:` block), one GitHub endpoint `/q/<queue>` per queue, and the secret in a
/// secrets file under `dir`, or in Redis when `secrets_in_redis`.
pub fn config(
    listen: &str,
    redis: &str,
    queues: &[String],
    dir: &Path,
    secrets_in_redis: bool,
) -> String {
    let secrets = if secrets_in_redis {
        format!(
            "secrets:\n  backend: redis\n  key: {{value: \"{SECRETS_KEY}\"}}\n  cache_ttl: 0s\n"
        )
    } else {
        let file = dir.join("secrets.yaml");
        std::fs::write(
            &file,
            format!("rooms:\n  {ROOM}:\n    webhook-worker:\n      gh: {{value: \"{SECRET}\"}}\n"),
        )
        .expect("write the secrets file");
        format!("secrets:\n  backend: file\n  file: {}\n", file.display())
    };
    let endpoints: String = queues
        .iter()
        .map(|q| {
            format!(
                "              - path: /q/{q}\n                annotations:\n                  meshagent.request.validation.method: github\n                  meshagent.request.validation.secret: gh\n                  meshagent.request.processor: webhook-worker\n                  meshagent.request.queue: {q}\n"
            )
        })
        .collect();
    format!(
        "version: v1\nlisten: {{http: \"{listen}\", admin: 127.0.0.1:0}}\n{redis}\n{secrets}rooms:\n  - name: {ROOM}\n    services:\n      - name: hooks\n        ports:\n          - num: 9\n            published: true\n            public: true\n            endpoints:\n{endpoints}routes:\n  - {{domain: {HOST}, room: {ROOM}, port: 9}}\n"
    )
}

/// GitHub's `X-Hub-Signature-256` for `body`.
pub fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("hmac key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POST a signed GitHub delivery to `/q/<queue>`.
pub async fn post(addr: SocketAddr, queue: &str, delivery: &str) -> Reply {
    let body = format!("{{\"delivery\":\"{delivery}\"}}");
    let sig = signature(body.as_bytes());
    super::send(
        addr,
        "POST",
        HOST,
        &format!("/q/{queue}"),
        &[
            ("x-hub-signature-256", &sig),
            ("x-github-delivery", delivery),
            ("x-github-event", "push"),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

/// One answer of the load.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub queue: String,
    pub delivery: String,
    pub status: StatusCode,
    /// The stream id of a 202.
    pub id: Option<String>,
    /// The error code of anything else.
    pub error: String,
    pub retry_after: bool,
    pub sent: Instant,
    pub took: Duration,
}

/// `workers` concurrent senders, each posting fresh deliveries round the queues until
/// `stop` turns true; every answer is recorded.
pub async fn load(
    addr: SocketAddr,
    queues: &[String],
    workers: usize,
    stop: watch::Receiver<bool>,
) -> Vec<Outcome> {
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let queues = queues.to_vec();
        let counter = Arc::clone(&counter);
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut out = Vec::new();
            while !*stop.borrow() {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let queue = queues[(n as usize + w) % queues.len()].clone();
                let delivery = format!("load-{n}");
                let sent = Instant::now();
                let r = post(addr, &queue, &delivery).await;
                let took = sent.elapsed();
                let accepted = r.status == StatusCode::ACCEPTED;
                out.push(Outcome {
                    id: accepted.then(|| r.json()["id"].as_str().unwrap_or_default().to_owned()),
                    error: if accepted {
                        String::new()
                    } else {
                        r.error_code()
                    },
                    retry_after: r.headers.contains_key("retry-after"),
                    status: r.status,
                    queue,
                    delivery,
                    sent,
                    took,
                });
            }
            out
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("a load worker"));
    }
    all.sort_by_key(|o| o.sent);
    all
}

/// Every entry of `queue`'s stream: stream id → delivery id.
pub fn entries(conn: &mut impl redis::ConnectionLike, queue: &str) -> HashMap<String, String> {
    let raw: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(stream(queue))
        .arg("-")
        .arg("+")
        .query(conn)
        .expect("XRANGE");
    raw.into_iter()
        .map(|(id, fields)| {
            let delivery = fields
                .get("delivery_id")
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .unwrap_or_default();
            (id, delivery)
        })
        .collect()
}

/// The 202s whose entry is not in its stream (with its delivery id), given every
/// stream's entries.
pub fn missing<'a>(
    outcomes: &'a [Outcome],
    streams: &HashMap<String, HashMap<String, String>>,
) -> Vec<&'a Outcome> {
    outcomes
        .iter()
        .filter(|o| o.status == StatusCode::ACCEPTED)
        .filter(|o| {
            let id = o.id.as_deref().unwrap_or_default();
            streams
                .get(&o.queue)
                .and_then(|entries| entries.get(id))
                .is_none_or(|d| *d != o.delivery)
        })
        .collect()
}

/// Anything that is neither a 202 nor a 503 `queue_unavailable` with `Retry-After`.
pub fn unexpected(outcomes: &[Outcome]) -> Vec<&Outcome> {
    outcomes
        .iter()
        .filter(|o| {
            o.status != StatusCode::ACCEPTED
                && !(o.status == StatusCode::SERVICE_UNAVAILABLE
                    && o.error == "queue_unavailable"
                    && o.retry_after)
        })
        .collect()
}
