//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` over `{t}.{raw body}`.
//!
//! The HMAC-SHA256 key is the whole `whsec_…` string as UTF-8 (never base64-decoded: that
//! is Standard Webhooks). Any `v1` may match (secret roll); `v0` and unknown schemes are
//! ignored. Like stripe-python/-node, timestamps older than the window are rejected; unlike
//! them, so is one more than `sig::MAX_FUTURE_SKEW` (5 minutes) ahead. This module must
//! not accept a header without `t` or without any `v1`.

use std::time::Duration;

use super::scheme::{SignedTime, TimestampedList};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub const WINDOW_SIDE: Window = Window::PastOnly;

const SCHEME: TimestampedList = TimestampedList {
    header: "stripe-signature",
    separator: ',',
    timestamp_key: "t",
    signature_key: "v1",
    joiner: b".",
    side: WINDOW_SIDE,
    signed_time: SignedTime::AsSent,
};

pub fn verify(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    SCHEME.verify(req, secret.expose(), now, window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_123","object":"event"}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256("whsec_test_secret", "1700000000." + BODY).
    const V1: &str = "dd87ab365008cd15388d35ae8467b42bbc97bb9efe68060ed81e123be0e21c6e";
    const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn check(header: &str, body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
        let h = headers(&[("stripe-signature", header)]);
        verify(&post(&h, URL, body), &Secret::new(secret), now, secs(300))
    }

    fn signed() -> String {
        format!("t={T},v1={V1}")
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(&signed(), BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        let h = format!("t={T},v1={OTHER},v1={V1},v0={OTHER}");
        assert_eq!(check(&h, BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check(&signed(), b"{}", SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(
            check(&signed(), BODY, "whsec_other", T),
            Err(SignatureError::Invalid)
        );
    }

    // Security property: the key is the literal whsec_ string, not its base64 decoding.
    #[test]
    fn secret_is_not_base64_decoded() {
        assert_eq!(
            check(&signed(), BODY, "test_secret", T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn v0_alone_is_not_accepted() {
        let h = format!("t={T},v0={V1}");
        assert_eq!(check(&h, BODY, SECRET, T), Err(SignatureError::Invalid));
    }

    #[test]
    fn header_without_timestamp_is_invalid() {
        let h = format!("v1={V1}");
        assert_eq!(check(&h, BODY, SECRET, T), Err(SignatureError::Invalid));
    }

    #[test]
    fn absent_header_is_missing() {
        let h = headers(&[]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET), T, secs(300)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected_even_with_a_valid_mac() {
        assert_eq!(
            check(&signed(), BODY, SECRET, T + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(check(&signed(), BODY, SECRET, T + 300), Ok(()));
    }

    // stripe-python/-node only reject old timestamps. Security property: a timestamp
    // more than five minutes ahead (a signature made to be replayed later) is stale.
    #[test]
    fn future_timestamp_within_the_skew_is_accepted_and_beyond_it_is_stale() {
        assert_eq!(check(&signed(), BODY, SECRET, T - 300), Ok(()));
        assert_eq!(
            check(&signed(), BODY, SECRET, T - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(&signed(), BODY, SECRET, T - 3600),
            Err(SignatureError::Stale)
        );
    }
}
