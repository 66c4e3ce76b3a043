//! Zendesk: `X-Zendesk-Webhook-Signature` = base64 HMAC-SHA256(secret, timestamp + body),
//! with the ISO-8601 `X-Zendesk-Webhook-Signature-Timestamp` concatenated as sent.
//!
//! The key is the signing secret string itself (it looks like base64 but must not be
//! decoded). Zendesk prescribes no window; ours is ±5 minutes. Must not re-serialise the
//! timestamp: the MAC covers the header's exact text.

use std::time::Duration;

use super::scheme::{Encoding, Hash, HeaderMac, Part, Stamp, TimeFormat};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const TIMESTAMP: &str = "x-zendesk-webhook-signature-timestamp";

const SCHEME: HeaderMac = HeaderMac {
    header: &["x-zendesk-webhook-signature"],
    prefix: "",
    encoding: Encoding::Base64,
    hash: Hash::Sha256,
    signed: &[Part::Header(TIMESTAMP), Part::Body],
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

    // Zendesk's static test-delivery secret (providers.md §1b).
    const SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";
    const BODY: &[u8] = br#"{"event":"ticket.updated","id":123}"#;
    // providers.md §1 notes: value asserted by an unrelated third-party test suite, and
    // recomputed by testdata/make_vectors.py.
    const KAT_TS: &str = "2021-03-25T05:09:27Z";
    const KAT_SIG: &str = "S/RDdU2ERmj7LHDDoWJ2onPYH+t7/f2+LTM4dL7UiLM=";
    const KAT_NOW: i64 = 1_616_648_967;
    // testdata/make_vectors.py: base64 HMAC-SHA256(SECRET, "2023-11-14T22:13:20Z" + BODY).
    const TS: &str = "2023-11-14T22:13:20Z";
    const SIG: &str = "dz46c54scGck+f7/k/mokj3YtzgFD9i6yNZ90rozuxc=";

    fn check(
        sig: &str,
        ts: &str,
        body: &[u8],
        secret: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let h = headers(&[
            ("x-zendesk-webhook-signature", sig),
            ("x-zendesk-webhook-signature-timestamp", ts),
        ]);
        verify(&post(&h, URL, body), &Secret::new(secret), now, secs(300))
    }

    #[test]
    fn third_party_corroborated_vector_verifies() {
        assert_eq!(check(KAT_SIG, KAT_TS, BODY, SECRET, KAT_NOW), Ok(()));
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(SIG, TS, BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check(SIG, TS, b"{}", SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(
            check(SIG, TS, BODY, "other", T),
            Err(SignatureError::Invalid)
        );
    }

    // providers.md vector zendesk-neg-decoded-secret: the key is not base64-decoded.
    #[test]
    fn decoded_secret_is_invalid() {
        assert_eq!(
            check(SIG, TS, BODY, "this_secret_is_for_testing_only", T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_signature_is_missing() {
        let h = headers(&[("x-zendesk-webhook-signature-timestamp", TS)]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET), T, secs(300)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn unparsable_timestamp_is_invalid() {
        assert_eq!(
            check(SIG, "1700000000", BODY, SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(
            check(SIG, TS, BODY, SECRET, T + 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn future_timestamp_is_rejected() {
        assert_eq!(
            check(SIG, TS, BODY, SECRET, T - 301),
            Err(SignatureError::Stale)
        );
    }
}
