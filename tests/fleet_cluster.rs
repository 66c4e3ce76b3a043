//! roomgate on a real Redis Cluster (three primaries, `redis-cli --cluster create`, on
//! free ports): queues on every shard, sessions, redis secrets and the CLI; durability
//! per shard; and a primary killed under load.
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::sync::watch;

use common::fleet::roomgate_cli;
use common::fleet::RedisCluster;
use common::ingest::{self, Outcome};

/// One cluster for the tests that do not kill a node, while any of them runs: the last
/// test holding it stops it (a static would never be dropped, and its processes would
/// outlive the test binary).
fn shared() -> Arc<RedisCluster> {
    static CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
    let mut held = CLUSTER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(running) = held.upgrade() {
        return running;
    }
    let started = Arc::new(RedisCluster::start());
    *held = Arc::downgrade(&started);
    started
}

fn redis_block(cluster: &RedisCluster, replicas: u32) -> String {
    let nodes: Vec<String> = cluster.seeds().iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "redis:\n  cluster:\n    nodes: [{}]\n  durability: {{replicas: {replicas}, timeout: 500ms}}\n",
        nodes.join(", ")
    )
}

/// `per_primary` queue names (`<prefix><n>`) for each primary, in primary order.
fn queues_per_primary(
    cluster: &RedisCluster,
    prefix: &str,
    per_primary: usize,
) -> Vec<Vec<String>> {
    let primaries = cluster.primaries();
    let mut out = vec![Vec::new(); primaries.len()];
    for n in 0.. {
        let q = format!("{prefix}{n}");
        let owner = cluster.primary_of_slot(cluster.slot(&ingest::stream(&q)));
        let i = primaries
            .iter()
            .position(|p| p.id == owner.id)
            .expect("a known primary");
        if out[i].len() < per_primary {
            out[i].push(q);
        }
        if out.iter().all(|qs| qs.len() == per_primary) {
            return out;
        }
    }
    unreachable!()
}

/// Every stream's entries, read through the cluster.
fn streams(cluster: &RedisCluster, queues: &[String]) -> HashMap<String, HashMap<String, String>> {
    let client = redis::cluster::ClusterClient::new(cluster.seeds()).expect("cluster client");
    let mut conn = client.get_connection().expect("cluster connection");
    queues
        .iter()
        .map(|q| (q.clone(), ingest::entries(&mut conn, q)))
        .collect()
}

/// A queue on every shard is accepted (the stream and its dedup key share a slot), a
/// redelivery is deduplicated there, the secret comes from Redis through the CLI, `queue
/// stats` reads each shard, and `/readyz` is 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shard_takes_its_queues_and_the_cli_reads_them() {
    let held = tokio::task::block_in_place(shared);
    let cluster = &*held;
    let queues: Vec<String> =
        tokio::task::block_in_place(|| queues_per_primary(cluster, "every", 1)).concat();
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = ingest::config(
        "127.0.0.1:0",
        &redis_block(cluster, 0),
        &queues,
        dir.path(),
        true,
    );
    let file = dir.path().join("routes.yaml");
    std::fs::write(&file, &yaml).expect("write the config");
    tokio::task::block_in_place(|| {
        roomgate_cli(
            &[
                "secrets",
                "set",
                "--room",
                ingest::ROOM,
                "--identity",
                "webhook-worker",
                "--id",
                "gh",
            ],
            &file,
            ingest::SECRET,
        )
    });
    let listed = tokio::task::block_in_place(|| {
        roomgate_cli(&["secrets", "list", "--room", ingest::ROOM], &file, "")
    });
    assert!(listed.contains("webhook-worker\tgh"), "{listed}");

    let rg = common::start(&yaml).await;
    let addr = rg.bound.http.expect("http");
    let admin = rg.bound.admin.expect("admin");
    let ready = common::get(admin, "admin", "/readyz", &[]).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["ready"], true);
    for q in &queues {
        let delivery = format!("every-shard-{q}");
        let first = ingest::post(addr, q, &delivery).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{q}: {:?}", first.body);
        let again = ingest::post(addr, q, &delivery).await;
        assert_eq!(again.status, StatusCode::ACCEPTED);
        assert_eq!(
            again.json()["id"],
            first.json()["id"],
            "deduplicated on {q}"
        );
        let stats = tokio::task::block_in_place(|| {
            roomgate_cli(
                &["queue", "stats", "--room", ingest::ROOM, "--queue", q],
                &file,
                "",
            )
        });
        let stats: serde_json::Value = serde_json::from_str(&stats).expect("JSON stats");
        assert_eq!(stats["length"], 1, "{q}");
        assert_eq!(stats["oldest_id"], first.json()["id"]);
    }
    rg.shutdown().await;
}

