//! Contentful request verification (v1, as in @contentful/node-apps-toolkit's
//! `verifyRequest`): `x-contentful-signature` = hex HMAC-SHA256(signing secret,
//! `METHOD\nPATH\nHEADERS\nBODY`).
//!
//! PATH is the request target (path and query) encoded as the toolkit encodes it;
//! HEADERS are the headers named in `x-contentful-signed-headers` that the request
//! carries, plus that header and `x-contentful-timestamp`, as `name:value` (values
//! trimmed) sorted by name and joined by `;`; the signed-headers value in it is that
//! sorted list of names and the timestamp the number the toolkit parsed. The timestamp is
//! in unix milliseconds and, as in the toolkit, only timestamps older than the window (30
//! seconds) are rejected. The secret must be the 64 characters Contentful shows. The
//! list of signed headers is capped ([`MAX_SIGNED_HEADERS`] names, [`MAX_LIST_LEN`]
//! bytes) and a signed header sent twice is refused, so no request makes this module
//! guess which value was signed.

use std::time::Duration;

use http::Method;

use super::sig::{self, Window};
use super::{SignatureError, Verdict, WebhookRequest};
use crate::sensitive::Secret;

pub const WINDOW_SIDE: Window = Window::PastOnly;

/// The most header names `x-contentful-signed-headers` may list.
pub const MAX_SIGNED_HEADERS: usize = 32;
/// The longest `x-contentful-signed-headers` value read.
pub const MAX_LIST_LEN: usize = 2048;

const SIGNATURE: &str = "x-contentful-signature";
const SIGNED_HEADERS: &str = "x-contentful-signed-headers";
const TIMESTAMP: &str = "x-contentful-timestamp";
/// The toolkit refuses timestamps before 2020-01-01 (unix ms).
const MIN_TIMESTAMP_MS: i64 = 1_577_836_800_000;
const SECRET_LEN: usize = 64;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret, now: i64, window: Duration) -> Verdict {
    let signature = sig::header(req, SIGNATURE)?;
    let list = sig::header(req, SIGNED_HEADERS)?;
    let ts = sig::parse_unix(sig::header(req, TIMESTAMP)?)?;
    if ts <= MIN_TIMESTAMP_MS {
        return Err(SignatureError::Invalid);
    }
    sig::check_window(ts, 1000, now, window, WINDOW_SIDE)?;
    if list.len() > MAX_LIST_LEN || signature.len() != 64 || secret.len() != SECRET_LEN {
        return Err(SignatureError::Invalid);
    }
    let names: Vec<&str> = list.split(',').collect();
    if names.len() < 2 || names.len() > MAX_SIGNED_HEADERS {
        return Err(SignatureError::Invalid);
    }
    let expected = sig::decode_hex(signature)?;
    let method = signed_method(req.method).ok_or(SignatureError::Invalid)?;
    let headers = signed_headers(req, &names, ts)?;
    let path = encoded_target(target_of(req.url));
    sig::verdict(sig::sha256_matches(
        secret.expose(),
        &[
            method.as_bytes(),
            b"\n",
            path.as_bytes(),
            b"\n",
            headers.as_bytes(),
            b"\n",
            req.body,
        ],
        &expected,
    ))
}

/// The methods the toolkit signs.
fn signed_method(method: &Method) -> Option<&'static str> {
    let name = match *method {
        Method::GET => "GET",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        _ => return None,
    };
    Some(name)
}

/// `name:value` of the listed headers the request carries, with the signed-headers list
/// and timestamp as the toolkit recomputes them, sorted by name and joined by `;`.
fn signed_headers(
    req: &WebhookRequest<'_>,
    names: &[&str],
    ts: i64,
) -> Result<String, SignatureError> {
    let mut picked: Vec<(&str, &str)> = Vec::with_capacity(names.len() + 2);
    for name in req.headers.keys() {
        let name = name.as_str();
        if !names.contains(&name) || name == SIGNED_HEADERS || name == TIMESTAMP {
            continue;
        }
        let mut values = req.headers.get_all(name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(SignatureError::Invalid);
        };
        let value = value.to_str().map_err(|_| SignatureError::Invalid)?;
        picked.push((name, value.trim()));
    }
    let mut keys: Vec<&str> = picked.iter().map(|(name, _)| *name).collect();
    keys.push(SIGNED_HEADERS);
    keys.push(TIMESTAMP);
    keys.sort_unstable();
    let list = keys.join(",");
    let ts = ts.to_string();
    picked.push((SIGNED_HEADERS, &list));
    picked.push((TIMESTAMP, &ts));
    picked.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let joined: Vec<String> = picked
        .iter()
        .map(|(name, value)| format!("{name}:{value}"))
        .collect();
    Ok(joined.join(";"))
}

/// The request target (path and query) of `scheme://authority/target`.
fn target_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme
        .find('/')
        .map_or("/", |slash| &after_scheme[slash..])
}

/// The toolkit's `getNormalizedEncodedURI`: the text after the first `?` up to any
/// second one is escaped like `encodeURIComponent`, then the whole is escaped like
/// `encodeURI` (so an escape in the query is escaped twice).
fn encoded_target(target: &str) -> String {
    let mut parts = target.split('?');
    let path = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let joined = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", escape(query, COMPONENT_KEEP))
    };
    escape(&joined, URI_KEEP)
}

