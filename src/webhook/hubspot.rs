//! HubSpot v3: `X-HubSpot-Signature-v3` = base64 HMAC-SHA256(client secret,
//! `{METHOD}{full URL}{raw body}{X-HubSpot-Request-Timestamp}`), timestamp in unix ms.
//!
//! Like the official SDKs the URL is used as given (the public URL the caller passes) and
//! only timestamps older than the window (5 minutes) are rejected, compared in
//! milliseconds. The v1/v2 back-compat `X-HubSpot-Signature` is not accepted.

use std::time::Duration;

use super::sig::{self, Window};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub const WINDOW_SIDE: Window = Window::PastOnly;

pub fn verify(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    let signature = sig::header(req, "x-hubspot-signature-v3")?;
    let ts = sig::header(req, "x-hubspot-request-timestamp")?;
    sig::check_window(sig::parse_unix(ts)?, 1000, now, window, WINDOW_SIDE)?;
    let expected = sig::decode_base64(signature)?;
    sig::verdict(sig::sha256_matches(
        secret.expose(),
        &[
            req.method.as_str().as_bytes(),
            req.url.as_bytes(),
            req.body,
            ts.as_bytes(),
        ],
        &expected,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T};

    // hubspot-api-python tests/spec/utils/test_signature.py (v3), providers.md §3b.
    const KAT_SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const KAT_URL: &str = "https://www.example.com/webhook_uri";
    const KAT_BODY: &[u8] = b"{'example_field':'example_value'}";
    const KAT_SIG: &str = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=";

    const SECRET: &str = "hubspot_client_secret";
    const URL: &str = "https://hooks.example.test/hubspot";
    const BODY: &[u8] = br#"[{"eventId":100,"subscriptionType":"contact.creation"}]"#;
    // testdata/make_vectors.py: base64 HMAC-SHA256(SECRET,
    // "POST" + URL + BODY + "1700000000000").
    const SIG: &str = "xkXlUyH0CSD5xKGcYg6hcoEW1jQCdHCybUCPu1XTF20=";
    const TS_MS: &str = "1700000000000";

    fn check(
        sig: &str,
        ts: &str,
        url: &str,
        body: &[u8],
        secret: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let h = headers(&[
            ("x-hubspot-signature-v3", sig),
            ("x-hubspot-request-timestamp", ts),
        ]);
        verify(&post(&h, url, body), &Secret::new(secret), now, secs(300))
    }

    #[test]
    fn sdk_v3_vector_verifies() {
        assert_eq!(
            check(KAT_SIG, "15000000", KAT_URL, KAT_BODY, KAT_SECRET, 15_000),
            Ok(())
        );
    }

    #[test]
    fn constructed_signature_verifies() {
        assert_eq!(check(SIG, TS_MS, URL, BODY, SECRET, T), Ok(()));
    }

    #[test]
    fn tampered_body_is_invalid() {
        assert_eq!(
            check(SIG, TS_MS, URL, b"[]", SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn different_url_is_invalid() {
        assert_eq!(
            check(
                SIG,
                TS_MS,
                "https://hooks.example.test/other",
                BODY,
                SECRET,
                T
            ),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        assert_eq!(
            check(SIG, TS_MS, URL, BODY, "other", T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_signature_is_missing() {
        let h = headers(&[("x-hubspot-request-timestamp", TS_MS)]);
        assert_eq!(
            verify(&post(&h, URL, BODY), &Secret::new(SECRET), T, secs(300)),
            Err(SignatureError::Missing)
        );
    }

    // The SDKs compare milliseconds: one ms past five minutes is stale.
    #[test]
    fn stale_timestamp_is_rejected() {
        assert_eq!(
            check(SIG, "1699999699999", URL, BODY, SECRET, T),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(SIG, TS_MS, URL, BODY, SECRET, T + 301),
            Err(SignatureError::Stale)
        );
    }

    // Both SDKs only reject timestamps in the past.
    #[test]
    fn future_timestamp_is_accepted_like_the_sdks() {
        assert_eq!(check(SIG, TS_MS, URL, BODY, SECRET, T - 3600), Ok(()));
    }
}
