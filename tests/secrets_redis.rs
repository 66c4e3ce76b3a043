//! The redis secrets backend against a real redis-server on a free port.
mod common;

use std::time::{Duration, Instant};

use time::macros::datetime;

use common::redis::{kv_at, RedisServer};
use roomgate::config::{Config, LoadContext, SecretsBackend};
use roomgate::secret::{secrets_field, secrets_key, SecretError, SecretStore};
use roomgate::sensitive::Secret;

const KEY: [u8; 32] = [42; 32];

fn store(server: &RedisServer, cache_ttl: Duration) -> SecretStore {
    SecretStore::redis(&kv_at(&server.url()), &Secret::new(KEY.to_vec()), cache_ttl)
        .expect("a valid key")
}

async fn raw_field(server: &RedisServer, room: &str, identity: &str, id: &str) -> Option<Vec<u8>> {
    let mut c = redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("HGET")
        .arg(secrets_key(room))
        .arg(secrets_field(identity, id))
        .query_async(&mut c)
        .await
        .expect("HGET")
}

#[tokio::test]
async fn set_get_list_and_rm_round_trip() {
    let server = RedisServer::start();
    let s = store(&server, Duration::from_secs(2));
    s.set(
        "acme",
        "webhook-worker",
        "stripe-signing-secret",
        Secret::new("whsec_1"),
        None,
    )
    .await
    .expect("set");
    s.set(
        "acme",
        "webhook-worker",
        "github",
        Secret::new("gh_1"),
        None,
    )
    .await
    .expect("set");
    s.set("acme", "billing", "stripe", Secret::new("x"), None)
        .await
        .expect("set");
    s.set("other", "webhook-worker", "github", Secret::new("y"), None)
        .await
        .expect("set");

    assert_eq!(
        s.get("acme", "webhook-worker", "stripe-signing-secret")
            .await
            .expect("get")
            .to_vec(),
        vec![Secret::new("whsec_1")]
    );
    let all = s.list("acme", None).await.expect("list");
    assert_eq!(
        all,
        [
            ("billing".to_owned(), "stripe".to_owned()),
            ("webhook-worker".to_owned(), "github".to_owned()),
            (
                "webhook-worker".to_owned(),
                "stripe-signing-secret".to_owned()
            ),
        ]
    );
    let one = s.list("acme", Some("billing")).await.expect("list");
    assert_eq!(one, [("billing".to_owned(), "stripe".to_owned())]);

    s.rm("acme", "webhook-worker", "github").await.expect("rm");
    assert!(matches!(
        s.get("acme", "webhook-worker", "github").await,
        Err(SecretError::NotFound { .. })
    ));
    assert!(matches!(
        s.rm("acme", "webhook-worker", "github").await,
        Err(SecretError::NotFound { .. })
    ));
    assert_eq!(s.list("acme", None).await.expect("list").len(), 2);
}

/// Redis only ever holds ciphertext: the stored record does not contain the plaintext.
#[tokio::test]
async fn the_value_stored_in_redis_is_not_the_plaintext() {
    let server = RedisServer::start();
    let s = store(&server, Duration::from_secs(2));
    let plaintext = "whsec_very_secret_plaintext";
    s.set("acme", "w", "k", Secret::new(plaintext), None)
        .await
        .expect("set");
    s.set(
        "acme",
        "w",
        "k",
        Secret::new("whsec_next"),
        Some(Duration::from_secs(60)),
    )
    .await
    .expect("rotate");
    let raw = raw_field(&server, "acme", "w", "k").await.expect("stored");
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains(plaintext), "{text}");
    assert!(!text.contains("whsec_next"), "{text}");
    let dump = server.cli(&["--no-raw", "HGETALL", &secrets_key("acme")]);
    assert!(!dump.contains("whsec"), "{dump}");
    let record: serde_json::Value = serde_json::from_slice(&raw).expect("JSON record");
    assert!(record["current"]["nonce"].is_string());
    assert!(record["current"]["ciphertext"].is_string());
    assert!(record["previous"]["until"].is_string());
}

/// A record copied to another (room, identity, id) does not decrypt: the place is bound as
/// associated data.
#[tokio::test]
async fn a_record_moved_to_another_key_does_not_decrypt() {
    let server = RedisServer::start();
    let s = store(&server, Duration::ZERO);
    s.set("acme", "w", "k", Secret::new("v"), None)
        .await
        .expect("set");
    let raw = raw_field(&server, "acme", "w", "k").await.expect("stored");
    let mut c = redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: i64 = redis::cmd("HSET")
        .arg(secrets_key("acme"))
        .arg(secrets_field("w", "other"))
        .arg(raw)
        .query_async(&mut c)
        .await
        .expect("HSET");
    assert!(matches!(
        s.get("acme", "w", "other").await,
        Err(SecretError::Unavailable(_))
    ));
}

