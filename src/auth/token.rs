//! Participant tokens: HS256 JWTs with room grants.
//!
//! Owns verifying and minting tokens. The key is chosen by the `kid` in the payload (as
//! MeshAgent issues them), falling back to the header's `kid`; `exp` and `nbf` (with
//! [`NBF_LEEWAY`]) are checked against the injected `now`. It must not read tokens from
//! anywhere but the value it is given.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AuthError, Identity};
use crate::sensitive::Secret;

/// One grant in a participant token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Grant {
    pub name: String,
    #[serde(default)]
    pub scope: Value,
}

/// The claims roomgate reads from a participant token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub name: String,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not valid before (unix seconds); honoured with [`NBF_LEEWAY`] for clock skew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Claims {
    /// True when a `room` or `site` grant names this room.
    pub fn grants_room(&self, room: &str) -> bool {
        self.grants
            .iter()
            .any(|g| (g.name == "room" || g.name == "site") && g.scope.as_str() == Some(room))
    }

    /// The `api` grant's scope, `{}` without one.
    pub fn api_scope(&self) -> Value {
        self.grants
            .iter()
            .find(|g| g.name == "api")
            .map(|g| g.scope.clone())
            .unwrap_or_else(|| Value::Object(Default::default()))
    }
}

/// Verify a token for `room` at `now` (unix seconds).
pub fn verify(
    token: &str,
    keys: &[(String, Secret)],
    room: &str,
    now: i64,
) -> Result<Identity, AuthError> {
    admit(&decode(token, keys)?, room, now)
}

/// Check a token's signature with the key its `kid` names; no time or room checks.
fn decode(token: &str, keys: &[(String, Secret)]) -> Result<Claims, AuthError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
        return Err(AuthError::InvalidToken);
    }
    let kid = unverified_kid(token).ok_or(AuthError::InvalidToken)?;
    let key = match kid {
        Some(kid) => keys.iter().find(|(k, _)| *k == kid),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
    .ok_or(AuthError::InvalidToken)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(key.1.expose()),
        &validation,
    )
    .map_err(|_| AuthError::InvalidToken)?
    .claims;
    if claims.name.is_empty() {
        return Err(AuthError::InvalidToken);
    }
    // The api grant is forwarded as the ApiScope object; anything else is refused, not
    // passed on for the service to misread.
    if claims
        .grants
        .iter()
        .any(|g| g.name == "api" && !g.scope.is_object())
    {
        return Err(AuthError::InvalidToken);
    }
    Ok(claims)
}

/// How far in the future a token's `nbf` may lie and the token still be used: the clock
/// skew tolerated between the issuer and roomgate.
pub const NBF_LEEWAY: i64 = 60;

/// The time and room checks, run on every use of a token (cached or not).
fn admit(claims: &Claims, room: &str, now: i64) -> Result<Identity, AuthError> {
    if claims.exp.is_some_and(|exp| exp <= now) {
        return Err(AuthError::InvalidToken);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(NBF_LEEWAY))
    {
        return Err(AuthError::InvalidToken);
    }
    if !claims.grants_room(room) {
        return Err(AuthError::Forbidden);
    }
    Ok(Identity {
        user: claims.name.clone(),
        api_scope: claims.api_scope(),
        email: None,
        embed_session: None,
    })
}

const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Distinct tokens remembered per config; past this the cache starts over.
const CACHE_CAPACITY: usize = 10_000;

/// The token keys of one config, with the tokens they have already verified.
///
/// A token seen again costs a hash lookup instead of two JSON parses and an HMAC; expiry
/// and the room grant are still checked on every use. Only tokens whose signature checked
/// out are remembered, and the cache belongs to one config, so a reload that changes the
/// keys starts empty.
pub struct TokenVerifier {
    keys: Vec<(String, Secret)>,
    verified: RwLock<HashMap<Box<str>, Arc<Claims>, foldhash::fast::RandomState>>,
}

impl TokenVerifier {
    pub fn new(keys: Vec<(String, Secret)>) -> TokenVerifier {
        TokenVerifier {
            keys,
            verified: RwLock::default(),
        }
    }

