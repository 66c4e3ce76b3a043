//! Delivery ids: what a provider sends to tell one delivery from another, stable across
//! its retries, so that a retried delivery is enqueued once.

use super::{adyen, standard_webhooks, Provider, WebhookRequest};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, URL};

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
        let h = headers(&pairs);
        let body: &[u8] = br#"{"test": 2432232314}"#;
        let verified = crate::webhook::verify(
            Provider::StandardWebhooks,
            &post(&h, URL, body),
            bytes::Bytes::from_static(body),
            &[crate::sensitive::Secret::new(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            )],
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
        // Counted in characters, not bytes.
        let stripe = |value: &str| {
            id(
                Provider::Stripe,
                &[],
                format!(r#"{{"id":"{value}"}}"#).as_bytes(),
            )
        };
        let max = "é".repeat(200);
        assert_eq!(stripe(&max).as_deref(), Some(max.as_str()));
        assert_eq!(stripe(&"é".repeat(201)), None);
        assert_eq!(id(Provider::Stripe, &[], br#"{"id":"a\u0007b"}"#), None);
    }
}
