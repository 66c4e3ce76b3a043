//! Postmark: no signature. The webhook URL carries HTTP Basic credentials, and the room
//! secret is that credential as `user:password`, compared in constant time with the
//! decoded `Authorization: Basic …` value.
//!
//! Nothing covers the body: integrity relies on TLS, and an endpoint may also name the
//! addresses Postmark sends from (`roomgate.validation.source_ips`, checked in `ingest`).
//! The credential never reaches a queue (`authorization` is never stored). This module
//! must not compare with `==` or log the value.

use super::{sig, SignatureError, WebhookRequest};
use crate::sensitive::Secret;

/// The longest `Authorization` header read.
const MAX_HEADER: usize = 1024;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    let value = sig::header(req, "authorization")?;
    if value.len() > MAX_HEADER {
        return Err(SignatureError::Invalid);
    }
    let (scheme, credential) = value.split_once(' ').ok_or(SignatureError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(SignatureError::Invalid);
    }
    let presented = sig::decode_base64(credential.trim())?;
    sig::verdict(secret.ct_eq(&presented))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

    const SECRET: &str = "postmark:s3cr3t-p4ss";
    // base64("postmark:s3cr3t-p4ss")
    const BASIC: &str = "Basic cG9zdG1hcms6czNjcjN0LXA0c3M=";
    const BODY: &[u8] = br#"{"RecordType":"Delivery","MessageID":"m-1"}"#;

    fn check(pairs: &[(&str, &str)], secret: &str) -> Result<(), SignatureError> {
        let h = headers(pairs);
        verify(&post(&h, URL, BODY), &Secret::new(secret))
    }

    #[test]
    fn matching_basic_credentials_verify() {
        assert_eq!(check(&[("authorization", BASIC)], SECRET), Ok(()));
        let lower = BASIC.replace("Basic", "basic");
        assert_eq!(check(&[("authorization", &lower)], SECRET), Ok(()));
    }

    #[test]
    fn wrong_credentials_are_invalid() {
        assert_eq!(
            check(&[("authorization", BASIC)], "postmark:other"),
            Err(SignatureError::Invalid)
        );
        // base64("postmark:s3cr3t-p4sS")
        let near = "Basic cG9zdG1hcms6czNjcjN0LXA0c1M=";
        assert_eq!(
            check(&[("authorization", near)], SECRET),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn other_schemes_and_malformed_values_are_invalid() {
        for value in [
            "Bearer cG9zdG1hcms6czNjcjN0LXA0c3M=",
            "cG9zdG1hcms6czNjcjN0LXA0c3M=",
            "Basic not*base64",
            "postmark:s3cr3t-p4ss",
        ] {
            assert_eq!(
                check(&[("authorization", value)], SECRET),
                Err(SignatureError::Invalid),
                "{value}"
            );
        }
    }
}
