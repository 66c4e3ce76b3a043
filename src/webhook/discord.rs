//! Discord interactions: `X-Signature-Ed25519` = hex Ed25519 signature over
//! `{X-Signature-Timestamp}{raw body}`; the "secret" is the application's hex public key.
//!
//! Verification is strict (`sig::ed25519_matches`: no small-order keys, canonical
//! signatures).
//! Discord probes endpoints with deliberately bad signatures and expects them rejected.
//! The Discord SDKs check no timestamp window; we still bound the signed timestamp
//! (±5 minutes by default) as a replay guard. Must not accept a key that is not 32 bytes.

use std::time::Duration;

use super::sig::{self, Window};
use super::{SignatureError, Verdict, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret, now: i64, window: Duration) -> Verdict {
    let signature = sig::header(req, "x-signature-ed25519")?;
    let ts = sig::header(req, "x-signature-timestamp")?;
    sig::check_window(sig::parse_unix(ts)?, 1, now, window, Window::Both)?;
    let signature = sig::decode_hex(signature)?;
    let key = secret
        .expose_str()
        .map(str::trim)
        .ok_or(SignatureError::Invalid)
        .and_then(sig::decode_hex)?;
    if key.len() != 32 {
        return Err(SignatureError::Invalid);
    }
    sig::verdict(sig::ed25519_matches(
        &key,
        &[ts.as_bytes(), req.body],
        &signature,
    ))
}

#[cfg(test)]
mod tests {
    use crate::webhook::{vectors, Provider, SignatureError};

    #[test]
    fn another_or_a_short_public_key_is_invalid() {
        let signed = vectors::signed(Provider::Discord);
        let other = "1398f62c6d1a457c51ba6a4b5f3dbd2f69fca93216218dc8997e416bd17d93ca";
        for key in [other, "ea4a6c63"] {
            assert_eq!(
                signed.with_secret(key).check(),
                Err(SignatureError::Invalid),
                "{key}"
            );
        }
    }
}