/// Sessions live on the cluster: shared by two instances, ended everywhere within a
/// second by a sign-out or by `roomgate sessions revoke`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_a_cluster_are_shared_and_revoked_everywhere_within_a_second() {
    let held = tokio::task::block_in_place(shared);
    let cluster = &*held;
    common::iap::sessions_are_shared_and_end_everywhere_within_a_second(&redis_block(cluster, 0))
        .await;
}

/// With `durability.replicas: 2`, the shard whose primary has two replicas answers 202
/// and the shards with one answer 503 `queue_unavailable` with `Retry-After`, never a
/// 202: one shard's missing replica stops only its own queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_with_fewer_replicas_than_asked_answers_503_and_the_others_202() {
    let held = tokio::task::block_in_place(shared);
    let cluster = &*held;
    let per_primary = tokio::task::block_in_place(|| queues_per_primary(cluster, "durable", 1));
    let primaries = tokio::task::block_in_place(|| cluster.primaries());
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = per_primary.concat();
    let rg = common::start(&ingest::config(
        "127.0.0.1:0",
        &redis_block(cluster, 2),
        &queues,
        dir.path(),
        false,
    ))
    .await;
    let addr = rg.bound.http.expect("http");
    for (primary, qs) in primaries.iter().zip(&per_primary) {
        let replicas = tokio::task::block_in_place(|| cluster.synced_replicas(primary.port));
        for q in qs {
            let started = Instant::now();
            let r = ingest::post(addr, q, &format!("durable-{q}")).await;
            if replicas >= 2 {
                assert_eq!(r.status, StatusCode::ACCEPTED, "{q}: {:?}", r.body);
            } else {
                assert_eq!(
                    (r.status, r.error_code().as_str()),
                    (StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable"),
                    "{q} on a primary with {replicas} replica(s)"
                );
                assert!(r.headers.contains_key("retry-after"));
                // WAIT's budget, not the whole deadline, decided it.
                assert!(
                    started.elapsed() < Duration::from_millis(1500),
                    "{:?}",
                    started.elapsed()
                );
            }
        }
    }
    assert!(
        primaries
            .iter()
            .any(|p| cluster.synced_replicas(p.port) >= 2),
        "the first primary has two replicas"
    );
    rg.shutdown().await;
}

