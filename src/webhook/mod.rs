//! Webhook signature verification, one pure module per provider.
//!
//! Owns the list of providers roomgate can verify and the decision "is this body what the
//! provider signed". It must not do I/O: secrets arrive as arguments, the clock as `now`.

pub mod github;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::sensitive::Secret;

/// What a verifier may look at: the request as the provider sent it.
#[derive(Clone, Copy, Debug)]
pub struct WebhookRequest<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The public URL the provider called: `scheme://host[:port]` + canonical path +
    /// `?query` when present (Twilio, Square and HubSpot sign it).
    pub url: &'a str,
    /// The raw body bytes, exactly as received.
    pub body: &'a [u8],
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header (or field) at all.
    #[error("the request carries no signature")]
    Missing,
    /// A signature is present but does not match (or cannot be parsed).
    #[error("the signature does not match")]
    Invalid,
    /// The signed timestamp is outside the provider's window.
    #[error("the signed timestamp is outside the accepted window")]
    Stale,
}

/// A body whose signature checked out. Only [`verify`] makes one, and only a `Verified`
/// body can be enqueued or forwarded from a webhook endpoint.
#[derive(Debug, Clone)]
pub struct Verified {
    provider: Provider,
    body: Bytes,
    delivery_id: Option<String>,
}

impl Verified {
    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The provider's delivery id (stable across retries), when it sends one.
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_deref()
    }

    pub fn into_body(self) -> Bytes {
        self.body
    }
}

/// Verify a webhook with every active secret value (rotation: any may match).
///
/// `now` is unix seconds; `tolerance` overrides the provider's default window.
pub fn verify(
    provider: Provider,
    req: &WebhookRequest<'_>,
    body: Bytes,
    secrets: &[Secret],
    now: i64,
    tolerance: Option<Duration>,
) -> Result<Verified, SignatureError> {
    debug_assert_eq!(req.body, &body[..]);
    let window = tolerance.unwrap_or_else(|| provider.default_tolerance());
    let mut outcome = Err(SignatureError::Invalid);
    for secret in secrets {
        outcome = verify_one(provider, req, secret, now, window);
        match outcome {
            Ok(()) => break,
            // Missing and stale do not depend on the secret: no other value can help.
            Err(SignatureError::Missing | SignatureError::Stale) => break,
            Err(SignatureError::Invalid) => {}
        }
    }
    outcome?;
    Ok(Verified {
        provider,
        delivery_id: delivery_id(provider, req),
        body,
    })
}

fn verify_one(
    provider: Provider,
    req: &WebhookRequest<'_>,
    secret: &Secret,
    now: i64,
    window: Duration,
) -> Result<(), SignatureError> {
    let _ = (now, window);
    match provider {
        Provider::Github => github::verify(req, secret),
        _ => Err(SignatureError::Invalid),
    }
}

/// The provider's delivery id, stable across its retries.
pub fn delivery_id(provider: Provider, req: &WebhookRequest<'_>) -> Option<String> {
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 200)
            .map(str::to_owned)
    };
    match provider {
        Provider::Github => header("x-github-delivery"),
        _ => None,
    }
}

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
    /// The timestamp window the provider's own SDK enforces.
    pub fn default_tolerance(self) -> Duration {
        Duration::from_secs(300)
    }

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
