//! Fuzz targets: functions from arbitrary bytes to nothing, that panic when a property of
//! roomgate's parsers of untrusted input fails.
//!
//! Owns the targets that `fuzz/` (cargo-fuzz) and `tests/fuzz_corpus.rs` (the checked-in
//! corpora replayed, plus a short seeded random run, in the ordinary test command) both
//! call, so a long fuzzing run and `cargo test` check the same properties. Each target
//! covers what an attacker or a careless operator controls: webhook signature headers and
//! bodies for every provider, the config loader, the signed sign-in values and the cookie
//! header, host and path canonicalisation, and the reader of service responses (against
//! hyper's client: a differential). Nothing here does I/O beyond what the
//! target under test does (the response target's exchange with hyper runs over an
//! in-memory pipe), and no target may depend on the clock.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::{Config, LoadContext};
use crate::sensitive::Secret;
use crate::webhook::{self, handshake, Provider, WebhookRequest};

/// The clock every target uses: 2023-11-14T22:13:20Z (the test vectors' time).
pub const NOW: i64 = 1_700_000_000;

/// Every header a provider verifier reads; a webhook input picks them by index.
pub const WEBHOOK_HEADERS: [&str; 51] = [
    "x-hub-signature-256",
    "x-hub-signature",
    "stripe-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-shopify-hmac-sha256",
    "x-twilio-signature",
    "x-zendesk-webhook-signature",
    "x-zendesk-webhook-signature-timestamp",
    "sentry-hook-signature",
    "x-sfmc-ens-signature",
    "x-signature",
    "x-telegram-bot-api-secret-token",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-gitlab-token",
    "linear-signature",
    "x-signature-ed25519",
    "x-signature-timestamp",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-square-hmacsha256-signature",
    "paddle-signature",
    "twitch-eventsub-message-signature",
    "twitch-eventsub-message-id",
    "twitch-eventsub-message-timestamp",
    "calendly-webhook-signature",
    "typeform-signature",
    "x-pagerduty-signature",
    "authorization",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "x-vercel-signature",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
    "hmacsignature",
    "x-hook-signature",
    "x-hook-secret",
    "x-dropbox-signature",
    "x-contentful-signature",
    "x-contentful-timestamp",
    "x-contentful-signed-headers",
    "mux-signature",
    "x-notion-signature",
    "x-hubspot-signature",
    "x-hubspot-signature-version",
    "content-type",
];

/// The secret values webhook inputs are verified with: a plain HMAC key (the seeds in
/// `fuzz/corpus/webhook` are signed with it), a Standard Webhooks key, a Discord-style
/// Ed25519 public key (also a hex HMAC key, as Adyen's are) and a SendGrid-style P-256
/// public key (base64 DER).
pub const WEBHOOK_SECRETS: [&str; 4] = [
    "fuzz-webhook-secret",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/TCp/1uqpUvqXX7LI9FB1K/cSCP9yoKKp41g8rcHpoOhXVv1FCWyarS3glNofxrjgHZG7tPUHM3lzndSYuHuIw==",
];

/// A decoded webhook input: which provider, which method, its headers and body.
#[derive(Debug)]
pub struct WebhookInput {
    pub provider: Provider,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: String,
    pub body: Bytes,
}

/// Encode a webhook input: `[provider, method]`, the body, then for each header a 0x00
/// separator, its index in [`WEBHOOK_HEADERS`] and its value; a last segment that starts
/// with `?` is the query. The inverse of [`decode_webhook`] (for writing seeds).
pub fn encode_webhook(
    provider: Provider,
    get: bool,
    headers: &[(&str, &str)],
    query: &str,
    body: &[u8],
) -> Vec<u8> {
    let index = Provider::ALL
        .iter()
        .position(|p| *p == provider)
        .unwrap_or(0);
    let mut out = vec![index as u8, u8::from(get)];
    out.extend_from_slice(body);
    for (name, value) in headers {
        let Some(i) = WEBHOOK_HEADERS.iter().position(|n| n == name) else {
            continue;
        };
        out.push(0);
        out.push(i as u8);
        out.extend_from_slice(value.as_bytes());
    }
    if !query.is_empty() {
        out.push(0);
        out.push(b'?');
        out.extend_from_slice(query.as_bytes());
    }
    out
}

