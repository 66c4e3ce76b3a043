//! Adyen: standard notifications sign each `NotificationRequestItem` apart, in its
//! `additionalData.hmacSignature`: base64 HMAC-SHA256(hex-decoded HMAC key, the item's
//! `pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:
//! eventCode:success`).
//!
//! The fields are joined as the official libraries join them (a missing field is empty,
//! `value` is the integer amount in minor units, `success` the string Adyen sends). The
//! libraries check only the first item; roomgate checks every item, so no unsigned item
//! can ride along with a signed one, and refuses a request with more than [`MAX_ITEMS`]
//! items before computing any MAC. Webhooks that sign the raw body instead (Adyen's
//! banking and management webhooks) carry the base64 HMAC in an `HmacSignature` header,
//! which is checked when present. No timestamp is signed. This module must not accept a
//! request in which any item fails or lacks its signature.

use serde::Deserialize;
use serde_json::Value;

use super::{sig, SignatureError, WebhookRequest};
use crate::sensitive::Secret;

/// The most notification items one request may carry.
pub const MAX_ITEMS: usize = 16;

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "notificationItems", default)]
    items: Vec<Wrapped>,
}

#[derive(Deserialize)]
struct Wrapped {
    #[serde(rename = "NotificationRequestItem")]
    item: Item,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(default)]
    psp_reference: Value,
    #[serde(default)]
    original_reference: Value,
    #[serde(default)]
    merchant_account_code: Value,
    #[serde(default)]
    merchant_reference: Value,
    #[serde(default)]
    amount: Option<Amount>,
    #[serde(default)]
    event_code: Value,
    #[serde(default)]
    success: Value,
    #[serde(default)]
    additional_data: Option<AdditionalData>,
}

#[derive(Deserialize)]
struct Amount {
    #[serde(default)]
    value: Value,
    #[serde(default)]
    currency: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdditionalData {
    #[serde(default)]
    hmac_signature: Option<String>,
}

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    if req.headers.contains_key("hmacsignature") {
        let expected = sig::decode_base64(sig::header(req, "hmacsignature")?)?;
        let key = hmac_key(secret)?;
        return sig::verdict(sig::sha256_matches(&key, &[req.body], &expected));
    }
    let items = match serde_json::from_slice::<Notification>(req.body) {
        Ok(notification) => notification.items,
        Err(_) => Vec::new(),
    };
    let signed = items
        .iter()
        .filter(|w| signature_of(&w.item).is_some())
        .count();
    if signed == 0 {
        return Err(SignatureError::Missing);
    }
    if signed != items.len() || items.len() > MAX_ITEMS {
        return Err(SignatureError::Invalid);
    }
    let key = hmac_key(secret)?;
    let mut all = true;
    for wrapped in &items {
        all &= item_matches(&wrapped.item, &key);
    }
    sig::verdict(all)
}

fn signature_of(item: &Item) -> Option<&str> {
    item.additional_data.as_ref()?.hmac_signature.as_deref()
}

/// The HMAC key Adyen shows, as hex; anything else can verify nothing.
fn hmac_key(secret: &Secret) -> Result<Vec<u8>, SignatureError> {
    let text = secret.expose_str().ok_or(SignatureError::Invalid)?;
    sig::decode_hex(text.trim())
}

fn item_matches(item: &Item, key: &[u8]) -> bool {
    let (Some(signature), Some(signed)) = (signature_of(item), signed_string(item)) else {
        return false;
    };
    let Ok(expected) = sig::decode_base64(signature.trim()) else {
        return false;
    };
    sig::sha256_matches(key, &[signed.as_bytes()], &expected)
}

/// The colon-joined fields of an item, `None` when a field is not a plain value.
fn signed_string(item: &Item) -> Option<String> {
    let (value, currency) = match &item.amount {
        Some(amount) => (&amount.value, &amount.currency),
        None => (&Value::Null, &Value::Null),
    };
    let fields = [
        &item.psp_reference,
        &item.original_reference,
        &item.merchant_account_code,
        &item.merchant_reference,
        value,
        currency,
        &item.event_code,
        &item.success,
    ];
    let texts = fields
        .into_iter()
        .map(field_text)
        .collect::<Option<Vec<_>>>()?;
    Some(texts.join(":"))
}

