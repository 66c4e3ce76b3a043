//! Mailgun: the JSON body carries `signature: {timestamp, token, signature}` where
//! `signature` = hex HMAC-SHA256(webhook signing key, timestamp + token).
//!
//! The MAC covers only `timestamp + token`: `event-data` is NOT authenticated, so
//! consumers must not treat it as proof of anything beyond "Mailgun sent a message with
//! this token". The timestamp is checked against the window (±5 minutes by default;
//! Mailgun sets none) and `token` is the delivery id to deduplicate on.

use std::time::Duration;

use serde::Deserialize;

use super::sig::{self, Window};
use super::{SignatureError, Verdict, WebhookRequest};
use crate::sensitive::Secret;

#[derive(Deserialize)]
struct Envelope {
    signature: Option<Signature>,
}

#[derive(Deserialize)]
struct Signature {
    timestamp: Stamp,
    token: String,
    signature: String,
}

/// Mailgun sends the timestamp as a string; accept a bare number too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stamp {
    Text(String),
    Number(u64),
}

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret, now: i64, window: Duration) -> Verdict {
    let envelope: Envelope =
        serde_json::from_slice(req.body).map_err(|_| SignatureError::Invalid)?;
    let signed = envelope.signature.ok_or(SignatureError::Missing)?;
    let ts = match signed.timestamp {
        Stamp::Text(text) => text,
        Stamp::Number(n) => n.to_string(),
    };
    sig::check_window(sig::parse_unix(&ts)?, 1, now, window, Window::Both)?;
    let expected = sig::decode_hex(&signed.signature)?;
    sig::verdict(sig::sha256_matches(
        secret.expose(),
        &[ts.as_bytes(), signed.token.as_bytes()],
        &expected,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};

    const KEY: &str = "mailgun_signing_key";
    // testdata/make_vectors.py: hex HMAC-SHA256(KEY, "1700000000" + "tok_5f2b9c").
    const SIG: &str = "83ebe8e62470cfb170ec1f1637f05b9d1df524907d2a6dd957d4d75c8e16f6a7";

    fn body(ts: &str, token: &str, event: &str) -> Vec<u8> {
        format!(
            r#"{{"signature":{{"timestamp":{ts},"token":"{token}","signature":"{SIG}"}},"event-data":{{"event":"{event}"}}}}"#
        )
        .into_bytes()
    }

    fn check(body: &[u8], key: &str, now: i64) -> Result<(), SignatureError> {
        let h = headers(&[("content-type", "application/json")]);
        verify(&post(&h, URL, body), &Secret::new(key), now, secs(300))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(
            check(&body("\"1700000000\"", "tok_5f2b9c", "delivered"), KEY, T),
            Ok(())
        );
    }

    #[test]
    fn numeric_timestamp_verifies() {
        assert_eq!(
            check(&body("1700000000", "tok_5f2b9c", "delivered"), KEY, T),
            Ok(())
        );
    }

    // A tampered `event-data`: event-data is not signed.
    #[test]
    fn event_data_is_not_covered_by_the_signature() {
        assert_eq!(
            check(&body("\"1700000000\"", "tok_5f2b9c", "failed"), KEY, T),
            Ok(())
        );
    }

    #[test]
    fn tampered_token_is_invalid() {
        assert_eq!(
            check(&body("\"1700000000\"", "tok_other", "delivered"), KEY, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_key_is_invalid() {
        assert_eq!(
            check(
                &body("\"1700000000\"", "tok_5f2b9c", "delivered"),
                "other",
                T
            ),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn body_without_signature_is_missing() {
        assert_eq!(
            check(br#"{"event-data":{}}"#, KEY, T),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn body_that_is_not_json_is_invalid() {
        assert_eq!(
            check(b"timestamp=1&token=x", KEY, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(
            check(
                &body("\"1700000000\"", "tok_5f2b9c", "delivered"),
                KEY,
                T + 301
            ),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn future_timestamp_is_rejected() {
        assert_eq!(
            check(
                &body("\"1700000000\"", "tok_5f2b9c", "delivered"),
                KEY,
                T - 301
            ),
            Err(SignatureError::Stale)
        );
    }
}