/// Under concurrent signed webhooks, the primary of one shard is killed (SIGKILL). With
/// `durability.replicas: 1`, every (queue, id) answered 202 is in its stream afterwards;
/// everything else is 503 `queue_unavailable` with `Retry-After`, none slower than the
/// deadline; the other shards keep answering 202 meanwhile; and the killed shard's
/// queues answer 202 again within 10 s of the promotion, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_loses_no_acknowledged_entry_and_its_shard_recovers() {
    let mut cluster = tokio::task::block_in_place(RedisCluster::start);
    let per_primary = tokio::task::block_in_place(|| queues_per_primary(&cluster, "q", 2));
    let victim = tokio::task::block_in_place(|| cluster.primaries())[0].clone();
    let queues = per_primary.concat();
    let dir = tempfile::tempdir().expect("tempdir");
    let rg = common::start(&ingest::config(
        "127.0.0.1:0",
        &redis_block(&cluster, 1),
        &queues,
        dir.path(),
        false,
    ))
    .await;
    let addr = rg.bound.http.expect("http");

    let (stop, stopped) = watch::channel(false);
    let load = tokio::spawn({
        let queues = queues.clone();
        async move { ingest::load(addr, &queues, 8, stopped).await }
    });
    let victim_queues = per_primary[0].clone();
    tokio::task::block_in_place(|| {
        grows(&cluster, &victim_queues, 50, "load on the shard to kill")
    });
    let killed = Instant::now();
    tokio::task::block_in_place(|| cluster.node_mut(victim.port).stop());
    let promoted = tokio::task::block_in_place(|| {
        common::fleet::wait_until("a replica promoted", Duration::from_secs(30), || {
            cluster
                .primaries()
                .iter()
                .any(|p| p.port != victim.port && p.slots == victim.slots)
        });
        Instant::now()
    });
    // Keep the load on until the killed shard has taken writes for a while again.
    tokio::task::block_in_place(|| {
        grows(
            &cluster,
            &victim_queues,
            50,
            "the killed shard to take writes again",
        )
    });
    stop.send(true).expect("stop the load");
    let outcomes = load.await.expect("the load");

    let streams = tokio::task::block_in_place(|| streams(&cluster, &queues));
    report("cluster, replicas: 1", &outcomes, killed, promoted);
    assert!(
        ingest::missing(&outcomes, &streams).is_empty(),
        "acknowledged and lost: {:?}",
        ingest::missing(&outcomes, &streams)
    );
    assert!(
        ingest::unexpected(&outcomes).is_empty(),
        "{:?}",
        ingest::unexpected(&outcomes)
    );
    let deadline = roomgate::kv::DEFAULT_TIMEOUT + Duration::from_millis(1000);
    let slow: Vec<&Outcome> = outcomes.iter().filter(|o| o.took > deadline).collect();
    assert!(slow.is_empty(), "answers past the deadline: {slow:?}");
    let resumed = outcomes
        .iter()
        .find(|o| {
            o.status == StatusCode::ACCEPTED
                && victim_queues.contains(&o.queue)
                && o.sent > promoted
        })
        .map(|o| o.sent + o.took)
        .expect("202s on the killed shard after the promotion");
    eprintln!(
        "202s resumed {:?} after the promotion",
        resumed.duration_since(promoted)
    );
    assert!(
        resumed.duration_since(promoted) < Duration::from_secs(10),
        "202s resumed {:?} after the promotion",
        resumed.duration_since(promoted)
    );
    let others_meanwhile = outcomes.iter().any(|o| {
        o.status == StatusCode::ACCEPTED
            && !victim_queues.contains(&o.queue)
            && o.sent > killed
            && o.sent < promoted
    });
    assert!(
        others_meanwhile,
        "the other shards answered 202 during the failover"
    );
    rg.shutdown().await;
}

/// Wait until the streams of `queues` hold `by` more entries than when first read.
fn grows(cluster: &RedisCluster, queues: &[String], by: u64, what: &str) {
    common::fleet::wait_for_growth(what, by, || xlen(cluster, queues));
}

/// Entries in the streams of `queues`, summed; `None` while a stream cannot be read
/// (its shard is failing over).
fn xlen(cluster: &RedisCluster, queues: &[String]) -> Option<u64> {
    let client = redis::cluster::ClusterClient::new(cluster.seeds()).expect("cluster client");
    let mut conn = client.get_connection().ok()?;
    queues
        .iter()
        .map(|q| {
            redis::cmd("XLEN")
                .arg(ingest::stream(q))
                .query::<u64>(&mut conn)
                .ok()
        })
        .sum()
}

/// A line for the test log: what the failover cost.
fn report(what: &str, outcomes: &[Outcome], killed: Instant, promoted: Instant) {
    let accepted = outcomes
        .iter()
        .filter(|o| o.status == StatusCode::ACCEPTED)
        .count();
    let refused = outcomes.len() - accepted;
    let max = outcomes.iter().map(|o| o.took).max().unwrap_or_default();
    eprintln!(
        "{what}: {} requests, {accepted} accepted, {refused} answered 503; promotion {:?} after the kill; slowest answer {max:?}",
        outcomes.len(),
        promoted.duration_since(killed)
    );
}
