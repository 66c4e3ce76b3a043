//! Linear: `Linear-Signature` = hex HMAC-SHA256(signing secret, raw body), no prefix; the
//! replay guard is `webhookTimestamp` (unix ms) inside the signed JSON body.
//!
//! Like @linear/sdk, the legacy `linear-timestamp` header is ignored and
//! `|now - webhookTimestamp|` beyond the window (60 s by default) is `Stale`. The body is
//! parsed only after the MAC matched, and only to read that field; this module must not
//! trust any other body field.

use std::time::Duration;

use serde::Deserialize;

use super::scheme::{Encoding, Hash, HeaderMac};
use super::sig::{self, Window};
use super::{SignatureError, Verdict, WebhookRequest};
use crate::sensitive::Secret;

#[derive(Deserialize)]
struct Stamp {
    #[serde(rename = "webhookTimestamp")]
    webhook_timestamp: i64,
}

const SCHEME: HeaderMac = HeaderMac::body(&["linear-signature"], Encoding::Hex, Hash::Sha256);

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret, now: i64, window: Duration) -> Verdict {
    // The MAC first: the body is parsed only once it is known to be Linear's.
    SCHEME.verify_untimed(req, secret.expose())?;
    let stamp: Stamp = serde_json::from_slice(req.body).map_err(|_| SignatureError::Invalid)?;
    sig::check_window(stamp.webhook_timestamp, 1000, now, window, Window::Both)
}

#[cfg(test)]
mod tests {
    use crate::webhook::{vectors, Provider, SignatureError};

    #[test]
    fn body_without_webhook_timestamp_is_invalid() {
        let signed = vectors::signed(Provider::Linear).with_body(br#"{"action":"create"}"#);
        assert_eq!(signed.check(), Err(SignatureError::Invalid));
    }

    // JSON is parsed only after the MAC verifies. An unsigned body is invalid,
    // whatever timestamp it claims.
    #[test]
    fn an_unsigned_body_with_an_old_timestamp_is_invalid_not_stale() {
        let signed = vectors::signed(Provider::Linear);
        let old = br#"{"action":"create","webhookTimestamp":1000}"#;
        assert_eq!(signed.with_body(old).check(), Err(SignatureError::Invalid));
        assert_eq!(
            signed.with_body(b"not json").check(),
            Err(SignatureError::Invalid)
        );
    }
}
