//! Zoom: `x-zm-signature: v0=<hex>` = HMAC-SHA256(secret token,
//! `v0:{x-zm-request-timestamp}:{raw body}`).
//!
//! Unlike Zoom's Rivet SDK (which hashes re-serialised JSON, checks no timestamp and uses
//! `===`), this verifies the raw bytes, compares in constant time and bounds the
//! timestamp (±5 minutes by default). `endpoint.url_validation` events are signed the same
//! way; their reply is built in `handshake` after verification.

use std::time::Duration;

use super::scheme::{Encoding, Hash, HeaderMac, Part, Stamp, TimeFormat};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const TIMESTAMP: &str = "x-zm-request-timestamp";

const SCHEME: HeaderMac = HeaderMac {
    header: &["x-zm-signature"],
    prefix: "v0=",
    encoding: Encoding::Hex,
    hash: Hash::Sha256,
    signed: &[
        Part::Text(b"v0:"),
        Part::Header(TIMESTAMP),
        Part::Text(b":"),
        Part::Body,
    ],
    stamp: Some(Stamp {
        header: TIMESTAMP,
        format: TimeFormat::Unix,
        side: Window::Both,
    }),
};

pub fn verify(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    SCHEME.verify(req, secret.expose(), now, window)
}
