//! The random values of embed sessions and management keys: how each is made, what it
//! looks like, and the digest it is stored and looked up under.
//!
//! - session id `es_<22>`: not a secret (the backend and the service see it);
//! - access token `mtok_<22>.<43>`, launch code and cookie value `<22>.<43>`: the first
//!   part names the session (so every record of a session shares one Redis hash tag), the
//!   second is 32 random bytes;
//! - management key `mk_<43>`.
//!
//! Only `base64url(SHA-256(value))` of a secret value is ever stored. Parsing is strict
//! (exact lengths, base64url alphabet) and bounded; anything else is no credential. Pure.

use crate::auth::signing::digest;

pub const SESSION_PREFIX: &str = "es_";
pub const TOKEN_PREFIX: &str = "mtok_";
pub const KEY_PREFIX: &str = "mk_";

/// base64url length of 16 random bytes (the session part) and of 32 (the secret part).
const SESSION_PART: usize = 22;
const SECRET_PART: usize = 43;

fn random(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn is_b64url(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new session id.
pub fn new_session_id() -> String {
    format!("{SESSION_PREFIX}{}", random(16))
}

/// True for a well-formed session id.
pub fn is_session_id(id: &str) -> bool {
    id.strip_prefix(SESSION_PREFIX)
        .is_some_and(|part| is_b64url(part, SESSION_PART))
}

/// A new access token of session `sid`.
pub fn new_token(sid: &str) -> String {
    format!("{TOKEN_PREFIX}{}", new_code(sid))
}

/// A new launch code or cookie value of session `sid`.
pub fn new_code(sid: &str) -> String {
    let part = sid.strip_prefix(SESSION_PREFIX).unwrap_or(sid);
    format!("{part}.{}", random(32))
}

/// The session a code (or cookie value) names, and its digest; `None` when malformed.
pub fn parse_code(code: &str) -> Option<(String, String)> {
    let (part, secret) = code.split_once('.')?;
    if !is_b64url(part, SESSION_PART) || !is_b64url(secret, SECRET_PART) {
        return None;
    }
    Some((format!("{SESSION_PREFIX}{part}"), digest(code)))
}

/// The session an access token names, and its digest; `None` when malformed.
pub fn parse_token(token: &str) -> Option<(String, String)> {
    let (sid, _) = parse_code(token.strip_prefix(TOKEN_PREFIX)?)?;
    Some((sid, digest(token)))
}

/// True when `value` has the shape of an access token (a bearer value embed mode owns).
pub fn looks_like_token(value: &str) -> bool {
    value.starts_with(TOKEN_PREFIX)
}

/// A new management key: `(id, raw key)`. The id is what `keys list` and `keys revoke`
/// show; the raw key is printed once.
pub fn new_key() -> (String, String) {
    let mut id = [0u8; 8];
    rand::fill(&mut id);
    (hex::encode(id), format!("{KEY_PREFIX}{}", random(32)))
}

/// The digest a management key is stored under; `None` when it is not shaped like one.
pub fn key_digest(key: &str) -> Option<String> {
    let secret = key.strip_prefix(KEY_PREFIX)?;
    is_b64url(secret, SECRET_PART).then(|| digest(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_session_and_is_looked_up_by_its_digest() {
        let sid = new_session_id();
        assert!(is_session_id(&sid));
        let token = new_token(&sid);
        assert!(token.starts_with("mtok_"));
        let (named, d) = parse_token(&token).unwrap();
        assert_eq!(named, sid);
        assert_eq!(d, digest(&token));
        assert!(!d.contains(&token[5..]));
        let code = new_code(&sid);
        assert_eq!(parse_code(&code).unwrap().0, sid);
        assert_ne!(new_token(&sid), token, "random");
    }

    #[test]
    fn malformed_credentials_name_no_session() {
        let sid = new_session_id();
        let token = new_token(&sid);
        for bad in [
            "",
            "mtok_",
            &token[..token.len() - 1],
            &format!("{token}x"),
            &token.replace('.', "_"),
            &format!("mtok_{}", "a".repeat(66)),
            &format!("mtok_{}.{}", "a".repeat(22), "+".repeat(43)),
            &token[5..],
        ] {
            assert!(parse_token(bad).is_none(), "{bad}");
        }
        assert!(parse_code(&token).is_none(), "a token is not a code");
        assert!(!is_session_id("es_short"));
    }

    #[test]
    fn management_keys_are_shaped_and_digested() {
        let (id, key) = new_key();
        assert_eq!(id.len(), 16);
        assert!(key.starts_with("mk_"));
        assert_eq!(key_digest(&key), Some(digest(&key)));
        assert_eq!(key_digest("mk_short"), None);
        assert_eq!(key_digest(&new_token(&new_session_id())), None);
    }
}
