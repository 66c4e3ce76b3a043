//! Calendly: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>` = HMAC-SHA256 over
//! `{t}.{raw body}` with the webhook signing key.
//!
//! Calendly's sample rejects timestamps older than 3 minutes; we apply the window in both
//! directions. Must not accept a header without `t`.

use std::time::Duration;

use super::scheme::{SignedTime, TimestampedList};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: TimestampedList = TimestampedList {
    header: "calendly-webhook-signature",
    separator: ',',
    timestamp_key: "t",
    signature_key: "v1",
    joiner: b".",
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

    const KEY: &str = "calendly_key";
    const BODY: &[u8] = br#"{"event":"invitee.created","payload":{}}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256(KEY, "1700000000." + BODY).
    const V1: &str = "e6287d9d3e4f0bf9e7647fa8b70805668b39cfbab6be83fd8485352a240a7e55";

    fn check(body: &[u8], key: &str, now: i64) -> Result<(), SignatureError> {
        let h = headers(&[("calendly-webhook-signature", &format!("t={T},v1={V1}"))]);
        verify(&post(&h, URL, body), &Secret::new(key), now, secs(180))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(BODY, KEY, T), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(check(b"{}", KEY, T), Err(SignatureError::Invalid));
    }

    #[test]
    fn wrong_key_is_invalid() {
        assert_eq!(check(BODY, "other", T), Err(SignatureError::Invalid));
    }

    #[test]
    fn absent_header_is_missing() {
        let h = headers(&[]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(KEY), T, secs(180)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(check(BODY, KEY, T + 181), Err(SignatureError::Stale));
    }

    #[test]
    fn future_timestamp_is_rejected() {
        assert_eq!(check(BODY, KEY, T - 181), Err(SignatureError::Stale));
    }
}
