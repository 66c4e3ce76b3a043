//! Webhook ingestion end to end: real roomgate, real redis-server, signatures made by the
//! providers' official SDKs (Python and npm), room secrets changed through the CLI.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::upstream::Upstream;
use common::{send, Reply};
use hmac::{Hmac, Mac};
use http::StatusCode;
use sha2::Sha256;

const HOST: &str = "hooks.acme.test";
const GH_SECRET: &str = "gh-secret-value";
const STRIPE_SECRET: &str = "whsec_stripe_test_secret_value";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TWILIO_SECRET: &str = "12345678901234567890123456789012";
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WA_SECRET: &str = "meta-app-secret";
const WA_VERIFY: &str = "meta-verify-token";
const TG_TOKEN: &str = "tg-bot-secret-token";

type Entry = (String, Vec<(String, Vec<u8>)>);

struct Env {
    rg: roomgate::server::Running,
    upstream: Upstream,
    redis: Option<RedisServer>,
    dir: tempfile::TempDir,
    config_path: PathBuf,
}

fn endpoint(path: &str, method: &str, secret: &str, queue: Option<&str>) -> String {
    let mut s = format!(
        "              - path: {path}\n                annotations:\n                  meshagent.request.validation.method: {method}\n                  meshagent.request.validation.secret: {secret}\n                  meshagent.request.processor: webhook-worker\n"
    );
    if let Some(q) = queue {
        s.push_str(&format!("                  meshagent.request.queue: {q}\n"));
    }
    s
}

fn secrets_file(dir: &Path) -> PathBuf {
    let path = dir.join("secrets.yaml");
    let yaml = format!(
        "rooms:\n  acme:\n    webhook-worker:\n      gh: {{value: \"{GH_SECRET}\"}}\n      stripe: {{value: \"{STRIPE_SECRET}\"}}\n      slack: {{value: \"{SLACK_SECRET}\"}}\n      twilio: {{value: \"{TWILIO_SECRET}\"}}\n      sw: {{value: \"{SW_SECRET}\"}}\n      wa: {{value: \"{WA_SECRET}\"}}\n      wa-verify: {{value: \"{WA_VERIFY}\"}}\n      tg: {{value: \"{TG_TOKEN}\"}}\n      tg-empty: {{file: tg-empty.txt}}\n      gl-empty: {{value: \"\"}}\n"
    );
    std::fs::write(&path, yaml).unwrap();
    // A secret file left holding only a newline.
    std::fs::write(dir.join("tg-empty.txt"), "\n").unwrap();
    path
}

fn yaml(up: u16, redis: Option<&RedisServer>, secrets: &Path) -> String {
    let redis_block = redis
        .map(|r| format!("redis:\n  url: {{value: \"{}\"}}\n", r.url()))
        .unwrap_or_default();
    let mut endpoints = String::new();
    endpoints += &endpoint("/gh", "github", "gh", Some("github-events"));
    endpoints += &endpoint("/gh-forward", "github", "gh", None);
    endpoints += &endpoint("/stripe", "stripe", "stripe", Some("stripe-events"));
    endpoints += &endpoint("/slack", "slack", "slack", Some("slack-events"));
    endpoints += &endpoint("/twilio", "twilio", "twilio", Some("twilio-events"));
    endpoints += &endpoint("/sw", "standard-webhooks", "sw", Some("sw-events"));
    endpoints += &endpoint("/svix", "svix", "sw", Some("sw-events"));
    endpoints += &endpoint("/whatsapp", "whatsapp", "wa", Some("wa-events"));
    endpoints += "                  meshagent.request.validation.challenge_secret: wa-verify\n";
    endpoints += &endpoint("/unconfigured", "github", "nope", Some("github-events"));
    endpoints += &endpoint("/tg", "telegram", "tg", Some("tg-events"));
    endpoints += &endpoint("/tg-empty", "telegram", "tg-empty", Some("tg-events"));
    endpoints += &endpoint("/tg-empty-forward", "telegram", "tg-empty", None);
    endpoints += &endpoint("/gl-empty", "gitlab", "gl-empty", Some("gl-events"));
    format!(
        r#"version: v1
listen: {{http: 127.0.0.1:0, admin: 127.0.0.1:0}}
{redis_block}secrets:
  backend: file
  file: {secrets}
  cache_ttl: 100ms
limits:
  max_body_bytes: 4096
rooms:
  - name: acme
    services:
      - name: hooks
        ports:
          - num: {up}
            published: true
            public: true
            endpoints:
{endpoints}routes:
  - {{domain: {HOST}, room: acme, port: {up}}}
"#,
        secrets = secrets.display()
    )
}