/// What `encodeURIComponent` leaves alone besides letters and digits.
const COMPONENT_KEEP: &[u8] = b"-_.!~*'()";
/// What `encodeURI` leaves alone besides letters and digits.
const URI_KEEP: &[u8] = b"-_.!~*'();,/?:@&=+$#";

fn escape(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T};

    const SECRET: &str = "contentful-signing-secret-0123456789abcdefghijklmnopqrstuvwxyz01";
    const URL: &str = "https://hooks.example.test/contentful?space=s1&a=b%20c";
    const BODY: &[u8] = br#"{"sys":{"id":"entry-1","type":"Entry"}}"#;
    const TS: &str = "1700000000000";
    const LIST: &str = "x-contentful-crn,x-contentful-signed-headers,x-contentful-timestamp";
    const CRN: &str = "crn:contentful:::content:spaces/s1";
    // testdata/make_vectors.py (and the toolkit's own signRequest): hex HMAC-SHA256(SECRET,
    // "POST\n" + encoded path + "\n" +
    // "x-contentful-crn:CRN;x-contentful-signed-headers:LIST;x-contentful-timestamp:TS"
    // + "\n" + BODY).
    const SIG: &str = "74e783111b43b73aa4f3ec6ec4470510249beebe0dbd876bd4888d661d54b4b1";

    fn pairs<'a>(sig: &'a str, ts: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            (SIGNATURE, sig),
            (SIGNED_HEADERS, LIST),
            (TIMESTAMP, ts),
            ("x-contentful-crn", CRN),
            ("x-contentful-topic", "ContentManagement.Entry.publish"),
        ]
    }

    fn check(
        pairs: &[(&str, &str)],
        url: &str,
        body: &[u8],
        secret: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let h = headers(pairs);
        verify(&post(&h, url, body), &Secret::new(secret), now, secs(30))
    }

    #[test]
    fn the_target_is_encoded_like_the_toolkit() {
        assert_eq!(
            encoded_target("/contentful?space=s1&a=b%20c"),
            "/contentful?space%253Ds1%2526a%253Db%252520c"
        );
        assert_eq!(encoded_target("/a%20b/c d"), "/a%2520b/c%20d");
        assert_eq!(encoded_target("/p?"), "/p");
        assert_eq!(encoded_target("/p?x?y"), "/p?x");
        assert_eq!(target_of(URL), "/contentful?space=s1&a=b%20c");
        assert_eq!(target_of("http://h.test"), "/");
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(&pairs(SIG, TS), URL, BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn tampered_body_or_path_is_invalid() {
        assert_eq!(
            check(&pairs(SIG, TS), URL, b"{}", SECRET, T),
            Err(SignatureError::Invalid)
        );
        let other = URL.replace("s1", "s2");
        assert_eq!(
            check(&pairs(SIG, TS), &other, BODY, SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    // Security property: a signed header's value is covered by the signature.
    #[test]
    fn a_changed_signed_header_is_invalid_and_an_unsigned_one_is_not_looked_at() {
        let mut changed = pairs(SIG, TS);
        changed[3].1 = "crn:contentful:::content:spaces/s2";
        assert_eq!(
            check(&changed, URL, BODY, SECRET, T),
            Err(SignatureError::Invalid)
        );
        let mut unsigned = pairs(SIG, TS);
        unsigned[4].1 = "ContentManagement.Entry.delete";
        assert_eq!(check(&unsigned, URL, BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn wrong_secret_is_invalid() {
        let other = SECRET.replace("0123", "3210");
        assert_eq!(
            check(&pairs(SIG, TS), URL, BODY, &other, T),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            check(&pairs(SIG, TS), URL, BODY, "short", T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_headers_are_missing() {
        for skip in [SIGNATURE, SIGNED_HEADERS, TIMESTAMP] {
            let partial: Vec<_> = pairs(SIG, TS)
                .into_iter()
                .filter(|(n, _)| *n != skip)
                .collect();
            assert_eq!(
                check(&partial, URL, BODY, SECRET, T),
                Err(SignatureError::Missing),
                "{skip}"
            );
        }
    }

    #[test]
    fn stale_timestamp_is_rejected_and_future_ones_within_five_minutes_pass() {
        assert_eq!(check(&pairs(SIG, TS), URL, BODY, SECRET, T + 30), Ok(()));
        assert_eq!(
            check(&pairs(SIG, TS), URL, BODY, SECRET, T + 31),
            Err(SignatureError::Stale)
        );
        // The toolkit takes any future timestamp; roomgate allows five minutes of skew.
        assert_eq!(check(&pairs(SIG, TS), URL, BODY, SECRET, T - 300), Ok(()));
        assert_eq!(
            check(&pairs(SIG, TS), URL, BODY, SECRET, T - 301),
            Err(SignatureError::Stale)
        );
    }

    // Security property: the signed-header list is bounded before any work, and a signed
    // header sent twice is refused rather than guessed at.
    #[test]
    fn oversized_lists_and_repeated_signed_headers_are_refused() {
        let many = format!("{LIST}{}", ",x-a".repeat(MAX_SIGNED_HEADERS));
        let mut long = pairs(SIG, TS);
        long[1].1 = &many;
        assert_eq!(
            check(&long, URL, BODY, SECRET, T),
            Err(SignatureError::Invalid)
        );
        let mut twice = pairs(SIG, TS);
        twice.push(("x-contentful-crn", CRN));
        assert_eq!(
            check(&twice, URL, BODY, SECRET, T),
            Err(SignatureError::Invalid)
        );
    }
}
