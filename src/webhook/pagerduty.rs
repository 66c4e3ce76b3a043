//! PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` over the raw body
//! (HMAC-SHA256); any `v1` may match (secret rotation).
//!
//! No timestamp is signed. Unknown schemes in the list are ignored; a header with no `v1`
//! at all, or more than `sig::MAX_LIST_ENTRIES` items, is `Invalid`. One MAC per secret
//! is compared with every `v1`.

use super::{sig, SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    let header = sig::header(req, "x-pagerduty-signature")?;
    let items = sig::capped_pairs(header, ',')?;
    let v1 = items
        .iter()
        .filter(|(scheme, _)| *scheme == "v1")
        .map(|(_, value)| *value);
    sig::list_matches(v1, sig::decode_hex, || {
        sig::sha256_tag(secret.expose(), &[req.body])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const SECRET: &str = "pd_secret";
    const BODY: &[u8] = br#"{"event":{"id":"01PD","event_type":"incident.triggered"}}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256("pd_secret", BODY).
    const V1: &str = "cce3998f2fa078177034caed39c26f2af710aaf87f4451945aa3ef2c8311b4f0";
    const OTHER: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn check(header: &str, body: &[u8], secret: &str) -> Result<(), SignatureError> {
        let h = headers(&[("x-pagerduty-signature", header)]);
        verify(&post(&h, URL, body), &Secret::new(secret))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(&format!("v1={V1}"), BODY, SECRET), Ok(()));
    }

    #[test]
    fn any_v1_in_the_list_may_match() {
        assert_eq!(check(&format!("v1={OTHER},v1={V1}"), BODY, SECRET), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check(&format!("v1={V1}"), b"{}", SECRET),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(
            check(&format!("v1={V1}"), BODY, "other"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_header_is_missing() {
        let h = headers(&[]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET)),
            Err(SignatureError::Missing)
        );
    }
}
