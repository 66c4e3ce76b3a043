//! Zoom: `x-zm-signature: v0=<hex>` = HMAC-SHA256(secret token,
//! `v0:{x-zm-request-timestamp}:{raw body}`).
//!
//! Unlike Zoom's Rivet SDK (which hashes re-serialised JSON, checks no timestamp and uses
//! `===`), this verifies the raw bytes, compares in constant time and bounds the
//! timestamp (±5 minutes by default). `endpoint.url_validation` events are signed the same
//! way; their reply is built in `handshake` after verification.

use super::scheme::HeaderMac;

pub const SCHEME: HeaderMac = HeaderMac::v0(&["x-zm-signature"], "x-zm-request-timestamp");
