//! Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>` = HMAC-SHA256 over
//! `{Message-Id}{Message-Timestamp}{raw body}`, the timestamp being RFC 3339 text.
//!
//! Twitch asks receivers to reject messages older than 10 minutes; we also reject
//! timestamps more than `sig::MAX_FUTURE_SKEW` (5 minutes) in the future. The MAC covers the timestamp header's
//! exact text, which this module must not re-format.

use std::time::Duration;

use super::scheme::{Encoding, Hash, HeaderMac, Part, Stamp, TimeFormat};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const TIMESTAMP: &str = "twitch-eventsub-message-timestamp";

const SCHEME: HeaderMac = HeaderMac {
    header: &["twitch-eventsub-message-signature"],
    prefix: "sha256=",
    encoding: Encoding::Hex,
    hash: Hash::Sha256,
    signed: &[
        Part::Header("twitch-eventsub-message-id"),
        Part::Header(TIMESTAMP),
        Part::Body,
    ],
    stamp: Some(Stamp {
        header: TIMESTAMP,
        format: TimeFormat::Rfc3339,
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
