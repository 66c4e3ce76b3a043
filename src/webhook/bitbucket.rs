//! Bitbucket: `X-Hub-Signature: sha256=<hex HMAC-SHA256(webhook secret, raw body)>`.
//!
//! Bitbucket (Cloud and Data Center) uses GitHub's old header name with SHA-256, not
//! GitHub's SHA-1: a `sha1=` value is not accepted. No timestamp is signed; replays are
//! caught by delivery-id deduplication (`X-Request-UUID`, Data Center's `X-Request-Id`).
//! This module must not look at anything but the header and the raw body.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: HeaderMac =
    HeaderMac::body(&["x-hub-signature"], "sha256=", Encoding::Hex, Hash::Sha256);

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SCHEME.verify_untimed(req, secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const SECRET: &str = "bitbucket_secret";
    const BODY: &[u8] = br#"{"push":{"changes":[]},"repository":{"full_name":"acme/app"}}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256("bitbucket_secret", BODY).
    const SIG: &str = "sha256=4f38f7034114e52890347785a6fbfbd500e373436e9742b4d2dc40b7b1634e6c";

    fn check(value: &str, body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(&[("x-hub-signature", value)]);
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
    fn absent_header_is_missing() {
        let h = headers(&[]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET)),
            Err(SignatureError::Missing)
        );
    }

    // Security property: the header name is GitHub's SHA-1 one, but only SHA-256 counts.
    #[test]
    fn a_sha1_value_is_not_accepted() {
        // testdata/make_vectors.py: hex HMAC-SHA1("bitbucket_secret", BODY).
        let sha1 = "sha1=3d3cfd516de8139deb9b04127076a83f3a8c2554";
        assert_eq!(check(sha1, BODY, SECRET), Err(SignatureError::Invalid));
        assert_eq!(check(&SIG[7..], BODY, SECRET), Err(SignatureError::Invalid));
    }
}
