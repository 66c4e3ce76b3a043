//! Salesforce: Marketing Cloud ENS (`x-sfmc-ens-signature`) and Data Cloud webhook
//! data-action targets (`x-signature`), both base64 HMAC-SHA256 of the raw body.
//!
//! Provisional (providers.md §7): the key is used verbatim as UTF-8, as third-party
//! implementations do, and Data Cloud's "JSON escaping" canonicalisation is not applied.
//! Confirm both with a live delivery. No timestamp is signed.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: HeaderMac = HeaderMac::body(
    &["x-sfmc-ens-signature", "x-signature"],
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

    const SECRET: &str = "sfmc_signature_key";
    const BODY: &[u8] =
        br#"[{"eventCategoryType":"TransactionalSendEvents.EmailSent","compositeId":"abc"}]"#;
    // testdata/make_vectors.py: base64 HMAC-SHA256("sfmc_signature_key", BODY).
    const SIG: &str = "SkscJHhLP5rR+9ip6Tj7IDYu/UaY37vGzabDOI0IceY=";

    fn check(name: &str, body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(&[(name, SIG)]);
        verify(&post(&h, URL, body), &Secret::new(secret))
    }

    #[test]
    fn marketing_cloud_signature_verifies() {
        assert_eq!(check("x-sfmc-ens-signature", BODY, SECRET), Ok(()));
    }

    #[test]
    fn data_cloud_signature_verifies() {
        assert_eq!(check("x-signature", BODY, SECRET), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check("x-sfmc-ens-signature", b"[]", SECRET),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(
            check("x-signature", BODY, "other"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_header_is_missing() {
        assert_eq!(check("x-other", BODY, SECRET), Err(SignatureError::Missing));
    }
}
