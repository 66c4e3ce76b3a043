//! Embed sessions end to end against the running proxy: management keys, the session
//! API, the launch, embed mode's rules, revocation, rate limits and quotas, and the
//! identity assertion, in embedded mode and on a real `redis-server` (two instances on
//! one Redis for revocation and shared limits).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::embed::{self as e, App, Setup};
use common::redis::RedisServer;
use common::*;
use roomgate::embed::keys;

const LISTEN: &str = "  http: 127.0.0.1:0\n  admin: 127.0.0.1:0";

fn cookie_of(r: &Reply) -> String {
    let sc = r
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie");
    let (pair, _) = sc.split_once(';').expect("attributes");
    let (name, value) = pair.split_once('=').expect("cookie pair");
    assert_eq!(name, "__Host-roomgate_embed");
    value.to_owned()
}

fn csp(r: &Reply) -> String {
    r.headers
        .get_all("content-security-policy")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn at(addr: SocketAddr, method: &str, host: &str, path: &str, h: &[(&str, &str)]) -> Reply {
    send(addr, method, host, path, h, b"{}").await
}

/// Create a management key for `rooms` in the store `config` names.
async fn key_for(config_yaml: &str, rooms: &[&str]) -> String {
    let config = config(config_yaml, &[]);
    let store = keys::store(&config).expect("store");
    let rooms: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
    let (_, raw) = keys::create(
        &*store,
        &config,
        "backend",
        &rooms,
        roomgate::state::system_clock(),
    )
    .await
    .expect("create key");
    raw
}

/// The assertion in what the service saw, verified with the JWKS served on the route
/// domain; its claims.
async fn verified_assertion(addr: SocketAddr, echo: &serde_json::Value) -> serde_json::Value {
    let jwt = echo["headers"]["x-meshagent-assertion"]
        .as_str()
        .expect("an assertion");
    let jwks = get(addr, "app.acme.test", "/.roomgate/jwks.json", &[]).await;
    assert_eq!(jwks.status, 200);
    let jwks = jwks.json();
    let kid = jsonwebtoken::decode_header(jwt)
        .expect("header")
        .kid
        .expect("kid");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap(),
    )
    .expect("jwk");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["app.acme.test"]);
    jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &v)
        .expect("the assertion verifies")
        .claims
}

