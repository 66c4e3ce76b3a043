//! The ten providers added after the first 25, and HubSpot's legacy signatures, end to
//! end: a real roomgate, a real redis-server (queue mode) and a real upstream (forward
//! mode). Signatures come from the providers' official npm SDKs (`tests/npm-providers`,
//! pinned) where one exists; Bitbucket, Vercel, Asana and Dropbox publish no SDK that
//! signs or verifies webhooks, so their requests are built here by the construction
//! their documentation gives (a hex HMAC over the raw body).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::redis::RedisServer;
use common::upstream::Upstream;
use common::{send, Reply};
use hmac::{Hmac, Mac};
use http::StatusCode;
use sha1::Sha1;
use sha2::Sha256;

const HOST: &str = "hooks.acme.test";
const BITBUCKET: &str = "bitbucket-webhook-secret";
const VERCEL: &str = "vercel-integration-secret";
const DROPBOX: &str = "dropbox-app-secret";
const MUX: &str = "mux-webhook-signing-secret";
const CONTENTFUL: &str = "contentful-signing-secret-0123456789abcdefghijklmnopqrstuvwxyz01";
const ADYEN: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
const HUBSPOT: &str = "hubspot-client-secret-0000";
const POSTMARK: &str = "postmark:webhook-password";
const NOTION_TOKEN: &str = "secret_tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl";
/// The SendGrid verification key (base64 DER SubjectPublicKeyInfo) of [`SENDGRID_PRIVATE`].
const SENDGRID_PUBLIC: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdoOsIbOPAAgAr2h8MZDjD1hb8uQJArL5cTcCLJQBK4mLYypvb5gQCSfZiV88U2pqumq1WXnjWnFjXthc/P9kGw==";
/// A P-256 test key (PKCS#8), only ever used to sign test requests.
const SENDGRID_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgM0RVZneImQARIjNE
VWZ3iJkAESIzRFVmd4iZABEiM0ShRANCAAR2g6whs48ACACvaHwxkOMPWFvy5AkC
svlxNwIslAEriYtjKm9vmBAJJ9mJXzxTamq6arVZeeNacWNe2Fz8/2Qb
-----END PRIVATE KEY-----
";

type Entry = (String, Vec<(String, Vec<u8>)>);

struct Env {
    rg: roomgate::server::Running,
    upstream: Upstream,
    redis: RedisServer,
    dir: tempfile::TempDir,
    config_path: PathBuf,
}

/// One endpoint: path, provider, secret id, queue (`None`: forward), extra annotations.
fn endpoint(
    path: &str,
    method: &str,
    secret: &str,
    queue: Option<&str>,
    extra: &[(&str, &str)],
) -> String {
    let mut s = format!(
        "              - path: {path}\n                annotations:\n                  meshagent.request.validation.method: {method}\n                  meshagent.request.validation.secret: {secret}\n                  meshagent.request.processor: webhook-worker\n"
    );
    if let Some(q) = queue {
        s += &format!("                  meshagent.request.queue: {q}\n");
    }
    for (k, v) in extra {
        s += &format!("                  {k}: \"{v}\"\n");
    }
    s
}

