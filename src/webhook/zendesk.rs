//! Zendesk: `X-Zendesk-Webhook-Signature` = base64 HMAC-SHA256(secret, timestamp + body),
//! with the ISO-8601 `X-Zendesk-Webhook-Signature-Timestamp` concatenated as sent.
//!
//! The key is the signing secret string itself (it looks like base64 but must not be
//! decoded). Zendesk prescribes no window; ours is ±5 minutes. Must not re-serialise the
//! timestamp: the MAC covers the header's exact text.

use super::scheme::{Encoding, Hash, HeaderMac, Part, TimeFormat};
use super::sig::Window;

pub const SCHEME: HeaderMac = HeaderMac::body(
    &["x-zendesk-webhook-signature"],
    Encoding::Base64,
    Hash::Sha256,
)
.over(&[Part::Timestamp, Part::Body])
.stamped(
    "x-zendesk-webhook-signature-timestamp",
    TimeFormat::Rfc3339,
    Window::Both,
);

#[cfg(test)]
mod tests {
    use crate::webhook::{vectors, Provider, SignatureError};

    // the key is not base64-decoded.
    #[test]
    fn decoded_secret_is_invalid() {
        let signed = vectors::signed(Provider::Zendesk);
        let decoded = signed.with_secret("this_secret_is_for_testing_only");
        assert_eq!(decoded.check(), Err(SignatureError::Invalid));
    }

    #[test]
    fn unparsable_timestamp_is_invalid() {
        let signed = vectors::signed(Provider::Zendesk);
        assert_eq!(
            signed.check_header("x-zendesk-webhook-signature-timestamp", "1700000000"),
            Err(SignatureError::Invalid)
        );
    }
}
