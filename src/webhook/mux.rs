//! Mux: `Mux-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, each `v1` a hex
//! HMAC-SHA256(signing secret, `{t}.{raw body}`).
//!
//! As in @mux/mux-node, any `v1` may match (secret roll), other schemes are ignored and
//! only timestamps older than the window (five minutes) are rejected; roomgate also
//! refuses one more than five minutes ahead. The MAC is computed once per secret and
//! compared in constant time with each listed signature; a header longer than
//! `sig::MAX_HEADER_BYTES` or with more than `sig::MAX_LIST_ENTRIES` items is refused
//! before any MAC is computed. This module must not accept a header without `t` or
//! without any `v1`.

use super::scheme::TimestampedList;
use super::sig::Window;

/// The SDK signs the timestamp as the number it parsed.
pub const SCHEME: TimestampedList =
    TimestampedList::t_v1("mux-signature", Window::PastOnly).signing_parsed_time();

#[cfg(test)]
mod tests {
    use crate::webhook::sig::MAX_HEADER_BYTES;
    use crate::webhook::testkit::T;
    use crate::webhook::{vectors, Provider, SignatureError};

    const V1: &str = "dbf2e71b0f3f72580ec7244185331dde5cf0e46449f0805962165a6b553c4584";
    const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn check(value: &str) -> Result<(), SignatureError> {
        vectors::signed(Provider::Mux).check_value(value)
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        assert_eq!(check(&format!("t={T},v1={OTHER},v0={V1},v1={V1}")), Ok(()));
    }

    #[test]
    fn a_header_without_timestamp_or_v1_is_invalid() {
        assert_eq!(check(&format!("v1={V1}")), Err(SignatureError::Invalid));
        assert_eq!(
            check(&format!("t={T},v0={V1}")),
            Err(SignatureError::Invalid)
        );
    }

    // The SDK signs the timestamp as the number it parsed.
    #[test]
    fn a_timestamp_with_leading_zeros_is_signed_as_its_number() {
        assert_eq!(check(&format!("t=0{T},v1={V1}")), Ok(()));
    }

    // Security property: work per request is bounded before any MAC is computed: a header
    // with more than 16 items or more than 4 KiB is refused, even if a valid v1 is in it.
    #[test]
    fn an_oversized_signature_list_is_refused() {
        let many = format!("t={T},{}v1={V1}", format!("v1={OTHER},").repeat(15));
        assert_eq!(check(&many), Err(SignatureError::Invalid));
        let fits = format!("t={T},{}v1={V1}", format!("v1={OTHER},").repeat(14));
        assert_eq!(check(&fits), Ok(()));
        let long = format!("t={T},v1={V1},x={}", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(check(&long), Err(SignatureError::Invalid));
    }
}
