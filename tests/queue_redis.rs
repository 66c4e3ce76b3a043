//! The Redis Streams queue against a real redis-server on a free port.
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, StatusCode};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use common::redis::{kv_at, kv_durable, RedisServer};
use common::upstream::Upstream;
use common::Reply;
use roomgate::config::{Config, LoadContext};
use roomgate::kv::DEFAULT_TIMEOUT as DEFAULT_REDIS_TIMEOUT;
use roomgate::queue::{
    stream_key, MessageMeta, Queue, QueueError, QueueMessage, RedisQueue, DEFAULT_DEDUP_TTL,
};
use roomgate::sensitive::Secret;
use roomgate::webhook::{self, Provider, WebhookRequest};

const SECRET: &str = "github-webhook-secret";
const ROOM: &str = "acme";
const QUEUE: &str = "github-events";

/// GitHub's `X-Hub-Signature-256` for `body`.
fn github_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("hmac key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A GitHub-signed delivery, verified the way the pipeline does it, as a queue message.
fn message(body: &[u8], delivery: Option<&str>) -> QueueMessage<'static> {
    message_to(QUEUE, body, delivery)
}

/// [`message`], for the queue `queue` of the same room.
fn message_to(queue: &str, body: &[u8], delivery: Option<&str>) -> QueueMessage<'static> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        github_signature(body).parse().expect("header"),
    );
    headers.insert("content-type", "application/json".parse().expect("header"));
    headers.insert("x-github-event", "push".parse().expect("header"));
    headers.insert("cookie", "session=abc".parse().expect("header"));
    headers.insert("authorization", "Bearer abc".parse().expect("header"));
    if let Some(d) = delivery {
        headers.insert("x-github-delivery", d.parse().expect("header"));
    }
    let req = WebhookRequest {
        method: &Method::POST,
        headers: &headers,
        url: "https://hooks.acme.test/webhooks/github",
        body,
    };
    let verified = webhook::verify(
        Provider::Github,
        &req,
        Bytes::copy_from_slice(body),
        &[Secret::new(SECRET)],
        OffsetDateTime::now_utc().unix_timestamp(),
        None,
    )
    .expect("the signature verifies");
    let meta = MessageMeta {
        method: Method::POST,
        host: "hooks.acme.test".into(),
        path: "/webhooks/github".into(),
        room: ROOM.into(),
        queue: queue.into(),
        processor: "webhook-worker".into(),
    };
    QueueMessage::new(verified, meta, &headers, OffsetDateTime::now_utc()).into_owned()
}

/// A Telegram update verified with its shared token, sent to `path` on the same queue as
/// the GitHub deliveries.
fn telegram_message(update_id: u64, path: &str) -> QueueMessage<'static> {
    let body = Bytes::from(format!("{{\"update_id\":{update_id}}}"));
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-telegram-bot-api-secret-token",
        "tg-token".parse().expect("header"),
    );
    headers.insert("content-type", "application/json".parse().expect("header"));
    let req = WebhookRequest {
        method: &Method::POST,
        headers: &headers,
        url: "https://hooks.acme.test/webhooks/telegram",
        body: &body,
    };
    let verified = webhook::verify(
        Provider::Telegram,
        &req,
        body.clone(),
        &[Secret::new("tg-token")],
        OffsetDateTime::now_utc().unix_timestamp(),
        None,
    )
    .expect("the token verifies");
    let meta = MessageMeta {
        method: Method::POST,
        host: "hooks.acme.test".into(),
        path: path.into(),
        room: ROOM.into(),
        queue: QUEUE.into(),
        processor: "webhook-worker".into(),
    };
    QueueMessage::new(verified, meta, &headers, OffsetDateTime::now_utc()).into_owned()
}

fn queue(server: &RedisServer) -> Queue {
    Queue::Redis(RedisQueue::new(kv_at(&server.url()), DEFAULT_DEDUP_TTL))
}

