//! Signed, purposed, audience-bound, expiring values for the sign-in redirects.
//!
//! Owns the one format every IAP parameter that travels through the browser uses when it
//! is not an opaque random id: `base64url(json).base64url(HMAC-SHA256)`. The MAC covers a
//! purpose label and the payload; the payload names its audience (the host that may open
//! it) and its expiry. The first cookie key signs, every key verifies (rotation). Opening
//! fails closed on anything malformed, oversized, expired, or meant for someone else. This
//! module does no I/O and keeps no state: single use is the caller's job.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sensitive::Secret;

/// The largest sealed value accepted, in bytes (it travels in a URL).
pub const MAX_SEALED_LEN: usize = 2048;

/// Why a sealed value was refused. Callers map every variant to one 4xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("malformed")]
    Malformed,
    #[error("too large")]
    TooLarge,
    #[error("bad signature")]
    BadSignature,
    #[error("wrong purpose or audience")]
    WrongAudience,
    #[error("expired")]
    Expired,
    #[error("no signing key")]
    NoKey,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    /// Purpose label, also bound into the MAC.
    p: String,
    /// Audience: the canonical host allowed to open this value.
    aud: String,
    /// Expiry, unix seconds.
    exp: i64,
    d: T,
}

fn mac(key: &Secret, purpose: &str, payload: &str) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.expose()).ok()?;
    m.update(purpose.as_bytes());
    m.update(b"\0");
    m.update(payload.as_bytes());
    Some(m)
}

/// Seal `data` for `purpose`, openable only by `aud` until `exp`.
pub fn seal<T: Serialize>(
    keys: &[Secret],
    purpose: &str,
    aud: &str,
    exp: i64,
    data: &T,
) -> Result<String, SealError> {
    let key = keys.first().ok_or(SealError::NoKey)?;
    let json = serde_json::to_vec(&Envelope {
        p: purpose.to_owned(),
        aud: aud.to_owned(),
        exp,
        d: data,
    })
    .map_err(|_| SealError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.encode(json);
    let tag = mac(key, purpose, &payload)
        .ok_or(SealError::NoKey)?
        .finalize()
        .into_bytes();
    let sealed = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag));
    if sealed.len() > MAX_SEALED_LEN {
        return Err(SealError::TooLarge);
    }
    Ok(sealed)
}

/// Open a sealed value: size, MAC under any key, purpose, audience and expiry.
pub fn open<T: DeserializeOwned>(
    keys: &[Secret],
    purpose: &str,
    aud: &str,
    now: i64,
    sealed: &str,
) -> Result<T, SealError> {
    if sealed.len() > MAX_SEALED_LEN {
        return Err(SealError::TooLarge);
    }
    let (payload, tag) = sealed.split_once('.').ok_or(SealError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| SealError::Malformed)?;
    let verified = keys
        .iter()
        .any(|k| mac(k, purpose, payload).is_some_and(|m| m.verify_slice(&tag).is_ok()));
    if !verified {
        return Err(SealError::BadSignature);
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| SealError::Malformed)?;
    let env: Envelope<T> = serde_json::from_slice(&json).map_err(|_| SealError::Malformed)?;
    if env.p != purpose || env.aud != aud {
        return Err(SealError::WrongAudience);
    }
    if env.exp <= now {
        return Err(SealError::Expired);
    }
    Ok(env.d)
}

/// A keyed digest of `value` for `purpose` under the first key (CSRF tokens).
pub fn tag(keys: &[Secret], purpose: &str, value: &str) -> Option<String> {
    let key = keys.first()?;
    Some(URL_SAFE_NO_PAD.encode(mac(key, purpose, value)?.finalize().into_bytes()))
}

/// True when `presented` is the tag of `value` for `purpose` under any key.
pub fn check_tag(keys: &[Secret], purpose: &str, value: &str, presented: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(presented) else {
        return false;
    };
    keys.iter()
        .any(|k| mac(k, purpose, value).is_some_and(|m| m.verify_slice(&bytes).is_ok()))
}

/// `base64url(SHA-256(value))`: how opaque ids are stored and compared.
pub fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

/// 32 random bytes, base64url: session ids, handoff codes, flow ids, PKCE and nonces.
pub fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<Secret> {
        vec![
            Secret::new([7u8; 32].to_vec()),
            Secret::new([9u8; 32].to_vec()),
        ]
    }

    #[test]
    fn a_sealed_value_opens_for_its_purpose_and_audience() {
        let s = seal(&keys(), "return", "auth.test", 100, &"/x").unwrap();
        assert_eq!(
            open::<String>(&keys(), "return", "auth.test", 99, &s),
            Ok("/x".into())
        );
    }

    #[test]
    fn an_expired_value_is_refused() {
        let s = seal(&keys(), "return", "auth.test", 100, &"/x").unwrap();
        assert_eq!(
            open::<String>(&keys(), "return", "auth.test", 100, &s),
            Err(SealError::Expired)
        );
    }

    #[test]
    fn a_value_for_another_audience_or_purpose_is_refused() {
        let s = seal(&keys(), "return", "auth.test", 100, &"/x").unwrap();
        assert_eq!(
            open::<String>(&keys(), "return", "evil.test", 1, &s),
            Err(SealError::WrongAudience)
        );
        // The purpose is inside the MAC, so a value cannot be replayed as another kind.
        assert_eq!(
            open::<String>(&keys(), "handoff", "auth.test", 1, &s),
            Err(SealError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_value_is_refused() {
        let s = seal(&keys(), "return", "auth.test", 100, &"/x").unwrap();
        let (payload, tag) = s.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"p":"return","aud":"auth.test","exp":100,"d":"//evil"}).to_string(),
        );
        assert_eq!(
            open::<String>(
                &keys(),
                "return",
                "auth.test",
                1,
                &format!("{forged}.{tag}")
            ),
            Err(SealError::BadSignature)
        );
        assert_eq!(
            open::<String>(&keys(), "return", "auth.test", 1, payload),
            Err(SealError::Malformed)
        );
        assert!(open::<String>(&keys(), "return", "auth.test", 1, "a.b.c").is_err());
    }

    #[test]
    fn an_oversized_value_is_refused_before_any_work() {
        let big = "a".repeat(MAX_SEALED_LEN + 1);
        assert_eq!(
            open::<String>(&keys(), "return", "auth.test", 1, &big),
            Err(SealError::TooLarge)
        );
    }

    #[test]
    fn every_configured_key_verifies_but_only_the_first_signs() {
        let old = vec![Secret::new([9u8; 32].to_vec())];
        let s = seal(&old, "return", "auth.test", 100, &"/x").unwrap();
        assert!(open::<String>(&keys(), "return", "auth.test", 1, &s).is_ok());
        let s = seal(&keys(), "return", "auth.test", 100, &"/x").unwrap();
        assert_eq!(
            open::<String>(&old, "return", "auth.test", 1, &s),
            Err(SealError::BadSignature)
        );
    }

    #[test]
    fn csrf_tags_verify_under_any_key_and_only_for_their_value() {
        let t = tag(&keys(), "signout", "abc").unwrap();
        assert!(check_tag(&keys(), "signout", "abc", &t));
        assert!(!check_tag(&keys(), "signout", "abd", &t));
        assert!(!check_tag(&keys(), "login", "abc", &t));
        assert!(!check_tag(&keys(), "signout", "abc", "not base64!"));
    }
}
