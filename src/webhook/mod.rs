//! Webhook signature verification, one pure module per provider.
//!
//! Owns the list of providers roomgate can verify and the decision "is this body what the
//! provider signed". It must not do I/O: secrets arrive as arguments, the clock as `now`.

pub mod adyen;
pub mod asana;
pub mod bitbucket;
pub mod calendly;
pub mod contentful;
#[cfg(test)]
mod cost;
pub mod discord;
pub mod dropbox;
pub mod github;
pub mod gitlab;
pub mod handshake;
pub mod hubspot;
pub mod intercom;
pub mod linear;
pub mod mailgun;
pub mod mux;
pub mod notion;
pub mod okta;
pub mod paddle;
pub mod pagerduty;
pub mod postmark;
pub mod salesforce;
pub mod sendgrid;
pub mod sentry;
pub mod shopify;
mod sig;
pub mod slack;
pub mod square;
pub mod standard_webhooks;
pub mod stripe;
pub mod telegram;
#[cfg(test)]
mod testkit;
pub mod twilio;
pub mod twitch;
pub mod typeform;
pub mod vercel;
pub mod whatsapp;
pub mod zendesk;
pub mod zoom;

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

/// What an endpoint's annotations change in verification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Overrides the provider's default window (`roomgate.validation.tolerance`).
    pub tolerance: Option<Duration>,
    /// Accept HubSpot's timestamp-less v1/v2 signatures
    /// (`roomgate.hubspot.legacy_signatures`).
    pub hubspot_legacy: bool,
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
    let options = VerifyOptions {
        tolerance,
        ..VerifyOptions::default()
    };
    verify_with(provider, req, body, secrets, now, options)
}

