//! Square: `x-square-hmacsha256-signature` = base64 HMAC-SHA256(signature key,
//! notification URL + raw body).
//!
//! The URL must be byte-identical to the subscription's notification URL, so the caller
//! passes the public URL; this module must not normalise it. The legacy SHA-1
//! `x-square-signature` is not accepted. No timestamp is signed.

use super::scheme::{Encoding, Hash, HeaderMac, Part};

pub const SCHEME: HeaderMac = HeaderMac::body(
    &["x-square-hmacsha256-signature"],
    Encoding::Base64,
    Hash::Sha256,
)
.over(&[Part::Url, Part::Body]);

#[cfg(test)]
mod tests {
    use crate::webhook::{vectors, Provider, SignatureError};

    // The legacy SHA-1 header is not read at all.
    #[test]
    fn the_legacy_header_alone_is_missing() {
        let legacy = [("x-square-signature", "abc=")];
        let signed = vectors::signed(Provider::Square).with_headers(&legacy);
        assert_eq!(signed.check(), Err(SignatureError::Missing));
    }
}