async fn connection(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn xlen(server: &RedisServer) -> u64 {
    let mut c = connection(server).await;
    redis::cmd("XLEN")
        .arg(stream_key(ROOM, QUEUE))
        .query_async(&mut c)
        .await
        .expect("XLEN")
}

type Entry = (String, Vec<(String, Vec<u8>)>);

/// Every entry of the test stream, oldest first.
async fn entries(server: &RedisServer) -> Vec<Entry> {
    let mut c = connection(server).await;
    redis::cmd("XRANGE")
        .arg(stream_key(ROOM, QUEUE))
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .expect("XRANGE")
}

#[tokio::test]
async fn the_stream_entry_has_exactly_the_design_fields_and_the_exact_body() {
    let server = RedisServer::start();
    let q = queue(&server);
    // Not UTF-8, with CRLF and NUL: the body must come back byte for byte.
    let body: &[u8] = b"{\"action\":\"opened\"}\r\n\xff\x00\xfe";
    let done = q
        .enqueue(&message(body, Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")))
        .await
        .expect("enqueued");
    assert!(!done.duplicate);
    assert_eq!(done.delivery_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");

    let entries = entries(&server).await;
    assert_eq!(entries.len(), 1);
    let (id, fields) = &entries[0];
    assert_eq!(id, &done.id);
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "body",
            "content_type",
            "method",
            "host",
            "path",
            "room",
            "queue",
            "processor",
            "provider",
            "delivery_id",
            "received_at",
            "headers"
        ]
    );
    let f: HashMap<&str, &[u8]> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    assert_eq!(f["body"], body);
    assert_eq!(f["content_type"], b"application/json");
    assert_eq!(f["method"], b"POST");
    assert_eq!(f["host"], b"hooks.acme.test");
    assert_eq!(f["path"], b"/webhooks/github");
    assert_eq!(f["room"], b"acme");
    assert_eq!(f["queue"], b"github-events");
    assert_eq!(f["processor"], b"webhook-worker");
    assert_eq!(f["provider"], b"github");
    assert_eq!(f["delivery_id"], b"72d3162e-cc78-11e3-81ab-4c9367dc0958");
    let received = std::str::from_utf8(f["received_at"]).expect("utf-8");
    assert_eq!(received.len(), "2024-05-01T12:34:56.789Z".len());
    assert!(received.ends_with('Z'));
    OffsetDateTime::parse(received, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    let headers: serde_json::Value = serde_json::from_slice(f["headers"]).expect("JSON headers");
    assert_eq!(headers["x-github-event"], "push");
    assert_eq!(
        headers["x-github-delivery"],
        "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    );
    // Credentials never reach the queue.
    assert!(headers.get("cookie").is_none());
    assert!(headers.get("authorization").is_none());
}

/// A provider's retry of the same delivery is acknowledged with the original id and adds no
/// second entry.
#[tokio::test]
async fn a_redelivery_with_the_same_delivery_id_adds_no_entry_and_returns_the_original_id() {
    let server = RedisServer::start();
    let q = queue(&server);
    let first = q
        .enqueue(&message(b"{\"n\":1}", Some("delivery-1")))
        .await
        .expect("first");
    let retry = q
        .enqueue(&message(b"{\"n\":1}", Some("delivery-1")))
        .await
        .expect("retry");
    let other = q
        .enqueue(&message(b"{\"n\":2}", Some("delivery-2")))
        .await
        .expect("other");
    assert!(!first.duplicate);
    assert!(retry.duplicate);
    assert_eq!(retry.id, first.id);
    assert!(!other.duplicate);
    assert_ne!(other.id, first.id);
    assert_eq!(xlen(&server).await, 2);

    // The dedup key lives in the stream's slot and expires.
    let ttl: i64 = server
        .cli(&[
            "PTTL",
            "roomgate:dedup:{acme:github-events}:github:/webhooks/github:delivery-1",
        ])
        .trim()
        .parse()
        .expect("PTTL");
    assert!(ttl > 0 && ttl <= DEFAULT_DEDUP_TTL.as_millis() as i64);
}

/// Security property: a shared-token provider's token is the secret itself; it is never
/// written to Redis, where any reader could forge deliveries with it.
#[tokio::test]
async fn a_shared_token_is_not_in_the_stored_headers() {
    let server = RedisServer::start();
    let q = queue(&server);
    q.enqueue(&telegram_message(7, "/webhooks/telegram"))
        .await
        .expect("enqueued");
    let entries = entries(&server).await;
    assert_eq!(entries.len(), 1);
    let (_, fields) = &entries[0];
    let raw = &fields
        .iter()
        .find(|(n, _)| n == "headers")
        .expect("headers")
        .1;
    let headers: serde_json::Value = serde_json::from_slice(raw).expect("JSON headers");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("x-telegram-bot-api-secret-token").is_none());
    // Nowhere in the entry, under any name.
    assert!(!fields
        .iter()
        .any(|(_, v)| v.windows(8).any(|w| w == b"tg-token")));
}

/// Delivery ids are unique per provider and per sender only: a Telegram `update_id` equal
/// to a GitHub delivery id, or another bot's equal `update_id` on another endpoint, is
/// another delivery on the same queue — while a true retry is still a duplicate.
#[tokio::test]
async fn equal_ids_from_other_providers_or_endpoints_all_get_entries() {
    let server = RedisServer::start();
    let q = queue(&server);
    let github = q
        .enqueue(&message(b"{\"n\":1}", Some("100")))
        .await
        .expect("github");
    let bot_a = q
        .enqueue(&telegram_message(100, "/webhooks/telegram/a"))
        .await
        .expect("bot a");
    let bot_b = q
        .enqueue(&telegram_message(100, "/webhooks/telegram/b"))
        .await
        .expect("bot b");
    let retry = q
        .enqueue(&telegram_message(100, "/webhooks/telegram/a"))
        .await
        .expect("retry");
    assert_eq!(
        [github.duplicate, bot_a.duplicate, bot_b.duplicate],
        [false; 3]
    );
    assert!(retry.duplicate);
    assert_eq!(retry.id, bot_a.id);
    assert_eq!(xlen(&server).await, 3);
}

#[tokio::test]
async fn deliveries_without_a_provider_id_are_never_merged() {
    let server = RedisServer::start();
    let q = queue(&server);
    let a = q.enqueue(&message(b"same", None)).await.expect("a");
    let b = q.enqueue(&message(b"same", None)).await.expect("b");
    assert_ne!(a.delivery_id, b.delivery_id);
    assert!(!b.duplicate);
    assert_eq!(xlen(&server).await, 2);
}

/// With Redis down, enqueue fails promptly (so the caller answers 503 and the provider
/// retries) and never claims success; after a restart it works again.
#[tokio::test]
async fn when_redis_stops_enqueue_fails_promptly_and_recovers_after_a_restart() {
    let mut server = RedisServer::start();
    let q = queue(&server);
    let mut ok_before = 0;
    for i in 0..3 {
        q.enqueue(&message(b"before", Some(&format!("before-{i}"))))
            .await
            .expect("enqueued while up");
        ok_before += 1;
    }
    assert_eq!(xlen(&server).await, ok_before);

    server.stop();
    for i in 0..3 {
        let started = Instant::now();
        let outcome = q
            .enqueue(&message(b"during", Some(&format!("during-{i}"))))
            .await;
        assert!(
            matches!(outcome, Err(QueueError::Unavailable(_))),
            "{outcome:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(!q.ready().await);

    // The restarted server is empty (no persistence): count what succeeds from now on.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ok_after = 0u64;
    let mut i = 0;
    while ok_after < 3 {
        assert!(Instant::now() < deadline, "enqueue did not recover");
        i += 1;
        let started = Instant::now();
        match q
            .enqueue(&message(b"after", Some(&format!("after-{i}"))))
            .await
        {
            Ok(done) => {
                assert!(!done.duplicate);
                ok_after += 1;
            }
            Err(QueueError::Unavailable(_)) => {
                assert!(started.elapsed() < Duration::from_secs(5));
                tokio::task::yield_now().await;
            }
        }
    }
    assert_eq!(xlen(&server).await, ok_after);
}

/// A Redis that does not answer in time is reported unavailable within the deadline; if the
/// write did land late, the provider's retry is recognised and adds no second entry.
#[tokio::test]
async fn when_redis_is_slow_enqueue_times_out_and_the_retry_is_not_doubled() {
    let server = RedisServer::start();
    let q = queue(&server);
    assert!(q.ready().await, "connected");
    assert_eq!(
        server.cli(&["CLIENT", "PAUSE", "3000", "WRITE"]).trim(),
        "OK"
    );
    let started = Instant::now();
    let outcome = q.enqueue(&message(b"slow", Some("slow-1"))).await;
    assert!(
        matches!(outcome, Err(QueueError::Unavailable(_))),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // The provider retries until Redis answers again.
    let deadline = Instant::now() + Duration::from_secs(15);
    let retried = loop {
        assert!(Instant::now() < deadline, "enqueue did not recover");
        match q.enqueue(&message(b"slow", Some("slow-1"))).await {
            Ok(done) => break done,
            Err(QueueError::Unavailable(_)) => tokio::task::yield_now().await,
        }
    };
    assert_eq!(retried.delivery_id, "slow-1");
    assert_eq!(xlen(&server).await, 1);
}

/// A Redis address that accepts connections and never answers: each enqueue, connecting
/// included, is refused within the Redis deadline, and readiness says no.
#[tokio::test]
async fn a_redis_that_never_answers_is_refused_within_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let q = Queue::Redis(RedisQueue::new(
        kv_at(&format!("redis://{addr}/")),
        DEFAULT_DEDUP_TTL,
    ));
    for i in 0..2 {
        let started = Instant::now();
        let outcome = q.enqueue(&message(b"x", Some(&format!("d-{i}")))).await;
        let took = started.elapsed();
        assert!(
            matches!(outcome, Err(QueueError::Unavailable(_))),
            "{outcome:?}"
        );
        assert!(
            took <= DEFAULT_REDIS_TIMEOUT + Duration::from_millis(500),
            "refused after {took:?}"
        );
    }
    assert!(!q.ready().await);
    held.abort();
}

/// Enqueues share one pipelined connection: each must get the id of its own entry back,
/// however many are in flight at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_each_get_the_id_of_their_own_entry() {
    let server = RedisServer::start();
    let q = queue(&server);
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move {
                let delivery = format!("concurrent-{i}");
                let body = format!("{{\"n\":{i}}}");
                let done = q
                    .enqueue(&message(body.as_bytes(), Some(&delivery)))
                    .await
                    .expect("enqueued");
                (delivery, done)
            })
        })
        .collect();
    let mut claimed = HashMap::new();
    for task in tasks {
        let (delivery, done) = task.await.expect("task");
        assert!(!done.duplicate);
        assert_eq!(done.delivery_id, delivery);
        assert!(
            claimed.insert(done.id, delivery).is_none(),
            "an id given twice"
        );
    }
    let stored = entries(&server).await;
    assert_eq!(stored.len(), 400);
    for (id, fields) in stored {
        let delivery = fields
            .iter()
            .find(|(name, _)| name == "delivery_id")
            .map(|(_, v)| String::from_utf8(v.clone()).expect("utf-8"))
            .expect("a delivery_id field");
        assert_eq!(claimed.get(&id), Some(&delivery), "entry {id}");
    }
}

/// How many scripts Redis has run (`INFO commandstats`).
async fn scripts_run(server: &RedisServer) -> u64 {
    let mut c = connection(server).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_eval:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// Messages that wait together go to Redis in one script, whatever their streams (one
/// Redis node holds them all), and each still gets its own answer: its own entry in its
/// own stream, or, for a delivery id already in the group, the entry the first one got.
#[tokio::test]
async fn enqueues_waiting_together_go_in_one_script_and_each_gets_its_own_answer() {
    let server = RedisServer::start();
    let q = queue(&server);
    let body = |i: usize| format!("{{\"n\":{i}}}").into_bytes();
    let messages: Vec<QueueMessage<'static>> = (0..20)
        .map(|i| message(&body(i), Some(&format!("group-{i}"))))
        .chain([message(&body(0), Some("group-0"))])
        .chain((0..5).map(|i| message_to("other", &body(100 + i), Some(&format!("o-{i}")))))
        .collect();
    // All are polled once before the task sending the groups first runs (this runtime has
    // one thread), so all wait for the same group.
    let done = futures_util::future::join_all(messages.iter().map(|m| q.enqueue(m))).await;
    let done: Vec<_> = done.into_iter().map(|d| d.expect("enqueued")).collect();
    assert_eq!(scripts_run(&server).await, 1, "one script for the group");
    let stored = entries(&server).await;
    assert_eq!(stored.len(), 20, "the repeated delivery adds no entry");
    for (i, d) in done.iter().take(20).enumerate() {
        assert!(!d.duplicate);
        assert_eq!(d.delivery_id, format!("group-{i}"));
        let (id, fields) = &stored[i];
        assert_eq!(&d.id, id, "message {i} got the id of its own entry");
        let stored_body = fields.iter().find(|(n, _)| n == "body").expect("a body");
        assert_eq!(stored_body.1, body(i));
    }
    assert!(done[20].duplicate);
    assert_eq!(done[20].id, done[0].id);
    let mut c = connection(&server).await;
    let other: Vec<Entry> = redis::cmd("XRANGE")
        .arg(stream_key(ROOM, "other"))
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .expect("XRANGE");
    let ids: Vec<&String> = other.iter().map(|(id, _)| id).collect();
    let answered: Vec<&String> = done[21..].iter().map(|d| &d.id).collect();
    assert_eq!(
        ids, answered,
        "the other queue's messages are in its own stream"
    );
}

/// The URL's password and database are used; a wrong password is an outage that names
/// no secret.
#[tokio::test]
async fn the_urls_password_and_database_are_used() {
    let server = RedisServer::start_with_password("s3cret-pass");
    let url = format!("redis://:s3cret-pass@127.0.0.1:{}/3", server.port);
    let q = RedisQueue::new(kv_at(&url), DEFAULT_DEDUP_TTL);
    let done = q
        .enqueue(&message(b"{}", Some("authed-1")))
        .await
        .expect("enqueued with AUTH and SELECT");
    let key = stream_key(ROOM, QUEUE);
    assert_eq!(server.cli(&["-n", "3", "XLEN", &key]).trim(), "1");
    assert_eq!(server.cli(&["-n", "0", "XLEN", &key]).trim(), "0");
    assert!(server
        .cli(&["-n", "3", "XRANGE", &key, "-", "+"])
        .contains(&done.id));

    let wrong = format!("redis://:not-the-pass@127.0.0.1:{}/3", server.port);
    let q = RedisQueue::new(kv_at(&wrong), DEFAULT_DEDUP_TTL);
    match q.enqueue(&message(b"{}", Some("authed-2"))).await {
        Err(QueueError::Unavailable(why)) => assert!(!why.contains("not-the-pass"), "{why}"),
        other => panic!("a wrong password must fail the enqueue: {other:?}"),
    }
    assert_eq!(server.cli(&["-n", "3", "XLEN", &key]).trim(), "1");
}

/// A connection Redis closes is replaced: at most the enqueue in flight when it went
/// fails (with 503, so the provider retries), and the next one connects again.
#[tokio::test]
async fn a_connection_redis_closes_is_replaced() {
    let server = RedisServer::start();
    let q = queue(&server);
    q.enqueue(&message(b"{}", Some("before-kill")))
        .await
        .expect("enqueued");
    let killed: u64 = server
        .cli(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        .trim()
        .parse()
        .expect("a count of killed clients");
    assert!(killed >= 1, "the queue's connection was open");
    let mut failures = 0;
    let mut i = 0;
    loop {
        i += 1;
        match q
            .enqueue(&message(b"{}", Some(&format!("after-kill-{i}"))))
            .await
        {
            Ok(done) => {
                assert!(!done.duplicate);
                break;
            }
            Err(QueueError::Unavailable(_)) => failures += 1,
        }
        assert!(failures <= 1, "the connection was not replaced");
    }
    assert_eq!(xlen(&server).await, 2);
}

#[tokio::test]
async fn stats_report_length_and_pending_after_a_group_read() {
    let server = RedisServer::start();
    let q = queue(&server);
    let empty = q.stats(ROOM, QUEUE).await.expect("stats");
    assert_eq!((empty.length, empty.pending, empty.oldest_id), (0, 0, None));

    let first = q
        .enqueue(&message(b"1", Some("s-1")))
        .await
        .expect("enqueued");
    for i in 2..=3 {
        q.enqueue(&message(b"n", Some(&format!("s-{i}"))))
            .await
            .expect("enqueued");
    }
    let mut c = connection(&server).await;
    let key = stream_key(ROOM, QUEUE);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("workers")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut c)
        .await
        .expect("XGROUP CREATE");
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("w1")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg(&key)
        .arg(">")
        .query_async(&mut c)
        .await
        .expect("XREADGROUP");

    let stats = q.stats(ROOM, QUEUE).await.expect("stats");
    assert_eq!(stats.length, 3);
    assert_eq!(stats.pending, 2);
    assert_eq!(stats.oldest_id.as_deref(), Some(first.id.as_str()));
    let age = stats.oldest_age(OffsetDateTime::now_utc()).expect("an age");
    assert!(age < Duration::from_secs(60));
}

#[tokio::test]
async fn the_queue_is_built_from_the_configs_redis_url() {
    let server = RedisServer::start();
    let config = Config::from_yaml_str(
        "version: v1\nlisten: {http: 127.0.0.1:0}\nredis: {url: {env: REDIS_URL}}\n",
        &LoadContext {
            vars: HashMap::from([("REDIS_URL".to_owned(), server.url())]),
            ..LoadContext::default()
        },
    )
    .expect("valid config");
    let kv =
        roomgate::kv::Kv::connect(config.redis.as_ref().expect("redis"), DEFAULT_REDIS_TIMEOUT)
            .expect("usable settings");
    let q = Queue::new(Some(&kv));
    assert!(matches!(q, Queue::Redis(_)));
    q.enqueue(&message(b"cfg", Some("cfg-1")))
        .await
        .expect("enqueued");
    assert_eq!(xlen(&server).await, 1);
    assert!(matches!(Queue::new(None), Queue::Memory(_)));
}

/// A TCP proxy in front of redis that can silence the connections open at one moment:
/// they stay open, but nothing crosses them any more either way (as after a failover, a
/// NAT timeout or a partition), while connections opened after are still forwarded.
struct SilencingProxy {
    addr: SocketAddr,
    /// Raised by [`SilencingProxy::silence`]: a connection opened in an earlier era is silent.
    era: watch::Sender<u64>,
    /// Connections accepted so far.
    accepted: watch::Receiver<usize>,
    /// Silenced connections that their client has closed so far.
    closed_silent: watch::Receiver<usize>,
    /// Dropping the accept loop's task drops its relays.
    accepting: JoinHandle<()>,
}

impl SilencingProxy {
    async fn start(redis: &RedisServer) -> SilencingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let redis = SocketAddr::from(([127, 0, 0, 1], redis.port));
        let (era, _) = watch::channel(0);
        let (accepted_tx, accepted) = watch::channel(0);
        let (closed_tx, closed_silent) = watch::channel(0);
        let accepting = tokio::spawn(accept(
            listener,
            redis,
            era.subscribe(),
            accepted_tx,
            Arc::new(closed_tx),
        ));
        SilencingProxy {
            addr,
            era,
            accepted,
            closed_silent,
            accepting,
        }
    }

    fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Silence every connection open now; new ones are forwarded.
    fn silence(&self) {
        self.era.send_modify(|era| *era += 1);
    }

    fn accepted(&self) -> usize {
        *self.accepted.borrow()
    }

    /// Wait (at most `limit`) until the client has closed `count` silenced connections.
    async fn closed_silent(&mut self, count: usize, limit: Duration) -> bool {
        let closed = self.closed_silent.wait_for(|closed| *closed >= count);
        matches!(tokio::time::timeout(limit, closed).await, Ok(Ok(_)))
    }
}

impl Drop for SilencingProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(
    listener: TcpListener,
    redis: SocketAddr,
    era: watch::Receiver<u64>,
    accepted: watch::Sender<usize>,
    closed_silent: Arc<watch::Sender<usize>>,
) {
    let mut relays = JoinSet::new();
    while let Ok((client, _)) = listener.accept().await {
        accepted.send_modify(|n| *n += 1);
        let born = *era.borrow();
        let era = era.clone();
        let closed_silent = Arc::clone(&closed_silent);
        relays.spawn(async move {
            if let Ok(server) = TcpStream::connect(redis).await {
                relay(client, server, born, era, &closed_silent).await;
            }
        });
    }
}

/// Forward both ways until the connection ends or its era passes; then swallow whatever
/// the client sends, answer nothing and close nothing, until the client closes it.
async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    born: u64,
    mut era: watch::Receiver<u64>,
    closed_silent: &watch::Sender<usize>,
) {
    tokio::select! {
        // Checked first: once silenced, not one more byte is forwarded.
        biased;
        _ = era.wait_for(|era| *era > born) => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
    }
    let mut sink = [0; 4096];
    while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    closed_silent.send_modify(|n| *n += 1);
}