async fn setup(with_redis: Option<RedisServer>) -> Env {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = secrets_file(dir.path());
    let text = yaml(upstream.addr.port(), with_redis.as_ref(), &secrets);
    let config_path = dir.path().join("routes.yaml");
    std::fs::write(&config_path, &text).unwrap();
    let rg = common::start(&text).await;
    Env {
        rg,
        upstream,
        redis: with_redis,
        dir,
        config_path,
    }
}

fn github_sig(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(env: &Env, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    send(
        env.rg.bound.http.unwrap(),
        "POST",
        HOST,
        path,
        headers,
        body,
    )
    .await
}

async fn post_github(env: &Env, path: &str, delivery: &str, body: &[u8]) -> Reply {
    let sig = github_sig(GH_SECRET, body);
    post(
        env,
        path,
        &[
            ("x-hub-signature-256", &sig),
            ("x-github-delivery", delivery),
            ("x-github-event", "push"),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
}

async fn entries(redis: &RedisServer, queue: &str) -> Vec<Entry> {
    let mut c = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("XRANGE")
        .arg(format!("roomgate:queue:{{acme:{queue}}}"))
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap()
}

fn field<'a>(entry: &'a Entry, name: &str) -> &'a [u8] {
    &entry
        .1
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .1
}

fn field_str<'a>(entry: &'a Entry, name: &str) -> &'a str {
    std::str::from_utf8(field(entry, name)).unwrap()
}

#[tokio::test]
async fn a_verified_webhook_is_in_redis_with_the_design_fields_before_202() {
    let env = setup(Some(RedisServer::start())).await;
    let body = br#"{"ref":"refs/heads/main","pusher":{"name":"octocat"}}"#;
    let r = post_github(
        &env,
        "/gh?ignored=1",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        body,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let reply = r.json();
    assert_eq!(reply["status"], "accepted");
    assert_eq!(reply["queue"], "github-events");
    assert_eq!(reply["delivery_id"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");

    let redis = env.redis.as_ref().unwrap();
    let all = entries(redis, "github-events").await;
    assert_eq!(all.len(), 1);
    let e = &all[0];
    assert_eq!(reply["id"], e.0.as_str());
    let names: Vec<&str> = e.1.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "body",
            "content_type",
            "delivery_id",
            "headers",
            "host",
            "method",
            "path",
            "processor",
            "provider",
            "queue",
            "received_at",
            "room"
        ]
    );
    assert_eq!(field(e, "body"), body);
    assert_eq!(field_str(e, "content_type"), "application/json");
    assert_eq!(field_str(e, "method"), "POST");
    assert_eq!(field_str(e, "host"), HOST);
    assert_eq!(field_str(e, "path"), "/gh");
    assert_eq!(field_str(e, "room"), "acme");
    assert_eq!(field_str(e, "queue"), "github-events");
    assert_eq!(field_str(e, "processor"), "webhook-worker");
    assert_eq!(field_str(e, "provider"), "github");
    assert_eq!(
        field_str(e, "delivery_id"),
        "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    );
    assert!(field_str(e, "received_at").ends_with('Z'));
    let headers: serde_json::Value = serde_json::from_slice(field(e, "headers")).unwrap();
    assert_eq!(headers["x-github-event"], "push");
    // What roomgate saw of the hop, as a forwarded request would carry it.
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], HOST);
    assert_eq!(
        env.upstream.requests(),
        0,
        "queued webhooks are not forwarded"
    );
}