/// Security property: a value that decrypts to nothing usable (empty, or only whitespace —
/// written by some other tool, since `set` refuses it) is unavailable, never an empty key.
#[tokio::test]
async fn a_blank_value_in_redis_is_unavailable() {
    use base64::Engine as _;
    use roomgate::secret::sealed::{associated_data, SealingKey};
    let server = RedisServer::start();
    let s = store(&server, Duration::ZERO);
    assert!(matches!(
        s.set("acme", "w", "k", Secret::new(" "), None).await,
        Err(SecretError::Invalid(_))
    ));
    let key = SealingKey::new(&Secret::new(KEY.to_vec())).expect("key");
    let mut c = redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    for (id, plain) in [("empty", ""), ("blank", " \n")] {
        let sealed = key
            .seal(&associated_data("acme", "w", id), &Secret::new(plain))
            .expect("seal");
        let b64 = base64::engine::general_purpose::STANDARD;
        let record = serde_json::json!({
            "v": 1,
            "current": {"nonce": b64.encode(sealed.nonce), "ciphertext": b64.encode(&sealed.ciphertext)},
        });
        let _: i64 = redis::cmd("HSET")
            .arg(secrets_key("acme"))
            .arg(secrets_field("w", id))
            .arg(record.to_string())
            .query_async(&mut c)
            .await
            .expect("HSET");
        assert!(
            matches!(
                s.get("acme", "w", id).await,
                Err(SecretError::Unavailable(_))
            ),
            "{id}"
        );
    }
}

/// A value set through one instance is seen by another within the cache TTL.
#[tokio::test]
async fn a_value_set_on_one_instance_is_seen_by_another_within_the_cache_ttl() {
    let server = RedisServer::start();
    let ttl = Duration::from_millis(500);
    let writer = store(&server, ttl);
    let reader = store(&server, ttl);
    writer
        .set("acme", "w", "k", Secret::new("v1"), None)
        .await
        .expect("set");
    assert_eq!(
        reader.get("acme", "w", "k").await.expect("get").to_vec(),
        vec![Secret::new("v1")]
    );

    let changed = Instant::now();
    writer
        .set("acme", "w", "k", Secret::new("v2"), None)
        .await
        .expect("set");
    let deadline = changed + ttl + Duration::from_secs(3);
    loop {
        let seen = reader.get("acme", "w", "k").await.expect("get");
        if *seen == [Secret::new("v2")] {
            break;
        }
        assert!(Instant::now() < deadline, "the change was not picked up");
        tokio::task::yield_now().await;
    }
}

/// During a rotation window both values verify; after it only the new one does.
#[tokio::test]
async fn the_previous_value_stays_accepted_during_the_rotation_window_and_not_after() {
    let server = RedisServer::start();
    let s = store(&server, Duration::from_secs(2));
    let t = datetime!(2025-03-01 12:00 UTC);
    s.set_at("acme", "w", "k", Secret::new("old"), None, t)
        .await
        .expect("set");
    s.set_at(
        "acme",
        "w",
        "k",
        Secret::new("new"),
        Some(Duration::from_secs(3600)),
        t,
    )
    .await
    .expect("rotate");
    assert_eq!(
        s.get_at("acme", "w", "k", t + Duration::from_secs(1))
            .await
            .expect("get")
            .to_vec(),
        vec![Secret::new("new"), Secret::new("old")]
    );
    assert_eq!(
        s.get_at("acme", "w", "k", t + Duration::from_secs(3600))
            .await
            .expect("get")
            .to_vec(),
        vec![Secret::new("new")]
    );
    // A second store (no cache) agrees.
    let fresh = store(&server, Duration::ZERO);
    assert_eq!(
        fresh
            .get_at("acme", "w", "k", t + Duration::from_secs(7200))
            .await
            .expect("get")
            .to_vec(),
        vec![Secret::new("new")]
    );
    // Replacing without a window drops the old value at once.
    s.set_at("acme", "w", "k", Secret::new("newer"), None, t)
        .await
        .expect("set");
    assert_eq!(
        s.get_at("acme", "w", "k", t).await.expect("get").to_vec(),
        vec![Secret::new("newer")]
    );
}

#[tokio::test]
async fn with_redis_down_reads_are_unavailable_promptly() {
    let mut server = RedisServer::start();
    let s = store(&server, Duration::ZERO);
    s.set("acme", "w", "k", Secret::new("v"), None)
        .await
        .expect("set");
    server.stop();
    let started = Instant::now();
    assert!(matches!(
        s.get("acme", "w", "k").await,
        Err(SecretError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_store_is_built_from_the_config() {
    let server = RedisServer::start();
    let mut config = Config::from_yaml_str(
        "version: v1\nlisten: {http: 127.0.0.1:0}\n",
        &LoadContext::default(),
    )
    .expect("valid config");
    config.file.secrets.backend = SecretsBackend::Redis;
    config.secrets_key = Some(Secret::new(KEY.to_vec()));
    assert!(
        SecretStore::from_config(&config, None).is_err(),
        "the redis backend needs the shared Redis"
    );
    let s = SecretStore::from_config(&config, Some(&kv_at(&server.url()))).expect("store");
    s.set("acme", "w", "k", Secret::new("v"), None)
        .await
        .expect("set");
    assert_eq!(
        store(&server, Duration::ZERO)
            .get("acme", "w", "k")
            .await
            .expect("get")
            .to_vec(),
        vec![Secret::new("v")]
    );
}
