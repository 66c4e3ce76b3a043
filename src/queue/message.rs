//! The queue message: what a verified webhook becomes on its way to a stream.
//!
//! Owns the shape of a stream entry (the fields of `docs/reference.md`, "Redis layout", in that order) and the
//! rule that only a [`Verified`] body can become one. It must not do I/O, read the clock or
//! keep a header that carries a credential (`cookie`, `authorization`, a provider's shared
//! token, hop-by-hop).

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, Method};
use time::{OffsetDateTime, UtcOffset};

use crate::webhook::Verified;

/// Headers whose value is a provider's shared secret itself, not a signature over the
/// request: whoever reads one can forge deliveries. (Okta's is `authorization`.)
const SHARED_TOKEN_HEADERS: [&str; 2] = ["x-telegram-bot-api-secret-token", "x-gitlab-token"];

/// Headers that never reach a queue: credentials and hop-by-hop headers.
fn dropped(name: &str) -> bool {
    matches!(name, "authorization" | "cookie")
        || SHARED_TOKEN_HEADERS.contains(&name)
        || crate::headers::is_hop_by_hop(name)
}

/// What the request pipeline knows about a webhook besides its verified body. Borrowed
/// from the request and the config while the message is enqueued; owned only where a
/// message outlives its request (the in-memory queue).
#[derive(Clone, Debug)]
pub struct MessageMeta<'a> {
    pub method: Method,
    /// The request's host, normalised (lowercase, no port, no trailing dot).
    pub host: Cow<'a, str>,
    /// The request path, without the query string.
    pub path: Cow<'a, str>,
    pub room: Cow<'a, str>,
    /// `meshagent.request.queue`.
    pub queue: Cow<'a, str>,
    /// `meshagent.request.processor`: the identity that consumes the queue.
    pub processor: Cow<'a, str>,
}

/// A request's header fields as a message records them: the request's own, and the fields
/// roomgate adds on the way to the service (`X-Forwarded-*`), which its map does not hold.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub own: &'a HeaderMap,
    pub added: &'a [(&'a str, &'a [u8])],
}

impl<'a> From<&'a HeaderMap> for Fields<'a> {
    fn from(own: &'a HeaderMap) -> Fields<'a> {
        Fields { own, added: &[] }
    }
}

/// One webhook delivery, ready to be enqueued. Only [`QueueMessage::new`] makes one, and
/// it needs a [`Verified`] body. It borrows what the request and the config hold until
/// [`QueueMessage::into_owned`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueMessage<'a> {
    body: Bytes,
    content_type: Cow<'a, str>,
    method: Method,
    host: Cow<'a, str>,
    path: Cow<'a, str>,
    room: Cow<'a, str>,
    queue: Cow<'a, str>,
    processor: Cow<'a, str>,
    provider: &'static str,
    delivery_id: String,
    received_at: String,
    headers: Vec<u8>,
    received: OffsetDateTime,
}

/// How many field/value pairs an entry has (`docs/reference.md`, "Redis layout").
const FIELDS: usize = 12;