/// Read arbitrary bytes as a webhook input (see [`encode_webhook`]); `None` when too short.
pub fn decode_webhook(data: &[u8]) -> Option<WebhookInput> {
    let (&provider, rest) = data.split_first()?;
    let (&method, rest) = rest.split_first()?;
    let provider = Provider::ALL[usize::from(provider) % Provider::ALL.len()];
    let method = if method & 1 == 1 {
        Method::GET
    } else {
        Method::POST
    };
    let mut segments = rest.split(|&b| b == 0);
    let body = Bytes::copy_from_slice(segments.next().unwrap_or_default());
    let mut headers = HeaderMap::new();
    let mut query = String::new();
    for segment in segments {
        let Some((&selector, value)) = segment.split_first() else {
            continue;
        };
        if selector == b'?' {
            query = String::from_utf8_lossy(value).into_owned();
            continue;
        }
        let name = WEBHOOK_HEADERS[usize::from(selector) % WEBHOOK_HEADERS.len()];
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    Some(WebhookInput {
        provider,
        method,
        headers,
        query,
        body,
    })
}

/// Target: every provider's signature parsing and verification, and the GET handshakes.
/// Properties: no panic; the same input gives the same verdict twice; a verified body
/// keeps its bytes and its delivery id is at most 200 characters.
pub fn webhook(data: &[u8]) {
    let Some(input) = decode_webhook(data) else {
        return;
    };
    let secrets: Vec<Secret> = WEBHOOK_SECRETS.iter().map(|s| Secret::new(*s)).collect();
    if input.method == Method::GET {
        let first = handshake::subscription_get(
            input.provider,
            &input.headers,
            &input.query,
            &secrets,
            &secrets,
        );
        let again = handshake::subscription_get(
            input.provider,
            &input.headers,
            &input.query,
            &secrets,
            &secrets,
        );
        assert_eq!(first, again);
        return;
    }
    let req = WebhookRequest {
        method: &input.method,
        headers: &input.headers,
        url: "https://hooks.example.test/hook?a=1",
        body: &input.body,
    };
    for (tolerance, hubspot_legacy) in [(None, false), (Some(Duration::from_secs(3600)), true)] {
        let options = webhook::VerifyOptions {
            tolerance,
            hubspot_legacy,
        };
        let verify = || {
            webhook::verify_with(
                input.provider,
                &req,
                input.body.clone(),
                &secrets,
                NOW,
                options,
            )
        };
        let (first, again) = (verify(), verify());
        assert_eq!(first.as_ref().err(), again.as_ref().err());
        if let Ok(verified) = first {
            assert_eq!(verified.body(), &input.body);
            assert!(verified
                .delivery_id()
                .is_none_or(|id| id.chars().count() <= 200));
            let _ = handshake::after_verification(&verified, &secrets[0]);
        }
    }
}

/// The values the config target's environment holds: none may appear in an error.
pub const CONFIG_SECRETS: [(&str, &str); 3] = [
    ("FUZZ_TOKEN", "fuzz-env-token-value-0123456789abcdef0123"),
    (
        "FUZZ_COOKIE_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ),
    ("FUZZ_REDIS_URL", "redis://:fuzz-redis-password@127.0.0.1:1"),
];

/// The strings a config gives to secret-bearing keys (`value`, `password_hash`,
/// `secret`, `client_secret`, `url`, `key`; not the names under `env` and `file`), at
/// least 12 characters long and present once in the text: they must not come back in an
/// error.
fn secret_texts(src: &str) -> Vec<String> {
    use crate::config::yaml::Value;
    fn walk(v: &Value, under_secret: bool, out: &mut Vec<String>) {
        match v {
            Value::String(s) if under_secret => out.push(s.clone()),
            Value::Mapping(m) => {
                for (k, v) in m {
                    let secretish = k.as_str().is_some_and(|k| {
                        matches!(
                            k,
                            "value" | "password_hash" | "secret" | "client_secret" | "url" | "key"
                        )
                    });
                    if let Some(k) = k.as_str().filter(|_| under_secret) {
                        out.push(k.to_owned());
                    }
                    // A variable's name and a file's path are not secrets: errors name them.
                    let named = k.as_str().is_some_and(|k| matches!(k, "env" | "file"));
                    walk(v, !named && (under_secret || secretish), out);
                }
            }
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, under_secret, out)),
            Value::Tagged(t) => walk(&t.value, under_secret, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if crate::config::yaml::check_size(src, crate::config::source::MAX_CONFIG_BYTES as usize)
        .is_ok()
    {
        if let Ok(doc) = crate::config::yaml::parse_document(src) {
            walk(&doc, false, &mut out);
        }
    }
    out.retain(|s| s.len() >= 12 && src.matches(s.as_str()).count() == 1);
    out
}

/// Target: the config loader (the validation `check`, `serve` and a reload share).
/// Properties: no panic, and no error message holds an environment secret (one the
/// document does not hold itself) or a string the document gives a secret-bearing key.
pub fn config(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = LoadContext {
        vars: CONFIG_SECRETS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        base_dir: std::path::PathBuf::from("/nonexistent/roomgate-fuzz"),
    };
    let Err(errors) = Config::from_yaml_str(src, &ctx) else {
        return;
    };
    let text = errors.to_string();
    // An environment value the document does not itself hold must never come back.
    for (_, value) in CONFIG_SECRETS.iter().filter(|(_, v)| !src.contains(v)) {
        assert!(
            !text.contains(value),
            "an environment secret in an error: {text}"
        );
    }
    for secret in secret_texts(src) {
        assert!(!text.contains(&secret), "{secret:?} in an error: {text}");
    }
}

/// Target: the sign-in values that travel through the browser and the cookie header.
/// Properties: no panic; an arbitrary string never opens as a sealed value; what is sealed
/// opens to the same data, once the input is used as data, and not for another purpose or
/// audience, nor with a byte changed; a cookie value found holds no `;`.
pub fn sealed_and_cookies(data: &[u8]) {
    use crate::auth::signing;
    let keys = [Secret::new(*b"fuzz-cookie-key-0123456789abcdef")];
    let text = String::from_utf8_lossy(data);
    assert!(
        signing::open::<serde_json::Value>(&keys, "return", "auth.test", NOW, &text).is_err(),
        "an unsigned value opened"
    );
    if let Ok(sealed) = signing::seal(&keys, "return", "auth.test", NOW + 60, &text) {
        let opened: String = signing::open(&keys, "return", "auth.test", NOW, &sealed)
            .expect("a sealed value opens");
        assert_eq!(opened, text);
        assert!(signing::open::<String>(&keys, "handoff", "auth.test", NOW, &sealed).is_err());
        assert!(signing::open::<String>(&keys, "return", "other.test", NOW, &sealed).is_err());
        assert!(signing::open::<String>(&keys, "return", "auth.test", NOW + 60, &sealed).is_err());
        let mut tampered = sealed.into_bytes();
        let at = data.first().map_or(0, |b| usize::from(*b)) % tampered.len();
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        if let Ok(tampered) = String::from_utf8(tampered) {
            let opened = signing::open::<String>(&keys, "return", "auth.test", NOW, &tampered);
            assert!(opened.is_err() || opened.as_deref() == Ok(text.as_ref()));
        }
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(data) {
        headers.append(http::header::COOKIE, v);
    }
    for name in [
        "__meshagent_iap",
        "__Host-roomgate_signin",
        "__Host-roomgate_flow",
    ] {
        if let Some(v) = crate::cookies::value(&headers, name) {
            assert!(!v.contains(';') && !v.is_empty());
        }
    }
    if let Some(path) = crate::auth::redirect::safe_return_path(&text) {
        assert!(path.starts_with('/') && !path.starts_with("//") && !path.contains('\\'));
    }
}

/// Target: host and path canonicalisation. Properties: no panic; both are idempotent; a
/// canonical path starts with `/` and holds no empty, `.` or `..` segment; a canonical
/// host is lower-case.
pub fn canonical(data: &[u8]) {
    use crate::canonical::{canonical_host, canonical_path, match_view};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = canonical_path(text) {
        assert_eq!(
            canonical_path(&path).as_deref(),
            Ok(path.as_ref()),
            "{text:?}"
        );
        assert!(path.starts_with('/'), "{path:?}");
        let inner = path.trim_end_matches('/');
        for segment in inner.split('/').skip(1) {
            assert!(!matches!(segment, "" | "." | ".."), "{text:?} -> {path:?}");
        }
        let view = match_view(&path);
        assert!(view.starts_with('/'), "{view:?}");
    }
    if let Some(host) = canonical_host(text) {
        assert_eq!(
            canonical_host(&host).as_deref(),
            Some(host.as_ref()),
            "{text:?}"
        );
        assert!(!host.bytes().any(|b| b.is_ascii_uppercase()), "{host:?}");
    }
}

/// Target: the reader of service responses (`pool::head`, `pool::chunked`), against
/// hyper's client reading the same bytes. The first byte says whether the request was
/// `HEAD` (bit 0) and in what pieces roomgate's reader is fed (the rest); the remaining
/// bytes are what the service sent before closing. Properties: no panic; whatever
/// roomgate's reader accepts (a `101` aside, whose bytes after the head belong to the
/// protocol switched to), hyper's client accepts too, with the same status, the same
/// fields once hyper's are cleaned as roomgate cleans an h2c service's, and the same body
/// bytes. roomgate's reader may refuse what hyper accepts (it is stricter), never the
/// other way round.
pub fn response(data: &[u8]) {
    let Some((&flags, wire)) = data.split_first() else {
        return;
    };
    let head_request = flags & 1 == 1;
    let piece = usize::from(flags >> 1) + 1;
    let Ok(ours) = read_response(wire, head_request, piece) else {
        return;
    };
    if ours.0 == http::StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    let theirs = hyper_reads(wire, head_request);
    let Ok(theirs) = theirs else {
        panic!("roomgate read {ours:?}; hyper refused: {theirs:?}");
    };
    assert_eq!(ours, theirs, "roomgate, then hyper");
}

/// A response as read: status, fields as forwarded, body bytes.
type ReadResponse = (http::StatusCode, HeaderMap, Vec<u8>);

/// roomgate's reading of `wire`, fed to it `piece` bytes at a time; `Err` where it
/// refuses the response (or it was cut short).
pub fn read_response(
    wire: &[u8],
    head_request: bool,
    piece: usize,
) -> Result<ReadResponse, String> {
    use crate::pool::head::parse_response;
    use crate::pool::{chunked::Step, Decode};
    let mut buf = bytes::BytesMut::new();
    let mut map = http::HeaderMap::new();
    let mut rest = wire.chunks(piece);
    let head = loop {
        match parse_response(&mut buf, head_request, &mut map).map_err(|e| e.to_string())? {
            Some(head) => break head,
            None => buf.extend_from_slice(rest.next().ok_or("cut short in the head")?),
        }
    };
    let mut decode = Decode::of(head.framing);
    let mut body = Vec::new();
    loop {
        match decode.next(&mut buf).map_err(|e| e.to_string())? {
            Step::Data(data) => body.extend_from_slice(&data),
            Step::Done => break,
            Step::More => match rest.next() {
                Some(more) => buf.extend_from_slice(more),
                None if decode.ends_at_close() => break,
                None => return Err("body cut short".into()),
            },
        }
        if decode.ended() {
            break;
        }
    }
    Ok((head.status, head.headers, body))
}

/// hyper's client reading of `wire` as the answer to `GET /` (or `HEAD /`), its fields
/// cleaned as roomgate cleans what hyper reads from an h2c service.
pub fn hyper_reads(wire: &[u8], head_request: bool) -> Result<ReadResponse, String> {
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let wire = wire.to_vec();
    runtime.block_on(async move {
        let (near, mut far) = tokio::io::duplex(wire.len() + 4096);
        // The service: it answers once the request head is in, then closes its sending
        // side, and takes whatever else comes until the client is gone.
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match far.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            if far.write_all(&wire).await.is_ok() && far.shutdown().await.is_ok() {
                let _ = far.read_to_end(&mut seen).await;
            }
        });
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(near))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = http::Request::builder()
            .method(if head_request {
                Method::HEAD
            } else {
                Method::GET
            })
            .uri("/")
            .header(http::header::HOST, "svc.test")
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let (parts, body) = crate::forward::cleaned(resp).into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?;
            Ok((parts.status, parts.headers, body.to_bytes().to_vec()))
        };
        tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .map_err(|_| "hyper did not finish".to_owned())?
    })
}
