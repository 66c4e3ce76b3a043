//! Telegram Bot API: `X-Telegram-Bot-Api-Secret-Token` must equal the `secret_token` set
//! with `setWebhook`, compared in constant time.
//!
//! Nothing is signed: body integrity relies on TLS. This module must not compare the
//! token with `==` or log it.

use super::scheme::SharedToken;

pub const SCHEME: SharedToken = SharedToken {
    header: "x-telegram-bot-api-secret-token",
};