fn config(up: u16, redis: &RedisServer, secrets: &Path, trusted: &str) -> String {
    let mut e = String::new();
    e += &endpoint(
        "/bitbucket",
        "bitbucket",
        "bb",
        Some("bitbucket-events"),
        &[],
    );
    e += &endpoint("/vercel", "vercel", "vc", Some("vercel-events"), &[]);
    e += &endpoint("/sendgrid", "sendgrid", "sg", Some("sendgrid-events"), &[]);
    e += &endpoint("/adyen", "adyen", "ad", Some("adyen-events"), &[]);
    e += &endpoint("/asana", "asana", "as", Some("asana-events"), &[]);
    e += &endpoint("/asana-forward", "asana", "as-fwd", None, &[]);
    e += &endpoint("/dropbox", "dropbox", "db", Some("dropbox-events"), &[]);
    e += &endpoint("/dropbox-forward", "dropbox", "db", None, &[]);
    e += &endpoint(
        "/contentful",
        "contentful",
        "cf",
        Some("contentful-events"),
        &[],
    );
    e += &endpoint("/mux", "mux", "mx", Some("mux-events"), &[]);
    e += &endpoint("/mux-forward", "mux", "mx", None, &[]);
    let local = [("roomgate.validation.source_ips", "127.0.0.0/8")];
    e += &endpoint(
        "/postmark",
        "postmark",
        "pm",
        Some("postmark-events"),
        &local,
    );
    let elsewhere = [(
        "roomgate.validation.source_ips",
        "192.0.2.0/24, 2001:db8::/32",
    )];
    e += &endpoint(
        "/postmark-elsewhere",
        "postmark",
        "pm",
        Some("postmark-events"),
        &elsewhere,
    );
    e += &endpoint("/notion", "notion", "nt", Some("notion-events"), &[]);
    e += &endpoint("/notion-forward", "notion", "nt-fwd", None, &[]);
    let legacy = [("roomgate.hubspot.legacy_signatures", "true")];
    e += &endpoint(
        "/hubspot-legacy",
        "hubspot",
        "hs",
        Some("hubspot-events"),
        &legacy,
    );
    e += &endpoint("/hubspot", "hubspot", "hs", Some("hubspot-events"), &[]);
    format!(
        r#"version: v1
listen: {{http: 127.0.0.1:0, admin: 127.0.0.1:0}}
redis:
  url: {{value: "{redis}"}}
trusted_proxies: [{trusted}]
secrets:
  backend: file
  file: {secrets}
  cache_ttl: 100ms
rooms:
  - name: acme
    services:
      - name: hooks
        ports:
          - num: {up}
            published: true
            public: true
            endpoints:
{e}routes:
  - {{domain: {HOST}, room: acme, port: {up}}}
"#,
        redis = redis.url(),
        secrets = secrets.display()
    )
}

/// Asana's and Notion's secrets are absent: they arrive through the handshake.
fn secrets_file(dir: &Path) -> PathBuf {
    let path = dir.join("secrets.yaml");
    let values = [
        ("bb", BITBUCKET),
        ("vc", VERCEL),
        ("sg", SENDGRID_PUBLIC),
        ("ad", ADYEN),
        ("db", DROPBOX),
        ("cf", CONTENTFUL),
        ("mx", MUX),
        ("pm", POSTMARK),
        ("hs", HUBSPOT),
    ];
    let mut yaml = String::from("rooms:\n  acme:\n    webhook-worker:\n");
    for (id, value) in values {
        yaml += &format!("      {id}: {{value: \"{value}\"}}\n");
    }
    std::fs::write(&path, yaml).unwrap();
    path
}

async fn setup_with(trusted: &str) -> Env {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = secrets_file(dir.path());
    let text = config(upstream.addr.port(), &redis, &secrets, trusted);
    let config_path = dir.path().join("routes.yaml");
    std::fs::write(&config_path, &text).unwrap();
    let rg = common::start(&text).await;
    Env {
        rg,
        upstream,
        redis,
        dir,
        config_path,
    }
}

