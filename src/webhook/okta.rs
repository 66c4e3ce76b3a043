//! Okta event hooks: the configured `Authorization` header value must equal the secret,
//! compared in constant time.
//!
//! Nothing is signed: body integrity relies on TLS. Also used by the one-time
//! verification GET in `handshake`. Must not compare with `==` or log the value.

use super::scheme::SharedToken;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: SharedToken = SharedToken {
    header: "authorization",
};

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    SCHEME.verify(req, secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const BODY: &[u8] = br#"{"eventType":"com.okta.event_hook","eventId":"evt-1"}"#;

    fn check(pairs: &[(&str, &str)], secret: &str) -> Result<(), SignatureError> {
        let h = headers(pairs);
        verify(&post(&h, URL, BODY), &Secret::new(secret))
    }

    #[test]
    fn matching_authorization_verifies() {
        assert_eq!(
            check(&[("authorization", "okta-hook-key")], "okta-hook-key"),
            Ok(())
        );
    }

    #[test]
    fn wrong_authorization_is_invalid() {
        assert_eq!(
            check(&[("authorization", "okta-hook-kez")], "okta-hook-key"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_authorization_is_missing() {
        assert_eq!(check(&[], "okta-hook-key"), Err(SignatureError::Missing));
    }

    // The shared token authenticates the sender only; body integrity relies on TLS.
    #[test]
    fn token_does_not_cover_the_body() {
        let h = headers(&[("authorization", "okta-hook-key")]);
        assert_eq!(
            verify(&post(&h, URL, b"anything"), &Secret::new("okta-hook-key")),
            Ok(())
        );
    }
}
