//! The identity assertion: an ES256 JWT that tells a service who a forwarded request is
//! from, signed by roomgate, verifiable with the public keys roomgate publishes (JWKS).
//!
//! Owns parsing the configured P-256 private keys (PEM: SEC1 or PKCS#8), the JWKS
//! document, and signing one assertion. Keys are parsed once per config; the first key
//! signs, every key is published, so a service keeps verifying assertions signed by a key
//! that is being rotated out until it is removed from the config. Pure apart from the
//! random nonce of each signature; it does not read the request or decide who may pass.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde::Serialize;
use serde_json::Value;

use crate::sensitive::Secret;

/// The request header that carries the assertion to the service.
pub const HEADER: http::HeaderName = http::HeaderName::from_static("x-meshagent-assertion");

/// One signing key with what is precomputed from it.
struct SigningKey {
    kid: String,
    pair: EcdsaKeyPair,
    /// `base64url({"alg":"ES256","typ":"JWT","kid":…})`, the JWT's first part.
    header: String,
}

/// The configured assertion keys, their JWKS and the assertion lifetime.
pub struct Asserter {
    keys: Vec<SigningKey>,
    ttl: Duration,
    jwks: String,
    rng: SystemRandom,
}

impl fmt::Debug for Asserter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("Asserter")
            .field("kids", &kids)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// What one assertion says.
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    /// The route's origin, `https://domain[:port]`.
    pub iss: &'a str,
    /// The route domain.
    pub aud: &'a str,
    /// The user: an email, a token's name or an embed session's user.
    pub sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub room: &'a str,
    /// The api scope, a JSON object.
    pub api: &'a Value,
}

/// The full claim set as signed.
#[derive(Serialize)]
struct Signed<'a> {
    #[serde(flatten)]
    claims: &'a Claims<'a>,
    iat: i64,
    exp: i64,
    jti: &'a str,
}

/// Parse one PEM private key (SEC1 `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`) on P-256.
fn parse_key(pem: &Secret) -> Result<EcdsaKeyPair, String> {
    let der = PrivateKeyDer::from_pem_slice(pem.expose())
        .map_err(|_| "not a PEM private key (SEC1 or PKCS#8)".to_owned())?;
    let bytes = match &der {
        PrivateKeyDer::Sec1(k) => k.secret_sec1_der(),
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der(),
        _ => return Err("an RSA key: identity assertions are ES256 (P-256)".into()),
    };
    EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, bytes)
        .map_err(|_| "not a P-256 (ES256) private key".into())
}

