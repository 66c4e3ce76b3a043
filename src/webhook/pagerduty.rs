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
    use crate::webhook::{vectors, Provider};

    #[test]
    fn any_v1_in_the_list_may_match() {
        let signed = vectors::signed(Provider::Pagerduty);
        let list = format!("v1={},{}", "1".repeat(64), signed.headers[0].1);
        assert_eq!(signed.check_value(&list), Ok(()));
    }
}
