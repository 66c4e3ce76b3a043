//! WhatsApp (Meta Graph webhooks): `X-Hub-Signature-256: sha256=<hex>` over the raw body,
//! keyed with the Meta app secret.
//!
//! The same construction as GitHub's, so this delegates to
//! [`super::github::SHA256`]; the legacy SHA-1 header is not accepted. The GET
//! subscription handshake (`hub.verify_token`) lives in `handshake`, not here.

use super::github;
use super::scheme::HeaderMac;

pub const SCHEME: HeaderMac = github::SHA256;

#[cfg(test)]
mod tests {
    use crate::webhook::{vectors, Provider, SignatureError};

    #[test]
    fn legacy_sha1_header_alone_is_missing() {
        let sha1 = [(
            "x-hub-signature",
            "sha1=0000000000000000000000000000000000000000",
        )];
        let signed = vectors::signed(Provider::Whatsapp).with_headers(&sha1);
        assert_eq!(signed.check(), Err(SignatureError::Missing));
    }
}
