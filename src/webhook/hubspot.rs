//! HubSpot v3: `X-HubSpot-Signature-v3` = base64 HMAC-SHA256(client secret,
//! `{METHOD}{full URL}{raw body}{X-HubSpot-Request-Timestamp}`), timestamp in unix ms.
//!
//! Like the official SDKs the URL is used as given (the public URL the caller passes) and
//! timestamps older than the window (5 minutes) are rejected, compared in
//! milliseconds; unlike the SDKs, so is one more than `sig::MAX_FUTURE_SKEW` ahead. HubSpot's request-validation page also has the signer decode a table of
//! escapes in the URI (`%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B`), so a URL that
//! holds any of them is also tried in that form. The v1/v2 back-compat
//! `X-HubSpot-Signature` is not accepted.

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
    let signed_over = |url: &str| {
        sig::sha256_matches(
            secret.expose(),
            &[
                req.method.as_str().as_bytes(),
                url.as_bytes(),
                req.body,
                ts.as_bytes(),
            ],
            &expected,
        )
    };
    let matched = signed_over(req.url) || decoded_uri(req.url).is_some_and(|url| signed_over(&url));
    sig::verdict(matched)
}

/// `url` with the escapes HubSpot's table lists decoded (either hex case), or `None` when
/// it holds none of them. Every other escape stays as written.
fn decoded_uri(url: &str) -> Option<String> {
    let decode = |hex: &str| -> Option<char> {
        let c = match hex.to_ascii_uppercase().as_str() {
            "3A" => ':',
            "2F" => '/',
            "3F" => '?',
            "40" => '@',
            "21" => '!',
            "24" => '$',
            "27" => '\'',
            "28" => '(',
            "29" => ')',
            "2A" => '*',
            "2C" => ',',
            "3B" => ';',
            _ => return None,
        };
        Some(c)
    };
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    let mut changed = false;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3).and_then(decode) {
            Some(c) => {
                out.push(c);
                changed = true;
                rest = &rest[i + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T};
    use base64::Engine;

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

    /// HubSpot's table: `%3A %2F %2C …` in the URI are decoded before signing, so a
    /// signature over the decoded form verifies, as does one over the URL as sent (the
    /// SDKs' way); any other change to the URL does not.
    #[test]
    fn a_signature_over_the_uri_with_the_table_decoded_verifies() {
        let sent = "https://hooks.example.test/hubspot?return=https%3a%2F%2Fapp.test%2Fdone&tag=a%2Cb&q=%20x";
        let decoded =
            "https://hooks.example.test/hubspot?return=https://app.test/done&tag=a,b&q=%20x";
        assert_eq!(decoded_uri(sent).as_deref(), Some(decoded));
        assert_eq!(decoded_uri(URL), None);
        assert_eq!(decoded_uri("https://h.test/a%20b%2"), None);
        for signed in [sent, decoded] {
            let mac = sig::hmac_sha256(
                SECRET.as_bytes(),
                &[b"POST", signed.as_bytes(), BODY, TS_MS.as_bytes()],
            )
            .unwrap();
            let mac = base64::engine::general_purpose::STANDARD.encode(mac);
            assert_eq!(
                check(&mac, TS_MS, sent, BODY, SECRET, T),
                Ok(()),
                "{signed}"
            );
            let other = sent.replace("tag=a", "tag=b");
            assert_eq!(
                check(&mac, TS_MS, &other, BODY, SECRET, T),
                Err(SignatureError::Invalid),
                "{signed}"
            );
        }
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

    // The SDKs only reject timestamps in the past; roomgate also refuses one more than
    // five minutes ahead (a signature made for later replay), and allows that much skew.
    #[test]
    fn future_timestamp_within_the_skew_is_accepted_and_beyond_it_is_stale() {
        assert_eq!(check(SIG, TS_MS, URL, BODY, SECRET, T - 300), Ok(()));
        assert_eq!(
            check(SIG, TS_MS, URL, BODY, SECRET, T - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(SIG, TS_MS, URL, BODY, SECRET, T - 3600),
            Err(SignatureError::Stale)
        );
    }
}