/// A field as the libraries print it: strings as they are, integers in decimal, booleans
/// as `true`/`false`, absent or null as empty. Other values are refused.
fn field_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// `pspReference:eventCode` of a notification holding a single item: stable across
/// Adyen's retries of that notification.
pub fn delivery_id(body: &[u8]) -> Option<String> {
    let notification: Notification = serde_json::from_slice(body).ok()?;
    let [only] = notification.items.as_slice() else {
        return None;
    };
    let psp = only.item.psp_reference.as_str()?;
    let event = only.item.event_code.as_str()?;
    Some(format!("{psp}:{event}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    // testdata/make_vectors.py: base64 HMAC-SHA256(hex-decoded KEY, the joined fields).
    const KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
    const SIG_1: &str = "M0I0lIXOU3Q6pwHLzxxAaTMu7KkuLuUM8cvo+tEBUW0=";
    const SIG_2: &str = "JZKFyXi+a1H0lRW5lFFnCgU1TwINA/wqM7aLTOptKDs=";

    fn item(psp: &str, value: &str, signature: &str) -> String {
        format!(
            r#"{{"NotificationRequestItem":{{"additionalData":{{"hmacSignature":"{signature}"}},"amount":{{"currency":"EUR","value":{value}}},"eventCode":"AUTHORISATION","merchantAccountCode":"TestMerchant","merchantReference":"ref-1","pspReference":"{psp}","success":"true"}}}}"#
        )
    }

    fn body(items: &[String]) -> String {
        format!(
            r#"{{"live":"false","notificationItems":[{}]}}"#,
            items.join(",")
        )
    }

    fn check(body: &str, key: &str) -> Result<(), SignatureError> {
        let h = headers(&[]);
        verify(&post(&h, URL, body.as_bytes()), &Secret::new(key))
    }

    fn one() -> String {
        body(&[item("7914073381342284", "1130", SIG_1)])
    }

    #[test]
    fn the_signed_string_joins_the_documented_fields() {
        let n: Notification = serde_json::from_str(&one()).unwrap();
        assert_eq!(
            signed_string(&n.items[0].item).unwrap(),
            "7914073381342284::TestMerchant:ref-1:1130:EUR:AUTHORISATION:true"
        );
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(&one(), KEY), Ok(()));
        assert_eq!(check(&one(), &KEY.to_lowercase()), Ok(()));
    }

    #[test]
    fn tampered_amount_is_invalid() {
        let tampered = body(&[item("7914073381342284", "1", SIG_1)]);
        assert_eq!(check(&tampered, KEY), Err(SignatureError::Invalid));
    }

    #[test]
    fn wrong_key_is_invalid() {
        let other = "00".repeat(32);
        assert_eq!(check(&one(), &other), Err(SignatureError::Invalid));
        assert_eq!(check(&one(), "not hex"), Err(SignatureError::Invalid));
    }

    #[test]
    fn a_body_without_signed_items_is_missing() {
        assert_eq!(check("{}", KEY), Err(SignatureError::Missing));
        assert_eq!(check("not json", KEY), Err(SignatureError::Missing));
        let unsigned = one().replace(
            r#""additionalData":{"hmacSignature":"M0I0lIXOU3Q6pwHLzxxAaTMu7KkuLuUM8cvo+tEBUW0="},"#,
            "",
        );
        assert_eq!(check(&unsigned, KEY), Err(SignatureError::Missing));
    }

    #[test]
    fn every_item_must_verify() {
        let two = body(&[
            item("7914073381342284", "1130", SIG_1),
            item("8815073381342285", "2000", SIG_2),
        ]);
        assert_eq!(check(&two, KEY), Ok(()));
        let second_forged = body(&[
            item("7914073381342284", "1130", SIG_1),
            item("8815073381342285", "9999", SIG_2),
        ]);
        assert_eq!(check(&second_forged, KEY), Err(SignatureError::Invalid));
    }

    // Security property: an unsigned item cannot ride along with a signed one.
    #[test]
    fn an_unsigned_item_beside_a_signed_one_is_invalid() {
        let unsigned = item("8815073381342285", "2000", "x")
            .replace(r#""additionalData":{"hmacSignature":"x"},"#, "");
        let mixed = body(&[item("7914073381342284", "1130", SIG_1), unsigned]);
        assert_eq!(check(&mixed, KEY), Err(SignatureError::Invalid));
    }

    // Security property: the number of items (one MAC each) is capped before any MAC.
    #[test]
    fn more_than_sixteen_items_are_refused() {
        let many = vec![item("7914073381342284", "1130", SIG_1); MAX_ITEMS + 1];
        assert_eq!(check(&body(&many), KEY), Err(SignatureError::Invalid));
        let fits = vec![item("7914073381342284", "1130", SIG_1); MAX_ITEMS];
        assert_eq!(check(&body(&fits), KEY), Ok(()));
    }

    #[test]
    fn a_raw_body_hmac_signature_header_verifies_banking_webhooks() {
        // testdata/make_vectors.py: base64 HMAC-SHA256(hex-decoded KEY, BODY).
        let raw = br#"{"data":{"balancePlatform":"YOUR_BALANCE_PLATFORM"},"type":"balancePlatform.accountHolder.created"}"#;
        let sig = "ZJInDKAvsWXjlxR3i2v3jpmuEO7fMB1hY36Nzm673CE=";
        let h = headers(&[("hmacsignature", sig)]);
        assert_eq!(verify(&post(&h, URL, raw), &Secret::new(KEY)), Ok(()));
        assert_eq!(
            verify(&post(&h, URL, b"{}"), &Secret::new(KEY)),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn the_delivery_id_is_the_single_items_psp_reference_and_event() {
        assert_eq!(
            delivery_id(one().as_bytes()).as_deref(),
            Some("7914073381342284:AUTHORISATION")
        );
        let two = body(&[
            item("7914073381342284", "1130", SIG_1),
            item("8815073381342285", "2000", SIG_2),
        ]);
        assert_eq!(delivery_id(two.as_bytes()), None);
    }
}
