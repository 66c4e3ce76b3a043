//! Vercel: `x-vercel-signature: <hex HMAC-SHA1(secret, raw body)>`, no prefix.
//!
//! The secret is the integration's client secret, or the account webhook's secret. No
//! timestamp is signed; replays are caught by deduplication on the event `id` in the
//! body. This module must not look at anything but the header and the raw body.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: HeaderMac = HeaderMac::body(&["x-vercel-signature"], "", Encoding::Hex, Hash::Sha1);

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SCHEME.verify_untimed(req, secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const SECRET: &str = "vercel_secret";
    const BODY: &[u8] = br#"{"id":"evt_vercel_1","type":"deployment.created","payload":{}}"#;
    // testdata/make_vectors.py: hex HMAC-SHA1("vercel_secret", BODY).
    const SIG: &str = "e8598851996fe12f0b97fa4cf37e24963058ef7b";

    fn check(value: &str, body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(&[("x-vercel-signature", value)]);
        verify(&post(&h, URL, body), &Secret::new(secret))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(SIG, BODY, SECRET), Ok(()));
        assert_eq!(check(&SIG.to_uppercase(), BODY, SECRET), Ok(()));
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

    #[test]
    fn a_prefixed_or_truncated_value_is_invalid() {
        let prefixed = format!("sha1={SIG}");
        assert_eq!(check(&prefixed, BODY, SECRET), Err(SignatureError::Invalid));
        assert_eq!(
            check(&SIG[..38], BODY, SECRET),
            Err(SignatureError::Invalid)
        );
    }
}