#[tokio::test]
async fn a_redelivery_is_acknowledged_again_without_a_duplicate() {
    let env = setup(Some(RedisServer::start())).await;
    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let first = post_github(&env, "/gh", "delivery-1", body).await;
    let again = post_github(&env, "/gh", "delivery-1", body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(first.json()["id"], again.json()["id"]);
    let other = post_github(&env, "/gh", "delivery-2", body).await;
    assert_eq!(other.status, StatusCode::ACCEPTED);
    assert_eq!(
        entries(env.redis.as_ref().unwrap(), "github-events")
            .await
            .len(),
        2
    );

    let out = Command::new(common::bin())
        .args([
            "queue",
            "stats",
            "--room",
            "acme",
            "--queue",
            "github-events",
            "--config",
        ])
        .arg(&env.config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["length"], 2);
    assert_eq!(stats["pending"], 0);
    assert_eq!(stats["stream"], "roomgate:queue:{acme:github-events}");
}

#[tokio::test]
async fn bad_signatures_are_rejected_with_their_codes_and_nothing_is_enqueued() {
    let env = setup(Some(RedisServer::start())).await;
    let body = br#"{"a":1}"#;
    let r = post(&env, "/gh", &[("content-type", "application/json")], body).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "missing_signature")
    );
    let wrong = github_sig("not-the-secret", body);
    let r = post(&env, "/gh", &[("x-hub-signature-256", &wrong)], body).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    let sig = github_sig(GH_SECRET, body);
    let r = post(&env, "/gh", &[("x-hub-signature-256", &sig)], br#"{"a":2}"#).await;
    assert_eq!(r.error_code(), "invalid_signature", "tampered body");
    // Slack signs its timestamp: ten minutes old is stale.
    let ts = (roomgate::state::system_clock() - 600).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SLACK_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let r = post(
        &env,
        "/slack",
        &[
            ("x-slack-request-timestamp", &ts),
            ("x-slack-signature", &sig),
        ],
        body,
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "stale_timestamp")
    );
    for q in ["github-events", "slack-events"] {
        assert!(entries(env.redis.as_ref().unwrap(), q).await.is_empty());
    }
}

#[tokio::test]
async fn limits_methods_and_missing_secrets_fail_cleanly() {
    let env = setup(Some(RedisServer::start())).await;
    let big = vec![b'x'; 5000];
    let r = post_github(&env, "/gh", "big", &big).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let r = send(env.rg.bound.http.unwrap(), "PUT", HOST, "/gh", &[], b"{}").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let r = post_github(&env, "/unconfigured", "d", b"{}").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "secret_unavailable")
    );
    assert!(r.headers.contains_key("retry-after"));
    assert!(entries(env.redis.as_ref().unwrap(), "github-events")
        .await
        .is_empty());
}

/// Security property: a room secret that is empty (a file holding only a newline, an empty
/// `{value}`) admits nobody — not even a request presenting an empty token: 503
/// `secret_unavailable`, nothing enqueued, nothing forwarded.
#[tokio::test]
async fn an_empty_room_secret_is_unavailable_and_admits_nothing() {
    let env = setup(Some(RedisServer::start())).await;
    let redis = env.redis.as_ref().unwrap();
    let body = br#"{"update_id":1}"#;
    let empty_token = [("x-telegram-bot-api-secret-token", "")];
    for path in ["/tg-empty", "/tg-empty-forward"] {
        let r = post(&env, path, &empty_token, body).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "secret_unavailable"),
            "{path}"
        );
    }
    let r = post(&env, "/gl-empty", &[("x-gitlab-token", "")], body).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "secret_unavailable")
    );
    assert!(entries(redis, "tg-events").await.is_empty());
    assert!(entries(redis, "gl-events").await.is_empty());
    assert_eq!(env.upstream.requests(), 0, "nothing reached the service");

    // The same provider with a real token is accepted, and its token is not stored.
    let r = post(
        &env,
        "/tg",
        &[
            ("x-telegram-bot-api-secret-token", TG_TOKEN),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let stored = entries(redis, "tg-events").await;
    assert_eq!(stored.len(), 1);
    let headers: serde_json::Value = serde_json::from_slice(field(&stored[0], "headers")).unwrap();
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("x-telegram-bot-api-secret-token").is_none());
}