async fn setup() -> Env {
    setup_with("").await
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

fn hex_hmac_sha256(key: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn hex_hmac_sha1(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn now() -> i64 {
    roomgate::state::system_clock()
}

/// A request signed by an official SDK: its headers and the body to send.
struct Signed {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Signed {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Run `tests/npm-providers/sign.mjs` (the providers' npm SDKs).
fn sdk_sign(
    env: &Env,
    provider: &str,
    secret: &str,
    body: &[u8],
    path: &str,
    extra: Option<&str>,
) -> Signed {
    let node_modules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/npm-providers/node_modules"
    );
    assert!(
        Path::new(node_modules).exists(),
        "npm SDKs missing: run `bash scripts/test.sh`, which installs them"
    );
    let body_file = env.dir.path().join(format!("{provider}.body"));
    std::fs::write(&body_file, body).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/npm-providers/sign.mjs"
    ))
    .args([provider, secret])
    .arg(&body_file)
    .arg(format!("http://{HOST}{path}"));
    if let Some(extra) = extra {
        cmd.arg(extra);
    }
    let out = cmd.output().expect("node runs");
    assert!(
        out.status.success(),
        "{provider} signer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("signer prints JSON");
    let headers = json["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let body = match json["body"].as_str() {
        Some(signed_body) => signed_body.as_bytes().to_vec(),
        None => body.to_vec(),
    };
    Signed { headers, body }
}

fn sendgrid_key_file(env: &Env) -> String {
    let path = env.dir.path().join("sendgrid.pem");
    std::fs::write(&path, SENDGRID_PRIVATE).unwrap();
    path.display().to_string()
}

fn secrets_cli(env: &Env, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(common::bin())
        .arg("secrets")
        .args(args)
        .args(["--room", "acme", "--identity", "webhook-worker", "--config"])
        .arg(&env.config_path)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(value) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(value.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Post until the answer is no longer `pending` (a secret changed through the CLI is
/// seen once roomgate's short secret cache expires), with a deadline.
async fn post_once_settled(
    env: &Env,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    pending: StatusCode,
) -> Reply {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = post(env, path, headers, body).await;
        if r.status != pending {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} still answers {pending}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn assert_status(r: &Reply, status: StatusCode, what: &str) {
    assert_eq!(
        r.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

fn assert_error(r: &Reply, status: StatusCode, code: &str, what: &str) {
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (status, code),
        "{what}"
    );
}

/// (provider, secret, path, queue, body, extra signer argument, expected delivery id).
type SdkCase<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a [u8],
    Option<&'a str>,
    Option<&'a str>,
);

/// Signatures made by the providers' official SDKs verify, and the exact bytes land in
/// Redis under the provider's name.
#[tokio::test]
async fn official_sdk_signatures_are_accepted_and_enqueued_byte_exact() {
    let env = setup().await;
    let key_file = sendgrid_key_file(&env);
    let adyen_body = br#"{"live":"false","notificationItems":[{"NotificationRequestItem":{"amount":{"currency":"EUR","value":1130},"eventCode":"AUTHORISATION","merchantAccountCode":"TestMerchant","merchantReference":"ref-1","pspReference":"7914073381342284","success":"true"}},{"NotificationRequestItem":{"amount":{"currency":"EUR","value":500},"eventCode":"CAPTURE","merchantAccountCode":"TestMerchant","merchantReference":"ref-2","originalReference":"7914073381342284","pspReference":"8815073381342285","success":"true"}}]}"#;
    let cases: [SdkCase<'_>; 7] = [
        (
            "sendgrid",
            &key_file,
            "/sendgrid",
            "sendgrid-events",
            b"[{\"email\":\"a@example.test\",\"event\":\"open\",\"sg_event_id\":\"sg-e2e-1\"}]\r\n",
            None,
            Some("sg-e2e-1"),
        ),
        (
            "adyen",
            ADYEN,
            "/adyen",
            "adyen-events",
            adyen_body,
            None,
            None,
        ),
        (
            "contentful",
            CONTENTFUL,
            "/contentful?env=master",
            "contentful-events",
            br#"{"sys":{"id":"entry-1","type":"Entry"},"fields":{"title":{"en-US":"Caf\u00e9"}}}"#,
            None,
            None,
        ),
        (
            "mux",
            MUX,
            "/mux",
            "mux-events",
            br#"{"type":"video.asset.ready","id":"mux-e2e-1","data":{"id":"asset-1"}}"#,
            None,
            Some("mux-e2e-1"),
        ),
        (
            "hubspot",
            HUBSPOT,
            "/hubspot-legacy",
            "hubspot-events",
            br#"[{"eventId":501,"subscriptionType":"contact.creation"}]"#,
            Some("v1"),
            Some("501"),
        ),
        (
            "hubspot",
            HUBSPOT,
            "/hubspot-legacy?portal=62515",
            "hubspot-events",
            br#"{"actionType":"crm.card","objectId":7}"#,
            Some("v2"),
            None,
        ),
        (
            "mux",
            MUX,
            "/mux",
            "mux-events",
            br#"{"type":"video.asset.deleted","id":"mux-e2e-2","data":{}}"#,
            None,
            Some("mux-e2e-2"),
        ),
    ];
    for (provider, secret, path, queue, body, extra, delivery) in cases {
        let signed = sdk_sign(&env, provider, secret, body, path, extra);
        let r = post(&env, path, &signed.pairs(), &signed.body).await;
        assert_status(&r, StatusCode::ACCEPTED, provider);
        let reply = r.json();
        if let Some(delivery) = delivery {
            assert_eq!(reply["delivery_id"], delivery, "{provider}");
        }
        let stored = entries(&env.redis, queue).await;
        let entry = stored
            .iter()
            .find(|e| e.0 == reply["id"].as_str().unwrap())
            .expect("the entry is in the stream");
        assert_eq!(
            field(entry, "body"),
            &signed.body[..],
            "{provider}: exact bytes"
        );
        assert_eq!(field(entry, "provider"), provider.as_bytes());
    }
    // Notion's token is stored like any room secret once the operator has it.
    secrets_cli(&env, &["set", "--id", "nt"], Some(NOTION_TOKEN));
    let body =
        br#"{"id":"evt-notion-e2e","type":"page.created","entity":{"id":"p1","type":"page"}}"#;
    let signed = sdk_sign(&env, "notion", NOTION_TOKEN, body, "/notion", None);
    let pending = StatusCode::SERVICE_UNAVAILABLE;
    let r = post_once_settled(&env, "/notion", &signed.pairs(), body, pending).await;
    assert_status(&r, StatusCode::ACCEPTED, "notion");
    assert_eq!(r.json()["delivery_id"], "evt-notion-e2e");
    assert_eq!(
        env.upstream.requests(),
        0,
        "queued webhooks are not forwarded"
    );
}

/// Bitbucket, Vercel and Dropbox sign a hex HMAC of the raw body (their documentation's
/// construction; no official SDK verifies it): accepted, enqueued byte for byte.
#[tokio::test]
async fn documented_hmac_constructions_are_accepted() {
    let env = setup().await;
    let body = br#"{"push":{"changes":[{"new":{"name":"main"}}]}}"#;
    let sig = format!("sha256={}", hex_hmac_sha256(BITBUCKET, &[body]));
    let h = [
        ("x-hub-signature", sig.as_str()),
        ("x-request-uuid", "bb-1"),
    ];
    let r = post(&env, "/bitbucket", &h, body).await;
    assert_status(&r, StatusCode::ACCEPTED, "bitbucket");
    assert_eq!(r.json()["delivery_id"], "bb-1");

    let body = br#"{"id":"evt_vercel_e2e","type":"deployment.succeeded","payload":{}}"#;
    let sig = hex_hmac_sha1(VERCEL, body);
    let r = post(&env, "/vercel", &[("x-vercel-signature", &sig)], body).await;
    assert_status(&r, StatusCode::ACCEPTED, "vercel");
    assert_eq!(r.json()["delivery_id"], "evt_vercel_e2e");

    let body = br#"{"list_folder":{"accounts":["dbid:AAH4f99"]},"delta":{"users":[12345]}}"#;
    let sig = hex_hmac_sha256(DROPBOX, &[body]);
    let r = post(&env, "/dropbox", &[("x-dropbox-signature", &sig)], body).await;
    assert_status(&r, StatusCode::ACCEPTED, "dropbox");
    for (queue, n) in [
        ("bitbucket-events", 1),
        ("vercel-events", 1),
        ("dropbox-events", 1),
    ] {
        let stored = entries(&env.redis, queue).await;
        assert_eq!(stored.len(), n, "{queue}");
    }
    let stored = entries(&env.redis, "dropbox-events").await;
    assert_eq!(field(&stored[0], "body"), body);

    // Forward mode: the verified body reaches the service unchanged.
    let body = br#"{"type":"video.asset.ready","id":"fwd-1"}"#;
    let ts = now().to_string();
    let sig = format!(
        "t={ts},v1={}",
        hex_hmac_sha256(MUX, &[ts.as_bytes(), b".", body])
    );
    let r = post(&env, "/mux-forward", &[("mux-signature", &sig)], body).await;
    assert_status(&r, StatusCode::OK, "mux forward");
    assert_eq!(r.json()["body"], std::str::from_utf8(body).unwrap());
    assert_eq!(env.upstream.requests(), 1);
}

/// Tampered bodies and wrong secrets are `invalid_signature`, an old signed timestamp is
/// `stale_timestamp`, an absent signature `missing_signature`; nothing is enqueued.
#[tokio::test]
async fn tampered_wrong_secret_stale_and_missing_are_refused_and_nothing_is_enqueued() {
    let env = setup().await;
    let key_file = sendgrid_key_file(&env);
    let body: &[u8] = br#"{"id":"x-1","type":"t"}"#;
    let tampered: &[u8] = br#"{"id":"x-1","type":"u"}"#;
    let invalid = |r: &Reply, what: &str| {
        assert_error(r, StatusCode::UNAUTHORIZED, "invalid_signature", what)
    };
    let missing = |r: &Reply, what: &str| {
        assert_error(r, StatusCode::UNAUTHORIZED, "missing_signature", what)
    };
    let stale =
        |r: &Reply, what: &str| assert_error(r, StatusCode::UNAUTHORIZED, "stale_timestamp", what);

    // The HMAC-over-body providers: (path, header, signature over `body` with the right
    // secret, with a wrong secret).
    let hub = |key: &str| format!("sha256={}", hex_hmac_sha256(key, &[body]));
    let cases = [
        (
            "/bitbucket",
            "x-hub-signature",
            hub(BITBUCKET),
            hub("wrong"),
        ),
        (
            "/vercel",
            "x-vercel-signature",
            hex_hmac_sha1(VERCEL, body),
            hex_hmac_sha1("wrong", body),
        ),
        (
            "/dropbox",
            "x-dropbox-signature",
            hex_hmac_sha256(DROPBOX, &[body]),
            hex_hmac_sha256("wrong", &[body]),
        ),
    ];
    for (path, header, good, wrong) in &cases {
        invalid(
            &post(&env, path, &[(*header, good.as_str())], tampered).await,
            path,
        );
        invalid(
            &post(&env, path, &[(*header, wrong.as_str())], body).await,
            path,
        );
        missing(&post(&env, path, &[], body).await, path);
    }

    // SDK-signed requests, then changed.
    let sg = sdk_sign(&env, "sendgrid", &key_file, body, "/sendgrid", None);
    invalid(
        &post(&env, "/sendgrid", &sg.pairs(), tampered).await,
        "sendgrid tampered",
    );
    missing(
        &post(&env, "/sendgrid", &[], body).await,
        "sendgrid missing",
    );
    let mx = sdk_sign(&env, "mux", MUX, body, "/mux", None);
    invalid(
        &post(&env, "/mux", &mx.pairs(), tampered).await,
        "mux tampered",
    );
    let wrong = sdk_sign(&env, "mux", "not-the-secret", body, "/mux", None);
    invalid(
        &post(&env, "/mux", &wrong.pairs(), body).await,
        "mux wrong secret",
    );
    missing(&post(&env, "/mux", &[], body).await, "mux missing");
    let cf = sdk_sign(&env, "contentful", CONTENTFUL, body, "/contentful", None);
    invalid(
        &post(&env, "/contentful", &cf.pairs(), tampered).await,
        "contentful tampered",
    );
    let other = CONTENTFUL.replace("0123", "3210");
    let wrong = sdk_sign(&env, "contentful", &other, body, "/contentful", None);
    invalid(
        &post(&env, "/contentful", &wrong.pairs(), body).await,
        "contentful wrong secret",
    );
    missing(
        &post(&env, "/contentful", &[], body).await,
        "contentful missing",
    );
    let adyen_body = br#"{"notificationItems":[{"NotificationRequestItem":{"amount":{"currency":"EUR","value":10},"eventCode":"AUTHORISATION","pspReference":"P1","success":"true"}}]}"#;
    let ad = sdk_sign(&env, "adyen", ADYEN, adyen_body, "/adyen", None);
    let forged = String::from_utf8(ad.body.clone())
        .unwrap()
        .replace("\"value\":10", "\"value\":10000");
    invalid(
        &post(&env, "/adyen", &ad.pairs(), forged.as_bytes()).await,
        "adyen tampered",
    );
    let wrong = sdk_sign(&env, "adyen", &"00".repeat(32), adyen_body, "/adyen", None);
    invalid(
        &post(&env, "/adyen", &wrong.pairs(), &wrong.body).await,
        "adyen wrong key",
    );
    missing(
        &post(&env, "/adyen", &[], adyen_body).await,
        "adyen missing",
    );
    let hs = sdk_sign(
        &env,
        "hubspot",
        HUBSPOT,
        body,
        "/hubspot-legacy",
        Some("v1"),
    );
    invalid(
        &post(&env, "/hubspot-legacy", &hs.pairs(), tampered).await,
        "hubspot tampered",
    );

    // Signed timestamps ten minutes old (past every default window).
    let old = (now() - 600).to_string();
    let sig = format!(
        "t={old},v1={}",
        hex_hmac_sha256(MUX, &[old.as_bytes(), b".", body])
    );
    stale(
        &post(&env, "/mux", &[("mux-signature", &sig)], body).await,
        "mux",
    );
    let mut sg_old: Vec<(&str, &str)> = sg.pairs();
    for pair in &mut sg_old {
        if pair
            .0
            .eq_ignore_ascii_case("x-twilio-email-event-webhook-timestamp")
        {
            pair.1 = &old;
        }
    }
    stale(&post(&env, "/sendgrid", &sg_old, body).await, "sendgrid");
    let old_ms = format!("{}000", now() - 600);
    let mut cf_old: Vec<(&str, &str)> = cf.pairs();
    for pair in &mut cf_old {
        if pair.0 == "x-contentful-timestamp" {
            pair.1 = &old_ms;
        }
    }
    stale(
        &post(&env, "/contentful", &cf_old, body).await,
        "contentful",
    );

    for queue in [
        "bitbucket-events",
        "vercel-events",
        "dropbox-events",
        "sendgrid-events",
        "mux-events",
        "contentful-events",
        "adyen-events",
        "hubspot-events",
    ] {
        assert!(entries(&env.redis, queue).await.is_empty(), "{queue}");
    }
    assert_eq!(env.upstream.requests(), 0);
}

/// HubSpot v1/v2 carry no timestamp and can be replayed: an endpoint without
/// `roomgate.hubspot.legacy_signatures: "true"` answers them `missing_signature`.
#[tokio::test]
async fn hubspot_legacy_signatures_need_the_endpoint_opt_in() {
    let env = setup().await;
    let body = br#"[{"eventId":77,"subscriptionType":"deal.creation"}]"#;
    for version in ["v1", "v2"] {
        let signed = sdk_sign(&env, "hubspot", HUBSPOT, body, "/hubspot", Some(version));
        let r = post(&env, "/hubspot", &signed.pairs(), body).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "missing_signature", version);
    }
    assert!(entries(&env.redis, "hubspot-events").await.is_empty());
    let signed = sdk_sign(
        &env,
        "hubspot",
        HUBSPOT,
        body,
        "/hubspot-legacy",
        Some("v2"),
    );
    let r = post(&env, "/hubspot-legacy", &signed.pairs(), body).await;
    assert_status(&r, StatusCode::ACCEPTED, "opted in");
}

/// Security property: Asana's handshake is answered by roomgate (200, `X-Hook-Secret`
/// echoed), never enqueued or forwarded; its secret is stored trust-on-first-use, so a
/// later handshake with another secret is refused until `roomgate secrets rm` re-arms
/// the endpoint.
#[tokio::test]
async fn asana_handshake_is_answered_stored_on_first_use_and_never_enqueued_or_forwarded() {
    let env = setup().await;
    let first = "8f1e0c4b9a7d6e5f4c3b2a1908f7e6d5";
    let r = post(&env, "/asana", &[("x-hook-secret", first)], b"").await;
    assert_status(&r, StatusCode::OK, "first handshake");
    assert_eq!(r.headers["x-hook-secret"], first);
    let on_disk = std::fs::read_to_string(env.dir.path().join("secrets.yaml")).unwrap();
    assert!(on_disk.contains("as:"), "{on_disk}");

    // Events verify with the stored secret.
    let body = br#"{"events":[{"action":"added","resource":{"gid":"42"}}]}"#;
    let sig = hex_hmac_sha256(first, &[body]);
    let r = post(&env, "/asana", &[("x-hook-signature", &sig)], body).await;
    assert_status(&r, StatusCode::ACCEPTED, "event");
    let wrong = hex_hmac_sha256("attacker", &[body]);
    let r = post(&env, "/asana", &[("x-hook-signature", &wrong)], body).await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "forged event",
    );
    let r = post(&env, "/asana", &[("x-hook-signature", &sig)], b"{}").await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "tampered event",
    );
    let r = post(&env, "/asana", &[], body).await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "missing_signature",
        "unsigned event",
    );

    // A second handshake: the same secret is answered, another one is refused.
    let r = post(&env, "/asana", &[("x-hook-secret", first)], b"").await;
    assert_status(&r, StatusCode::OK, "repeated handshake");
    let r = post(&env, "/asana", &[("x-hook-secret", "attacker-secret")], b"").await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "other secret",
    );
    let r = post(&env, "/asana", &[("x-hook-signature", &sig)], body).await;
    assert_status(&r, StatusCode::ACCEPTED, "the stored secret still verifies");

    // Re-arming: remove the secret, and the next handshake stores its own.
    secrets_cli(&env, &["rm", "--id", "as"], None);
    let second = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let r = post(&env, "/asana", &[("x-hook-secret", second)], b"").await;
    assert_status(&r, StatusCode::OK, "re-armed handshake");
    let sig = hex_hmac_sha256(second, &[body]);
    let r = post(&env, "/asana", &[("x-hook-signature", &sig)], body).await;
    assert_status(&r, StatusCode::ACCEPTED, "event after re-arming");

    // Forward mode: the handshake never reaches the service either.
    let r = post(&env, "/asana-forward", &[("x-hook-secret", first)], b"").await;
    assert_status(&r, StatusCode::OK, "forward handshake");
    assert_eq!(r.headers["x-hook-secret"], first);
    assert_eq!(env.upstream.requests(), 0, "no handshake was forwarded");
    // Only the three signed events are in the queue.
    assert_eq!(entries(&env.redis, "asana-events").await.len(), 3);
}

/// Security property: Dropbox's `GET ?challenge=` is answered by roomgate as plain text
/// that browsers must not sniff, echoing only a bounded, printable value; it is never
/// enqueued or forwarded.
#[tokio::test]
async fn dropbox_challenge_is_answered_as_plain_text_and_never_enqueued_or_forwarded() {
    let env = setup().await;
    let addr = env.rg.bound.http.unwrap();
    for path in ["/dropbox", "/dropbox-forward"] {
        let r = common::get(addr, HOST, &format!("{path}?challenge=Kj3Vb6Rfx0lQzq"), &[]).await;
        assert_status(&r, StatusCode::OK, path);
        assert_eq!(&r.body[..], b"Kj3Vb6Rfx0lQzq");
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["cache-control"], "no-store");
    }
    let long = format!("/dropbox?challenge={}", "a".repeat(2000));
    let r = common::get(addr, HOST, &long, &[]).await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "oversized",
    );
    let r = common::get(addr, HOST, "/dropbox?challenge=%3Cscript%3E%0A", &[]).await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "control character",
    );
    assert!(entries(&env.redis, "dropbox-events").await.is_empty());
    assert_eq!(env.upstream.requests(), 0, "no challenge was forwarded");
}

