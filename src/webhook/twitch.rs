//! Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>` = HMAC-SHA256 over
//! `{Message-Id}{Message-Timestamp}{raw body}`, the timestamp being RFC 3339 text.
//!
//! Twitch asks receivers to reject messages older than 10 minutes; we also reject
//! timestamps more than `sig::MAX_FUTURE_SKEW` (5 minutes) in the future. The MAC covers the timestamp header's
//! exact text, which this module must not re-format.

use super::scheme::{Encoding, Hash, HeaderMac, Part, TimeFormat};
use super::sig::Window;

const MESSAGE_ID: Part = Part::Header("twitch-eventsub-message-id");

pub const SCHEME: HeaderMac = HeaderMac::body(
    &["twitch-eventsub-message-signature"],
    Encoding::Hex,
    Hash::Sha256,
)
.prefixed("sha256=")
.over(&[MESSAGE_ID, Part::Timestamp, Part::Body])
.stamped(
    "twitch-eventsub-message-timestamp",
    TimeFormat::Rfc3339,
    Window::Both,
);