/// Nothing is lost: while Redis is down every delivery gets a retryable 503, and every
/// delivery that got a 202 is in the stream.
#[tokio::test]
async fn redis_outage_gives_503_and_every_202_is_in_the_stream() {
    let env = setup(Some(RedisServer::start_persistent())).await;
    let mut accepted = 0;
    for i in 0..5 {
        let r = post_github(
            &env,
            "/gh",
            &format!("before-{i}"),
            format!("{{\"n\":{i}}}").as_bytes(),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        accepted += 1;
    }
    let mut env = env;
    env.redis.as_mut().unwrap().stop();
    for i in 0..3 {
        let started = Instant::now();
        let r = post_github(&env, "/gh", &format!("during-{i}"), b"{}").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable")
        );
        assert!(r.headers.contains_key("retry-after"));
        assert!(started.elapsed() < Duration::from_secs(5), "fails promptly");
    }
    env.redis.as_mut().unwrap().restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    while accepted < 10 {
        assert!(
            Instant::now() < deadline,
            "redis did not come back for roomgate"
        );
        let r = post_github(&env, "/gh", &format!("after-{i}"), b"{}").await;
        i += 1;
        if r.status == StatusCode::ACCEPTED {
            accepted += 1;
        } else {
            assert_eq!(r.error_code(), "queue_unavailable");
        }
    }
    assert_eq!(
        entries(env.redis.as_ref().unwrap(), "github-events")
            .await
            .len(),
        accepted
    );
}

#[tokio::test]
async fn without_a_queue_a_verified_webhook_is_forwarded_byte_for_byte() {
    let env = setup(Some(RedisServer::start())).await;
    let body = br#"{"action":"opened","number":1}"#;
    let r = post_github(&env, "/gh-forward", "fwd-1", body).await;
    assert_eq!(r.status, StatusCode::OK);
    let echo = r.json();
    assert_eq!(echo["body"], std::str::from_utf8(body).unwrap());
    assert_eq!(
        echo["headers"]["x-hub-signature-256"],
        github_sig(GH_SECRET, body).as_str()
    );
    assert_eq!(env.upstream.requests(), 1);
    let r = post(
        &env,
        "/gh-forward",
        &[("x-hub-signature-256", "sha256=00")],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        env.upstream.requests(),
        1,
        "an unverified body never reaches the service"
    );
}

#[tokio::test]
async fn provider_handshakes_are_answered_and_not_enqueued() {
    let env = setup(Some(RedisServer::start())).await;
    let body = br#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let ts = roomgate::state::system_clock().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SLACK_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let r = post(
        &env,
        "/slack",
        &[
            ("x-slack-request-timestamp", &ts),
            ("x-slack-signature", &sig),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.body)
        .contains("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"));

    let addr = env.rg.bound.http.unwrap();
    let q = format!(
        "/whatsapp?hub.mode=subscribe&hub.verify_token={WA_VERIFY}&hub.challenge=1158201444"
    );
    let r = common::get(addr, HOST, &q, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"1158201444");
    let r = common::get(
        addr,
        HOST,
        "/whatsapp?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let redis = env.redis.as_ref().unwrap();
    assert!(entries(redis, "slack-events").await.is_empty());
    assert!(entries(redis, "wa-events").await.is_empty());
}

#[tokio::test]
async fn embedded_mode_accepts_into_the_in_memory_queue() {
    let env = setup(None).await;
    let r = post_github(&env, "/gh", "embedded-1", b"{}").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let again = post_github(&env, "/gh", "embedded-1", b"{}").await;
    assert_eq!(r.json()["id"], again.json()["id"]);
}