/// Security property: Notion's unsigned verification request reaches the queue (or the
/// service) only in its exact shape, and only while the endpoint has no token; once the
/// token is stored every request needs a signature.
#[tokio::test]
async fn notion_verification_passes_only_in_its_shape_and_only_before_a_token_is_stored() {
    let env = setup().await;
    let verification = format!(r#"{{"verification_token":"{NOTION_TOKEN}"}}"#);
    let r = post(
        &env,
        "/notion",
        &[("content-type", "application/json")],
        verification.as_bytes(),
    )
    .await;
    assert_status(&r, StatusCode::ACCEPTED, "verification");
    let again = post(&env, "/notion", &[], verification.as_bytes()).await;
    assert_eq!(
        r.json()["id"],
        again.json()["id"],
        "a repeat is a duplicate"
    );
    let stored = entries(&env.redis, "notion-events").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(field(&stored[0], "body"), verification.as_bytes());

    // Any other unsigned body finds no token to verify with.
    let event = br#"{"verification_token":"x","type":"page.deleted"}"#;
    let r = post(&env, "/notion", &[], event).await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "secret_unavailable",
        "other shape",
    );

    // Forward mode: the service receives the verification request as sent.
    let r = post(&env, "/notion-forward", &[], verification.as_bytes()).await;
    assert_status(&r, StatusCode::OK, "forwarded verification");
    assert_eq!(r.json()["body"], verification.as_str());
    assert_eq!(env.upstream.requests(), 1);

    // Once the operator stored the token, nothing unsigned passes.
    secrets_cli(&env, &["set", "--id", "nt"], Some(NOTION_TOKEN));
    // Until roomgate sees the token, the verification is a duplicate (202, no new entry).
    let unsigned = verification.as_bytes();
    let r = post_once_settled(&env, "/notion", &[], unsigned, StatusCode::ACCEPTED).await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "missing_signature",
        "after the token",
    );
    let body = br#"{"id":"evt-n-2","type":"comment.created"}"#;
    let forged = format!("sha256={}", hex_hmac_sha256("not-the-token", &[body]));
    let r = post(&env, "/notion", &[("x-notion-signature", &forged)], body).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_signature", "forged");
    let signed = sdk_sign(&env, "notion", NOTION_TOKEN, body, "/notion", None);
    let r = post(&env, "/notion", &signed.pairs(), b"{}").await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "tampered",
    );
    let r = post(&env, "/notion", &signed.pairs(), body).await;
    assert_status(&r, StatusCode::ACCEPTED, "signed event");
    assert_eq!(entries(&env.redis, "notion-events").await.len(), 2);
}

