//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`, with the legacy
//! `X-Hub-Signature: sha1=<hex HMAC-SHA1>` accepted only when the SHA-256 header is absent.
//!
//! The same "hub signature" shape is used by Meta (WhatsApp, SHA-256) and Intercom (SHA-1),
//! whose modules name [`SHA256`] and [`SHA1`] as their schemes. No
//! timestamp is signed; replays are caught by delivery-id deduplication downstream. This
//! module must not look at anything but the header and the raw body.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SHA256_HEADER: &str = "x-hub-signature-256";
const SHA1_HEADER: &str = "x-hub-signature";

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    if req.headers.contains_key(SHA256_HEADER) || !req.headers.contains_key(SHA1_HEADER) {
        SHA256.verify_untimed(req, secret.expose())
    } else {
        SHA1.verify_untimed(req, secret.expose())
    }
}

/// `X-Hub-Signature-256: sha256=<hex>` over the raw body.
pub const SHA256: HeaderMac =
    HeaderMac::body(&[SHA256_HEADER], Encoding::Hex, Hash::Sha256).prefixed("sha256=");

/// `X-Hub-Signature: sha1=<hex>` over the raw body.
pub const SHA1: HeaderMac =
    HeaderMac::body(&[SHA1_HEADER], Encoding::Hex, Hash::Sha1).prefixed("sha1=");

#[cfg(test)]
mod tests {
    use crate::webhook::{vectors, Provider, SignatureError};

    // python3: hmac.new(b"It's a Secret to Everybody", b"Hello, World!", hashlib.sha1).hexdigest()
    const DOC_SHA1: &str = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";

    #[test]
    fn legacy_sha1_header_verifies_when_sha256_is_absent() {
        let legacy = vectors::signed(Provider::Github).with_headers(&[(SHA1, DOC_SHA1)]);
        assert_eq!(legacy.check(), Ok(()));
        assert_eq!(
            legacy.with_body(b"Hello, World?").check(),
            Err(SignatureError::Invalid)
        );
    }

    // Security property: a valid legacy SHA-1 signature cannot rescue a bad SHA-256 one.
    #[test]
    fn sha256_header_takes_precedence_over_legacy_sha1() {
        let bad256 = format!("sha256={}", "0".repeat(64));
        let signed = vectors::signed(Provider::Github).with_headers(&[(SHA1, DOC_SHA1)]);
        assert_eq!(
            signed.check_header(SHA256, &bad256),
            Err(SignatureError::Invalid)
        );
    }

    const SHA1: &str = "x-hub-signature";
    const SHA256: &str = "x-hub-signature-256";
}
