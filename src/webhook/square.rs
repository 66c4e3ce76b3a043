//! Square: `x-square-hmacsha256-signature` = base64 HMAC-SHA256(signature key,
//! notification URL + raw body).
//!
//! The URL must be byte-identical to the subscription's notification URL, so the caller
//! passes the public URL; this module must not normalise it. The legacy SHA-1
//! `x-square-signature` is not accepted. No timestamp is signed.

use super::scheme::{Encoding, Hash, HeaderMac, Part};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: HeaderMac = HeaderMac {
    signed: &[Part::Url, Part::Body],
    ..HeaderMac::body(
        &["x-square-hmacsha256-signature"],
        "",
        Encoding::Base64,
        Hash::Sha256,
    )
};

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SCHEME.verify_untimed(req, secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post};

    // Square SDK test vector (same in the Python, Node, Go, Java, PHP and Ruby SDKs).
    const KEY: &str = "Ibxx_5AKakO-3qeNVR61Dw";
    const URL: &str = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9";
    const BODY: &[u8] = br#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#;
    const SIG: &str = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=";

    fn check(url: &str, body: &[u8], key: &str) -> Result<(), SignatureError> {
        let h = headers(&[("x-square-hmacsha256-signature", SIG)]);
        verify(&post(&h, url, body), &Secret::new(key))
    }

    #[test]
    fn sdk_vector_verifies() {
        assert_eq!(check(URL, BODY, KEY), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(check(URL, b"{}", KEY), Err(SignatureError::Invalid));
    }

    #[test]
    fn different_notification_url_is_invalid() {
        let url = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b8";
        assert_eq!(check(url, BODY, KEY), Err(SignatureError::Invalid));
    }

    #[test]
    fn wrong_key_is_invalid() {
        assert_eq!(check(URL, BODY, "other"), Err(SignatureError::Invalid));
    }

    #[test]
    fn absent_header_is_missing() {
        let h = headers(&[("x-square-signature", "abc=")]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(KEY)),
            Err(SignatureError::Missing)
        );
    }
}