fn basic(credential: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credential)
    )
}

/// Postmark: the Basic credential is the room secret; `roomgate.validation.source_ips`
/// refuses other addresses with 403 before anything else; the credential never reaches
/// the queue.
#[tokio::test]
async fn postmark_basic_credentials_and_source_ips_are_enforced() {
    let env = setup().await;
    let body = br#"{"RecordType":"Delivery","MessageID":"m-1"}"#;
    let good = basic(POSTMARK);
    let r = post(&env, "/postmark", &[("authorization", &good)], body).await;
    assert_status(&r, StatusCode::ACCEPTED, "credentials");
    let stored = entries(&env.redis, "postmark-events").await;
    let headers: serde_json::Value = serde_json::from_slice(field(&stored[0], "headers")).unwrap();
    assert!(headers.get("authorization").is_none(), "{headers}");
    let bad = basic("postmark:guess");
    let r = post(&env, "/postmark", &[("authorization", &bad)], body).await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
        "wrong password",
    );
    let r = post(&env, "/postmark", &[], body).await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "missing_signature",
        "no credentials",
    );
    // 127.0.0.1 is not in 192.0.2.0/24: refused even with the right credentials.
    let r = post(
        &env,
        "/postmark-elsewhere",
        &[("authorization", &good)],
        body,
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "other source");
    // An X-Forwarded-For from an untrusted peer is not believed.
    let claimed = [
        ("authorization", good.as_str()),
        ("x-forwarded-for", "192.0.2.7"),
    ];
    let r = post(&env, "/postmark-elsewhere", &claimed, body).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "claimed source");
    assert_eq!(entries(&env.redis, "postmark-events").await.len(), 1);
}

/// Behind a trusted proxy the allow-list checks the client address the proxy reports.
#[tokio::test]
async fn source_ips_use_the_client_address_a_trusted_proxy_reports() {
    let env = setup_with("127.0.0.0/8").await;
    let body = br#"{"RecordType":"Bounce","ID":42}"#;
    let good = basic(POSTMARK);
    let via = |ip: &'static str| {
        [
            ("authorization", good.clone()),
            ("x-forwarded-for", ip.to_owned()),
        ]
    };
    let h = via("192.0.2.7");
    let pairs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post(&env, "/postmark-elsewhere", &pairs, body).await;
    assert_status(&r, StatusCode::ACCEPTED, "allowed client behind the proxy");
    let r = post(&env, "/postmark", &pairs, body).await;
    assert_error(
        &r,
        StatusCode::FORBIDDEN,
        "forbidden",
        "the proxy's own address is not the client",
    );
    let h = via("198.51.100.9");
    let pairs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post(&env, "/postmark-elsewhere", &pairs, body).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "other client");
}
