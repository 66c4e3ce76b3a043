//! Several roomgate instances (the real binary) sharing nothing but Redis, behind a real
//! haproxy on free ports; and `serve` without a reachable Redis.
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;

use common::fleet::Haproxy;
use common::iap::{get_with, until_rejected, yaml_with, Browser, DEFAULT_PARTICIPANTS};
use common::ingest;
use common::process::{eventually, Proc};
use common::redis::{free_port, RedisServer};
use common::upstream::Upstream;

fn url_block(redis: &RedisServer) -> String {
    format!("redis:\n  url: {{value: \"{}\"}}\n", redis.url())
}

/// A `roomgate serve` of `yaml`, written under `dir` as `name`.
async fn serve(dir: &std::path::Path, name: &str, yaml: &str) -> (Proc, SocketAddr) {
    let file = dir.join(name);
    std::fs::write(&file, yaml).expect("write the config");
    let mut proc = Proc::serve(&file, &[]);
    let addr = proc.addr("http").await;
    (proc, addr)
}

/// Security: two instances behind haproxy share only Redis. A browser signs in through
/// the balancer (the sign-in flow's steps land on either instance), its session is
/// honoured by both, and `roomgate sessions revoke` ends it on both within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_through_one_instance_is_honoured_and_revoked_by_all() {
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let public = free_port();
    let yaml = yaml_with(
        0,
        public,
        up.addr.port(),
        &url_block(&redis),
        DEFAULT_PARTICIPANTS,
    );
    let (_a, addr_a) = serve(dir.path(), "a.yaml", &yaml).await;
    let (_b, addr_b) = serve(dir.path(), "b.yaml", &yaml).await;
    let lb = Haproxy::start_on(public, &[addr_a.port(), addr_b.port()]);
    let lb_addr: SocketAddr = ([127, 0, 0, 1], lb.port).into();

    let mut browser = Browser::new(lb_addr);
    let s = browser
        .sign_in("app.acme.test", "/", "alice@acme.test")
        .await;
    let mut served_by = std::collections::HashSet::new();
    for _ in 0..6 {
        let r = get_with(lb_addr, "app.acme.test", "/", &s.cookie, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        served_by.insert(
            r.headers
                .get("x-served-by")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(served_by.len(), 2, "both instances served: {served_by:?}");
    for addr in [addr_a, addr_b] {
        let r = get_with(addr, "app.acme.test", "/", &s.cookie, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "honoured by {addr}");
    }

    let out = std::process::Command::new(common::bin())
        .args(["sessions", "revoke", "--config"])
        .arg(dir.path().join("a.yaml"))
        .args(["--user", "alice@acme.test"])
        .output()
        .expect("roomgate sessions revoke");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for addr in [addr_a, addr_b, lb_addr] {
        until_rejected(addr, &s.cookie, Duration::from_secs(1)).await;
    }
}

/// The same delivery sent to two instances at once (a provider retrying through another
/// one) becomes one entry: both answer 202 with the same stream id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_delivery_through_two_instances_is_one_entry() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = vec!["events".to_owned()];
    let yaml = ingest::config(
        "127.0.0.1:0",
        &url_block(&redis),
        &queues,
        dir.path(),
        false,
    );
    let (_a, addr_a) = serve(dir.path(), "a.yaml", &yaml).await;
    let (_b, addr_b) = serve(dir.path(), "b.yaml", &yaml).await;
    for n in 0..20 {
        let delivery = format!("twice-{n}");
        let (a, b) = tokio::join!(
            ingest::post(addr_a, "events", &delivery),
            ingest::post(addr_b, "events", &delivery)
        );
        assert_eq!(
            (a.status, b.status),
            (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
        );
        assert_eq!(a.json()["id"], b.json()["id"], "{delivery}");
    }
    let len = redis.cli(&["XLEN", &ingest::stream("events")]);
    assert_eq!(len.trim(), "20");
}

/// `serve` starts while its Redis is down and says so; `/healthz` is 200 (alive),
/// `/readyz` 503 `{"ready": false, "redis": "unreachable"}`, a webhook 503
/// `queue_unavailable` with `Retry-After`; once Redis is up, `/readyz` is 200 and the
/// webhook is accepted, with nothing restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_without_redis_and_is_ready_once_it_answers() {
    let mut redis = RedisServer::start();
    redis.stop();
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = vec!["events".to_owned()];
    let yaml = ingest::config(
        "127.0.0.1:0",
        &url_block(&redis),
        &queues,
        dir.path(),
        false,
    );
    let (mut proc, addr) = serve(dir.path(), "routes.yaml", &yaml).await;
    let admin = proc.addr("admin").await;
    proc.wait_json("the warning that redis is unreachable", |v| {
        v["level"] == "WARN"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("redis is unreachable at start"))
    })
    .await;
    assert_eq!(
        common::get(admin, "admin", "/healthz", &[]).await.status,
        StatusCode::OK
    );
    let ready = common::get(admin, "admin", "/readyz", &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json(),
        serde_json::json!({"ready": false, "redis": "unreachable"})
    );
    let r = ingest::post(addr, "events", "while-down").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable")
    );
    assert!(r.headers.contains_key("retry-after"));

    tokio::task::block_in_place(|| redis.restart());
    eventually("/readyz to answer 200", || async move {
        let r = common::get(admin, "admin", "/readyz", &[]).await;
        (r.status == StatusCode::OK).then_some(())
    })
    .await;
    let r = ingest::post(addr, "events", "once-up").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    proc.stop().await;
}
