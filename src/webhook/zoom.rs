//! Zoom: `x-zm-signature: v0=<hex>` = HMAC-SHA256(secret token,
//! `v0:{x-zm-request-timestamp}:{raw body}`).
//!
//! Unlike Zoom's Rivet SDK (which hashes re-serialised JSON, checks no timestamp and uses
//! `===`), this verifies the raw bytes, compares in constant time and bounds the
//! timestamp (±5 minutes by default). `endpoint.url_validation` events are signed the same
//! way; their reply is built in `handshake` after verification.

use std::time::Duration;

use super::scheme::{Encoding, Hash, HeaderMac, Part, Stamp, TimeFormat};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const TIMESTAMP: &str = "x-zm-request-timestamp";

const SCHEME: HeaderMac = HeaderMac {
    header: &["x-zm-signature"],
    prefix: "v0=",
    encoding: Encoding::Hex,
    hash: Hash::Sha256,
    signed: &[
        Part::Text(b"v0:"),
        Part::Header(TIMESTAMP),
        Part::Text(b":"),
        Part::Body,
    ],
    stamp: Some(Stamp {
        header: TIMESTAMP,
        format: TimeFormat::Unix,
        side: Window::Both,
    }),
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
