//! Discord interactions: `X-Signature-Ed25519` = hex Ed25519 signature over
//! `{X-Signature-Timestamp}{raw body}`; the "secret" is the application's hex public key.
//!
//! Verification is strict ([`sig::ed25519_matches`]: no small-order keys, canonical
//! signatures).
//! Discord probes endpoints with deliberately bad signatures and expects them rejected.
//! The Discord SDKs check no timestamp window; we still bound the signed timestamp
//! (±5 minutes by default) as a replay guard. Must not accept a key that is not 32 bytes.

use std::time::Duration;

use super::sig::{self, Window};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(
    req: &WebhookRequest<'_>,
    public_key: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    let signature = sig::header(req, "x-signature-ed25519")?;
    let ts = sig::header(req, "x-signature-timestamp")?;
    sig::check_window(sig::parse_unix(ts)?, 1, now, window, Window::Both)?;
    let signature = sig::decode_hex(signature)?;
    let key = public_key
        .expose_str()
        .map(str::trim)
        .ok_or(SignatureError::Invalid)
        .and_then(sig::decode_hex)?;
    if key.len() != 32 {
        return Err(SignatureError::Invalid);
    }
    sig::verdict(sig::ed25519_matches(
        &key,
        &[ts.as_bytes(), req.body],
        &signature,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};

    // testdata/make_vectors.py (python `cryptography`): Ed25519 key from seed 32×0x07;
    // SIG signs "1700000000" + BODY.
    const PUBLIC_KEY: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
    const OTHER_KEY: &str = "1398f62c6d1a457c51ba6a4b5f3dbd2f69fca93216218dc8997e416bd17d93ca";
    const BODY: &[u8] = br#"{"id":"1234567890","type":2}"#;
    const SIG: &str = "ac3bb6d125bb36fb0feaa50c862e37eb6d6eb97f633df025cae15a399c0615ab99beb65e498af4af0ddabdd249b0d0266c0e949f0a0ba4fec6a15c980494c902";

    fn check(ts: &str, body: &[u8], key: &str, now: i64) -> Result<(), SignatureError> {
        let h = headers(&[("x-signature-ed25519", SIG), ("x-signature-timestamp", ts)]);
        verify(&post(&h, URL, body), &Secret::new(key), now, secs(300))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check("1700000000", BODY, PUBLIC_KEY, T), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check(
                "1700000000",
                br#"{"id":"1234567890","type":3}"#,
                PUBLIC_KEY,
                T
            ),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn changed_timestamp_is_invalid() {
        assert_eq!(
            check("1700000001", BODY, PUBLIC_KEY, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_public_key_is_invalid() {
        assert_eq!(
            check("1700000000", BODY, OTHER_KEY, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn public_key_that_is_not_32_hex_bytes_is_invalid() {
        assert_eq!(
            check("1700000000", BODY, "ea4a6c63", T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_signature_is_missing() {
        let h = headers(&[("x-signature-timestamp", "1700000000")]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(PUBLIC_KEY), T, secs(300)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(
            check("1700000000", BODY, PUBLIC_KEY, T + 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn future_timestamp_is_rejected() {
        assert_eq!(
            check("1700000000", BODY, PUBLIC_KEY, T - 301),
            Err(SignatureError::Stale)
        );
    }
}