/// Roomgate with one GitHub queue endpoint (`/gh`, onto [`QUEUE`]) and Redis at `redis_url`.
fn webhook_config(redis_url: &str, service_port: u16, dir: &Path) -> String {
    let secrets = dir.join("secrets.yaml");
    std::fs::write(
        &secrets,
        format!("rooms:\n  {ROOM}:\n    webhook-worker:\n      gh: {{value: \"{SECRET}\"}}\n"),
    )
    .expect("write the secrets file");
    format!(
        r#"version: v1
listen: {{http: 127.0.0.1:0}}
redis:
  url: {{value: "{redis_url}"}}
secrets:
  backend: file
  file: {secrets}
rooms:
  - name: {ROOM}
    services:
      - name: hooks
        ports:
          - num: {service_port}
            published: true
            public: true
            endpoints:
              - path: /gh
                annotations:
                  meshagent.request.validation.method: github
                  meshagent.request.validation.secret: gh
                  meshagent.request.processor: webhook-worker
                  meshagent.request.queue: {QUEUE}
routes:
  - {{domain: hooks.acme.test, room: {ROOM}, port: {service_port}}}
"#,
        secrets = secrets.display()
    )
}

/// POST a GitHub delivery to roomgate's `/gh`.
async fn post_webhook(roomgate: SocketAddr, delivery: &str) -> Reply {
    let body = format!("{{\"delivery\":\"{delivery}\"}}");
    let signature = github_signature(body.as_bytes());
    common::send(
        roomgate,
        "POST",
        "hooks.acme.test",
        "/gh",
        &[
            ("x-hub-signature-256", &signature),
            ("x-github-delivery", delivery),
            ("x-github-event", "push"),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

/// The delivery ids in the test stream, oldest first.
async fn delivery_ids(server: &RedisServer) -> Vec<String> {
    entries(server)
        .await
        .into_iter()
        .filter_map(|(_, fields)| {
            let (_, id) = fields.into_iter().find(|(name, _)| name == "delivery_id")?;
            String::from_utf8(id).ok()
        })
        .collect()
}

/// A Redis connection that goes silent without being closed costs one delivery a 503:
/// the enqueue that waits out its deadline on it drops it, and the next delivery is
/// accepted on a new connection, with nothing restarted (a silent connection kept in use
/// would cost every delivery a 503 until the kernel gave up on it).
#[tokio::test]
async fn after_a_silent_connection_the_next_webhook_is_accepted_on_a_new_one() {
    let server = RedisServer::start();
    let mut proxy = SilencingProxy::start(&server).await;
    let service = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rg = common::start(&webhook_config(
        &proxy.url(),
        service.addr.port(),
        dir.path(),
    ))
    .await;
    let roomgate = rg.bound.http.expect("the http listener");

    let first = post_webhook(roomgate, "silent-1").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body);

    proxy.silence();
    let started = Instant::now();
    let second = post_webhook(roomgate, "silent-2").await;
    let waited = started.elapsed();
    assert_eq!(
        (second.status, second.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable")
    );
    assert!(second.headers.contains_key("retry-after"));
    // The command's deadline ends the wait and gives up on the connection.
    assert!(
        waited >= DEFAULT_REDIS_TIMEOUT / 2
            && waited <= DEFAULT_REDIS_TIMEOUT + Duration::from_millis(500),
        "the command's deadline ended the wait: {waited:?}"
    );

    let opened = proxy.accepted();
    let third = post_webhook(roomgate, "silent-3").await;
    assert_eq!(
        third.status,
        StatusCode::ACCEPTED,
        "the webhook after the 503 is accepted: {:?}",
        third.body
    );
    assert_eq!(third.json()["delivery_id"], "silent-3");
    assert!(proxy.accepted() > opened, "on a new connection");
    assert_eq!(delivery_ids(&server).await, ["silent-1", "silent-3"]);
    assert!(
        proxy.closed_silent(1, Duration::from_secs(5)).await,
        "roomgate closed the silent connection"
    );
    rg.shutdown().await;
}

/// The connection for everything but enqueues (readiness here; also stats, script loading,
/// secrets and sessions) is replaced too when it goes silent: readiness fails within the
/// deadline, then recovers on a new connection.
#[tokio::test]
async fn after_a_silent_connection_readiness_recovers_on_a_new_one() {
    let server = RedisServer::start();
    let proxy = SilencingProxy::start(&server).await;
    let q = RedisQueue::new(kv_at(&proxy.url()), DEFAULT_DEDUP_TTL);
    q.ping().await.expect("ready through the proxy");

    proxy.silence();
    let started = Instant::now();
    assert!(q.ping().await.is_err(), "a silent connection is not ready");
    assert!(started.elapsed() <= DEFAULT_REDIS_TIMEOUT + Duration::from_secs(1));

    let opened = proxy.accepted();
    q.ping().await.expect("ready again, with nothing restarted");
    assert!(proxy.accepted() > opened, "on a new connection");
}

/// Security property (durability): with `durability.replicas: 1`, a 202 needs the entry on
/// a replica. A replica that stops acknowledging (SIGSTOP: connected, silent) turns the
/// enqueue into a 503, and so is the provider's retry through another instance (a fresh
/// connection: its dedup hit must not pass a `WAIT` that counts nothing); once the replica
/// catches up, the retry is acknowledged with the original entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_202_waits_for_the_replica_and_a_retry_of_an_unreplicated_entry_waits_too() {
    let primary = RedisServer::start();
    let replica = RedisServer::start_args(
        false,
        &[
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            primary.port.to_string(),
        ],
    );
    let durable = roomgate::config::Durability {
        replicas: 1,
        timeout: roomgate::config::HumanDuration(Duration::from_millis(300)),
    };
    common::fleet::wait_until("the replica in sync", Duration::from_secs(20), || {
        primary
            .cli(&["INFO", "replication"])
            .contains("connected_slaves:1")
            && replica
                .cli(&["INFO", "replication"])
                .contains("master_link_status:up")
    });
    let a = RedisQueue::new(kv_durable(&primary.url(), durable), DEFAULT_DEDUP_TTL);
    let b = RedisQueue::new(kv_durable(&primary.url(), durable), DEFAULT_DEDUP_TTL);
    let first = a
        .enqueue(&message(b"{}", Some("replicated")))
        .await
        .expect("acknowledged by the replica");

    replica.signal("STOP");
    let started = Instant::now();
    let unreplicated = a.enqueue(&message(b"{}", Some("unreplicated"))).await;
    assert!(
        matches!(&unreplicated, Err(QueueError::Unavailable(why)) if why.contains("replicas")),
        "{unreplicated:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "WAIT's budget decided it"
    );
    let retry = b.enqueue(&message(b"{}", Some("unreplicated"))).await;
    assert!(
        retry.is_err(),
        "a retry through a fresh connection: {retry:?}"
    );
    replica.signal("CONT");

    let retry = common::process::eventually("the retry to be acknowledged", || {
        let b = b.clone();
        async move { b.enqueue(&message(b"{}", Some("unreplicated"))).await.ok() }
    })
    .await;
    assert!(retry.duplicate, "the original entry, not a second one");
    assert_eq!(delivery_ids(&primary).await, ["replicated", "unreplicated"]);
    assert_ne!(retry.id, first.id);
}
