//! HubSpot v3: `X-HubSpot-Signature-v3` = base64 HMAC-SHA256(client secret,
//! `{METHOD}{full URL}{raw body}{X-HubSpot-Request-Timestamp}`), timestamp in unix ms.
//!
//! Like the official SDKs the URL is used as given (the public URL the caller passes) and
//! timestamps older than the window (5 minutes) are rejected, compared in
//! milliseconds; unlike the SDKs, so is one more than `sig::MAX_FUTURE_SKEW` ahead. HubSpot's request-validation page also has the signer decode a table of
//! escapes in the URI (`%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B`), so a URL that
//! holds any of them is also tried in that form.
//!
//! The legacy `X-HubSpot-Signature` (with `X-HubSpot-Signature-Version: v1|v2`) is
//! accepted only when the endpoint opts in (`roomgate.hubspot.legacy_signatures`), and
//! only when no v3 signature is present: v1 is hex SHA-256 of client secret + raw body,
//! v2 of client secret + method + URL + raw body. Neither holds a timestamp, so a
//! captured request can be replayed for ever; without the opt-in they are
//! `missing_signature`.

use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::sig::{self, Window};
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub const WINDOW_SIDE: Window = Window::PastOnly;

const V3_HEADER: &str = "x-hubspot-signature-v3";
const LEGACY_HEADER: &str = "x-hubspot-signature";
const LEGACY_VERSION_HEADER: &str = "x-hubspot-signature-version";

/// Check v3, or with `legacy` a v1/v2 signature when no v3 one is present.
pub fn verify(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
    legacy: bool,
) -> Result<(), SignatureError> {
    if legacy && !req.headers.contains_key(V3_HEADER) && req.headers.contains_key(LEGACY_HEADER) {
        return verify_legacy(req, secret);
    }
    verify_v3(req, secret, now, window)
}

/// v1: SHA-256(secret + body); v2: SHA-256(secret + method + URL + body); lowercase or
/// uppercase hex, compared in constant time.
fn verify_legacy(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    let expected = sig::decode_hex(sig::header(req, LEGACY_HEADER)?)?;
    let mut hash = Sha256::new();
    hash.update(secret.expose());
    match sig::header(req, LEGACY_VERSION_HEADER)? {
        "v1" => {}
        "v2" => {
            hash.update(req.method.as_str().as_bytes());
            hash.update(req.url.as_bytes());
        }
        _ => return Err(SignatureError::Invalid),
    }
    hash.update(req.body);
    sig::verdict(bool::from(hash.finalize().as_slice().ct_eq(&expected)))
}

fn verify_v3(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    let signature = sig::header(req, V3_HEADER)?;
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
    use http::Method;

    // hubspot-api-python tests/spec/utils/test_signature.py (v3).
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
        verify(
            &post(&h, url, body),
            &Secret::new(secret),
            now,
            secs(300),
            false,
        )
    }

    #[test]
    fn sdk_v3_vector_verifies() {
        assert_eq!(
            check(KAT_SIG, "15000000", KAT_URL, KAT_BODY, KAT_SECRET, 15_000),
            Ok(())
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

    fn legacy(
        pairs: &[(&str, &str)],
        method: &Method,
        url: &str,
        body: &[u8],
        on: bool,
    ) -> Result<(), SignatureError> {
        let h = headers(pairs);
        let req = WebhookRequest {
            method,
            headers: &h,
            url,
            body,
        };
        verify(&req, &Secret::new(KAT_SECRET), T, secs(300), on)
    }

    // @hubspot/api-client test/unit/signature.spec (and hubspot-api-python's test_signature).
    const SDK_V1_BODY: &[u8] = br#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
    const SDK_V1: &str = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de";
    const SDK_V2_GET: &str = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e";
    const SDK_V2_POST: &str = "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900";
    const SDK_V2_BODY: &[u8] = br#"{"example_field":"example_value"}"#;

    #[test]
    fn sdk_v1_and_v2_vectors_verify_when_the_endpoint_opts_in() {
        let v1 = [(LEGACY_HEADER, SDK_V1), (LEGACY_VERSION_HEADER, "v1")];
        assert_eq!(
            legacy(&v1, &Method::POST, KAT_URL, SDK_V1_BODY, true),
            Ok(())
        );
        let v2 = [(LEGACY_HEADER, SDK_V2_GET), (LEGACY_VERSION_HEADER, "v2")];
        assert_eq!(legacy(&v2, &Method::GET, KAT_URL, b"", true), Ok(()));
        let v2 = [(LEGACY_HEADER, SDK_V2_POST), (LEGACY_VERSION_HEADER, "v2")];
        assert_eq!(
            legacy(&v2, &Method::POST, KAT_URL, SDK_V2_BODY, true),
            Ok(())
        );
    }

    // Security property: v1/v2 carry no timestamp (replayable), so without the endpoint's
    // opt-in they are not signatures at all.
    #[test]
    fn legacy_signatures_are_missing_without_the_opt_in() {
        let v1 = [(LEGACY_HEADER, SDK_V1), (LEGACY_VERSION_HEADER, "v1")];
        assert_eq!(
            legacy(&v1, &Method::POST, KAT_URL, SDK_V1_BODY, false),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn legacy_signatures_cover_body_method_and_url() {
        let v1 = [(LEGACY_HEADER, SDK_V1), (LEGACY_VERSION_HEADER, "v1")];
        assert_eq!(
            legacy(&v1, &Method::POST, KAT_URL, b"[]", true),
            Err(SignatureError::Invalid)
        );
        let v2 = [(LEGACY_HEADER, SDK_V2_POST), (LEGACY_VERSION_HEADER, "v2")];
        assert_eq!(
            legacy(&v2, &Method::PUT, KAT_URL, SDK_V2_BODY, true),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            legacy(
                &v2,
                &Method::POST,
                "https://www.example.com/other",
                SDK_V2_BODY,
                true
            ),
            Err(SignatureError::Invalid)
        );
        // A v1 value presented as v2 (or an unknown version) does not pass.
        let relabelled = [(LEGACY_HEADER, SDK_V1), (LEGACY_VERSION_HEADER, "v2")];
        assert_eq!(
            legacy(&relabelled, &Method::POST, KAT_URL, SDK_V1_BODY, true),
            Err(SignatureError::Invalid)
        );
        let unknown = [(LEGACY_HEADER, SDK_V1), (LEGACY_VERSION_HEADER, "v9")];
        assert_eq!(
            legacy(&unknown, &Method::POST, KAT_URL, SDK_V1_BODY, true),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn legacy_with_a_wrong_secret_is_invalid() {
        let v1 = [(LEGACY_HEADER, SDK_V1), (LEGACY_VERSION_HEADER, "v1")];
        let h = headers(&v1);
        let req = post(&h, KAT_URL, SDK_V1_BODY);
        assert_eq!(
            verify(
                &req,
                &Secret::new("zzzzzzzz-yyyy-yyyy-yyyy-yyyyyyyyyyyy"),
                T,
                secs(300),
                true
            ),
            Err(SignatureError::Invalid)
        );
    }

    // v3 stays preferred: with both present only v3 counts.
    #[test]
    fn a_v3_signature_is_preferred_over_a_legacy_one() {
        let pairs = [
            (LEGACY_HEADER, SDK_V1),
            (LEGACY_VERSION_HEADER, "v1"),
            (V3_HEADER, "AAAA"),
            ("x-hubspot-request-timestamp", TS_MS),
        ];
        assert_eq!(
            legacy(&pairs, &Method::POST, KAT_URL, SDK_V1_BODY, true),
            Err(SignatureError::Invalid)
        );
    }
}
