//! Typeform: `Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>`.
//!
//! GitHub-like prefix but a base64 value; this module must not accept hex. No timestamp
//! is signed.

use super::scheme::{Encoding, Hash, HeaderMac};

pub const SCHEME: HeaderMac =
    HeaderMac::body(&["typeform-signature"], Encoding::Base64, Hash::Sha256).prefixed("sha256=");
