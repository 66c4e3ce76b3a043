//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=…]` = HMAC-SHA256 over
//! `{ts}:{raw body}`; any `h1` may match (secret rotation).
//!
//! Follows paddle-python-sdk: `|now - ts|` beyond the window is `Stale`, and the SDK
//! window is only 5 seconds, so endpoints will often widen it with an annotation.

use std::time::Duration;

use super::scheme::{SignedTime, TimestampedList};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: TimestampedList = TimestampedList {
    header: "paddle-signature",
    separator: ';',
    timestamp_key: "ts",
    signature_key: "h1",
    joiner: b":",
    side: Window::Both,
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

    const SECRET: &str = "pdl_ntfset_secret";
    const BODY: &[u8] = br#"{"event_id":"evt_01h","notification_id":"ntf_01h"}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256(SECRET, "1700000000:" + BODY).
    const H1: &str = "db76db946b2aedd4aa5e35affca6dd5bb4b71cdd23e9720b6550bb440dc40f26";
    const OTHER: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn check(header: &str, body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
        let h = headers(&[("paddle-signature", header)]);
        verify(&post(&h, URL, body), &Secret::new(secret), now, secs(5))
    }

    fn signed() -> String {
        format!("ts={T};h1={H1}")
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(&signed(), BODY, SECRET, T), Ok(()));
    }

    // paddle-node-sdk keeps only the last h1; the Python SDK (and we) accept any.
    #[test]
    fn valid_h1_before_another_h1_verifies() {
        let h = format!("ts={T};h1={H1};h1={OTHER}");
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
            check(&signed(), BODY, "other", T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn header_without_ts_is_invalid() {
        assert_eq!(
            check(&format!("h1={H1}"), BODY, SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_header_is_missing() {
        let h = headers(&[]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET), T, secs(5)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(
            check(&signed(), BODY, SECRET, T + 6),
            Err(SignatureError::Stale)
        );
        assert_eq!(check(&signed(), BODY, SECRET, T + 5), Ok(()));
    }

    #[test]
    fn future_timestamp_is_rejected() {
        assert_eq!(
            check(&signed(), BODY, SECRET, T - 6),
            Err(SignatureError::Stale)
        );
    }
}
