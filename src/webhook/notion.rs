//! Notion: `X-Notion-Signature: sha256=<hex HMAC-SHA256(verification token, raw body)>`,
//! and the one-time verification request that delivers that token.
//!
//! When a subscription is created Notion POSTs `{"verification_token": "…"}` with no
//! signature (the token is the key, so nothing can sign it). The operator must read that
//! token to paste it into Notion and to store it as the room secret, so
//! [`verification_request`] lets it through, to the queue or the service, in exactly
//! that shape and no other: a body of at most [`MAX_VERIFICATION_BODY`] bytes that is a
//! JSON object holding only a `verification_token` string of visible ASCII. `ingest`
//! admits it only while the endpoint's room secret does not exist yet.
//!
//! Why that is safe: such a request can only carry a token, never an event, and only
//! before any token is stored. A forged one holds a token Notion does not know, so
//! pasting it into Notion fails; the operator stores as the room secret only the token
//! that Notion accepted. From then on every request needs a valid signature. This module
//! must not admit any other unsigned body.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::scheme::{Encoding, Hash, HeaderMac};
use super::{Provider, Verified, WebhookRequest};

const SIGNATURE_HEADER: &str = "x-notion-signature";

/// The largest verification request body admitted unsigned.
pub const MAX_VERIFICATION_BODY: usize = 512;
/// The longest verification token admitted.
const MAX_TOKEN: usize = 256;

pub const SCHEME: HeaderMac =
    HeaderMac::body(&[SIGNATURE_HEADER], Encoding::Hex, Hash::Sha256).prefixed("sha256=");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerificationBody {
    verification_token: String,
}

/// The unsigned verification request, as a [`Verified`] body, when the request is exactly
/// that: no signature header, a small JSON object with only `verification_token`. Its
/// delivery id is derived from the token, so a repeat is a duplicate.
pub fn verification_request(req: &WebhookRequest<'_>, body: bytes::Bytes) -> Option<Verified> {
    if req.headers.contains_key(SIGNATURE_HEADER) || body.len() > MAX_VERIFICATION_BODY {
        return None;
    }
    let parsed: VerificationBody = serde_json::from_slice(&body).ok()?;
    let token = parsed.verification_token;
    let visible = token.bytes().all(|b| b.is_ascii_graphic());
    if token.is_empty() || token.len() > MAX_TOKEN || !visible {
        return None;
    }
    let digest = Sha256::digest(token.as_bytes());
    Some(Verified {
        provider: Provider::Notion,
        delivery_id: Some(format!("verification-{}", hex::encode(&digest[..16]))),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};
    use bytes::Bytes;

    fn verification(pairs: &[(&str, &str)], body: &[u8]) -> Option<Verified> {
        let h = headers(pairs);
        verification_request(&post(&h, URL, body), Bytes::copy_from_slice(body))
    }

    #[test]
    fn the_verification_request_passes_unsigned_with_its_body_intact() {
        let body =
            br#"{"verification_token":"secret_tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl"}"#;
        let verified = verification(&[], body).unwrap();
        assert_eq!(verified.provider(), Provider::Notion);
        assert_eq!(verified.body().as_ref(), body);
        let id = verified.delivery_id().unwrap();
        assert!(id.starts_with("verification-") && id.len() == 45, "{id}");
        assert!(!id.contains("tMrlL1"), "the id does not show the token");
        let spaced = br#" { "verification_token" : "secret_x" } "#;
        assert!(verification(&[], spaced).is_some());
    }

    // Security property: nothing but the exact verification shape passes unsigned: no
    // other field, no other type, no signature header, no large body.
    #[test]
    fn no_other_unsigned_body_passes_as_a_verification() {
        let long_token = format!(r#"{{"verification_token":"{}"}}"#, "a".repeat(300));
        let padded = format!(
            r#"{{"verification_token":"secret_x"}}{}"#,
            " ".repeat(MAX_VERIFICATION_BODY)
        );
        let bodies: [&[u8]; 10] = [
            br#"{"verification_token":"secret_x","type":"page.deleted"}"#,
            br#"{"verification_token":"secret_x","verification_token":"secret_y"}"#,
            br#"{"verification_token":1}"#,
            br#"{"verification_token":""}"#,
            br#"{"verification_token":"has space"}"#,
            br#"[{"verification_token":"secret_x"}]"#,
            br#"{"type":"page.created"}"#,
            b"verification_token=secret_x",
            long_token.as_bytes(),
            padded.as_bytes(),
        ];
        for body in bodies {
            assert!(
                verification(&[], body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let body = br#"{"verification_token":"secret_x"}"#;
        assert!(verification(&[(SIGNATURE_HEADER, "sha256=00")], body).is_none());
    }
}
