//! Webhook signature verification, one pure module per provider.
//!
//! Owns the list of providers roomgate can verify and the decision "is this body what the
//! provider signed". It must not do I/O: secrets arrive as arguments, the clock as `now`.

use std::fmt;
use std::str::FromStr;

/// A webhook provider whose signatures roomgate verifies (the value of
/// `meshagent.request.validation.method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    Github,
    Stripe,
    Slack,
    Shopify,
    Twilio,
    Zendesk,
    Sentry,
    Salesforce,
    Telegram,
    Whatsapp,
    StandardWebhooks,
    Gitlab,
    Linear,
    Discord,
    Intercom,
    Hubspot,
    Square,
    Paddle,
    Mailgun,
    Twitch,
    Calendly,
    Typeform,
    Pagerduty,
    Okta,
    Zoom,
}

impl Provider {
    pub const ALL: [Provider; 25] = [
        Provider::Github,
        Provider::Stripe,
        Provider::Slack,
        Provider::Shopify,
        Provider::Twilio,
        Provider::Zendesk,
        Provider::Sentry,
        Provider::Salesforce,
        Provider::Telegram,
        Provider::Whatsapp,
        Provider::StandardWebhooks,
        Provider::Gitlab,
        Provider::Linear,
        Provider::Discord,
        Provider::Intercom,
        Provider::Hubspot,
        Provider::Square,
        Provider::Paddle,
        Provider::Mailgun,
        Provider::Twitch,
        Provider::Calendly,
        Provider::Typeform,
        Provider::Pagerduty,
        Provider::Okta,
        Provider::Zoom,
    ];

    /// The name used in config annotations and in queue messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Stripe => "stripe",
            Provider::Slack => "slack",
            Provider::Shopify => "shopify",
            Provider::Twilio => "twilio",
            Provider::Zendesk => "zendesk",
            Provider::Sentry => "sentry",
            Provider::Salesforce => "salesforce",
            Provider::Telegram => "telegram",
            Provider::Whatsapp => "whatsapp",
            Provider::StandardWebhooks => "standard-webhooks",
            Provider::Gitlab => "gitlab",
            Provider::Linear => "linear",
            Provider::Discord => "discord",
            Provider::Intercom => "intercom",
            Provider::Hubspot => "hubspot",
            Provider::Square => "square",
            Provider::Paddle => "paddle",
            Provider::Mailgun => "mailgun",
            Provider::Twitch => "twitch",
            Provider::Calendly => "calendly",
            Provider::Typeform => "typeform",
            Provider::Pagerduty => "pagerduty",
            Provider::Okta => "okta",
            Provider::Zoom => "zoom",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let s = s.to_ascii_lowercase();
        // Brands that sign with Standard Webhooks.
        let s = match s.as_str() {
            "svix" | "clerk" | "resend" | "openai" | "standard_webhooks" | "standardwebhooks" => {
                "standard-webhooks"
            }
            other => other,
        };
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(())
    }
}
