//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=…]` = HMAC-SHA256 over
//! `{ts}:{raw body}`; any `h1` may match (secret rotation).
//!
//! Follows paddle-python-sdk: `|now - ts|` beyond the window is `Stale`, and the SDK
//! window is only 5 seconds, so endpoints will often widen it with an annotation.

use super::scheme::{SignedTime, TimestampedList};
use super::sig::Window;

pub const SCHEME: TimestampedList = TimestampedList {
    header: "paddle-signature",
    separator: ';',
    timestamp_key: "ts",
    signature_key: "h1",
    joiner: b":",
    side: Window::Both,
    signed_time: SignedTime::AsSent,
};

#[cfg(test)]
mod tests {
    use crate::webhook::testkit::T;
    use crate::webhook::{vectors, Provider, SignatureError};

    const H1: &str = "db76db946b2aedd4aa5e35affca6dd5bb4b71cdd23e9720b6550bb440dc40f26";

    // paddle-node-sdk keeps only the last h1; the Python SDK (and we) accept any.
    #[test]
    fn valid_h1_before_another_h1_verifies() {
        let other = "2".repeat(64);
        let signed = vectors::signed(Provider::Paddle);
        assert_eq!(
            signed.check_value(&format!("ts={T};h1={H1};h1={other}")),
            Ok(())
        );
    }

    #[test]
    fn header_without_ts_is_invalid() {
        let signed = vectors::signed(Provider::Paddle);
        assert_eq!(
            signed.check_value(&format!("h1={H1}")),
            Err(SignatureError::Invalid)
        );
    }
}
