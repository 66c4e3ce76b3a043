//! GitLab: the classic `X-Gitlab-Token` shared token (constant-time equality), or the
//! signing-token form, which is Standard Webhooks and is delegated to
//! [`super::standard_webhooks::verify`].
//!
//! A matching `X-Gitlab-Token` is accepted on its own (it is a bearer credential; body
//! integrity then relies on TLS). Otherwise `webhook-signature` is checked with its
//! timestamp window. This module must not copy the Standard Webhooks construction.

use std::time::Duration;

use super::{sig, standard_webhooks, SignatureError, Verdict, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret, now: i64, window: Duration) -> Verdict {
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
    use crate::webhook::{vectors, Provider};

    #[test]
    fn signing_token_verifies_next_to_a_token_for_another_secret() {
        let signed = vectors::signed(Provider::Gitlab);
        assert_eq!(
            signed.check_header("x-gitlab-token", "gitlab-secret-token"),
            Ok(())
        );
    }
}
