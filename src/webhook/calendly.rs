//! Calendly: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>` = HMAC-SHA256 over
//! `{t}.{raw body}` with the webhook signing key.
//!
//! Calendly's sample rejects timestamps older than 3 minutes; we apply the window in both
//! directions. Must not accept a header without `t`.

use std::time::Duration;

use super::scheme::{SignedTime, TimestampedList};
use super::sig::Window;
use super::{SignatureError, WebhookRequest};
use crate::sensitive::Secret;

const SCHEME: TimestampedList = TimestampedList {
    header: "calendly-webhook-signature",
    separator: ',',
    timestamp_key: "t",
    signature_key: "v1",
    joiner: b".",
    side: Window::Both,
    signed_time: SignedTime::AsSent,
};

pub fn verify(
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    SCHEME.verify(req, secret.expose(), now, window)
}
