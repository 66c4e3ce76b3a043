//! Calendly: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>` = HMAC-SHA256 over
//! `{t}.{raw body}` with the webhook signing key.
//!
//! Calendly's sample rejects timestamps older than 3 minutes; we apply the window in both
//! directions. Must not accept a header without `t`.

use super::scheme::TimestampedList;
use super::sig::Window;

pub const SCHEME: TimestampedList =
    TimestampedList::t_v1("calendly-webhook-signature", Window::Both);
