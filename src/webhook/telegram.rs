//! Telegram Bot API: `X-Telegram-Bot-Api-Secret-Token` must equal the `secret_token` set
//! with `setWebhook`, compared in constant time.
//!
//! Nothing is signed: body integrity relies on TLS. This module must not compare the
//! token with `==` or log it.

use super::scheme::SharedToken;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: SharedToken = SharedToken {
    header: "x-telegram-bot-api-secret-token",
};

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SCHEME.verify(req, secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const BODY: &[u8] = br#"{"update_id":10000}"#;

    fn check(pairs: &[(&str, &str)], secret: &str) -> Result<(), SignatureError> {
        let h = headers(pairs);
        verify(&post(&h, URL, BODY), &Secret::new(secret))
    }

    #[test]
    fn matching_secret_token_verifies() {
        let h = [("x-telegram-bot-api-secret-token", "tg_Secret-1")];
        assert_eq!(check(&h, "tg_Secret-1"), Ok(()));
    }

    #[test]
    fn wrong_secret_token_is_invalid() {
        let h = [("x-telegram-bot-api-secret-token", "tg_Secret-2")];
        assert_eq!(check(&h, "tg_Secret-1"), Err(SignatureError::Invalid));
    }

    #[test]
    fn prefix_of_the_secret_is_invalid() {
        let h = [("x-telegram-bot-api-secret-token", "tg_Secret")];
        assert_eq!(check(&h, "tg_Secret-1"), Err(SignatureError::Invalid));
    }

    #[test]
    fn absent_header_is_missing() {
        assert_eq!(check(&[], "tg_Secret-1"), Err(SignatureError::Missing));
    }

    // The shared token authenticates the sender only; body integrity relies on TLS.
    #[test]
    fn token_does_not_cover_the_body() {
        let h = headers(&[("x-telegram-bot-api-secret-token", "tg_Secret-1")]);
        assert_eq!(
            verify(&post(&h, URL, b"anything"), &Secret::new("tg_Secret-1")),
            Ok(())
        );
    }
}
