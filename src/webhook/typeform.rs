//! Typeform: `Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>`.
//!
//! GitHub-like prefix but a base64 value; this module must not accept hex. No timestamp
//! is signed.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: HeaderMac = HeaderMac::body(
    &["typeform-signature"],
    "sha256=",
    Encoding::Base64,
    Hash::Sha256,
);

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SCHEME.verify_untimed(req, secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const SECRET: &str = "typeform_secret";
    const BODY: &[u8] = br#"{"event_id":"01HTF","event_type":"form_response"}"#;
    // testdata/make_vectors.py: base64 HMAC-SHA256("typeform_secret", BODY).
    const SIG: &str = "sha256=PGdTmeoecGIRZd06uP0HbPx/vccrkO59upvUTCFw5XM=";

    fn check(sig: &str, body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(&[("typeform-signature", sig)]);
        verify(&post(&h, URL, body), &Secret::new(secret))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(SIG, BODY, SECRET), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(check(SIG, b"{}", SECRET), Err(SignatureError::Invalid));
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(check(SIG, BODY, "other"), Err(SignatureError::Invalid));
    }

    #[test]
    fn missing_prefix_is_invalid() {
        assert_eq!(check(&SIG[7..], BODY, SECRET), Err(SignatureError::Invalid));
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
