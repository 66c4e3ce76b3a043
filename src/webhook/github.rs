//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`, with the legacy
//! `X-Hub-Signature: sha1=<hex HMAC-SHA1>` accepted only when the SHA-256 header is absent.
//!
//! The same "hub signature" shape is used by Meta (WhatsApp, SHA-256) and Intercom (SHA-1),
//! whose modules call [`verify_sha256`] and [`verify_sha1`] rather than copying them. No
//! timestamp is signed; replays are caught by delivery-id deduplication downstream. This
//! module must not look at anything but the header and the raw body.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SHA256_HEADER: &str = "x-hub-signature-256";
const SHA1_HEADER: &str = "x-hub-signature";

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    if req.headers.contains_key(SHA256_HEADER) || !req.headers.contains_key(SHA1_HEADER) {
        verify_sha256(req, secret)
    } else {
        verify_sha1(req, secret)
    }
}

/// `X-Hub-Signature-256: sha256=<hex>` over the raw body.
pub const SHA256: HeaderMac =
    HeaderMac::body(&[SHA256_HEADER], "sha256=", Encoding::Hex, Hash::Sha256);

/// `X-Hub-Signature: sha1=<hex>` over the raw body.
pub const SHA1: HeaderMac = HeaderMac::body(&[SHA1_HEADER], "sha1=", Encoding::Hex, Hash::Sha1);

/// [`SHA256`] with `secret`.
pub fn verify_sha256(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SHA256.verify_untimed(req, secret.expose())
}

/// [`SHA1`] with `secret`.
pub fn verify_sha1(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SHA1.verify_untimed(req, secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    // GitHub's documentation example (validating-webhook-deliveries).
    const DOC_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    const DOC_SECRET: &str = "It's a Secret to Everybody";
    // python3: hmac.new(b"It's a Secret to Everybody", b"Hello, World!", hashlib.sha1).hexdigest()
    const DOC_SHA1: &str = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";

    fn check(pairs: &[(&str, &str)], body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(pairs);
        verify(&post(&h, URL, body), &Secret::new(secret))
    }

    #[test]
    fn github_doc_vector_verifies() {
        let h = [("x-hub-signature-256", DOC_SIG)];
        assert_eq!(check(&h, b"Hello, World!", DOC_SECRET), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        let h = [("x-hub-signature-256", DOC_SIG)];
        assert_eq!(
            check(&h, b"Hello, World?", DOC_SECRET),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        let h = [("x-hub-signature-256", DOC_SIG)];
        assert_eq!(
            check(&h, b"Hello, World!", "not it"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_header_is_missing() {
        assert_eq!(
            check(&[], b"Hello, World!", DOC_SECRET),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn signature_without_the_sha256_prefix_is_invalid() {
        let h = [("x-hub-signature-256", &DOC_SIG[7..])];
        assert_eq!(
            check(&h, b"Hello, World!", DOC_SECRET),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn legacy_sha1_header_verifies_when_sha256_is_absent() {
        let h = [("x-hub-signature", DOC_SHA1)];
        assert_eq!(check(&h, b"Hello, World!", DOC_SECRET), Ok(()));
        assert_eq!(
            check(&h, b"Hello, World?", DOC_SECRET),
            Err(SignatureError::Invalid)
        );
    }

    // Security property: a valid legacy SHA-1 signature cannot rescue a bad SHA-256 one.
    #[test]
    fn sha256_header_takes_precedence_over_legacy_sha1() {
        let bad256 = "sha256=0000000000000000000000000000000000000000000000000000000000000000";
        let h = [
            ("x-hub-signature-256", bad256),
            ("x-hub-signature", DOC_SHA1),
        ];
        assert_eq!(
            check(&h, b"Hello, World!", DOC_SECRET),
            Err(SignatureError::Invalid)
        );
    }
}
