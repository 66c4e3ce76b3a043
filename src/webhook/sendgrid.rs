//! SendGrid (Twilio SendGrid Event Webhook): ECDSA P-256 with SHA-256 over
//! `{X-Twilio-Email-Event-Webhook-Timestamp}{raw body}`, the DER signature base64 in
//! `X-Twilio-Email-Event-Webhook-Signature`.
//!
//! The room secret is the webhook's verification key as SendGrid shows it: a base64 DER
//! SubjectPublicKeyInfo (a PEM block holding it is accepted too). It is a public key, so
//! whoever reads it can verify but not sign. The key is parsed on each request (aws-lc,
//! which also checks the point is on the P-256 curve); the body is hashed in place, never
//! copied. Neither SendGrid's docs nor its SDKs bound the timestamp: roomgate's window is
//! its own, five minutes either way. This module must not accept a key of another curve
//! or a signature header longer than [`MAX_SIGNATURE_HEADER`].

use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_ASN1};

use super::sig::{self, Window};
use super::{SignatureError, Verdict, WebhookRequest};
use crate::sensitive::Secret;

pub const WINDOW_SIDE: Window = Window::Both;

/// The longest signature header read: a DER P-256 signature is at most 72 bytes (96
/// base64 characters).
pub const MAX_SIGNATURE_HEADER: usize = 128;

const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret, now: i64, window: Duration) -> Verdict {
    let signature = sig::header(req, SIGNATURE_HEADER)?;
    let ts = sig::header(req, TIMESTAMP_HEADER)?;
    sig::check_window(sig::parse_unix(ts)?, 1, now, window, WINDOW_SIDE)?;
    if signature.len() > MAX_SIGNATURE_HEADER {
        return Err(SignatureError::Invalid);
    }
    let signature = sig::decode_base64(signature)?;
    let key = public_key(secret).ok_or(SignatureError::Invalid)?;
    let mut hash = digest::Context::new(&digest::SHA256);
    hash.update(ts.as_bytes());
    hash.update(req.body);
    let matched = key.verify_digest_sig(&hash.finish(), &signature).is_ok();
    sig::verdict(matched)
}

/// The P-256 verification key in `secret`: base64 DER SubjectPublicKeyInfo, bare or in a
/// `PUBLIC KEY` PEM block. `None` when it is anything else.
fn public_key(secret: &Secret) -> Option<ParsedPublicKey> {
    let text = secret.expose_str()?;
    let base64: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("-----"))
        .flat_map(str::split_whitespace)
        .collect();
    let der = sig::decode_base64(&base64).ok()?;
    ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, der).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};

    // testdata/make_vectors.py: P-256 key with private scalar 0x1122…1122, signatures made with
    // python `cryptography` (RFC 6979 deterministic ECDSA) over "1700000000" + BODY.
    const KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZBPjcDGKkizs+qlLohiN1Bn1hjVvp3THZs1sRQKV/uldzpzgVXsKjxzvXGY/Niz//JEOMJSvyCu7x6CpKwtr2w==";
    const OTHER_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbgNqKGl2yWZ/7sNFigkTGx4Srfy2d1r12qA57yBmmiENFoybeJpdly1kiXF3GHTW/d7LRR4yqtcm85XfS64szA==";
    const BODY: &[u8] =
        b"[{\"email\":\"a@example.test\",\"event\":\"delivered\",\"sg_event_id\":\"sg-1\"}]\r\n";
    const SIG: &str = "MEUCICjPoKbWnyM2/xqxIt298oFjNacte09wvnqtYfk/bIEIAiEA5+dIave0DXrKJZw4Vcubq37JDAXeJYPeafbQRc031rY=";
    const TS: &str = "1700000000";

    fn check(sig: &str, ts: &str, body: &[u8], key: &str, now: i64) -> Result<(), SignatureError> {
        let h = headers(&[(SIGNATURE_HEADER, sig), (TIMESTAMP_HEADER, ts)]);
        verify(&post(&h, URL, body), &Secret::new(key), now, secs(300))
    }

    #[test]
    fn a_pem_block_holding_the_key_verifies_too() {
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &KEY[..64],
            &KEY[64..]
        );
        assert_eq!(check(SIG, TS, BODY, &pem, T), Ok(()));
    }

    #[test]
    fn another_key_is_invalid() {
        assert_eq!(
            check(SIG, TS, BODY, OTHER_KEY, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn a_key_that_is_not_a_p256_public_key_is_invalid() {
        // An Ed25519 SubjectPublicKeyInfo (RFC 8410 example) and plain text.
        let ed25519 = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=";
        for key in [ed25519, "not a key", "c2VjcmV0"] {
            assert_eq!(check(SIG, TS, BODY, key, T), Err(SignatureError::Invalid));
        }
    }

    #[test]
    fn an_oversized_signature_header_is_invalid_before_any_work() {
        let long = "A".repeat(MAX_SIGNATURE_HEADER + 4);
        assert_eq!(check(&long, TS, BODY, KEY, T), Err(SignatureError::Invalid));
    }
}
