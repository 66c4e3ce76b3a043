//! Sign-in limits that hold across restarts and under load (issue 17, findings 2 and 6):
//! single-use records kept in Redis survive a restart of roomgate (the real binary), and
//! password checks are capped at one per CPU.

mod common;

use std::path::Path;

use common::iap::*;
use common::process::Proc;
use common::redis::RedisServer;
use common::upstream::{free_port, Upstream};
use http::StatusCode;

/// Start the binary on `port` with the IAP test config, and its browser.
async fn serve(config: &Path) -> (Proc, Browser) {
    let mut rg = Proc::serve(config, &[]);
    let addr = rg.addr("http").await;
    (rg, Browser::new(addr))
}

/// The sign-in redirect's location and the handoff code of one finished form login.
async fn return_state_and_code(browser: &mut Browser) -> (String, String) {
    let r = browser.visit("app.acme.test", "/restart").await;
    assert_eq!(r.status, StatusCode::FOUND);
    let location = location(&r);
    let r = browser.start(&location).await;
    assert_eq!(r.status, StatusCode::OK, "sign-in form");
    let flow = hidden(&r, "flow").expect("flow field");
    let r = browser.login(&flow, "alice@acme.test", PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    (location, hidden(&r, "code").expect("handoff code"))
}

/// Security property (issue 17, finding 6): with a `redis` block, a sign-in return state
/// (`rs`) and a handoff code used once are refused after roomgate restarts against the
/// same redis-server: their single-use records live in Redis, not in the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_a_used_return_state_and_code_are_refused_after_a_restart() {
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("routes.yaml");
    let port = free_port();
    std::fs::write(
        &config,
        yaml(
            port,
            up.addr.port(),
            Some(&redis.url()),
            DEFAULT_PARTICIPANTS,
        ),
    )
    .expect("config");

    let (mut rg, mut browser) = serve(&config).await;
    let (location, code) = return_state_and_code(&mut browser).await;
    let r = browser.callback("app.acme.test", &code).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the code works once");
    rg.stop().await;

    let (mut rg, mut browser) = serve(&config).await;
    let r = browser.start(&location).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the rs is refused after the restart"
    );
    assert_eq!(r.json()["error"], "invalid_sign_in");
    let r = browser.callback("app.acme.test", &code).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the code is refused after the restart"
    );
    // A fresh sign-in still works on the restarted instance.
    let (_, code) = return_state_and_code(&mut browser).await;
    let r = browser.callback("app.acme.test", &code).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    rg.stop().await;
}

/// What the README says of embedded mode (no `redis` block): single-use records live in
/// the process, so a return state used before a restart is accepted once more after it
/// (within its 10-minute life). This keeps that sentence true.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_embedded_mode_single_use_records_do_not_survive_a_restart() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("routes.yaml");
    std::fs::write(
        &config,
        yaml(free_port(), up.addr.port(), None, DEFAULT_PARTICIPANTS),
    )
    .expect("config");
    let (mut rg, mut browser) = serve(&config).await;
    let (location, _) = return_state_and_code(&mut browser).await;
    let r = browser.start(&location).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "replayed in the same process"
    );
    rg.stop().await;

    let (mut rg, mut browser) = serve(&config).await;
    let r = browser.start(&location).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a new process has no record of it"
    );
    rg.stop().await;
}

/// Security property (issue 17, finding 2): password checks run at most one per CPU at
/// once; a sign-in form posted while every slot is busy gets 429 `rate_limited` with
/// `Retry-After: 1` at once, instead of another argon2 computation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_beyond_one_per_cpu_at_once_are_refused_with_429() {
    let up = Upstream::start().await;
    // A hash that takes a while, so the posts overlap: argon2's default costs.
    let slow = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("params");
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"roomgate-test-salt").expect("salt");
        a.hash_password(PASSWORD.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    };
    let fast = hash(PASSWORD);
    let (rg, _) = common::start_on_free_port(|port| {
        yaml(port, up.addr.port(), None, DEFAULT_PARTICIPANTS).replace(&fast, &slow)
    })
    .await;
    let addr = rg.bound.http.expect("http");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let posts = cpus + 4;
    // One browser (one flow) per post; the forms are fetched first, then posted at once.
    let mut browsers = Vec::new();
    for _ in 0..posts {
        let mut b = Browser::new(addr);
        let r = b.visit("app.acme.test", "/").await;
        let r = b.start(&location(&r)).await;
        let flow = hidden(&r, "flow").expect("flow");
        browsers.push((b, flow));
    }
    let replies = futures_util::future::join_all(
        browsers
            .iter_mut()
            .map(|(b, flow)| b.login(flow, "alice@acme.test", "wrong password")),
    )
    .await;
    let refused: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    // A wrong password is checked and answered with the form again (401).
    let checked = replies
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    assert!(!refused.is_empty(), "{posts} posts at once, none refused");
    assert!(checked >= 1, "at least one post is checked");
    assert_eq!(refused.len() + checked, posts);
    for r in refused {
        assert_eq!(r.json()["error"], "rate_limited");
        assert_eq!(r.headers["retry-after"], "1");
    }
}
