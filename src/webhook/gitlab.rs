//! GitLab: the classic `X-Gitlab-Token` shared token (constant-time equality), or the
//! signing-token form, which is Standard Webhooks and is delegated to
//! [`super::standard_webhooks::verify`].
//!
//! A matching `X-Gitlab-Token` is accepted on its own (it is a bearer credential; body
//! integrity then relies on TLS). Otherwise `webhook-signature` is checked with its
//! timestamp window. This module must not copy the Standard Webhooks construction.

use std::time::Duration;

use super::{sig, standard_webhooks, SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    if req.headers.contains_key("x-gitlab-token") {
        let token = sig::header(req, "x-gitlab-token")?;
        if secret.ct_eq(token.as_bytes()) {
            return Ok(());
        }
        if !req.headers.contains_key("webhook-signature") {
            return Err(SignatureError::Invalid);
        }
    }
    standard_webhooks::verify(req, secret, now, window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};

    const TOKEN: &str = "gitlab-secret-token";
    const SIGNING: &str = "whsec_Z2l0bGFiLXNpZ25pbmctdG9rZW4tMzItYnl0ZXMhISE=";
    const BODY: &[u8] = br#"{"object_kind":"push"}"#;
    // testdata/make_vectors.py: base64 HMAC-SHA256(b64decode("Z2l0…ISE="),
    // "01HX.1700000000." + BODY).
    const SIG: &str = "v1,ZqQkSryKxaAv+F9CfPZ19BfFkX5IFYcSAZo+Q4iHk+Y=";

    fn signed_headers(extra: &[(&str, &str)]) -> http::HeaderMap {
        let mut pairs = vec![
            ("webhook-id", "01HX"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", SIG),
        ];
        pairs.extend_from_slice(extra);
        headers(&pairs)
    }

    fn check(
        h: &http::HeaderMap,
        body: &[u8],
        secret: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        verify(&post(h, URL, body), &Secret::new(secret), now, secs(300))
    }

    #[test]
    fn matching_token_verifies() {
        let h = headers(&[("x-gitlab-token", TOKEN)]);
        assert_eq!(check(&h, BODY, TOKEN, T), Ok(()));
    }

    // providers.md vector gitlab-token-body-tampered: the token does not cover the body.
    #[test]
    fn token_does_not_cover_the_body() {
        let h = headers(&[("x-gitlab-token", TOKEN)]);
        assert_eq!(check(&h, b"{}", TOKEN, T), Ok(()));
    }

    #[test]
    fn wrong_token_is_invalid() {
        let h = headers(&[("x-gitlab-token", "guess")]);
        assert_eq!(check(&h, BODY, TOKEN, T), Err(SignatureError::Invalid));
    }

    #[test]
    fn signing_token_signature_verifies() {
        assert_eq!(check(&signed_headers(&[]), BODY, SIGNING, T), Ok(()));
    }

    #[test]
    fn signing_token_verifies_next_to_a_token_for_another_secret() {
        let h = signed_headers(&[("x-gitlab-token", TOKEN)]);
        assert_eq!(check(&h, BODY, SIGNING, T), Ok(()));
    }

    #[test]
    fn signed_tampered_body_is_invalid() {
        assert_eq!(
            check(&signed_headers(&[]), b"{}", SIGNING, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn signed_with_wrong_secret_is_invalid() {
        assert_eq!(
            check(&signed_headers(&[]), BODY, "whsec_c2VjcmV0", T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn signed_stale_timestamp_is_rejected() {
        assert_eq!(
            check(&signed_headers(&[]), BODY, SIGNING, T + 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn signed_future_timestamp_is_rejected() {
        assert_eq!(
            check(&signed_headers(&[]), BODY, SIGNING, T - 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn neither_header_is_missing() {
        assert_eq!(
            check(&headers(&[]), BODY, TOKEN, T),
            Err(SignatureError::Missing)
        );
    }
}