/// The whole runtime in embedded mode (no Redis): mint, a single-use launch that sets the
/// partitioned cookie, cookie GETs, token calls, the rules of embed mode, refresh,
/// revocation, and the port's usual method outside embed mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_launch_runtime_refresh_and_revocation() {
    let app = App::start().await;
    let other = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("keys.json");
    let akey = e::assertion_key(dir.path(), "assertion-es256.pem");
    let yaml = e::yaml(&Setup {
        listen: LISTEN,
        redis: None,
        app: app.addr.port(),
        other: other.addr.port(),
        keys_file: &keys_file,
        assertion_key: &akey,
    });
    let key = key_for(&yaml, &["acme"]).await;
    let rg = start(&yaml).await;
    let addr = rg.bound.http.unwrap();
    let port = addr.port();

    let minted = e::mint(addr, &key).await;
    let sid = minted["session_id"].as_str().unwrap().to_owned();
    let token = minted["access_token"].as_str().unwrap().to_owned();
    let launch_url = minted["launch_url"].as_str().unwrap();
    assert!(sid.starts_with("es_"));
    assert!(token.starts_with("mtok_"));
    assert!(
        launch_url.starts_with(&format!(
            "http://app.acme.test:{port}/.roomgate/embed/launch?c="
        )),
        "{launch_url}"
    );
    assert!(
        !launch_url.contains(&token[5..]),
        "no token in the launch URL"
    );
    assert!(minted["expires_at"].as_str().unwrap().ends_with('Z'));

    // Launch: 303 to the path, the cookie with every attribute, used once.
    let target = e::launch_target(launch_url);
    let launched = get(addr, "app.acme.test", &target, &[]).await;
    assert_eq!(launched.status, 303);
    assert_eq!(launched.headers["location"], "/app");
    let sc = launched.headers["set-cookie"].to_str().unwrap().to_owned();
    for attr in [
        "Secure",
        "HttpOnly",
        "SameSite=None",
        "Partitioned",
        "Path=/",
    ] {
        assert!(sc.contains(attr), "{attr} in {sc}");
    }
    assert!(!sc.contains("Domain"), "host-only: {sc}");
    assert_eq!(csp(&launched), "frame-ancestors https://host.test:8443");
    let cookie = format!("__Host-roomgate_embed={}", cookie_of(&launched));
    let again = get(addr, "app.acme.test", &target, &[]).await;
    assert_eq!(
        (again.status.as_u16(), again.error_code().as_str()),
        (401, "invalid_token")
    );

    // The cookie admits GET: the service sees the embed identity and no credential; the
    // response may be framed by the allowed origin only.
    let page = get(
        addr,
        "app.acme.test",
        "/page",
        &[
            ("cookie", &format!("theme=dark; {cookie}")),
            ("x-meshagent-assertion", "forged"),
        ],
    )
    .await;
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    let echo = page.json();
    assert_eq!(echo["headers"]["x-meshagent-user"], "cust-42");
    assert_eq!(echo["headers"]["x-meshagent-api-scope"], r#"{"queues":{}}"#);
    assert_eq!(echo["headers"]["x-meshagent-embed-session"], sid.as_str());
    assert_eq!(echo["headers"]["cookie"], "theme=dark");
    assert_eq!(csp(&page), "frame-ancestors https://host.test:8443");
    assert!(page.headers.get("x-frame-options").is_none());
    let claims = verified_assertion(addr, &echo).await;
    assert_eq!(claims["sub"], "cust-42");
    // The route's origin as the client named it (Host without a port here).
    assert_eq!(claims["iss"], "http://app.acme.test");
    assert_eq!(claims["room"], "acme");
    assert_eq!(claims["api"], serde_json::json!({"queues": {}}));

    // Any other method needs the token.
    let post = at(
        addr,
        "POST",
        "app.acme.test",
        "/api",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(
        (post.status.as_u16(), post.error_code().as_str()),
        (401, "missing_auth")
    );
    assert_eq!(csp(&post), "frame-ancestors 'none'");
    let post = at(
        addr,
        "POST",
        "app.acme.test",
        "/api",
        &[("x-roomgate-embed-token", &token)],
    )
    .await;
    assert_eq!(post.status, 200);
    assert!(post.json()["headers"]
        .get("x-roomgate-embed-token")
        .is_none());
    let bearer = format!("Bearer {token}");
    let post = at(
        addr,
        "PUT",
        "app.acme.test",
        "/api",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(post.status, 200);
    assert!(post.json()["headers"].get("authorization").is_none());

    // No fallback: another Authorization in embed mode is refused.
    let participant = format!("Bearer {}", token_for("alice"));
    let mixed = at(
        addr,
        "POST",
        "app.acme.test",
        "/api",
        &[
            ("x-roomgate-embed-token", &token),
            ("authorization", &participant),
        ],
    )
    .await;
    assert_eq!(
        (mixed.status.as_u16(), mixed.error_code().as_str()),
        (401, "invalid_token")
    );
    let mixed = get(
        addr,
        "app.acme.test",
        "/page",
        &[("cookie", &cookie), ("authorization", &participant)],
    )
    .await;
    assert_eq!(mixed.status, 401);

    // Origins: the allowed one and the route's own pass; any other is 403.
    let own = "http://app.acme.test".to_owned();
    for (origin, status) in [
        ("https://host.test:8443", 200),
        (own.as_str(), 200),
        ("https://evil.test", 403),
        ("null", 403),
    ] {
        let r = at(
            addr,
            "POST",
            "app.acme.test",
            "/api",
            &[("x-roomgate-embed-token", &token), ("origin", origin)],
        )
        .await;
        assert_eq!(r.status, status, "{origin}");
        if status == 403 {
            assert_eq!(r.error_code(), "forbidden_origin");
            assert_eq!(csp(&r), "frame-ancestors https://host.test:8443");
        }
    }

    // The session works on its own room and domain only.
    let elsewhere = at(
        addr,
        "POST",
        "other.test",
        "/api",
        &[("x-roomgate-embed-token", &token)],
    )
    .await;
    assert_eq!(
        (elsewhere.status.as_u16(), elsewhere.error_code().as_str()),
        (403, "forbidden")
    );

    // Outside embed mode the port's usual method (participant tokens) applies.
    let usual = get(
        addr,
        "app.acme.test",
        "/page",
        &[("authorization", &participant)],
    )
    .await;
    assert_eq!(usual.status, 200);
    assert_eq!(
        usual.echoed_header("x-meshagent-user").as_deref(),
        Some("alice")
    );
    assert!(usual.headers.get("content-security-policy").is_none());
    assert_eq!(
        get(addr, "app.acme.test", "/page", &[]).await.error_code(),
        "missing_auth"
    );

    // Rate limit in embedded mode: 3 per minute per caller.
    for remaining in ["2", "1", "0"] {
        let r = get(addr, "app.acme.test", "/limited", &[("cookie", &cookie)]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["ratelimit-limit"], "3");
        assert_eq!(r.headers["ratelimit-remaining"], remaining);
    }
    let over = get(addr, "app.acme.test", "/limited", &[("cookie", &cookie)]).await;
    assert_eq!(
        (over.status.as_u16(), over.error_code().as_str()),
        (429, "rate_limited")
    );
    assert!(
        over.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );

    // Refresh, then revoke: every token and the cookie stop at once.
    let refreshed = send(
        addr,
        "POST",
        "app.acme.test",
        &format!("/.roomgate/api/v1/embed/sessions/{sid}/tokens"),
        &[("authorization", &format!("Bearer {key}"))],
        b"",
    )
    .await;
    assert_eq!(refreshed.status, 201);
    let fresh = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, token);
    let r = at(
        addr,
        "POST",
        "app.acme.test",
        "/api",
        &[("x-roomgate-embed-token", &fresh)],
    )
    .await;
    assert_eq!(r.status, 200);
    let revoked = send(
        addr,
        "DELETE",
        "app.acme.test",
        &format!("/.roomgate/api/v1/embed/sessions/{sid}"),
        &[("authorization", &format!("Bearer {key}"))],
        b"",
    )
    .await;
    assert_eq!(revoked.status, 204);
    for t in [&token, &fresh] {
        let r = at(
            addr,
            "POST",
            "app.acme.test",
            "/api",
            &[("x-roomgate-embed-token", t)],
        )
        .await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (401, "invalid_token")
        );
    }
    let r = get(addr, "app.acme.test", "/page", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, 401);
    let late = send(
        addr,
        "POST",
        "app.acme.test",
        &format!("/.roomgate/api/v1/embed/sessions/{sid}/tokens"),
        &[("authorization", &format!("Bearer {key}"))],
        b"",
    )
    .await;
    assert_eq!(
        (late.status.as_u16(), late.error_code().as_str()),
        (400, "invalid_request")
    );
}

