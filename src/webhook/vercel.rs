//! Vercel: `x-vercel-signature: <hex HMAC-SHA1(secret, raw body)>`, no prefix.
//!
//! The secret is the integration's client secret, or the account webhook's secret. No
//! timestamp is signed; replays are caught by deduplication on the event `id` in the
//! body. This module must not look at anything but the header and the raw body.

use super::scheme::{Encoding, Hash, HeaderMac};

pub const SCHEME: HeaderMac = HeaderMac::body(&["x-vercel-signature"], Encoding::Hex, Hash::Sha1);

#[cfg(test)]
mod tests {
    use crate::webhook::{vectors, Provider, SignatureError};

    #[test]
    fn uppercase_hex_verifies_and_a_prefixed_or_truncated_value_does_not() {
        let signed = vectors::signed(Provider::Vercel);
        let value = signed.headers[0].1;
        assert_eq!(signed.check_value(&value.to_uppercase()), Ok(()));
        let prefixed = format!("sha1={value}");
        assert_eq!(signed.check_value(&prefixed), Err(SignatureError::Invalid));
        assert_eq!(
            signed.check_value(&value[..38]),
            Err(SignatureError::Invalid)
        );
    }
}
