//! Webhook signature verification, one pure module per provider.
//!
//! Owns the list of providers roomgate can verify and the decision "is this body what the
//! provider signed". It must not do I/O: secrets arrive as arguments, the clock as `now`.
//!
//! A provider whose scheme is one of the common shapes declares it as data (`SCHEME`, a
//! `scheme` value: header, signed content, MAC, encoding, timestamp rule) and
//! `verify_one` interprets it; the others (Twilio, HubSpot, Adyen, Contentful, …) keep
//! their own `verify`. Every provider's signed request and the cases all providers share
//! are one table in the test-only `vectors` module.

pub mod adyen;
pub mod asana;
pub mod bitbucket;
pub mod calendly;
pub mod contentful;
#[cfg(test)]
mod cost;
mod delivery;
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
mod provider;
pub mod salesforce;
mod scheme;
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
#[cfg(test)]
mod vectors;
pub mod vercel;
pub mod whatsapp;
pub mod zendesk;
pub mod zoom;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::sensitive::Secret;

pub use delivery::delivery_id;
pub use provider::Provider;

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

/// The outcome of checking a request against one secret.
pub type Verdict = Result<(), SignatureError>;

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
    let key = secret.expose();
    match provider {
        Provider::Github => github::verify(req, secret),
        Provider::Stripe => stripe::SCHEME.verify(req, key, now, window),
        Provider::Slack => slack::SCHEME.verify(req, key, now, window),
        Provider::Shopify => shopify::SCHEME.verify(req, key, now, window),
        Provider::Twilio => twilio::verify(req, secret),
        Provider::Zendesk => zendesk::SCHEME.verify(req, key, now, window),
        Provider::Sentry => sentry::SCHEME.verify(req, key, now, window),
        Provider::Salesforce => salesforce::SCHEME.verify(req, key, now, window),
        Provider::Telegram => telegram::SCHEME.verify(req, secret),
        Provider::Whatsapp => whatsapp::SCHEME.verify(req, key, now, window),
        Provider::StandardWebhooks => standard_webhooks::verify(req, secret, now, window),
        Provider::Gitlab => gitlab::verify(req, secret, now, window),
        Provider::Linear => linear::verify(req, secret, now, window),
        Provider::Discord => discord::verify(req, secret, now, window),
        Provider::Intercom => intercom::SCHEME.verify(req, key, now, window),
        Provider::Hubspot => hubspot::verify(req, secret, now, window, options.hubspot_legacy),
        Provider::Square => square::SCHEME.verify(req, key, now, window),
        Provider::Paddle => paddle::SCHEME.verify(req, key, now, window),
        Provider::Mailgun => mailgun::verify(req, secret, now, window),
        Provider::Twitch => twitch::SCHEME.verify(req, key, now, window),
        Provider::Calendly => calendly::SCHEME.verify(req, key, now, window),
        Provider::Typeform => typeform::SCHEME.verify(req, key, now, window),
        Provider::Pagerduty => pagerduty::verify(req, secret),
        Provider::Okta => okta::SCHEME.verify(req, secret),
        Provider::Zoom => zoom::SCHEME.verify(req, key, now, window),
        Provider::Bitbucket => bitbucket::SCHEME.verify(req, key, now, window),
        Provider::Vercel => vercel::SCHEME.verify(req, key, now, window),
        Provider::Sendgrid => sendgrid::verify(req, secret, now, window),
        Provider::Adyen => adyen::verify(req, secret),
        Provider::Asana => asana::SCHEME.verify(req, key, now, window),
        Provider::Dropbox => dropbox::SCHEME.verify(req, key, now, window),
        Provider::Contentful => contentful::verify(req, secret, now, window),
        Provider::Mux => mux::SCHEME.verify(req, key, now, window),
        Provider::Postmark => postmark::verify(req, secret),
        Provider::Notion => notion::SCHEME.verify(req, key, now, window),
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
}