    pub fn verify(&self, token: &str, room: &str, now: i64) -> Result<Identity, AuthError> {
        let token = token.trim();
        let cached = self
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned();
        if let Some(claims) = cached {
            return admit(&claims, room, now);
        }
        let claims = Arc::new(decode(token, &self.keys)?);
        {
            let mut map = self
                .verified
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
            map.insert(token.into(), Arc::clone(&claims));
        }
        admit(&claims, room, now)
    }
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// The `kid` of a token before its signature is checked: payload first, then header.
/// `None` inside `Some` means the token names no key; the outer `None` means it is not a
/// JWT at all.
fn unverified_kid(token: &str) -> Option<Option<String>> {
    let mut parts = token.split('.');
    let header = parts.next()?;
    let payload = parts.next()?;
    let decode = |s: &str| -> Option<Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let payload = decode(payload)?;
    let header = decode(header)?;
    let kid = payload
        .get("kid")
        .or_else(|| header.get("kid"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(kid)
}

/// Why [`mint`] made no token.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("the name must be non-empty and hold no control characters")]
    Name,
    #[error("the api grant must be a JSON object")]
    Api,
    #[error("the token could not be encoded: {0}")]
    Encode(#[from] jsonwebtoken::errors::Error),
}

/// Mint a participant token for `room` with the given key.
pub fn mint(
    kid: &str,
    key: &Secret,
    room: &str,
    name: &str,
    api: Option<Value>,
    ttl: Option<Duration>,
    now: i64,
) -> Result<String, MintError> {
    // What verification would refuse is not minted: a token no request could use.
    if name.is_empty() || http::HeaderValue::from_bytes(name.as_bytes()).is_err() {
        return Err(MintError::Name);
    }
    if api.as_ref().is_some_and(|a| !a.is_object()) {
        return Err(MintError::Api);
    }
    let mut grants = vec![Grant {
        name: "room".into(),
        scope: Value::String(room.into()),
    }];
    if let Some(api) = api {
        grants.push(Grant {
            name: "api".into(),
            scope: api,
        });
    }
    let claims = Claims {
        name: name.into(),
        grants,
        kid: Some(kid.into()),
        exp: ttl.map(|t| now + t.as_secs() as i64),
        iat: Some(now),
        nbf: None,
        sub: None,
        version: Some("1.0".into()),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.expose()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A token for bob in acme, minted at `NOW` with the first key, valid for a minute.
    fn minute_token(k: &[(String, Secret)]) -> String {
        let ttl = Some(Duration::from_secs(60));
        mint("dev", &k[0].1, "acme", "bob", None, ttl, NOW).unwrap()
    }

    fn keys() -> Vec<(String, Secret)> {
        vec![
            ("dev".into(), Secret::new([7u8; 32].to_vec())),
            ("old".into(), Secret::new([9u8; 32].to_vec())),
        ]
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn minted_token_verifies_for_its_room_with_api_scope() {
        let k = keys();
        let t = mint(
            "dev",
            &k[0].1,
            "acme",
            "bob",
            Some(json!({"queues": {}})),
            None,
            NOW,
        )
        .unwrap();
        let id = verify(&t, &k, "acme", NOW).unwrap();
        assert_eq!(id.user, "bob");
        assert_eq!(id.api_scope, json!({"queues": {}}));
    }

    #[test]
    fn key_is_chosen_by_kid() {
        let k = keys();
        let t = mint("old", &k[1].1, "acme", "bob", None, None, NOW).unwrap();
        assert!(verify(&t, &k, "acme", NOW).is_ok());
        let lying = mint("dev", &k[1].1, "acme", "bob", None, None, NOW).unwrap();
        assert_eq!(
            verify(&lying, &k, "acme", NOW),
            Err(AuthError::InvalidToken)
        );
    }

    #[test]
    fn token_for_another_room_is_forbidden() {
        let k = keys();
        let t = mint("dev", &k[0].1, "other", "bob", None, None, NOW).unwrap();
        assert_eq!(verify(&t, &k, "acme", NOW), Err(AuthError::Forbidden));
    }

    #[test]
    fn expired_token_is_invalid() {
        let k = keys();
        let t = minute_token(&k);
        assert!(verify(&t, &k, "acme", NOW + 59).is_ok());
        assert_eq!(
            verify(&t, &k, "acme", NOW + 60),
            Err(AuthError::InvalidToken)
        );
    }

    /// A token signed by the test key with these claims.
    fn signed(claims: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(keys()[0].1.expose()),
        )
        .unwrap()
    }

    #[test]
    fn a_token_not_yet_valid_beyond_the_leeway_is_invalid_even_from_the_cache() {
        let k = keys();
        let claims = |nbf: i64| {
            json!({"name": "bob", "kid": "dev", "nbf": nbf,
                   "grants": [{"name": "room", "scope": "acme"}]})
        };
        let early = signed(&claims(NOW + NBF_LEEWAY + 1));
        assert_eq!(
            verify(&early, &k, "acme", NOW),
            Err(AuthError::InvalidToken)
        );
        let verifier = TokenVerifier::new(k.clone());
        assert_eq!(
            verifier.verify(&early, "acme", NOW),
            Err(AuthError::InvalidToken)
        );
        assert!(
            verifier.verify(&early, "acme", NOW + 1).is_ok(),
            "valid once its nbf is within the leeway"
        );
        assert_eq!(
            verifier.verify(&early, "acme", NOW),
            Err(AuthError::InvalidToken),
            "a cached token is checked again"
        );
        // Within the leeway (clock skew), and in the past: valid.
        assert!(verify(&signed(&claims(NOW + NBF_LEEWAY)), &k, "acme", NOW).is_ok());
        assert!(verify(&signed(&claims(NOW - 10)), &k, "acme", NOW).is_ok());
    }

    /// The api grant reaches the service as the ApiScope object; a token whose api grant
    /// is anything else is refused, and `mint` makes none.
    #[test]
    fn an_api_grant_that_is_not_an_object_is_invalid_and_never_minted() {
        let k = keys();
        for scope in [json!([1]), json!("admin"), json!(null), json!(true)] {
            let t = signed(&json!({"name": "bob", "kid": "dev", "grants": [
                {"name": "room", "scope": "acme"}, {"name": "api", "scope": scope}]}));
            assert_eq!(
                verify(&t, &k, "acme", NOW),
                Err(AuthError::InvalidToken),
                "{scope}"
            );
            assert!(matches!(
                mint("dev", &k[0].1, "acme", "bob", Some(scope), None, NOW),
                Err(MintError::Api)
            ));
        }
    }

    #[test]
    fn a_name_no_request_could_carry_is_never_minted() {
        let k = keys();
        for name in ["", "bad\nname", "nul\0"] {
            assert!(
                matches!(
                    mint("dev", &k[0].1, "acme", name, None, None, NOW),
                    Err(MintError::Name)
                ),
                "{name:?}"
            );
        }
        // UTF-8 names are fine: they pass as header bytes.
        let t = mint("dev", &k[0].1, "acme", "José", None, None, NOW).unwrap();
        assert_eq!(verify(&t, &k, "acme", NOW).unwrap().user, "José");
    }

    #[test]
    fn unknown_kid_and_garbage_are_invalid() {
        let k = keys();
        let t = mint("nope", &k[0].1, "acme", "bob", None, None, NOW).unwrap();
        assert_eq!(verify(&t, &k, "acme", NOW), Err(AuthError::InvalidToken));
        assert_eq!(
            verify("a.b.c", &k, "acme", NOW),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(verify("", &k, "acme", NOW), Err(AuthError::InvalidToken));
    }

    #[test]
    fn a_cached_token_is_still_checked_for_expiry_and_room() {
        let k = keys();
        let verifier = TokenVerifier::new(k.clone());
        let t = minute_token(&k);
        assert!(verifier.verify(&t, "acme", NOW).is_ok());
        assert!(
            verifier.verify(&t, "acme", NOW + 1).is_ok(),
            "served from the cache"
        );
        assert_eq!(verifier.verify(&t, "other", NOW), Err(AuthError::Forbidden));
        assert_eq!(
            verifier.verify(&t, "acme", NOW + 60),
            Err(AuthError::InvalidToken)
        );
    }

    #[test]
    fn a_forged_token_is_never_cached_as_valid() {
        let k = keys();
        let verifier = TokenVerifier::new(k.clone());
        let forged = mint(
            "dev",
            &Secret::new([1u8; 32].to_vec()),
            "acme",
            "eve",
            None,
            None,
            NOW,
        )
        .unwrap();
        for _ in 0..2 {
            assert_eq!(
                verifier.verify(&forged, "acme", NOW),
                Err(AuthError::InvalidToken)
            );
        }
        // A verifier with other keys (a reloaded config) does not trust what the old one saw.
        let t = mint("dev", &k[0].1, "acme", "bob", None, None, NOW).unwrap();
        assert!(verifier.verify(&t, "acme", NOW).is_ok());
        let rotated = TokenVerifier::new(vec![("dev".into(), Secret::new([3u8; 32].to_vec()))]);
        assert_eq!(
            rotated.verify(&t, "acme", NOW),
            Err(AuthError::InvalidToken)
        );
    }

    #[test]
    fn alg_none_token_is_invalid() {
        let b = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let t = format!(
            "{}.{}.",
            b(&json!({"alg": "none", "typ": "JWT"})),
            b(&json!({"name": "x", "kid": "dev", "grants": [{"name": "room", "scope": "acme"}]}))
        );
        assert_eq!(
            verify(&t, &keys(), "acme", NOW),
            Err(AuthError::InvalidToken)
        );
    }

    #[test]
    fn site_grant_also_admits() {
        let claims = Claims {
            name: "n".into(),
            grants: vec![Grant {
                name: "site".into(),
                scope: json!("acme"),
            }],
            kid: None,
            exp: None,
            iat: None,
            nbf: None,
            sub: None,
            version: None,
        };
        assert!(claims.grants_room("acme"));
        assert!(!claims.grants_room("acme2"));
    }
}
