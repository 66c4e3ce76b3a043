//! Intercom: `X-Hub-Signature: sha1=<hex HMAC-SHA1(client secret, raw body)>`.
//!
//! The legacy GitHub "hub signature" with SHA-1, so this delegates to
//! [`super::github::verify_sha1`]. No timestamp is signed.

use super::{github, SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    github::verify_sha1(req, secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const SECRET: &str = "intercom_client_secret";
    const BODY: &[u8] = br#"{"type":"notification_event","id":"notif_1"}"#;
    // testdata/make_vectors.py: hex HMAC-SHA1("intercom_client_secret", BODY).
    const SIG: &str = "sha1=3faebb0034e47694de045ab8bc314399711ff673";

    fn check(body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(&[("x-hub-signature", SIG)]);
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
        assert_eq!(check(BODY, "other"), Err(SignatureError::Invalid));
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
