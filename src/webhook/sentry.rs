//! Sentry integration platform: `Sentry-Hook-Signature` = hex HMAC-SHA256(client secret,
//! raw body), no prefix.
//!
//! `Sentry-Hook-Timestamp` is sent but not signed, so this module must not treat it as a
//! replay guard; deduplication uses `Request-ID`.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: HeaderMac =
    HeaderMac::body(&["sentry-hook-signature"], "", Encoding::Hex, Hash::Sha256);

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SCHEME.verify_untimed(req, secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const SECRET: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const BODY: &[u8] = br#"{"action":"created","data":{}}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256("a" * 64, BODY).
    const SIG: &str = "a2dd8293e28c840baa55219328709621b7a0b725d08ec001b22ee97ea038e249";

    fn check(body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(&[("sentry-hook-signature", SIG)]);
        verify(&post(&h, URL, body), &Secret::new(secret))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(BODY, SECRET), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(check(b"{}", SECRET), Err(SignatureError::Invalid));
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(check(BODY, "b"), Err(SignatureError::Invalid));
    }

    #[test]
    fn absent_header_is_missing() {
        let h = headers(&[]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET)),
            Err(SignatureError::Missing)
        );
    }
}
