//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` over `{t}.{raw body}`.
//!
//! The HMAC-SHA256 key is the whole `whsec_…` string as UTF-8 (never base64-decoded: that
//! is Standard Webhooks). Any `v1` may match (secret roll); `v0` and unknown schemes are
//! ignored. Like stripe-python/-node, timestamps older than the window are rejected; unlike
//! them, so is one more than `sig::MAX_FUTURE_SKEW` (5 minutes) ahead. This module must
//! not accept a header without `t` or without any `v1`.

use super::scheme::TimestampedList;
use super::sig::Window;

pub const SCHEME: TimestampedList = TimestampedList::t_v1("stripe-signature", Window::PastOnly);

#[cfg(test)]
mod tests {
    use crate::webhook::testkit::T;
    use crate::webhook::{vectors, Provider, SignatureError};

    const V1: &str = "dd87ab365008cd15388d35ae8467b42bbc97bb9efe68060ed81e123be0e21c6e";
    const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn check(value: &str) -> Result<(), SignatureError> {
        vectors::signed(Provider::Stripe).check_value(value)
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        assert_eq!(
            check(&format!("t={T},v1={OTHER},v1={V1},v0={OTHER}")),
            Ok(())
        );
    }

    // Security property: the key is the literal whsec_ string, not its base64 decoding.
    #[test]
    fn secret_is_not_base64_decoded() {
        let signed = vectors::signed(Provider::Stripe).with_secret("test_secret");
        assert_eq!(signed.check(), Err(SignatureError::Invalid));
    }

    #[test]
    fn v0_alone_or_a_list_without_timestamp_is_invalid() {
        assert_eq!(
            check(&format!("t={T},v0={V1}")),
            Err(SignatureError::Invalid)
        );
        assert_eq!(check(&format!("v1={V1}")), Err(SignatureError::Invalid));
    }

    // The window is past-only like stripe-python/-node, and the future is bounded too.
    #[test]
    fn an_hour_ahead_is_stale() {
        let signed = vectors::signed(Provider::Stripe).later(-3600);
        assert_eq!(signed.check(), Err(SignatureError::Stale));
    }
}
