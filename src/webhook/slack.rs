//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:{ts}:{raw body}")>` with
//! `X-Slack-Request-Timestamp`.
//!
//! Follows slack_sdk: `|now - ts|` beyond the window is `Stale`, in both directions (Bolt
//! only rejects the past; we take the stricter rule). Must not parse the body: slash
//! commands arrive form-encoded and are signed as sent.

use super::scheme::HeaderMac;

pub const SCHEME: HeaderMac = HeaderMac::v0(&["x-slack-signature"], "x-slack-request-timestamp");
