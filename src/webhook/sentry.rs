//! Sentry integration platform: `Sentry-Hook-Signature` = hex HMAC-SHA256(client secret,
//! raw body), no prefix.
//!
//! `Sentry-Hook-Timestamp` is sent but not signed, so this module must not treat it as a
//! replay guard; deduplication uses `Request-ID`.

use super::scheme::{Encoding, Hash, HeaderMac};

pub const SCHEME: HeaderMac =
    HeaderMac::body(&["sentry-hook-signature"], Encoding::Hex, Hash::Sha256);
