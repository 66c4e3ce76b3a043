//! Linear: `Linear-Signature` = hex HMAC-SHA256(signing secret, raw body), no prefix; the
//! replay guard is `webhookTimestamp` (unix ms) inside the signed JSON body.
//!
//! Like @linear/sdk, the legacy `linear-timestamp` header is ignored and
//! `|now - webhookTimestamp|` beyond the window (60 s by default) is `Stale`. The body is
//! parsed only after the MAC matched, and only to read that field; this module must not
//! trust any other body field.

use std::time::Duration;

use serde::Deserialize;

use super::scheme::{Encoding, Hash, HeaderMac};
use super::sig::{self, Window};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

#[derive(Deserialize)]
struct Stamp {
    #[serde(rename = "webhookTimestamp")]
    webhook_timestamp: i64,
}

const SCHEME: HeaderMac = HeaderMac::body(&["linear-signature"], "", Encoding::Hex, Hash::Sha256);

pub fn verify(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    // The MAC first: the body is parsed only once it is known to be Linear's.
    SCHEME.verify_untimed(req, secret.expose())?;
    let stamp: Stamp = serde_json::from_slice(req.body).map_err(|_| SignatureError::Invalid)?;
    sig::check_window(stamp.webhook_timestamp, 1000, now, window, Window::Both)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};

    const SECRET: &str = "lin_wh_secret";
    const BODY: &[u8] = br#"{"action":"create","type":"Issue","webhookTimestamp":1700000000000}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256("lin_wh_secret", BODY).
    const SIG: &str = "91e919dc0fd99df1cae12efef1ca08b082cfa523f101b572ec14ed98863fdf35";

    fn check(body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
        let h = headers(&[("linear-signature", SIG)]);
        verify(&post(&h, URL, body), &Secret::new(secret), now, secs(60))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        let body = br#"{"action":"remove","type":"Issue","webhookTimestamp":1700000000000}"#;
        assert_eq!(check(body, SECRET, T), Err(SignatureError::Invalid));
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(check(BODY, "other", T), Err(SignatureError::Invalid));
    }

    #[test]
    fn body_without_webhook_timestamp_is_invalid() {
        assert_eq!(
            check(br#"{"action":"create"}"#, SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_header_is_missing() {
        let h = headers(&[]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET), T, secs(60)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(check(BODY, SECRET, T + 61), Err(SignatureError::Stale));
        assert_eq!(check(BODY, SECRET, T + 60), Ok(()));
    }

    // providers.md: parse JSON only after MAC verification. An unsigned body is invalid,
    // whatever timestamp it claims.
    #[test]
    fn an_unsigned_body_with_an_old_timestamp_is_invalid_not_stale() {
        let body = br#"{"action":"create","webhookTimestamp":1000}"#;
        assert_eq!(check(body, SECRET, T), Err(SignatureError::Invalid));
        assert_eq!(check(b"not json", SECRET, T), Err(SignatureError::Invalid));
    }

    #[test]
    fn future_timestamp_is_rejected() {
        assert_eq!(check(BODY, SECRET, T - 61), Err(SignatureError::Stale));
    }
}
