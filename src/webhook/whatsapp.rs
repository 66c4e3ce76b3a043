//! WhatsApp (Meta Graph webhooks): `X-Hub-Signature-256: sha256=<hex>` over the raw body,
//! keyed with the Meta app secret.
//!
//! The same construction as GitHub's, so this delegates to
//! [`super::github::verify_sha256`]; the legacy SHA-1 header is not accepted. The GET
//! subscription handshake (`hub.verify_token`) lives in `handshake`, not here.

use super::{github, SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    github::verify_sha256(req, secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const SECRET: &str = "meta_app_secret";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256("meta_app_secret", BODY).
    const SIG: &str = "sha256=e6ad1226d7dbb376b93779e72f6ea6cc56d514dbcb4b3fa023b679f8f0220325";

    fn check(pairs: &[(&str, &str)], body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(pairs);
        verify(&post(&h, URL, body), &Secret::new(secret))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(&[("x-hub-signature-256", SIG)], BODY, SECRET), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check(&[("x-hub-signature-256", SIG)], b"{}", SECRET),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(
            check(&[("x-hub-signature-256", SIG)], BODY, "other"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn legacy_sha1_header_alone_is_missing() {
        let h = [(
            "x-hub-signature",
            "sha1=0000000000000000000000000000000000000000",
        )];
        assert_eq!(check(&h, BODY, SECRET), Err(SignatureError::Missing));
    }
}
