//! Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>` = HMAC-SHA256 over
//! `{Message-Id}{Message-Timestamp}{raw body}`, the timestamp being RFC 3339 text.
//!
//! Twitch asks receivers to reject messages older than 10 minutes; we also reject
//! timestamps more than `sig::MAX_FUTURE_SKEW` (5 minutes) in the future. The MAC covers the timestamp header's
//! exact text, which this module must not re-format.

use std::time::Duration;

use super::scheme::{Encoding, Hash, HeaderMac, Part, Stamp, TimeFormat};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const TIMESTAMP: &str = "twitch-eventsub-message-timestamp";

const SCHEME: HeaderMac = HeaderMac {
    header: &["twitch-eventsub-message-signature"],
    prefix: "sha256=",
    encoding: Encoding::Hex,
    hash: Hash::Sha256,
    signed: &[
        Part::Header("twitch-eventsub-message-id"),
        Part::Header(TIMESTAMP),
        Part::Body,
    ],
    stamp: Some(Stamp {
        header: TIMESTAMP,
        format: TimeFormat::Rfc3339,
        side: Window::Both,
    }),
};

pub fn verify(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    SCHEME.verify(req, secret.expose(), now, window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};

    const SECRET: &str = "twitch_secret_10";
    const TS: &str = "2023-11-14T22:13:20.123456789Z";
    const BODY: &[u8] = br#"{"subscription":{"type":"channel.follow"},"event":{}}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256(SECRET, "msg-1" + TS + BODY).
    const SIG: &str = "sha256=c3a005bc2947fed6d74d4b5e64ba3397fab80a31f15a065afdf3b51e4690afb5";

    fn check(id: &str, body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
        let h = headers(&[
            ("twitch-eventsub-message-signature", SIG),
            ("twitch-eventsub-message-id", id),
            ("twitch-eventsub-message-timestamp", TS),
        ]);
        verify(&post(&h, URL, body), &Secret::new(secret), now, secs(600))
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check("msg-1", BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check("msg-1", b"{}", SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn changed_message_id_is_invalid() {
        assert_eq!(
            check("msg-2", BODY, SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(
            check("msg-1", BODY, "other", T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_message_id_is_missing() {
        let h = headers(&[
            ("twitch-eventsub-message-signature", SIG),
            ("twitch-eventsub-message-timestamp", TS),
        ]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET), T, secs(600)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(
            check("msg-1", BODY, SECRET, T + 601),
            Err(SignatureError::Stale)
        );
        assert_eq!(check("msg-1", BODY, SECRET, T + 600), Ok(()));
    }

    // The 10-minute window bounds the past; the future allows five minutes of skew.
    #[test]
    fn future_timestamp_beyond_five_minutes_is_rejected() {
        assert_eq!(check("msg-1", BODY, SECRET, T - 300), Ok(()));
        assert_eq!(
            check("msg-1", BODY, SECRET, T - 301),
            Err(SignatureError::Stale)
        );
    }
}