/// Rotating a secret with `roomgate secrets set` takes effect without a restart.
#[tokio::test]
async fn a_secret_rotated_with_the_cli_is_picked_up_without_restart() {
    let env = setup(Some(RedisServer::start())).await;
    let new_secret = "rotated-gh-secret";
    let mut child = Command::new(common::bin())
        .args([
            "secrets",
            "set",
            "--room",
            "acme",
            "--identity",
            "webhook-worker",
            "--id",
            "gh",
            "--config",
        ])
        .arg(&env.config_path)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{new_secret}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on_disk = std::fs::read_to_string(env.dir.path().join("secrets.yaml")).unwrap();
    assert!(on_disk.contains(new_secret));

    let body = br#"{"rotated":true}"#;
    let sig = github_sig(new_secret, body);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = post(
            &env,
            "/gh",
            &[
                ("x-hub-signature-256", &sig),
                ("x-github-delivery", "rot-1"),
            ],
            body,
        )
        .await;
        if r.status == StatusCode::ACCEPTED {
            break;
        }
        assert_eq!(r.error_code(), "invalid_signature");
        assert!(
            Instant::now() < deadline,
            "the rotated secret was never picked up"
        );
        tokio::task::yield_now().await;
    }
    // The CLI lists ids, never values.
    let out = Command::new(common::bin())
        .args(["secrets", "list", "--room", "acme", "--config"])
        .arg(&env.config_path)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("webhook-worker\tgh"), "{listed}");
    assert!(!listed.contains(new_secret));
}

/// The redis secrets backend stores ciphertext: `redis-cli` never shows the value.
#[tokio::test]
async fn secrets_stored_in_redis_are_not_readable_as_plaintext() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [42u8; 32]);
    let config = format!(
        "version: v1\nlisten: {{http: 127.0.0.1:0}}\nredis: {{url: {{value: \"{}\"}}}}\nsecrets: {{backend: redis, key: {{value: \"{key}\"}}}}\nrooms: [{{name: acme}}]\n",
        redis.url()
    );
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, config).unwrap();
    let plaintext = "super-secret-signing-value-123";
    let mut child = Command::new(common::bin())
        .args([
            "secrets",
            "set",
            "--room",
            "acme",
            "--identity",
            "w",
            "--id",
            "gh",
            "--config",
        ])
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plaintext.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let dump = redis.cli(&["--no-raw", "HGETALL", "roomgate:secrets:{acme}"]);
    assert!(!dump.is_empty(), "the secret is stored");
    assert!(!dump.contains(plaintext), "{dump}");
    let keys = redis.cli(&["KEYS", "*"]);
    assert!(!keys.contains(plaintext));
}

fn python() -> String {
    std::env::var("ROOMGATE_TEST_PYTHON").unwrap_or_else(|_| {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/.cache/venv/bin/python");
        assert!(
            Path::new(p).exists(),
            "the SDK venv is missing: run `bash scripts/test.sh`, which installs it"
        );
        p.to_owned()
    })
}

fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().expect("signer runs");
    assert!(
        out.status.success(),
        "signer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("signer prints JSON")
}

