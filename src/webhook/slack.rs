//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:{ts}:{raw body}")>` with
//! `X-Slack-Request-Timestamp`.
//!
//! Follows slack_sdk: `|now - ts|` beyond the window is `Stale`, in both directions (Bolt
//! only rejects the past; we take the stricter rule). Must not parse the body: slash
//! commands arrive form-encoded and are signed as sent.

use std::time::Duration;

use super::scheme::{Encoding, Hash, HeaderMac, Part, Stamp, TimeFormat};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const TIMESTAMP: &str = "x-slack-request-timestamp";

const SCHEME: HeaderMac = HeaderMac {
    header: &["x-slack-signature"],
    prefix: "v0=",
    encoding: Encoding::Hex,
    hash: Hash::Sha256,
    signed: &[
        Part::Text(b"v0:"),
        Part::Header(TIMESTAMP),
        Part::Text(b":"),
        Part::Body,
    ],
    stamp: Some(Stamp {
        header: TIMESTAMP,
        format: TimeFormat::Unix,
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

    // Slack's documentation example (slash command), as reproduced in providers.md §3a.
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TS: &str = "1531420618";
    const DOC_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const DOC_BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    const SECRET: &str = "slack_signing_secret";
    const BODY: &[u8] = br#"{"type":"event_callback","event_id":"Ev123"}"#;
    // testdata/make_vectors.py: hex HMAC-SHA256(SECRET, "v0:1700000000:" + BODY).
    const SIG: &str = "v0=1a75d698892517f60043a90922b88013f141b8a50b6d6c7792456c3cf2290f4f";

    fn check(
        sig: &str,
        ts: &str,
        body: &[u8],
        secret: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let h = headers(&[
            ("x-slack-signature", sig),
            ("x-slack-request-timestamp", ts),
        ]);
        verify(&post(&h, URL, body), &Secret::new(secret), now, secs(300))
    }

    #[test]
    fn slack_doc_vector_verifies() {
        assert_eq!(
            check(DOC_SIG, DOC_TS, DOC_BODY, DOC_SECRET, 1_531_420_618),
            Ok(())
        );
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(SIG, "1700000000", BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check(SIG, "1700000000", b"{}", SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(
            check(SIG, "1700000000", BODY, "other", T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn changed_timestamp_header_is_invalid() {
        assert_eq!(
            check(SIG, "1700000001", BODY, SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_timestamp_is_missing() {
        let h = headers(&[("x-slack-signature", SIG)]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET), T, secs(300)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(
            check(SIG, "1700000000", BODY, SECRET, T + 301),
            Err(SignatureError::Stale)
        );
    }

    // slack_sdk rejects |now - ts| > 300 in both directions.
    #[test]
    fn future_timestamp_is_rejected() {
        assert_eq!(
            check(SIG, "1700000000", BODY, SECRET, T - 301),
            Err(SignatureError::Stale)
        );
    }
}