impl<'a> QueueMessage<'a> {
    /// Build the message for a verified body. The delivery id is the provider's when it
    /// sends one (stable across its retries), else a fresh UUIDv7 stamped with `now`.
    pub fn new(
        verified: Verified,
        meta: MessageMeta<'a>,
        headers: impl Into<Fields<'a>>,
        now: OffsetDateTime,
    ) -> QueueMessage<'a> {
        let headers = headers.into();
        let now = now.to_offset(UtcOffset::UTC);
        let provider = verified.provider().as_str();
        let delivery_id = match verified.delivery_id() {
            Some(id) => id.to_owned(),
            None => new_delivery_id(now),
        };
        let content_type = headers
            .own
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .unwrap_or_default();
        QueueMessage {
            body: verified.into_body(),
            content_type,
            method: meta.method,
            host: meta.host,
            path: meta.path,
            room: meta.room,
            queue: meta.queue,
            processor: meta.processor,
            provider,
            delivery_id,
            received_at: format_received_at(now),
            headers: headers_json(headers),
            received: now,
        }
    }

    /// The same message, holding its own copy of everything it borrowed.
    pub fn into_owned(self) -> QueueMessage<'static> {
        QueueMessage {
            body: self.body,
            content_type: Cow::Owned(self.content_type.into_owned()),
            method: self.method,
            host: Cow::Owned(self.host.into_owned()),
            path: Cow::Owned(self.path.into_owned()),
            room: Cow::Owned(self.room.into_owned()),
            queue: Cow::Owned(self.queue.into_owned()),
            processor: Cow::Owned(self.processor.into_owned()),
            provider: self.provider,
            delivery_id: self.delivery_id,
            received_at: self.received_at,
            headers: self.headers,
            received: self.received,
        }
    }

    /// The names of the stream entry's fields, in the documented order.
    pub const FIELD_NAMES: [&'static str; FIELDS] = [
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
        "headers",
    ];

    /// The stream entry's fields, in the documented order. The body is the exact bytes.
    pub fn fields(&self) -> [(&'static str, &[u8]); FIELDS] {
        let values = self.values();
        std::array::from_fn(|i| (Self::FIELD_NAMES[i], values[i]))
    }

    /// The values of [`QueueMessage::fields`], in the order of [`QueueMessage::FIELD_NAMES`].
    pub fn values(&self) -> [&[u8]; FIELDS] {
        [
            &self.body[..],
            self.content_type.as_bytes(),
            self.method.as_str().as_bytes(),
            self.host.as_bytes(),
            self.path.as_bytes(),
            self.room.as_bytes(),
            self.queue.as_bytes(),
            self.processor.as_bytes(),
            self.provider.as_bytes(),
            self.delivery_id.as_bytes(),
            self.received_at.as_bytes(),
            &self.headers,
        ]
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    pub fn room(&self) -> &str {
        &self.room
    }

    /// The request path the delivery came to (without query).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    pub fn provider(&self) -> &str {
        self.provider
    }

    pub fn delivery_id(&self) -> &str {
        &self.delivery_id
    }

    /// RFC 3339 UTC with milliseconds.
    pub fn received_at(&self) -> &str {
        &self.received_at
    }

    /// The `received_at` instant, for clocks that follow the message (the in-memory queue).
    pub fn received(&self) -> OffsetDateTime {
        self.received
    }

    /// The kept request headers as a compact JSON object.
    pub fn headers_json(&self) -> &[u8] {
        &self.headers
    }
}

fn new_delivery_id(now: OffsetDateTime) -> String {
    let nanos = now.unix_timestamp_nanos();
    let secs = u64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0);
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, subsec);
    uuid::Uuid::new_v7(ts).to_string()
}

/// Format an instant as `received_at`: `2024-05-01T12:34:56.789Z` (RFC 3339, UTC,
/// milliseconds).
pub fn format_received_at(now: OffsetDateTime) -> String {
    let t = now.to_offset(UtcOffset::UTC);
    let mut out = String::with_capacity(24);
    // A year outside 0..=9999 is not RFC 3339; clamp rather than write a malformed stamp.
    push_digits(&mut out, t.year().clamp(0, 9999) as u32, 4);
    out.push('-');
    push_digits(&mut out, u8::from(t.month()).into(), 2);
    out.push('-');
    push_digits(&mut out, t.day().into(), 2);
    out.push('T');
    push_digits(&mut out, t.hour().into(), 2);
    out.push(':');
    push_digits(&mut out, t.minute().into(), 2);
    out.push(':');
    push_digits(&mut out, t.second().into(), 2);
    out.push('.');
    push_digits(&mut out, t.millisecond().into(), 3);
    out.push('Z');
    out
}

