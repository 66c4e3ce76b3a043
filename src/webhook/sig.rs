//! Shared pieces of signature checking: header lookup, HMAC over several parts,
//! hex/base64 decoding, `k=v` list parsing and the timestamp window.
//!
//! Every provider module builds on these so that the constant-time comparison, the
//! window rule and the caps on attacker-supplied lists are written once. Nothing here
//! knows a provider's header names or policy, and nothing here compares MACs with `==`:
//! verification goes through [`Mac::verify_slice`] or `subtle`.
//!
//! Cost bounds: a header longer than [`MAX_HEADER_BYTES`] or a list of more than
//! [`MAX_LIST_ENTRIES`] entries is `Invalid` before anything is computed, and a list of
//! signatures is checked with one MAC per secret ([`list_matches`]), whatever its length.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{SignatureError, WebhookRequest};

/// The longest signature, timestamp or token header read at all: longer is `Invalid`
/// before any parsing or MAC. A provider's real header is a few hundred bytes.
pub const MAX_HEADER_BYTES: usize = 4096;

/// The most entries a signature list (`t=…,v1=…,v1=…`, `v1,… v1,…`) may hold, counting
/// every item whatever its scheme: more is `Invalid` before any MAC. Providers send one
/// signature per active secret, so two or three in practice.
pub const MAX_LIST_ENTRIES: usize = 16;

/// The most asymmetric (Ed25519) signatures checked in one list, per key: the first.
/// Unlike an HMAC, each check hashes the whole body again (about 3 ms for 1 MiB on a
/// loaded 2-core machine), so this cap is what bounds the cost. A sender rotating its
/// Ed25519 keys must list the signature of the key the endpoint holds first.
pub const MAX_ASYMMETRIC_ENTRIES: usize = 1;

/// How far in the future a signed timestamp may lie, for every provider with a window
/// (clock skew); past-only windows use it as their only future bound.
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(300);

/// A required header as trimmed text: absent → `Missing`, not visible ASCII or longer
/// than [`MAX_HEADER_BYTES`] → `Invalid`.
pub fn header<'a>(req: &WebhookRequest<'a>, name: &str) -> Result<&'a str, SignatureError> {
    let value = req.headers.get(name).ok_or(SignatureError::Missing)?;
    if value.len() > MAX_HEADER_BYTES {
        return Err(SignatureError::Invalid);
    }
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| SignatureError::Invalid)
}

/// The items of a list, at most [`MAX_LIST_ENTRIES`] of them: a longer list is `Invalid`
/// (before any MAC). Every item counts, whatever it holds.
pub fn capped<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<&'a str>, SignatureError> {
    let mut out = Vec::new();
    for item in items {
        if out.len() == MAX_LIST_ENTRIES {
            return Err(SignatureError::Invalid);
        }
        out.push(item);
    }
    Ok(out)
}

/// The first of several header names that is present (providers that renamed a header).
pub fn first_header<'a>(
    req: &WebhookRequest<'a>,
    names: &[&str],
) -> Result<&'a str, SignatureError> {
    names
        .iter()
        .find(|name| req.headers.contains_key(**name))
        .map_or(Err(SignatureError::Missing), |name| header(req, name))
}

/// Lowercase or uppercase hex → bytes; anything else is `Invalid`, a `0x` prefix too
/// (the decoder would drop one: no provider sends it, so it is not a signature).
pub fn decode_hex(text: &str) -> Result<Vec<u8>, SignatureError> {
    let prefixed = text
        .as_bytes()
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"0x"));
    if prefixed || !text.len().is_multiple_of(2) {
        return Err(SignatureError::Invalid);
    }
    // Into a buffer of the right size: no iterator collecting byte by byte.
    let mut out = vec![0; text.len() / 2];
    hex::decode_to_slice(text, &mut out).map_err(|_| SignatureError::Invalid)?;
    Ok(out)
}

/// Standard (padded) base64 → bytes; anything else is `Invalid`.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, SignatureError> {
    STANDARD.decode(text).map_err(|_| SignatureError::Invalid)
}

