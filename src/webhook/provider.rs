//! The providers roomgate verifies: their names (the values of
//! `meshagent.request.validation.method`), the methods they send, and their default
//! timestamp windows.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::Method;

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
    Bitbucket,
    Vercel,
    Sendgrid,
    Adyen,
    Asana,
    Dropbox,
    Contentful,
    Mux,
    Postmark,
    Notion,
}

impl Provider {
    /// Whether the provider ever sends `method`: POST for every delivery, and GET for the
    /// providers whose subscription or verification handshake is a GET (WhatsApp/Meta,
    /// Okta). The signature does not cover the method, so any other method is refused
    /// (405) before verification, in queue and forward mode alike: a signed POST replayed
    /// as `DELETE` never reaches the service.
    pub fn accepts(self, method: &Method) -> bool {
        *method == Method::POST || (*method == Method::GET && self.handshakes_by_get())
    }

    /// True for providers that verify an endpoint with a GET (see `handshake`).
    pub fn handshakes_by_get(self) -> bool {
        matches!(
            self,
            Provider::Whatsapp | Provider::Okta | Provider::Dropbox
        )
    }

    /// The timestamp window the provider's own SDK enforces (or, where the provider
    /// sets none, the one we chose). Providers that sign no timestamp never use it.
    pub fn default_tolerance(self) -> Duration {
        let seconds = match self {
            // stripe-python/-node, past only.
            Provider::Stripe => 300,
            // slack_sdk, both directions.
            Provider::Slack => 300,
            // Standard Webhooks reference libraries; GitLab signing tokens use them.
            Provider::StandardWebhooks | Provider::Gitlab => 300,
            // @linear/sdk, on `webhookTimestamp` (ms) in the body.
            Provider::Linear => 60,
            // paddle-python-sdk / paddle-node-sdk.
            Provider::Paddle => 5,
            // Twitch docs: "older than 10 minutes".
            Provider::Twitch => 600,
            // Calendly's sample code.
            Provider::Calendly => 180,
            // hubspot-api-python/-nodejs, past only, in milliseconds.
            Provider::Hubspot => 300,
            // @contentful/node-apps-toolkit `verifyRequest`, past only, in milliseconds.
            Provider::Contentful => 30,
            // @mux/mux-node, past only.
            Provider::Mux => 300,
            // No window prescribed by the provider: five minutes.
            Provider::Zendesk
            | Provider::Zoom
            | Provider::Mailgun
            | Provider::Discord
            | Provider::Sendgrid => 300,
            // No signed timestamp: the window is never consulted.
            Provider::Github
            | Provider::Shopify
            | Provider::Twilio
            | Provider::Sentry
            | Provider::Salesforce
            | Provider::Telegram
            | Provider::Whatsapp
            | Provider::Intercom
            | Provider::Square
            | Provider::Typeform
            | Provider::Pagerduty
            | Provider::Okta
            | Provider::Bitbucket
            | Provider::Vercel
            | Provider::Adyen
            | Provider::Asana
            | Provider::Dropbox
            | Provider::Postmark
            | Provider::Notion => 300,
        };
        Duration::from_secs(seconds)
    }

    pub const ALL: [Provider; 35] = [
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
        Provider::Bitbucket,
        Provider::Vercel,
        Provider::Sendgrid,
        Provider::Adyen,
        Provider::Asana,
        Provider::Dropbox,
        Provider::Contentful,
        Provider::Mux,
        Provider::Postmark,
        Provider::Notion,
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
            Provider::Bitbucket => "bitbucket",
            Provider::Vercel => "vercel",
            Provider::Sendgrid => "sendgrid",
            Provider::Adyen => "adyen",
            Provider::Asana => "asana",
            Provider::Dropbox => "dropbox",
            Provider::Contentful => "contentful",
            Provider::Mux => "mux",
            Provider::Postmark => "postmark",
            Provider::Notion => "notion",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::secs;

    #[test]
    fn default_windows_follow_the_provider_sdks() {
        let expect = [
            (Provider::Stripe, 300),
            (Provider::Slack, 300),
            (Provider::StandardWebhooks, 300),
            (Provider::Gitlab, 300),
            (Provider::Linear, 60),
            (Provider::Paddle, 5),
            (Provider::Twitch, 600),
            (Provider::Calendly, 180),
            (Provider::Hubspot, 300),
            (Provider::Zendesk, 300),
            (Provider::Zoom, 300),
            (Provider::Mailgun, 300),
            (Provider::Discord, 300),
            (Provider::Contentful, 30),
            (Provider::Mux, 300),
            (Provider::Sendgrid, 300),
        ];
        for (provider, seconds) in expect {
            assert_eq!(provider.default_tolerance(), secs(seconds), "{provider}");
        }
    }

    #[test]
    fn every_provider_name_round_trips() {
        for provider in Provider::ALL {
            assert_eq!(provider.as_str().parse::<Provider>(), Ok(provider));
        }
        assert_eq!("Svix".parse::<Provider>(), Ok(Provider::StandardWebhooks));
        assert!("github2".parse::<Provider>().is_err());
    }

    // Security property (issue 17, finding 5): a webhook endpoint answers only the methods
    // its provider uses; a signed POST replayed with another method is refused.
    #[test]
    fn providers_accept_post_and_only_handshake_providers_accept_get() {
        for provider in Provider::ALL {
            assert!(provider.accepts(&Method::POST), "{provider}");
            for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::HEAD] {
                assert!(!provider.accepts(&method), "{provider} {method}");
            }
            let get = matches!(
                provider,
                Provider::Whatsapp | Provider::Okta | Provider::Dropbox
            );
            assert_eq!(provider.accepts(&Method::GET), get, "{provider}");
        }
    }
}
