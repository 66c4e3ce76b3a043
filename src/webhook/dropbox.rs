//! Dropbox: `X-Dropbox-Signature: <hex HMAC-SHA256(app secret, raw body)>`.
//!
//! The notification body only lists accounts that changed, and no timestamp is signed.
//! The `GET ?challenge=` that enables an endpoint is answered in `handshake`. This module
//! must not look at anything but the header and the raw body.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: HeaderMac =
    HeaderMac::body(&["x-dropbox-signature"], "", Encoding::Hex, Hash::Sha256);

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SCHEME.verify_untimed(req, secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const SECRET: &str = "dropbox_app_secret";
    const BODY: &[u8] =
        br#"{"list_folder":{"accounts":["dbid:AAH4f99"]},"delta":{"users":[12345]}}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256("dropbox_app_secret", BODY).
    const SIG: &str = "aa42e3008989ca91b0b0524a6180e951e83ee58388e28c3aad41e64e66f41dca";

    fn check(body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(&[("x-dropbox-signature", SIG)]);
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