/// [`verify`] with every endpoint option.
pub fn verify_with(
    provider: Provider,
    req: &WebhookRequest<'_>,
    body: Bytes,
    secrets: &[Secret],
    now: i64,
    options: VerifyOptions,
) -> Result<Verified, SignatureError> {
    debug_assert_eq!(req.body, &body[..]);
    let window = options
        .tolerance
        .unwrap_or_else(|| provider.default_tolerance());
    let mut outcome = Err(SignatureError::Invalid);
    for secret in secrets {
        outcome = verify_one(provider, req, secret, now, window, options);
        // Defence in depth (the secret store never hands one out): an empty key or token
        // verifies nothing, whatever the scheme would say.
        if outcome.is_ok() && secret.is_blank() {
            outcome = Err(SignatureError::Invalid);
        }
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
    options: VerifyOptions,
) -> Result<(), SignatureError> {
    match provider {
        Provider::Github => github::verify(req, secret),
        Provider::Stripe => stripe::verify(req, secret, now, window),
        Provider::Slack => slack::verify(req, secret, now, window),
        Provider::Shopify => shopify::verify(req, secret),
        Provider::Twilio => twilio::verify(req, secret),
        Provider::Zendesk => zendesk::verify(req, secret, now, window),
        Provider::Sentry => sentry::verify(req, secret),
        Provider::Salesforce => salesforce::verify(req, secret),
        Provider::Telegram => telegram::verify(req, secret),
        Provider::Whatsapp => whatsapp::verify(req, secret),
        Provider::StandardWebhooks => standard_webhooks::verify(req, secret, now, window),
        Provider::Gitlab => gitlab::verify(req, secret, now, window),
        Provider::Linear => linear::verify(req, secret, now, window),
        Provider::Discord => discord::verify(req, secret, now, window),
        Provider::Intercom => intercom::verify(req, secret),
        Provider::Hubspot => hubspot::verify(req, secret, now, window, options.hubspot_legacy),
        Provider::Square => square::verify(req, secret),
        Provider::Paddle => paddle::verify(req, secret, now, window),
        Provider::Mailgun => mailgun::verify(req, secret, now, window),
        Provider::Twitch => twitch::verify(req, secret, now, window),
        Provider::Calendly => calendly::verify(req, secret, now, window),
        Provider::Typeform => typeform::verify(req, secret),
        Provider::Pagerduty => pagerduty::verify(req, secret),
        Provider::Okta => okta::verify(req, secret),
        Provider::Zoom => zoom::verify(req, secret, now, window),
        Provider::Bitbucket => bitbucket::verify(req, secret),
        Provider::Vercel => vercel::verify(req, secret),
        Provider::Sendgrid => sendgrid::verify(req, secret, now, window),
        Provider::Adyen => adyen::verify(req, secret),
        Provider::Asana => asana::verify(req, secret),
        Provider::Dropbox => dropbox::verify(req, secret),
        Provider::Contentful => contentful::verify(req, secret, now, window),
        Provider::Mux => mux::verify(req, secret, now, window),
        Provider::Postmark => postmark::verify(req, secret),
        Provider::Notion => notion::verify(req, secret),
    }
}

/// The longest delivery id we keep; longer values are treated as absent.
const MAX_DELIVERY_ID: usize = 200;

/// The provider's delivery id, stable across its retries: a header or a body field,
/// at most 200 printable characters, `None` when absent.
///
/// Where the provider signs an id, that id is the one taken, from the header set the
/// verifier used: a replayed delivery with a different unsigned id header must still be a
/// duplicate.
pub fn delivery_id(provider: Provider, req: &WebhookRequest<'_>) -> Option<String> {
    let header = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| req.headers.get(*name).and_then(|v| v.to_str().ok()))
            .and_then(bounded_id)
    };
    let body = |paths: &[&[&str]]| body_id(req.body, paths);
    match provider {
        Provider::Github => header(&["x-github-delivery"]),
        Provider::Stripe | Provider::Discord | Provider::Intercom => body(&[&["id"]]),
        Provider::Slack => body(&[&["event_id"]]),
        Provider::Shopify => header(&["x-shopify-webhook-id", "shopify-webhook-id"]),
        Provider::Twilio => header(&["i-twilio-idempotency-token"]),
        Provider::Zendesk => header(&["x-zendesk-webhook-invocation-id"]),
        Provider::Sentry => header(&["request-id"]),
        Provider::Telegram => body(&[&["update_id"]]),
        // The id of the brand whose signature was checked (it is in the MAC).
        Provider::StandardWebhooks => header(&[standard_webhooks::brand(req.headers)[0]]),
        // Signed form: `webhook-id` is in the MAC (GitLab sets it to the Idempotency-Key).
        // A request with `webhook-signature` that passed on its `X-Gitlab-Token` instead
        // carries that token, so whoever replays it can forge anything anyway.
        Provider::Gitlab if req.headers.contains_key("webhook-signature") => {
            header(&[standard_webhooks::brand(req.headers)[0]])
        }
        Provider::Gitlab => header(&["idempotency-key", "webhook-id", "x-gitlab-event-uuid"]),
        Provider::Linear => header(&["linear-delivery"]),
        Provider::Hubspot => single_event_id(req.body, "eventId"),
        Provider::Square | Provider::Typeform => body(&[&["event_id"]]),
        // A retry keeps its notification id; one event sent to several destinations
        // does not, so the notification id is the per-endpoint key.
        Provider::Paddle => body(&[&["notification_id"], &["event_id"]]),
        Provider::Mailgun => body(&[&["signature", "token"]]),
        Provider::Twitch => header(&["twitch-eventsub-message-id"]),
        Provider::Pagerduty => body(&[&["event", "id"]]),
        Provider::Okta => body(&[&["eventId"]]),
        Provider::Bitbucket => header(&["x-request-uuid", "x-request-id"]),
        Provider::Vercel | Provider::Mux | Provider::Notion => body(&[&["id"]]),
        Provider::Sendgrid => single_event_id(req.body, "sg_event_id"),
        Provider::Adyen => adyen::delivery_id(req.body).and_then(|id| bounded_id(&id)),
        Provider::Contentful => header(&["x-contentful-idempotency-key"]),
        // No documented per-delivery id: the queue generates one.
        Provider::Salesforce
        | Provider::Whatsapp
        | Provider::Calendly
        | Provider::Zoom
        | Provider::Asana
        | Provider::Dropbox
        | Provider::Postmark => None,
    }
}

