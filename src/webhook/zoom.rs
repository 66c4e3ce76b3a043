//! Zoom: `x-zm-signature: v0=<hex>` = HMAC-SHA256(secret token,
//! `v0:{x-zm-request-timestamp}:{raw body}`).
//!
//! Unlike Zoom's Rivet SDK (which hashes re-serialised JSON, checks no timestamp and uses
//! `===`), this verifies the raw bytes, compares in constant time and bounds the
//! timestamp (±5 minutes by default). `endpoint.url_validation` events are signed the same
//! way; their reply is built in `handshake` after verification.

use std::time::Duration;

use super::sig::{self, Window};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    let signature = sig::header(req, "x-zm-signature")?;
    let ts = sig::header(req, "x-zm-request-timestamp")?;
    sig::check_window(sig::parse_unix(ts)?, 1, now, window, Window::Both)?;
    let expected = sig::decode_hex(sig::strip(signature, "v0=")?)?;
    sig::verdict(sig::sha256_matches(
        secret.expose(),
        &[b"v0:", ts.as_bytes(), b":", req.body],
        &expected,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};

    const SECRET: &str = "zoom_secret_token";
    const BODY: &[u8] = br#"{"event":"meeting.started","payload":{}}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256(SECRET, "v0:1700000000:" + BODY).
    const SIG: &str = "v0=4deeff0e090b0b04feb5548e0a13a9274ed24a54dd7a9ba7a91a116514bec6a6";

    fn check(body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
        let h = headers(&[
            ("x-zm-signature", SIG),
            ("x-zm-request-timestamp", "1700000000"),
        ]);
        verify(&post(&h, URL, body), &Secret::new(secret), now, secs(300))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(check(b"{}", SECRET, T), Err(SignatureError::Invalid));
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(check(BODY, "other", T), Err(SignatureError::Invalid));
    }

    #[test]
    fn absent_signature_is_missing() {
        let h = headers(&[("x-zm-request-timestamp", "1700000000")]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET), T, secs(300)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(check(BODY, SECRET, T + 301), Err(SignatureError::Stale));
    }

    #[test]
    fn future_timestamp_is_rejected() {
        assert_eq!(check(BODY, SECRET, T - 301), Err(SignatureError::Stale));
    }
}
