//! A reload of a big config (20 000 routes over 1 000 rooms) under concurrent requests:
//! no request fails while the new config is read and built, and the process ends up
//! serving the new routes and no longer the removed ones. The real binary, one worker
//! thread, real upstream; reloaded by a file write and SIGHUP.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::process::{config_hash, eventually, Proc};
use common::upstream::Upstream;
use common::*;
use http::StatusCode;
use sha2::{Digest, Sha256};

const ROOMS: usize = 1_000;
const ROUTES: usize = 20_000;

/// Routes with an even number are in every generation; odd ones are named after the
/// generation (`a`, `b`), so a reload adds 10 000 routes and removes 10 000. One route in
/// ten is a wildcard.
fn big_yaml(upstream: u16, generation: &str) -> String {
    let mut y = format!(
        "version: v1\nlisten:\n  http: 127.0.0.1:0\n  admin: 127.0.0.1:0\n{}\nrooms:\n",
        tokens_block()
    );
    for r in 0..ROOMS {
        y.push_str(&format!(
            "  - name: room{r}\n    services:\n      - name: web\n        ports:\n          - {{num: {upstream}, published: true, public: true}}\n"
        ));
    }
    y.push_str("routes:\n");
    for i in 0..ROUTES {
        let room = i % ROOMS;
        let name = domain(i, generation);
        let name = if i % 10 == 9 {
            format!("\"*.{name}\"")
        } else {
            name
        };
        y.push_str(&format!(
            "  - {{domain: {name}, room: room{room}, port: {upstream}}}\n"
        ));
    }
    y
}

fn domain(i: usize, generation: &str) -> String {
    let label = if i.is_multiple_of(2) { "s" } else { generation };
    format!("{label}{i}.room{}.test", i % ROOMS)
}

/// A host that route `i` of `generation` answers (a label under a wildcard).
fn host(i: usize, generation: &str) -> String {
    if i % 10 == 9 {
        format!("x.{}", domain(i, generation))
    } else {
        domain(i, generation)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_big_reload_under_load_fails_no_request_and_serves_the_new_routes() {
    let upstream = Upstream::start().await;
    let port = upstream.addr.port();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, big_yaml(port, "a")).expect("write");
    let mut rg = Proc::serve(&path, &[("ROOMGATE_WORKER_THREADS", "1")]);
    let http = rg.addr("http").await;
    let admin = rg.addr("admin").await;
    assert_eq!(
        get(http, &host(1, "a"), "/", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(http, &host(19, "a"), "/", &[]).await.status,
        StatusCode::OK
    );

    // Clients cycle through the routes both generations have, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..4usize {
        let (stop, served, failures) = (stop.clone(), served.clone(), failures.clone());
        clients.push(tokio::spawn(async move {
            let mut i = c * 2;
            while !stop.load(Ordering::SeqCst) {
                let h = host(i % ROUTES, "a");
                let r = get(http, &h, "/", &[]).await;
                if r.status != StatusCode::OK {
                    failures
                        .lock()
                        .expect("lock")
                        .push(format!("{h}: {}", r.status));
                }
                served.fetch_add(1, Ordering::SeqCst);
                i += 8;
            }
        }));
    }
    let at_least = |n: usize| {
        let served = served.clone();
        move || {
            let done = served.load(Ordering::SeqCst) >= n;
            async move { done.then_some(()) }
        }
    };
    eventually("requests before the reload", at_least(200)).await;

    let next = big_yaml(port, "b");
    let next_hash = hex::encode(Sha256::digest(next.as_bytes()));
    std::fs::write(&path, &next).expect("write");
    rg.signal("HUP");
    eventually("the new config in service", || async {
        (config_hash(admin).await == next_hash).then_some(())
    })
    .await;
    let after = served.load(Ordering::SeqCst) + 200;
    eventually("requests after the reload", at_least(after)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client");
    }

    let failures = failures.lock().expect("lock").clone();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    for (i, want) in [
        (1, StatusCode::OK),
        (19, StatusCode::OK),
        (ROUTES - 1, StatusCode::OK),
    ] {
        let r = get(http, &host(i, "b"), "/", &[]).await;
        assert_eq!(r.status, want, "{}", host(i, "b"));
    }
    for i in [1, 19, ROUTES - 1] {
        let r = get(http, &host(i, "a"), "/", &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", host(i, "a"));
        assert_eq!(r.error_code(), "no_route");
    }
    rg.stop().await;
}
