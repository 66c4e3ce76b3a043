//! Bitbucket: `X-Hub-Signature: sha256=<hex HMAC-SHA256(webhook secret, raw body)>`.
//!
//! Bitbucket (Cloud and Data Center) uses GitHub's old header name with SHA-256, not
//! GitHub's SHA-1: a `sha1=` value is not accepted. No timestamp is signed; replays are
//! caught by delivery-id deduplication (`X-Request-UUID`, Data Center's `X-Request-Id`).
//! This module must not look at anything but the header and the raw body.

use super::scheme::{Encoding, Hash, HeaderMac};

pub const SCHEME: HeaderMac =
    HeaderMac::body(&["x-hub-signature"], Encoding::Hex, Hash::Sha256).prefixed("sha256=");

#[cfg(test)]
mod tests {
    use crate::webhook::{vectors, Provider, SignatureError};

    // Security property: the header name is GitHub's SHA-1 one, but only SHA-256 counts.
    #[test]
    fn a_sha1_value_is_not_accepted() {
        // testdata/make_vectors.py: hex HMAC-SHA1("bitbucket_secret", body).
        let sha1 = "sha1=3d3cfd516de8139deb9b04127076a83f3a8c2554";
        let signed = vectors::signed(Provider::Bitbucket);
        assert_eq!(signed.check_value(sha1), Err(SignatureError::Invalid));
    }
}