/// Append the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u32.pow(place)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// The request headers (its own and the added ones) as a JSON object: names lowercase (as
/// `http` keeps them) in sorted order, repeated headers joined with `, `, credentials and
/// hop-by-hop headers (including any the `Connection` header names) left out. One pass
/// over the fields, written straight into one buffer.
pub fn headers_json<'a>(fields: impl Into<Fields<'a>>) -> Vec<u8> {
    let Fields { own, added } = fields.into();
    // The names `Connection` lists, read once (the pipeline has normally removed it and
    // them already; a message never relies on that).
    let listed: Vec<&[u8]> = crate::headers::connection_tokens(own).collect();
    let mut kept: Vec<(u64, &str, &[u8])> = Vec::with_capacity(own.len() + added.len());
    let mut bytes = 2;
    let own_fields = own.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
    for (name, value) in own_fields.chain(added.iter().copied()) {
        if dropped(name)
            || listed
                .iter()
                .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
        {
            continue;
        }
        bytes += name.len() + value.len() + 6;
        kept.push((sort_prefix(name), name, value));
    }
    // By the first eight bytes as one integer, then by the rest: the same order as by
    // the names, with the full comparison only for names that share eight bytes.
    // Stable: the values of a repeated header keep their order.
    kept.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let mut out = Vec::with_capacity(bytes);
    out.push(b'{');
    let mut previous: Option<&str> = None;
    for (_, name, value) in kept {
        if previous == Some(name) {
            // Another value of the same header: extend the string just written.
            out.pop();
            out.extend_from_slice(b", ");
        } else {
            if previous.is_some() {
                out.push(b',');
            }
            // Header names are lowercase tokens: nothing in them needs escaping.
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":\"");
        }
        json_string_body(&mut out, value);
        out.push(b'"');
        previous = Some(name);
    }
    out.push(b'}');
    out
}

/// The first eight bytes of a name as a big-endian integer, zero-padded: ordering these
/// orders the names by their first eight bytes.
fn sort_prefix(name: &str) -> u64 {
    let mut prefix = [0u8; 8];
    let n = name.len().min(8);
    prefix[..n].copy_from_slice(&name.as_bytes()[..n]);
    u64::from_be_bytes(prefix)
}

/// Append the inside of a JSON string literal for a header value: printable ASCII other
/// than `"` and `\\` as it is (nearly every value), anything else through `serde_json`
/// (bytes that are not UTF-8 become U+FFFD).
pub(crate) fn json_string_body(out: &mut Vec<u8>, value: &[u8]) {
    // Folded rather than `all`: no early exit, so the scan vectorises.
    if value.iter().fold(true, |plain, &b| plain & plain_json(b)) {
        out.extend_from_slice(value);
        return;
    }
    let mut literal = Vec::with_capacity(value.len() + 8);
    // Writing into a Vec cannot fail, and a `str` always serializes.
    let _ = serde_json::to_writer(&mut literal, &String::from_utf8_lossy(value));
    out.extend_from_slice(&literal[1..literal.len() - 1]);
}