/// A trimmed, non-empty id of at most [`MAX_DELIVERY_ID`] printable characters.
fn bounded_id(value: &str) -> Option<String> {
    let value = value.trim();
    let printable = value.chars().all(|c| !c.is_control());
    (!value.is_empty() && value.chars().count() <= MAX_DELIVERY_ID && printable)
        .then(|| value.to_owned())
}

/// The first of `paths` that names a string or integer in the JSON body.
fn body_id(body: &[u8], paths: &[&[&str]]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    paths.iter().find_map(|path| {
        let value = path.iter().try_fold(&json, |node, key| node.get(key))?;
        json_id(value)
    })
}

fn json_id(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => bounded_id(s),
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => bounded_id(&n.to_string()),
        _ => None,
    }
}

/// HubSpot and SendGrid batch events in a JSON array; only a single-event batch (or a
/// bare event object) has one id, its `key`.
fn single_event_id(body: &[u8], key: &str) -> Option<String> {
    match serde_json::from_slice(body).ok()? {
        serde_json::Value::Array(events) if events.len() == 1 => json_id(events[0].get(key)?),
        serde_json::Value::Object(event) => json_id(event.get(key)?),
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
    use testkit::{headers, post, secs, T, URL};

    const GITHUB_SIG: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";

    fn run(
        provider: Provider,
        pairs: &[(&str, &str)],
        body: &'static [u8],
        secrets: &[&str],
        now: i64,
        tolerance: Option<Duration>,
    ) -> Result<Verified, SignatureError> {
        let h = headers(pairs);
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        verify(
            provider,
            &post(&h, URL, body),
            Bytes::from_static(body),
            &secrets,
            now,
            tolerance,
        )
    }

    #[test]
    fn any_active_secret_may_match_during_rotation() {
        let pairs = [
            ("x-hub-signature-256", GITHUB_SIG),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ];
        let verified = run(
            Provider::Github,
            &pairs,
            b"Hello, World!",
            &["old", GITHUB_SECRET],
            T,
            None,
        )
        .unwrap();
        assert_eq!(verified.provider(), Provider::Github);
        assert_eq!(verified.body().as_ref(), b"Hello, World!");
        assert_eq!(
            verified.delivery_id(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
    }

    #[test]
    fn no_secret_at_all_is_invalid() {
        let pairs = [("x-hub-signature-256", GITHUB_SIG)];
        assert_eq!(
            run(Provider::Github, &pairs, b"Hello, World!", &[], T, None).unwrap_err(),
            SignatureError::Invalid
        );
    }

    // Paddle, testdata/make_vectors.py: h1 = hex HMAC-SHA256("pdl_ntfset_secret",
    // "1700000000:" + PADDLE_BODY).
    const PADDLE_BODY: &[u8] = br#"{"event_id":"evt_01h","notification_id":"ntf_01h"}"#;
    const PADDLE_SIG: &str =
        "ts=1700000000;h1=db76db946b2aedd4aa5e35affca6dd5bb4b71cdd23e9720b6550bb440dc40f26";

    #[test]
    fn default_window_applies_without_an_override() {
        let pairs = [("paddle-signature", PADDLE_SIG)];
        let secrets = ["pdl_ntfset_secret"];
        assert!(run(Provider::Paddle, &pairs, PADDLE_BODY, &secrets, T + 5, None).is_ok());
        assert_eq!(
            run(Provider::Paddle, &pairs, PADDLE_BODY, &secrets, T + 6, None).unwrap_err(),
            SignatureError::Stale
        );
    }

    #[test]
    fn endpoint_tolerance_overrides_the_provider_default() {
        let pairs = [("paddle-signature", PADDLE_SIG)];
        let secrets = ["pdl_ntfset_secret"];
        let wide = Some(secs(120));
        let verified = run(
            Provider::Paddle,
            &pairs,
            PADDLE_BODY,
            &secrets,
            T + 60,
            wide,
        );
        assert_eq!(verified.unwrap().delivery_id(), Some("ntf_01h"));
        assert_eq!(
            run(
                Provider::Paddle,
                &pairs,
                PADDLE_BODY,
                &secrets,
                T + 121,
                wide
            )
            .unwrap_err(),
            SignatureError::Stale
        );
    }

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

    // Security property: a request with no signature is refused by every provider.
    #[test]
    fn every_provider_refuses_an_unsigned_request() {
        for provider in Provider::ALL {
            assert_eq!(
                run(provider, &[], b"{}", &["secret"], T, None).unwrap_err(),
                SignatureError::Missing,
                "{provider}"
            );
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

    fn id(provider: Provider, pairs: &[(&str, &str)], body: &[u8]) -> Option<String> {
        let h = headers(pairs);
        delivery_id(provider, &post(&h, URL, body))
    }

    #[test]
    fn delivery_ids_come_from_the_provider_header() {
        let cases = [
            (Provider::Github, "x-github-delivery"),
            (Provider::Shopify, "x-shopify-webhook-id"),
            (Provider::Twilio, "i-twilio-idempotency-token"),
            (Provider::Zendesk, "x-zendesk-webhook-invocation-id"),
            (Provider::Sentry, "request-id"),
            (Provider::StandardWebhooks, "webhook-id"),
            (Provider::Gitlab, "idempotency-key"),
            (Provider::Gitlab, "x-gitlab-event-uuid"),
            (Provider::Linear, "linear-delivery"),
            (Provider::Twitch, "twitch-eventsub-message-id"),
            (Provider::Bitbucket, "x-request-uuid"),
            (Provider::Bitbucket, "x-request-id"),
            (Provider::Contentful, "x-contentful-idempotency-key"),
        ];
        for (provider, name) in cases {
            assert_eq!(
                id(provider, &[(name, " d-1 ")], b"{}").as_deref(),
                Some("d-1"),
                "{provider} {name}"
            );
        }
    }

    #[test]
    fn delivery_ids_come_from_the_body_when_the_provider_puts_them_there() {
        let cases: [(Provider, &[u8], &str); 16] = [
            (
                Provider::Stripe,
                br#"{"id":"evt_1","object":"event"}"#,
                "evt_1",
            ),
            (Provider::Slack, br#"{"event_id":"Ev1"}"#, "Ev1"),
            (Provider::Telegram, br#"{"update_id":10000}"#, "10000"),
            (Provider::Discord, br#"{"id":"123","type":2}"#, "123"),
            (Provider::Intercom, br#"{"id":"notif_1"}"#, "notif_1"),
            (Provider::Square, br#"{"event_id":"sq-1"}"#, "sq-1"),
            (Provider::Typeform, br#"{"event_id":"tf-1"}"#, "tf-1"),
            (Provider::Paddle, br#"{"event_id":"evt_2"}"#, "evt_2"),
            (
                Provider::Mailgun,
                br#"{"signature":{"token":"tok"}}"#,
                "tok",
            ),
            (Provider::Pagerduty, br#"{"event":{"id":"pd-1"}}"#, "pd-1"),
            (Provider::Okta, br#"{"eventId":"ok-1"}"#, "ok-1"),
            (Provider::Vercel, br#"{"id":"evt_v1"}"#, "evt_v1"),
            (Provider::Mux, br#"{"id":"mux-1"}"#, "mux-1"),
            (Provider::Notion, br#"{"id":"n-1"}"#, "n-1"),
            (
                Provider::Sendgrid,
                br#"[{"sg_event_id":"sg-1","event":"delivered"}]"#,
                "sg-1",
            ),
            (
                Provider::Adyen,
                br#"{"notificationItems":[{"NotificationRequestItem":{"pspReference":"P1","eventCode":"CAPTURE"}}]}"#,
                "P1:CAPTURE",
            ),
        ];
        for (provider, body, expected) in cases {
            assert_eq!(
                id(provider, &[], body).as_deref(),
                Some(expected),
                "{provider}"
            );
        }
    }

    // Security property: the dedup id of a signed delivery is the id inside its MAC, so a
    // captured delivery replayed with another unsigned id header is still a duplicate.
    #[test]
    fn a_standard_webhooks_delivery_id_is_the_id_of_the_brand_that_was_verified() {
        // The reference-library vector, sent with Svix's header names.
        let pairs = [
            ("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("svix-timestamp", "1614265330"),
            (
                "svix-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
            ("webhook-id", "replayed-1"),
        ];
        let verified = run(
            Provider::StandardWebhooks,
            &pairs,
            br#"{"test": 2432232314}"#,
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            1_614_265_330,
            None,
        )
        .unwrap();
        assert_eq!(verified.delivery_id(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
        let unbranded = [
            ("webhook-id", "w-1"),
            ("webhook-signature", "v1,x"),
            ("svix-id", "s-1"),
        ];
        assert_eq!(
            id(Provider::StandardWebhooks, &unbranded, b"{}").as_deref(),
            Some("w-1")
        );
    }

    #[test]
    fn a_signed_gitlab_delivery_id_is_the_signed_webhook_id() {
        let signed = [
            ("webhook-id", "01HX"),
            ("webhook-signature", "v1,x"),
            ("idempotency-key", "replayed-1"),
        ];
        assert_eq!(
            id(Provider::Gitlab, &signed, b"{}").as_deref(),
            Some("01HX")
        );
        let token = [
            ("x-gitlab-token", "t"),
            ("idempotency-key", "k-1"),
            ("webhook-id", "w"),
        ];
        assert_eq!(id(Provider::Gitlab, &token, b"{}").as_deref(), Some("k-1"));
    }

    // Defence in depth: even if an empty secret reached the verifier, it admits nothing.
    #[test]
    fn an_empty_secret_verifies_nothing() {
        let pairs = [("x-telegram-bot-api-secret-token", "")];
        assert_eq!(
            run(Provider::Telegram, &pairs, b"{}", &[""], T, None).unwrap_err(),
            SignatureError::Invalid
        );
        // HMAC with an empty key: anyone can compute it.
        // hex HMAC-SHA256(b"", b"{}")
        let sig = "sha256=22f8eea909400af98adf3681a9f31923ef6b7fcba4abb553d92823a3e9d5c25e";
        let pairs = [("x-hub-signature-256", sig)];
        assert_eq!(
            run(Provider::Github, &pairs, b"{}", &[""], T, None).unwrap_err(),
            SignatureError::Invalid
        );
    }

    #[test]
    fn hubspot_delivery_id_exists_only_for_a_single_event() {
        let one = br#"[{"eventId":100}]"#;
        let two = br#"[{"eventId":100},{"eventId":101}]"#;
        assert_eq!(id(Provider::Hubspot, &[], one).as_deref(), Some("100"));
        assert_eq!(id(Provider::Hubspot, &[], two), None);
    }

    #[test]
    fn delivery_id_is_none_when_absent_or_unusable() {
        assert_eq!(id(Provider::Github, &[], b"{}"), None);
        assert_eq!(id(Provider::Stripe, &[], b"not json"), None);
        assert_eq!(id(Provider::Stripe, &[], br#"{"id":{"nested":1}}"#), None);
        assert_eq!(id(Provider::Stripe, &[], br#"{"id":"a\nb"}"#), None);
        assert_eq!(id(Provider::Zoom, &[("x-zm-trackingid", "z")], b"{}"), None);
        let long = "x".repeat(201);
        assert_eq!(
            id(Provider::Github, &[("x-github-delivery", &long)], b""),
            None
        );
        let max = "x".repeat(200);
        assert_eq!(
            id(Provider::Github, &[("x-github-delivery", &max)], b"").as_deref(),
            Some(max.as_str())
        );
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