/// Every bad management call is a JSON error with a clear code, and none of them
/// creates anything in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_management_calls_are_clear_errors_and_create_nothing() {
    let redis = RedisServer::start();
    let app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let akey = e::assertion_key(dir.path(), "assertion-es256.pem");
    let yaml = e::yaml(&Setup {
        listen: LISTEN,
        redis: Some(&redis.url()),
        app: app.addr.port(),
        other: app.addr.port(),
        keys_file: &dir.path().join("unused.json"),
        assertion_key: &akey,
    });
    let key = key_for(&yaml, &["acme"]).await;
    let other_key = key_for(&yaml, &["other"]).await;
    let rg = start(&yaml).await;
    let addr = rg.bound.http.unwrap();
    let dbsize = || redis.cli(&["DBSIZE"]).trim().to_owned();
    let before = dbsize();
    assert_eq!(before, "1", "the keys hash only");

    let good = serde_json::json!({
        "room": "acme", "domain": "app.acme.test", "user": "u",
        "allowed_origins": ["https://host.test"], "ttl": "10m",
    });
    let with = |field: &str, value: serde_json::Value| {
        let mut b = good.clone();
        b[field] = value;
        b.to_string()
    };
    let big = format!("{{\"room\":\"acme\",\"user\":\"{}\"}}", "x".repeat(20_000));
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "malformed JSON",
            "{\"room\": ".into(),
            400,
            "invalid_request",
        ),
        ("not an object", "[1,2]".into(), 400, "invalid_request"),
        ("oversized body", big, 413, "payload_too_large"),
        (
            "unknown field",
            with("admin", true.into()),
            400,
            "invalid_request",
        ),
        (
            "origin with a path",
            with(
                "allowed_origins",
                serde_json::json!(["https://host.test/app"]),
            ),
            400,
            "invalid_request",
        ),
        (
            "wildcard origin",
            with(
                "allowed_origins",
                serde_json::json!(["https://*.host.test"]),
            ),
            400,
            "invalid_request",
        ),
        (
            "bare wildcard",
            with("allowed_origins", serde_json::json!(["*"])),
            400,
            "invalid_request",
        ),
        (
            "no origin",
            with("allowed_origins", serde_json::json!([])),
            400,
            "invalid_request",
        ),
        (
            "negative ttl",
            with("ttl", "-1s".into()),
            400,
            "invalid_request",
        ),
        (
            "ttl over session_ttl",
            with("ttl", "100y".into()),
            400,
            "invalid_request",
        ),
        ("zero ttl", with("ttl", "0s".into()), 400, "invalid_request"),
        (
            "unknown domain",
            with("domain", "nope.test".into()),
            400,
            "invalid_request",
        ),
        (
            "another room's domain",
            with("domain", "other.test".into()),
            400,
            "invalid_request",
        ),
        (
            "api not an object",
            with("api", serde_json::json!([1])),
            400,
            "invalid_request",
        ),
        (
            "path elsewhere",
            with("path", "//evil.test/x".into()),
            400,
            "invalid_request",
        ),
    ];
    for (what, body, status, code) in &cases {
        let r = e::mint_raw(addr, &key, body).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (*status, *code),
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            !r.json()["message"].as_str().unwrap_or("").is_empty(),
            "{what}"
        );
    }
    let msg = e::mint_raw(addr, &key, &with("ttl", "100y".into()))
        .await
        .json();
    assert!(
        msg["message"].as_str().unwrap().contains("session_ttl"),
        "{msg}"
    );

    // Credentials: missing, in the URL only, the wrong kind, unknown, another room's.
    let path = "/.roomgate/api/v1/embed/sessions";
    let body = good.to_string();
    let r = send(addr, "POST", "app.acme.test", path, &[], body.as_bytes()).await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (401, "missing_auth")
    );
    let in_url = format!("{path}?access_token={key}");
    let r = send(addr, "POST", "app.acme.test", &in_url, &[], body.as_bytes()).await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (401, "missing_auth")
    );
    let minted = e::mint(addr, &key).await;
    let token = minted["access_token"].as_str().unwrap();
    let after_one = dbsize();
    for bad in [
        token,
        "mk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "mk_short",
    ] {
        let r = e::mint_raw(addr, bad, &body).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code().as_str()),
            (401, "invalid_token"),
            "{bad}"
        );
    }
    let r = e::mint_raw(addr, &other_key, &body).await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (403, "forbidden")
    );
    let sid = minted["session_id"].as_str().unwrap();
    let r = send(
        addr,
        "DELETE",
        "app.acme.test",
        &format!("{path}/{sid}"),
        &[("authorization", &format!("Bearer {other_key}"))],
        b"",
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (403, "forbidden")
    );
    let r = send(
        addr,
        "POST",
        "app.acme.test",
        &format!("{path}/{sid}/tokens"),
        &[("authorization", &format!("Bearer {key}"))],
        b"{\"ttl\":\"1h\"}",
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (400, "invalid_request")
    );
    let r = send(
        addr,
        "GET",
        "app.acme.test",
        path,
        &[("authorization", &format!("Bearer {key}"))],
        b"",
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code().as_str()),
        (405, "method_not_allowed")
    );
    assert_eq!(dbsize(), after_one, "no bad call created anything");
    assert_eq!(before, "1");
}

