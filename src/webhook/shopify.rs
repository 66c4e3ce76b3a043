//! Shopify: `X-Shopify-Hmac-Sha256` (Events preview: `Shopify-Hmac-Sha256`) carries
//! base64 HMAC-SHA256 of the raw body, keyed with the app's client secret.
//!
//! No timestamp is signed (`X-Shopify-Triggered-At` is not covered by the MAC, so this
//! module must not trust it); replays are caught by `X-Shopify-Webhook-Id` deduplication.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: HeaderMac = HeaderMac::body(
    &["x-shopify-hmac-sha256", "shopify-hmac-sha256"],
    "",
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

    const SECRET: &str = "shpss_secret";
    const BODY: &[u8] = br#"{"id":820982911946154508}"#;
    // testdata/make_vectors.py: base64 HMAC-SHA256("shpss_secret", BODY).
    const SIG: &str = "jqbalbO3Z8mDmrF2/+wzM3KYvbgqzVBF969vgiIy80I=";

    fn check(name: &str, body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(&[(name, SIG)]);
        verify(&post(&h, URL, body), &Secret::new(secret))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check("x-shopify-hmac-sha256", BODY, SECRET), Ok(()));
    }

    #[test]
    fn events_header_name_is_accepted() {
        assert_eq!(check("shopify-hmac-sha256", BODY, SECRET), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check("x-shopify-hmac-sha256", b"{}", SECRET),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(
            check("x-shopify-hmac-sha256", BODY, "other"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_header_is_missing() {
        assert_eq!(check("x-other", BODY, SECRET), Err(SignatureError::Missing));
    }

    #[test]
    fn truncated_signature_is_invalid() {
        let h = headers(&[("x-shopify-hmac-sha256", "8eb6da95b3b767c9839ab176")]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET)),
            Err(SignatureError::Invalid)
        );
    }
}