/// Text after a required prefix (`sha256=`, `v0=`), else `Invalid`.
pub fn strip<'a>(text: &'a str, prefix: &str) -> Result<&'a str, SignatureError> {
    text.strip_prefix(prefix).ok_or(SignatureError::Invalid)
}

#[cfg(test)]
thread_local! {
    /// MACs and signature checks computed on this thread (tests count them to show that
    /// a capped request is refused before any).
    pub static COMPUTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_computation() {
    #[cfg(test)]
    COMPUTED.with(|n| n.set(n.get() + 1));
}

fn mac_over<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Option<M> {
    count_computation();
    // HMAC accepts keys of any length; `None` is unreachable in practice.
    let mut mac = <M as KeyInit>::new_from_slice(key).ok()?;
    for part in parts {
        mac.update(part);
    }
    Some(mac)
}

/// HMAC-SHA256 of the concatenated `parts`, for values a provider expects us to send back
/// (Zoom's `encryptedToken`). To check a signature use [`sha256_matches`].
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    mac_over::<Hmac<Sha256>>(key, parts).map(|mac| mac.finalize().into_bytes().into())
}

/// Constant-time check of `expected` against HMAC-SHA256(key, parts…).
pub fn sha256_matches(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    mac_over::<Hmac<Sha256>>(key, parts).is_some_and(|mac| mac.verify_slice(expected).is_ok())
}

/// Constant-time check of `expected` against HMAC-SHA1(key, parts…).
pub fn sha1_matches(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    mac_over::<Hmac<Sha1>>(key, parts).is_some_and(|mac| mac.verify_slice(expected).is_ok())
}

/// Strict Ed25519 check (`verify_strict`: canonical signatures, no small-order keys) of
/// `signature` over the concatenated `parts` with a 32-byte public key. Each check hashes
/// the whole message: a caller checking a list takes at most [`MAX_ASYMMETRIC_ENTRIES`].
pub fn ed25519_matches(public_key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    let (Ok(key), Ok(signature)) = (
        <[u8; 32]>::try_from(public_key),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else {
        return false;
    };
    count_computation();
    let message = match parts {
        [one] => std::borrow::Cow::Borrowed(*one),
        many => std::borrow::Cow::Owned(many.concat()),
    };
    key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .is_ok()
}

/// `Ok` when any candidate signature matches; every decoded candidate is checked with
/// `check` (a constant-time MAC comparison). No candidate at all is `Invalid`, and so is
/// a list longer than [`MAX_LIST_ENTRIES`] (before any check).
///
/// `check` runs once per candidate: for a MAC over the body use [`list_matches`], which
/// computes it once whatever the list holds.
pub fn any_matches<'s>(
    candidates: impl IntoIterator<Item = &'s str>,
    decode: fn(&str) -> Result<Vec<u8>, SignatureError>,
    check: impl Fn(&[u8]) -> bool,
) -> Result<(), SignatureError> {
    let candidates = capped(candidates.into_iter())?;
    let mut matched = false;
    for candidate in candidates {
        if let Ok(sig) = decode(candidate) {
            matched |= check(&sig);
        }
    }
    verdict(matched)
}

/// `Ok` when any listed signature equals the MAC `tag()` returns. The list is capped
/// ([`MAX_LIST_ENTRIES`]: longer is `Invalid`); candidates that do not decode are
/// skipped; `tag` runs once, and only when some candidate decoded to a value of a MAC's
/// length. Every candidate is compared in constant time.
pub fn list_matches<'s>(
    candidates: impl IntoIterator<Item = &'s str>,
    decode: fn(&str) -> Result<Vec<u8>, SignatureError>,
    tag: impl FnOnce() -> Option<Vec<u8>>,
) -> Result<(), SignatureError> {
    let candidates = capped(candidates.into_iter())?;
    let decoded: Vec<Vec<u8>> = candidates
        .into_iter()
        .filter_map(|c| decode(c).ok())
        .filter(|sig| sig.len() >= MIN_TAG_BYTES)
        .collect();
    if decoded.is_empty() {
        return Err(SignatureError::Invalid);
    }
    let tag = tag().ok_or(SignatureError::Invalid)?;
    let matched = decoded.iter().fold(false, |matched, sig| {
        matched | bool::from(tag.as_slice().ct_eq(sig.as_slice()))
    });
    verdict(matched)
}