async fn three_keys(redis: &RedisServer) -> Vec<String> {
    let out = redis.cli(&["--scan", "--pattern", "roomgate:limit:*"]);
    out.lines().map(str::to_owned).collect()
}

/// Two instances on one Redis: a session revoked through one stops working on the other
/// within a second; rate limits and quotas are shared; a 5xx gives the quota unit back;
/// requests roomgate refuses are not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_revocation_rate_limits_and_quotas() {
    let redis = RedisServer::start();
    let app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let akey = e::assertion_key(dir.path(), "assertion-es256.pem");
    let yaml = e::yaml(&Setup {
        listen: LISTEN,
        redis: Some(&redis.url()),
        app: app.addr.port(),
        other: app.addr.port(),
        keys_file: &dir.path().join("unused.json"),
        assertion_key: &akey,
    });
    let key = key_for(&yaml, &["acme"]).await;
    let a = start(&yaml).await;
    let b = start(&yaml).await;
    let (a, b) = (a.bound.http.unwrap(), b.bound.http.unwrap());

    let minted = e::mint(a, &key).await;
    let token = minted["access_token"].as_str().unwrap().to_owned();
    let sid = minted["session_id"].as_str().unwrap().to_owned();
    let launched = get(
        b,
        "app.acme.test",
        &e::launch_target(minted["launch_url"].as_str().unwrap()),
        &[],
    )
    .await;
    assert_eq!(
        launched.status, 303,
        "a launch minted on one instance works on another"
    );
    let cookie = format!("__Host-roomgate_embed={}", cookie_of(&launched));
    let call = |addr, t: String| async move {
        at(
            addr,
            "POST",
            "app.acme.test",
            "/api",
            &[("x-roomgate-embed-token", &t)],
        )
        .await
        .status
    };
    assert_eq!(call(a, token.clone()).await, 200);
    assert_eq!(
        call(b, token.clone()).await,
        200,
        "b now holds the session in its cache"
    );
    assert_eq!(
        get(b, "app.acme.test", "/page", &[("cookie", &cookie)])
            .await
            .status,
        200
    );
    let revoked_at = Instant::now();
    let r = send(
        a,
        "DELETE",
        "app.acme.test",
        &format!("/.roomgate/api/v1/embed/sessions/{sid}"),
        &[("authorization", &format!("Bearer {key}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    // Each credential's lookup is cached on its own, so each is refused once its own
    // cached lookup expires: both within the second.
    process::eventually("revocation on the other instance", || {
        let t = token.clone();
        let cookie = cookie.clone();
        async move {
            let by_token = call(b, t).await;
            let by_cookie = get(b, "app.acme.test", "/page", &[("cookie", &cookie)])
                .await
                .status;
            (by_token == 401 && by_cookie == 401).then_some(())
        }
    })
    .await;
    let took = revoked_at.elapsed();
    assert!(took <= Duration::from_secs(1), "revocation took {took:?}");

    // A rate limit of 3 per minute, shared: two calls on a, one on b, then b refuses.
    let alice = format!("Bearer {}", token_for("alice"));
    let bob = format!("Bearer {}", token_for("bob"));
    for (addr, remaining) in [(a, "2"), (a, "1"), (b, "0")] {
        let r = get(
            addr,
            "app.acme.test",
            "/limited",
            &[("authorization", &alice)],
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["ratelimit-remaining"], remaining);
    }
    let over = get(b, "app.acme.test", "/limited", &[("authorization", &alice)]).await;
    assert_eq!(
        (over.status.as_u16(), over.error_code().as_str()),
        (429, "rate_limited")
    );
    assert_eq!(over.headers["ratelimit-remaining"], "0");
    let retry: u64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    let reset: u64 = over.headers["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((40..=60).contains(&reset), "{reset}");
    assert_eq!(
        get(a, "app.acme.test", "/limited", &[("authorization", &bob)])
            .await
            .status,
        200,
        "per caller"
    );

    // Refused by roomgate itself: not counted.
    for _ in 0..4 {
        assert_eq!(get(a, "app.acme.test", "/quota", &[]).await.status, 401);
    }
    // A daily quota of 2, shared.
    assert_eq!(
        get(a, "app.acme.test", "/quota", &[("authorization", &alice)])
            .await
            .status,
        200
    );
    assert_eq!(
        get(b, "app.acme.test", "/quota", &[("authorization", &alice)])
            .await
            .status,
        200
    );
    let over = get(a, "app.acme.test", "/quota", &[("authorization", &alice)]).await;
    assert_eq!(
        (over.status.as_u16(), over.error_code().as_str()),
        (429, "quota_exceeded")
    );
    let retry: u64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let midnight = roomgate::ratelimit::until_midnight(roomgate::state::system_clock());
    assert!(
        retry <= 86_400 && retry + 5 >= midnight,
        "{retry} vs {midnight}"
    );

    // 5xx answers are refunded: five failing calls against a quota of two all reach
    // the service.
    let before = app.hits();
    for i in 0..5 {
        let r = get(
            if i % 2 == 0 { a } else { b },
            "app.acme.test",
            "/fail",
            &[("authorization", &alice)],
        )
        .await;
        assert_eq!(r.status, 500, "call {i}");
        process::eventually("the refund", || async {
            let keys = three_keys(&redis).await;
            let counts: Vec<String> = keys
                .iter()
                .filter(|k| k.contains(":quota:"))
                .map(|k| redis.cli(&["GET", k]).trim().to_owned())
                .collect();
            // One quota counter is used up (/quota); the /fail one is back at zero.
            counts.iter().any(|c| c == "0").then_some(())
        })
        .await;
    }
    assert_eq!(app.hits() - before, 5);
    for k in three_keys(&redis).await {
        assert!(k.contains('{') && k.contains('}'), "hash tag in {k}");
    }
}

fn token_for(name: &str) -> String {
    token("acme", name, None)
}

/// Storage and logs: after a whole session's life through the real binary (keys made
/// and revoked by the CLI), no raw management key, access token, launch code or cookie
/// value is anywhere in Redis (every key name and value dumped) or in the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_logs_hold_no_raw_credentials() {
    let redis = RedisServer::start();
    let app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let akey = e::assertion_key(dir.path(), "assertion-es256.pem");
    let yaml = e::yaml(&Setup {
        listen: LISTEN,
        redis: Some(&redis.url()),
        app: app.addr.port(),
        other: app.addr.port(),
        keys_file: &dir.path().join("unused.json"),
        assertion_key: &akey,
    });
    let config_path = dir.path().join("routes.yaml");
    std::fs::write(&config_path, &yaml).unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .arg("keys")
            .args(args)
            .arg("--config")
            .arg(&config_path)
            .output()
            .expect("run roomgate keys");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["create", "--name", "backend", "--room", "acme"]);
    assert_eq!(code, Some(0), "{err}");
    let key = out.trim().to_owned();
    assert!(key.starts_with("mk_") && out.lines().count() == 1, "{out}");
    let (_, second, _) = cli(&["create", "--name", "spare", "--room", "acme"]);
    let (code, _, err) = cli(&["create", "--name", "x", "--room", "nope"]);
    assert_eq!(code, Some(1), "{err}");

    let mut proc = process::Proc::serve(&config_path, &[]);
    let addr = proc.addr("http").await;
    let minted = e::mint(addr, &key).await;
    let token = minted["access_token"].as_str().unwrap().to_owned();
    let sid = minted["session_id"].as_str().unwrap().to_owned();
    let target = e::launch_target(minted["launch_url"].as_str().unwrap());
    let launched = get(addr, "app.acme.test", &target, &[]).await;
    let cookie_value = cookie_of(&launched);
    let cookie = format!("__Host-roomgate_embed={cookie_value}");
    assert_eq!(
        get(addr, "app.acme.test", "/page", &[("cookie", &cookie)])
            .await
            .status,
        200
    );
    assert_eq!(
        get(addr, "app.acme.test", &format!("/page?token={token}"), &[])
            .await
            .status,
        401
    );
    let r = at(
        addr,
        "POST",
        "app.acme.test",
        "/api",
        &[("x-roomgate-embed-token", &token)],
    )
    .await;
    assert_eq!(r.status, 200);
    let refreshed = send(
        addr,
        "POST",
        "app.acme.test",
        &format!("/.roomgate/api/v1/embed/sessions/{sid}/tokens"),
        &[("authorization", &format!("Bearer {key}"))],
        b"",
    )
    .await;
    let fresh = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, listed, _) = cli(&["list"]);
    assert_eq!(code, Some(0));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed
            .lines()
            .any(|l| l.contains("\tbackend\tacme\t") && !l.ends_with("\t-")),
        "last use recorded: {listed}"
    );
    let id = listed
        .lines()
        .find(|l| l.contains("\tspare\t"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(cli(&["revoke", "--id", &id]).0, Some(0));
    assert_eq!(cli(&["revoke", "--id", &id]).0, Some(1));
    let r = e::mint_raw(addr, second.trim(), "{}").await;
    assert_eq!(r.error_code(), "invalid_token", "a revoked key is refused");

    let code = target.split("c=").nth(1).unwrap().to_owned();
    let secrets: Vec<(&str, String)> = vec![
        ("management key", key[3..].to_owned()),
        ("revoked key", second.trim()[3..].to_owned()),
        ("token", token.split('.').nth(1).unwrap().to_owned()),
        (
            "refreshed token",
            fresh.split('.').nth(1).unwrap().to_owned(),
        ),
        ("launch code", code.split('.').nth(1).unwrap().to_owned()),
        ("cookie", cookie_value.split('.').nth(1).unwrap().to_owned()),
    ];
    let mut dump = String::new();
    for k in redis.cli(&["--scan"]).lines() {
        dump.push_str(k);
        dump.push('\n');
        let kind = redis.cli(&["TYPE", k]);
        let value = match kind.trim() {
            "string" => redis.cli(&["GET", k]),
            "hash" => redis.cli(&["HGETALL", k]),
            other => panic!("unexpected {other} at {k}"),
        };
        dump.push_str(&value);
        dump.push_str(&redis.cli(&["DUMP", k]));
    }
    assert!(dump.contains(&sid), "the dump is of the session's keys");
    for (what, secret) in &secrets {
        assert!(!dump.contains(secret.as_str()), "{what} in Redis");
    }
    assert!(!dump.contains("mk_") && !dump.contains("mtok_"));
    proc.stop().await;
    let log = proc.log().join("\n");
    assert!(log.contains("embed session minted"), "{log}");
    for (what, secret) in &secrets {
        assert!(!log.contains(secret.as_str()), "{what} in the log");
    }
    assert!(!log.contains("mk_") && !log.contains("mtok_"));
}
