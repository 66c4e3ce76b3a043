//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
//!
//! No timestamp is signed; replays are caught by delivery-id deduplication downstream.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    let header = req
        .headers
        .get("x-hub-signature-256")
        .ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("sha256="))
        .ok_or(SignatureError::Invalid)?;
    let sig = hex::decode(hex_sig).map_err(|_| SignatureError::Invalid)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose()).map_err(|_| SignatureError::Invalid)?;
    mac.update(req.body);
    mac.verify_slice(&sig).map_err(|_| SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};

    fn req<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> WebhookRequest<'a> {
        WebhookRequest {
            method: &Method::POST,
            headers,
            url: "https://example.test/hook",
            body,
        }
    }

    fn headers(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature-256", sig.parse().unwrap());
        h
    }

    const DOC_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    const DOC_SECRET: &str = "It's a Secret to Everybody";

    #[test]
    fn github_doc_vector_verifies() {
        let h = headers(DOC_SIG);
        assert_eq!(
            verify(&req(&h, b"Hello, World!"), &Secret::new(DOC_SECRET)),
            Ok(())
        );
    }

    #[test]
    fn tampered_body_is_invalid() {
        let h = headers(DOC_SIG);
        assert_eq!(
            verify(&req(&h, b"Hello, World?"), &Secret::new(DOC_SECRET)),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn wrong_secret_is_invalid() {
        let h = headers(DOC_SIG);
        assert_eq!(
            verify(&req(&h, b"Hello, World!"), &Secret::new("not it")),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn absent_header_is_missing() {
        let h = HeaderMap::new();
        assert_eq!(
            verify(&req(&h, b"Hello, World!"), &Secret::new(DOC_SECRET)),
            Err(SignatureError::Missing)
        );
    }
}