/// The shortest MAC any provider sends (SHA-1, 20 bytes): a shorter candidate cannot
/// match and is not worth a MAC.
const MIN_TAG_BYTES: usize = 20;

/// HMAC-SHA256 of the concatenated `parts` as bytes, for [`list_matches`].
pub fn sha256_tag(key: &[u8], parts: &[&[u8]]) -> Option<Vec<u8>> {
    hmac_sha256(key, parts).map(|tag| tag.to_vec())
}

/// `Ok` when a signature matched, else `Invalid`.
pub fn verdict(matched: bool) -> Result<(), SignatureError> {
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// `k=v` items of a structured header (`t=1,v1=ab,v1=cd` with `,`; Paddle's `ts=1;h1=ab`
/// with `;`). Items without `=` are skipped.
pub fn pairs(text: &str, separator: char) -> impl Iterator<Item = (&str, &str)> {
    text.split(separator)
        .filter_map(|item| item.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// [`pairs`] of a signature list, capped: more than [`MAX_LIST_ENTRIES`] items (with or
/// without `=`) is `Invalid`.
pub fn capped_pairs(text: &str, separator: char) -> Result<Vec<(&str, &str)>, SignatureError> {
    capped(text.split(separator))?;
    Ok(pairs(text, separator).collect())
}

/// The single value of `key` in a `k=v` header, `Invalid` when absent.
pub fn pair<'a>(text: &'a str, separator: char, key: &str) -> Result<&'a str, SignatureError> {
    pairs(text, separator)
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .ok_or(SignatureError::Invalid)
}

/// Decimal unix seconds (or milliseconds) as sent in a header; `Invalid` otherwise.
pub fn parse_unix(text: &str) -> Result<i64, SignatureError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Invalid);
    }
    text.parse().map_err(|_| SignatureError::Invalid)
}

/// An RFC 3339 timestamp (Zendesk, Twitch) as unix seconds; `Invalid` otherwise.
pub fn parse_rfc3339(text: &str) -> Result<i64, SignatureError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| SignatureError::Invalid)
}

/// Which side of `now` a provider's SDK bounds with its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Timestamps older than `now - window` are stale (Stripe, HubSpot); the future is
    /// bounded only by [`MAX_FUTURE_SKEW`].
    PastOnly,
    /// `|now - ts| > window` is stale (Slack's slack_sdk, Standard Webhooks, Paddle…),
    /// and the future side never reaches past [`MAX_FUTURE_SKEW`].
    Both,
}