impl Asserter {
    /// Keys in config order (the first signs). `Err((index, message))` names the first
    /// key that does not parse.
    pub fn new(keys: &[(String, Secret)], ttl: Duration) -> Result<Asserter, (usize, String)> {
        let mut parsed = Vec::with_capacity(keys.len());
        let mut jwks = Vec::with_capacity(keys.len());
        for (i, (kid, pem)) in keys.iter().enumerate() {
            let pair = parse_key(pem).map_err(|m| (i, m))?;
            // An uncompressed point: 0x04 || x || y, 32 bytes each on P-256.
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err((i, "unexpected public key encoding".into()));
            }
            jwks.push(serde_json::json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                "kid": kid,
                "use": "sig",
                "alg": "ES256",
            }));
            let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
            parsed.push(SigningKey {
                kid: kid.clone(),
                pair,
                header: URL_SAFE_NO_PAD.encode(header.to_string()),
            });
        }
        if parsed.is_empty() {
            return Err((0, "at least one key is required".into()));
        }
        Ok(Asserter {
            keys: parsed,
            ttl,
            jwks: serde_json::json!({ "keys": jwks }).to_string(),
            rng: SystemRandom::new(),
        })
    }

    /// The public keys as a JWKS document (`{"keys": [...]}`), every configured key.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// Sign `claims`, issued at `now` (unix seconds), valid for the configured ttl, with a
    /// fresh `jti`. `None` only if the signature itself fails.
    pub fn sign(&self, claims: &Claims<'_>, now: i64) -> Option<String> {
        let key = self.keys.first()?;
        let jti = uuid::Uuid::new_v4();
        let mut jti_buf = [0u8; uuid::fmt::Simple::LENGTH];
        let signed = Signed {
            claims,
            iat: now,
            exp: now.saturating_add(self.ttl.as_secs() as i64),
            jti: jti.simple().encode_lower(&mut jti_buf),
        };
        let payload = serde_json::to_vec(&signed).ok()?;
        let mut token = String::with_capacity(key.header.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&key.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = key.pair.sign(&self.rng, token.as_bytes()).ok()?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

    /// A P-256 key as PKCS#8 PEM and as SEC1 PEM (the same key).
    fn key_pems() -> (String, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let sec1 = pair.private_key().as_der().unwrap();
        let pem = |label: &str, der: &[u8]| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                lines.join("\n")
            )
        };
        (
            pem("PRIVATE KEY", pkcs8.as_ref()),
            pem("EC PRIVATE KEY", sec1.as_ref()),
        )
    }

    fn decoding_key(jwks: &str, kid: &str) -> DecodingKey {
        let jwks: Value = serde_json::from_str(jwks).unwrap();
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap();
        DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())
            .unwrap()
    }

    fn claims(api: &Value) -> Claims<'_> {
        Claims {
            iss: "https://app.acme.test",
            aud: "app.acme.test",
            sub: "alice@acme.test",
            email: Some("alice@acme.test"),
            room: "acme",
            api,
        }
    }

    #[test]
    fn an_assertion_verifies_with_the_published_key_and_carries_the_claims() {
        let (pkcs8, _) = key_pems();
        let a = Asserter::new(
            &[("k1".into(), Secret::new(pkcs8))],
            Duration::from_secs(60),
        )
        .unwrap();
        let api = serde_json::json!({"queues": {}});
        let now = crate::state::system_clock();
        let jwt = a.sign(&claims(&api), now).unwrap();
        assert_eq!(decode_header(&jwt).unwrap().kid.as_deref(), Some("k1"));
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["app.acme.test"]);
        v.set_issuer(&["https://app.acme.test"]);
        let got = decode::<Value>(&jwt, &decoding_key(a.jwks(), "k1"), &v)
            .unwrap()
            .claims;
        assert_eq!(got["sub"], "alice@acme.test");
        assert_eq!(got["email"], "alice@acme.test");
        assert_eq!(got["room"], "acme");
        assert_eq!(got["api"], api);
        assert_eq!(got["iat"], now);
        assert_eq!(got["exp"], now + 60);
        assert_eq!(got["jti"].as_str().unwrap().len(), 32);
    }

    /// Rotation: the first key signs, and an assertion from the key being retired still
    /// verifies against the JWKS as long as that key is configured.
    #[test]
    fn the_first_key_signs_and_every_key_is_published() {
        let (old, _) = key_pems();
        let (_, new_sec1) = key_pems();
        let before = Asserter::new(
            &[("old".into(), Secret::new(old.clone()))],
            Duration::from_secs(60),
        )
        .unwrap();
        let during = Asserter::new(
            &[
                ("new".into(), Secret::new(new_sec1)),
                ("old".into(), Secret::new(old)),
            ],
            Duration::from_secs(60),
        )
        .unwrap();
        let api = serde_json::json!({});
        let now = crate::state::system_clock();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["app.acme.test"]);
        let old_jwt = before.sign(&claims(&api), now).unwrap();
        assert!(decode::<Value>(&old_jwt, &decoding_key(during.jwks(), "old"), &v).is_ok());
        let new_jwt = during.sign(&claims(&api), now).unwrap();
        assert_eq!(decode_header(&new_jwt).unwrap().kid.as_deref(), Some("new"));
        assert!(decode::<Value>(&new_jwt, &decoding_key(during.jwks(), "new"), &v).is_ok());
        assert!(decode::<Value>(&new_jwt, &decoding_key(during.jwks(), "old"), &v).is_err());
    }

    #[test]
    fn a_key_that_is_not_p256_pem_is_refused_with_its_index() {
        let (good, _) = key_pems();
        let e = Asserter::new(
            &[
                ("a".into(), Secret::new(good)),
                ("b".into(), Secret::new("not a key")),
            ],
            Duration::from_secs(60),
        )
        .unwrap_err();
        assert_eq!(e.0, 1);
    }
}