/// A byte that stands for itself inside a JSON string: printable ASCII but `"` and `\\`.
fn plain_json(b: u8) -> bool {
    (b.wrapping_sub(0x20) < 0x5f) & (b != b'"') & (b != b'\\')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sensitive::Secret;
    use crate::webhook::{self, Provider, WebhookRequest};
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use time::macros::datetime;

    pub(crate) const SECRET: &str = "test-secret";

    /// A GitHub-signed request and its `Verified` body.
    pub(crate) fn verified(body: &'static [u8], delivery: Option<&str>) -> (Verified, HeaderMap) {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(body);
        let sig = hex::encode(mac.finalize().into_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            format!("sha256={sig}").parse().unwrap(),
        );
        headers.insert("content-type", "application/json".parse().unwrap());
        if let Some(d) = delivery {
            headers.insert("x-github-delivery", d.parse().unwrap());
        }
        let req = WebhookRequest {
            method: &Method::POST,
            headers: &headers,
            url: "https://hooks.acme.test/webhooks/github",
            body,
        };
        let v = webhook::verify(
            Provider::Github,
            &req,
            Bytes::from_static(body),
            &[Secret::new(SECRET)],
            0,
            None,
        )
        .unwrap();
        (v, headers)
    }

    pub(crate) fn meta() -> MessageMeta<'static> {
        MessageMeta {
            method: Method::POST,
            host: "hooks.acme.test".into(),
            path: "/webhooks/github".into(),
            room: "acme".into(),
            queue: "github-events".into(),
            processor: "webhook-worker".into(),
        }
    }

    #[test]
    fn a_message_keeps_the_exact_body_and_the_providers_delivery_id() {
        let (v, h) = verified(b"{\"a\":1}\n", Some("d-123"));
        let m = QueueMessage::new(v, meta(), &h, datetime!(2024-05-01 12:34:56.789 UTC));
        assert_eq!(&m.body()[..], b"{\"a\":1}\n");
        assert_eq!(m.delivery_id(), "d-123");
        assert_eq!(m.provider(), "github");
        assert_eq!(m.received_at(), "2024-05-01T12:34:56.789Z");
        let names: Vec<_> = m.fields().iter().map(|(n, _)| *n).collect();
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
    }

    #[test]
    fn without_a_provider_delivery_id_a_uuid_v7_is_generated() {
        let (v, h) = verified(b"x", None);
        let m = QueueMessage::new(v, meta(), &h, datetime!(2024-05-01 12:00 UTC));
        let id = uuid::Uuid::parse_str(m.delivery_id()).unwrap();
        assert_eq!(id.get_version_num(), 7);
    }

    #[test]
    fn received_at_is_converted_to_utc() {
        let t = datetime!(2024-05-01 14:00:00.5 +02:00);
        assert_eq!(format_received_at(t), "2024-05-01T12:00:00.500Z");
        let padded = datetime!(2024-01-02 03:04:05.0079 UTC);
        assert_eq!(format_received_at(padded), "2024-01-02T03:04:05.007Z");
        let last = datetime!(0987-12-31 23:59:59.999 UTC);
        assert_eq!(format_received_at(last), "0987-12-31T23:59:59.999Z");
        // Across four centuries of instants, the same text as the generic formatter.
        for step in 0..2_000i64 {
            let t = OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(step) * 6_311_390_123_456_789 - 2_208_988_800_000_000_000,
            )
            .unwrap();
            let reference = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            );
            assert_eq!(format_received_at(t), reference);
        }
    }

    #[test]
    fn credentials_and_every_hop_by_hop_name_are_dropped() {
        for name in [
            "authorization",
            "cookie",
            "x-telegram-bot-api-secret-token",
            "x-gitlab-token",
            "proxy-authorization",
            "connection",
            "keep-alive",
            "proxy-authenticate",
            "proxy-connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(dropped(name), "{name}");
        }
        for name in [
            "content-type",
            "x-github-event",
            "user-agent",
            "x-authorization",
        ] {
            assert!(!dropped(name), "{name}");
        }
    }

    /// Credentials never reach a queue: cookie, authorization and hop-by-hop headers are
    /// dropped, including the ones `Connection` names.
    #[test]
    fn credentials_and_hop_by_hop_headers_are_not_enqueued() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "sid=1".parse().unwrap());
        h.insert("authorization", "Bearer t".parse().unwrap());
        h.insert("proxy-authorization", "Basic x".parse().unwrap());
        h.insert("connection", "keep-alive, x-private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("X-GitHub-Event", "push".parse().unwrap());
        h.append("accept", "a".parse().unwrap());
        h.append("accept", "b".parse().unwrap());
        let json: serde_json::Value = serde_json::from_slice(&headers_json(&h)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"x-github-event": "push", "accept": "a, b"})
        );
    }

    /// Security property: a provider's shared token (Telegram, GitLab) is the secret
    /// itself, so it never reaches the queue, where any reader could forge deliveries.
    #[test]
    fn shared_token_headers_are_not_enqueued() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-telegram-bot-api-secret-token",
            "tg-token".parse().unwrap(),
        );
        h.insert("X-Gitlab-Token", "gl-token".parse().unwrap());
        h.insert("x-gitlab-event", "Push Hook".parse().unwrap());
        let json: serde_json::Value = serde_json::from_slice(&headers_json(&h)).unwrap();
        assert_eq!(json, serde_json::json!({"x-gitlab-event": "Push Hook"}));
    }

    /// The fields roomgate adds on the way (not in the request's map) are recorded with
    /// the request's own, in the same order.
    #[test]
    fn added_fields_are_recorded_among_the_requests_own() {
        let mut h = HeaderMap::new();
        h.insert("x-github-event", "push".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        let added: [(&str, &[u8]); 2] = [
            ("x-forwarded-for", b"192.0.2.7"),
            ("x-forwarded-proto", b"https"),
        ];
        let fields = Fields {
            own: &h,
            added: &added,
        };
        assert_eq!(
            String::from_utf8(headers_json(fields)).expect("UTF-8"),
            r#"{"content-type":"application/json","x-forwarded-for":"192.0.2.7","x-forwarded-proto":"https","x-github-event":"push"}"#
        );
    }

    /// The object is compact, its names sorted, and values that need escaping (or are not
    /// UTF-8) still make valid JSON.
    #[test]
    fn headers_json_is_sorted_compact_and_escaped() {
        let mut h = HeaderMap::new();
        h.insert("x-b", "say \"hi\"\\".parse().unwrap());
        h.insert("x-a", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        assert_eq!(
            String::from_utf8(headers_json(&h)).expect("UTF-8"),
            "{\"content-type\":\"application/json\",\"x-a\":\"caf\u{fffd}\",\
             \"x-b\":\"say \\\"hi\\\"\\\\\"}"
        );
        assert_eq!(headers_json(&HeaderMap::new()), b"{}");
    }

    /// A character that must be escaped is found wherever it sits in a value.
    #[test]
    fn a_character_to_escape_is_found_at_any_position() {
        for len in [1, 15, 16, 17, 31, 32, 33, 70] {
            for at in 0..len {
                for special in [b'"', b'\\', b'\t', 0x7f] {
                    let mut value = vec![b'a'; len];
                    value[at] = special;
                    let mut out = vec![b'"'];
                    json_string_body(&mut out, &value);
                    out.push(b'"');
                    let parsed: String = serde_json::from_slice(&out).expect("a JSON string");
                    assert_eq!(parsed.as_bytes(), &value[..], "len {len}, at {at}");
                }
            }
        }
    }

    /// Names that share their first eight bytes, or are a prefix of another, still sort
    /// as strings; the values of a repeated header keep the order they came in.
    #[test]
    fn headers_json_sorts_names_sharing_a_long_prefix_and_keeps_repeated_values_in_order() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("x-github-hook-id", "3"),
            ("x-github-event", "2"),
            ("x-gith", "0"),
            ("x-github-delivery", "1"),
            ("x-github", "0b"),
            ("accept", "second"),
            ("a", "first"),
        ] {
            h.append(name, value.parse().unwrap());
        }
        h.append("accept", "third".parse().unwrap());
        assert_eq!(
            String::from_utf8(headers_json(&h)).expect("UTF-8"),
            "{\"a\":\"first\",\"accept\":\"second, third\",\"x-gith\":\"0\",\"x-github\":\"0b\",\
             \"x-github-delivery\":\"1\",\"x-github-event\":\"2\",\"x-github-hook-id\":\"3\"}"
        );
    }
}