/// The timestamp rule: `Stale` when `signed` (in `unit_per_second` units: 1 for seconds,
/// 1000 for milliseconds) is older than `window` before `now` (unix seconds), or newer
/// than the future bound after it: the window on a `Both` side, at most
/// [`MAX_FUTURE_SKEW`] either way.
pub fn check_window(
    signed: i64,
    unit_per_second: i64,
    now: i64,
    window: Duration,
    side: Window,
) -> Result<(), SignatureError> {
    let in_units = |d: Duration| {
        i128::try_from(d.as_millis())
            .unwrap_or(i128::MAX / 2)
            .saturating_mul(i128::from(unit_per_second))
            / 1000
    };
    let now = i128::from(now) * i128::from(unit_per_second);
    let future = match side {
        Window::PastOnly => MAX_FUTURE_SKEW,
        Window::Both => window.min(MAX_FUTURE_SKEW),
    };
    let age = now - i128::from(signed);
    let too_old = age > in_units(window);
    let too_new = -age > in_units(future);
    if too_old || too_new {
        Err(SignatureError::Stale)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decodes_either_case_and_refuses_anything_else() {
        assert_eq!(decode_hex("00ff7A"), Ok(vec![0x00, 0xff, 0x7a]));
        assert_eq!(decode_hex(""), Ok(vec![]));
        // Long enough for the vectorised path; a `0x` prefix is not hex.
        let long = "0123456789abcdefABCDEF".repeat(3);
        assert_eq!(decode_hex(&long[..64]).map(|b| b.len()), Ok(32));
        let mut bad_long = long[..64].to_owned();
        bad_long.replace_range(40..41, "g");
        for bad in [
            "0", "abc", "zz", "0g", " 00", "00 ", "+1", "0x00", "0X00", &bad_long,
        ] {
            assert_eq!(decode_hex(bad), Err(SignatureError::Invalid), "{bad:?}");
        }
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn a_timestamp_exactly_at_the_window_edge_is_accepted() {
        assert_eq!(check_window(700, 1, 1000, FIVE_MIN, Window::Both), Ok(()));
        assert_eq!(check_window(1300, 1, 1000, FIVE_MIN, Window::Both), Ok(()));
    }

    #[test]
    fn a_timestamp_one_second_past_the_window_is_stale() {
        assert_eq!(
            check_window(699, 1, 1000, FIVE_MIN, Window::Both),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check_window(1301, 1, 1000, FIVE_MIN, Window::Both),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn past_only_windows_accept_five_minutes_of_future_skew_and_no_more() {
        assert_eq!(
            check_window(1300, 1, 1000, FIVE_MIN, Window::PastOnly),
            Ok(())
        );
        assert_eq!(
            check_window(1301, 1, 1000, FIVE_MIN, Window::PastOnly),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check_window(1_000_000, 1, 1000, FIVE_MIN, Window::PastOnly),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check_window(699, 1, 1000, FIVE_MIN, Window::PastOnly),
            Err(SignatureError::Stale)
        );
        // A short past window does not shorten the future skew.
        let minute = Duration::from_secs(60);
        assert_eq!(
            check_window(1300, 1, 1000, minute, Window::PastOnly),
            Ok(())
        );
    }

    // Security property: a signature dated far ahead cannot be kept and replayed later,
    // whatever window an endpoint configures.
    #[test]
    fn a_wide_window_never_admits_more_than_five_minutes_of_future() {
        let hour = Duration::from_secs(3600);
        assert_eq!(
            check_window(1000 - 3600, 1, 1000, hour, Window::Both),
            Ok(())
        );
        assert_eq!(check_window(1300, 1, 1000, hour, Window::Both), Ok(()));
        assert_eq!(
            check_window(1301, 1, 1000, hour, Window::Both),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check_window(1_301_000, 1000, 1000, hour, Window::Both),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_list_longer_than_the_cap_is_invalid_and_a_list_at_the_cap_is_read() {
        let at_cap = vec!["v1=x"; MAX_LIST_ENTRIES].join(",");
        assert_eq!(
            capped_pairs(&at_cap, ',').map(|p| p.len()),
            Ok(MAX_LIST_ENTRIES)
        );
        let over = vec!["v1=x"; MAX_LIST_ENTRIES + 1].join(",");
        assert_eq!(capped_pairs(&over, ','), Err(SignatureError::Invalid));
        // Items without `=` count too.
        let junk = format!("t=1{}", ",".repeat(MAX_LIST_ENTRIES));
        assert_eq!(capped_pairs(&junk, ','), Err(SignatureError::Invalid));
    }

    #[test]
    fn list_matches_computes_one_tag_for_the_whole_list() {
        let tag = hmac_sha256(b"k", &[b"body"]).unwrap();
        let good = hex::encode(tag);
        let other = "00".repeat(32);
        let list = [other.as_str(), "zz", good.as_str(), other.as_str()];
        let before = COMPUTED.with(|n| n.get());
        let mut calls = 0;
        let outcome = list_matches(list, decode_hex, || {
            calls += 1;
            sha256_tag(b"k", &[b"body"])
        });
        assert_eq!(outcome, Ok(()));
        assert_eq!(calls, 1);
        assert_eq!(COMPUTED.with(|n| n.get()) - before, 1);
    }

    #[test]
    fn list_matches_computes_nothing_when_no_candidate_decodes() {
        let mut calls = 0;
        let outcome = list_matches(["", "zz", "00"], decode_hex, || {
            calls += 1;
            sha256_tag(b"k", &[b"body"])
        });
        assert_eq!(outcome, Err(SignatureError::Invalid));
        assert_eq!(calls, 0);
    }

    #[test]
    fn an_overlong_header_is_invalid() {
        let long = "a".repeat(MAX_HEADER_BYTES + 1);
        let h = crate::webhook::testkit::headers(&[("x-sig", &long)]);
        let req = crate::webhook::testkit::post(&h, "https://h.test/", b"");
        assert_eq!(header(&req, "x-sig"), Err(SignatureError::Invalid));
        let max = "a".repeat(MAX_HEADER_BYTES);
        let h = crate::webhook::testkit::headers(&[("x-sig", &max)]);
        let req = crate::webhook::testkit::post(&h, "https://h.test/", b"");
        assert_eq!(header(&req, "x-sig"), Ok(max.as_str()));
    }

    #[test]
    fn millisecond_timestamps_are_compared_in_milliseconds() {
        assert_eq!(
            check_window(700_000, 1000, 1000, FIVE_MIN, Window::Both),
            Ok(())
        );
        assert_eq!(
            check_window(699_999, 1000, 1000, FIVE_MIN, Window::Both),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn sub_second_windows_are_not_rounded_up() {
        let window = Duration::from_millis(500);
        assert_eq!(
            check_window(999_500, 1000, 1000, window, Window::Both),
            Ok(())
        );
        assert_eq!(
            check_window(999_499, 1000, 1000, window, Window::Both),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        assert_eq!(
            check_window(i64::MIN, 1000, i64::MAX, Duration::MAX, Window::Both),
            Ok(())
        );
        assert_eq!(
            check_window(i64::MIN, 1000, i64::MAX, FIVE_MIN, Window::Both),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn unix_timestamps_must_be_plain_digits() {
        assert_eq!(parse_unix("1700000000"), Ok(1_700_000_000));
        for bad in ["", "-1", "+1", "1e9", " 1", "99999999999999999999"] {
            assert_eq!(parse_unix(bad), Err(SignatureError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_timestamps_with_nanoseconds_parse() {
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456789Z"),
            Ok(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), Err(SignatureError::Invalid));
    }

    #[test]
    fn structured_headers_split_into_pairs() {
        let items: Vec<_> = pairs("t=1, v1=ab,v1=cd,junk,v0=ef", ',').collect();
        assert_eq!(
            items,
            [("t", "1"), ("v1", "ab"), ("v1", "cd"), ("v0", "ef")]
        );
        assert_eq!(pair("ts=5;h1=x", ';', "ts"), Ok("5"));
        assert_eq!(pair("h1=x", ';', "ts"), Err(SignatureError::Invalid));
    }

    #[test]
    fn hmac_sha256_matches_the_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(mac.unwrap()), expected);
        assert!(sha256_matches(
            b"Jefe",
            &[b"what do ya want for nothing?"],
            &hex::decode(expected).unwrap()
        ));
    }

    #[test]
    fn hmac_sha1_matches_the_rfc_2202_test_case_2() {
        // RFC 2202 §3: key "Jefe", data "what do ya want for nothing?".
        let expected = hex::decode("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap();
        assert!(sha1_matches(
            b"Jefe",
            &[b"what do ya want for nothing?"],
            &expected
        ));
        assert!(!sha1_matches(b"Jefe", &[b"what do ya want?"], &expected));
    }

    #[test]
    fn ed25519_matches_the_rfc_8032_test_1_vector() {
        // RFC 8032 §7.1 TEST 1 (empty message), re-checked with python `cryptography`.
        let public =
            hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap();
        let signature = hex::decode("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b").unwrap();
        assert!(ed25519_matches(&public, &[], &signature));
        assert!(!ed25519_matches(&public, &[b"x"], &signature));
        assert!(!ed25519_matches(&public[..31], &[], &signature));
        assert!(!ed25519_matches(&public, &[], &signature[..63]));
    }
}
