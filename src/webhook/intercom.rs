//! Intercom: `X-Hub-Signature: sha1=<hex HMAC-SHA1(client secret, raw body)>`.
//!
//! The legacy GitHub "hub signature" with SHA-1, so this delegates to
//! [`super::github::verify_sha1`]. No timestamp is signed.

use super::{github, SignatureError, WebhookRequest};
use crate::sensitive::Secret;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    github::verify_sha1(req, secret)
}