/// Signatures made by the providers' official SDKs verify, and the exact bytes land in
/// Redis.
#[tokio::test]
async fn official_sdk_signatures_are_accepted_and_enqueued_byte_exact() {
    let env = setup(Some(RedisServer::start())).await;
    let redis = env.redis.as_ref().unwrap();
    let cases: [(&str, &str, &str, &str, &[u8]); 5] = [
        ("stripe", STRIPE_SECRET, "/stripe", "stripe-events", br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid"}"#),
        ("slack", SLACK_SECRET, "/slack", "slack-events", br#"{"type":"event_callback","event_id":"Ev0PV52K25","event":{"type":"app_mention","text":"hi \u00e9"}}"#),
        ("twilio", TWILIO_SECRET, "/twilio?foo=1&bar=2", "twilio-events", b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212"),
        ("standardwebhooks", SW_SECRET, "/sw", "sw-events", br#"{"type":"user.created","data":{"id":"u_1"}}"#),
        ("svix", SW_SECRET, "/svix", "sw-events", br#"{"type":"email.sent","data":{"id":"e_2"}}"#),
    ];
    for (provider, secret, path, queue, body) in cases {
        let body_file = env.dir.path().join(format!("{provider}.body"));
        std::fs::write(&body_file, body).unwrap();
        let url = format!("http://{HOST}{path}");
        let signed = run_json(
            Command::new(python())
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/sign.py"))
                .args([provider, secret])
                .arg(&body_file)
                .arg(&url),
        );
        let headers: Vec<(String, String)> = signed["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = post(&env, path, &h, body).await;
        assert_eq!(
            r.status,
            StatusCode::ACCEPTED,
            "{provider}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let stored = entries(redis, queue).await;
        let entry = stored
            .iter()
            .find(|e| e.0 == id)
            .expect("the entry is in the stream");
        assert_eq!(field(entry, "body"), body, "{provider}: exact bytes");
        assert_eq!(
            field_str(entry, "provider"),
            if provider == "svix" || provider == "standardwebhooks" {
                "standard-webhooks"
            } else {
                provider
            }
        );
    }

    let node_modules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/npm-webhooks/node_modules"
    );
    assert!(
        Path::new(node_modules).exists(),
        "npm signers missing: run `bash scripts/test.sh`, which installs them"
    );
    let body: &[u8] = br#"{"action":"created","comment":{"body":"LGTM \ud83d\ude80"}}"#;
    let body_file = env.dir.path().join("github.body");
    std::fs::write(&body_file, body).unwrap();
    let signed = run_json(
        Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/npm-webhooks/sign-github.mjs"
            ))
            .arg(GH_SECRET)
            .arg(&body_file),
    );
    let sig = signed["headers"]["X-Hub-Signature-256"].as_str().unwrap();
    let r = post(
        &env,
        "/gh",
        &[
            ("x-hub-signature-256", sig),
            ("x-github-delivery", "octokit-1"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let stored = entries(redis, "github-events").await;
    assert_eq!(field(&stored[0], "body"), body);
}

/// A Square notification signed over `signed_url`, sent with the forwarding claims of a
/// proxy that was called at `https://hooks.public.test`.
async fn post_square(rg: &roomgate::server::Running, signed_url: &str) -> Reply {
    use base64::Engine as _;
    let body = br#"{"type":"payment.updated","event_id":"e-1"}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(b"square-signature-key").unwrap();
    mac.update(signed_url.as_bytes());
    mac.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let headers = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "hooks.public.test"),
        ("x-square-hmacsha256-signature", sig.as_str()),
    ];
    send(
        rg.bound.http.unwrap(),
        "POST",
        HOST,
        "/square?x=1",
        &headers,
        body,
    )
    .await
}

/// Square signs the notification URL as it called it. Behind a trusted proxy that is the
/// proxy's URL (`X-Forwarded-Proto` and `-Host`); from any other peer those headers are
/// not believed, and only the URL roomgate itself was called at verifies.
#[tokio::test]
async fn a_signed_url_is_the_one_a_trusted_proxy_was_called_at() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.yaml");
    std::fs::write(
        &secrets,
        "rooms:\n  acme:\n    webhook-worker:\n      sq: {value: \"square-signature-key\"}\n",
    )
    .unwrap();
    let config = |trusted: &str| {
        format!(
            "version: v1\nlisten: {{http: 127.0.0.1:0, admin: 127.0.0.1:0}}\n\
             trusted_proxies: [{trusted}]\n\
             secrets:\n  backend: file\n  file: {secrets}\n\
             rooms:\n  - name: acme\n    services:\n      - name: hooks\n        ports:\n\
             \x20         - num: {up}\n            published: true\n            public: true\n\
             \x20           endpoints:\n{endpoint}\
             routes:\n  - {{domain: {HOST}, room: acme, port: {up}}}\n",
            secrets = secrets.display(),
            up = upstream.addr.port(),
            endpoint = endpoint("/square", "square", "sq", Some("square-events")),
        )
    };
    let public = "https://hooks.public.test/square?x=1";
    let own = format!("http://{HOST}/square?x=1");

    let behind_proxy = common::start(&config("127.0.0.0/8")).await;
    let r = post_square(&behind_proxy, public).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );

    let direct = common::start(&config("")).await;
    let r = post_square(&direct, public).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    let r = post_square(&direct, &own).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}
