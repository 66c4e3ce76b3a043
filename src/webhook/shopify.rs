//! Shopify: `X-Shopify-Hmac-Sha256` (Events preview: `Shopify-Hmac-Sha256`) carries
//! base64 HMAC-SHA256 of the raw body, keyed with the app's client secret.
//!
//! No timestamp is signed (`X-Shopify-Triggered-At` is not covered by the MAC, so this
//! module must not trust it); replays are caught by `X-Shopify-Webhook-Id` deduplication.

use super::scheme::{Encoding, Hash, HeaderMac};

pub const SCHEME: HeaderMac = HeaderMac::body(
    &["x-shopify-hmac-sha256", "shopify-hmac-sha256"],
    Encoding::Base64,
    Hash::Sha256,
);

#[cfg(test)]
mod tests {
    use crate::webhook::{vectors, Provider, SignatureError};

    #[test]
    fn truncated_signature_is_invalid() {
        let signed = vectors::signed(Provider::Shopify);
        assert_eq!(
            signed.check_value("8eb6da95b3b767c9839ab176"),
            Err(SignatureError::Invalid)
        );
    }
}
