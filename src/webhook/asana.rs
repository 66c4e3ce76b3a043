//! Asana: `X-Hook-Signature: <hex HMAC-SHA256(hook secret, raw body)>`.
//!
//! The key is the `X-Hook-Secret` Asana sends once, in the handshake that creates the
//! webhook; `handshake` answers it and `ingest` stores that value as the endpoint's room
//! secret, trust on first use (see [`offered_secret`]). No timestamp is signed. This
//! module must not look at anything but the headers and the raw body.

use super::scheme::{Encoding, Hash, HeaderMac};
use super::SignatureError;

/// The handshake header: the hook secret Asana offers.
pub const SECRET_HEADER: &str = "x-hook-secret";

/// The longest hook secret accepted from a handshake.
pub const MAX_SECRET_LEN: usize = 256;

pub const SCHEME: HeaderMac = HeaderMac::body(&["x-hook-signature"], Encoding::Hex, Hash::Sha256);

/// The hook secret a handshake offers: `Ok(None)` when the request carries no
/// `X-Hook-Secret` (an ordinary event), `Invalid` when it carries one that is empty,
/// longer than [`MAX_SECRET_LEN`] or not visible ASCII.
pub fn offered_secret(headers: &http::HeaderMap) -> Result<Option<&str>, SignatureError> {
    let Some(value) = headers.get(SECRET_HEADER) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let visible = bytes.iter().all(|b| b.is_ascii_graphic());
    if bytes.is_empty() || bytes.len() > MAX_SECRET_LEN || !visible {
        return Err(SignatureError::Invalid);
    }
    // Visible ASCII is UTF-8.
    value
        .to_str()
        .map(Some)
        .map_err(|_| SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::headers;

    const SECRET: &str = "asana_hook_secret_0123456789";

    #[test]
    fn the_offered_secret_is_read_only_when_well_formed() {
        assert_eq!(offered_secret(&headers(&[])), Ok(None));
        assert_eq!(
            offered_secret(&headers(&[(SECRET_HEADER, SECRET)])),
            Ok(Some(SECRET))
        );
        let long = "a".repeat(MAX_SECRET_LEN + 1);
        for bad in ["", "has space", long.as_str()] {
            assert_eq!(
                offered_secret(&headers(&[(SECRET_HEADER, bad)])),
                Err(SignatureError::Invalid),
                "{bad:?}"
            );
        }
    }
}
