//! Test-only: one signed request per provider, as data, and the cases every provider
//! shares, run over the whole table. A provider's own module tests only what is its own
//! (header names, prefixes, key forms, lists).
//!
//! Signatures come from the provider's documentation or SDK tests where one exists, else
//! from `testdata/make_vectors.py` (the comment says which and over what).

use super::testkit::{assert_signed, assert_token, assert_window, Signed, T};
use super::{Provider, SignatureError};

/// A signed request per provider (some have two), each accepted as it stands.
pub const SIGNED: &[Signed<'static>] = &[
    // GitHub's documentation example (validating-webhook-deliveries).
    Signed::new(
        Provider::Github,
        &[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )],
        b"Hello, World!",
        "It's a Secret to Everybody",
    ),
    // hex HMAC-SHA256("whsec_test_secret", "1700000000." + body).
    Signed::new(
        Provider::Stripe,
        &[(
            "stripe-signature",
            "t=1700000000,v1=dd87ab365008cd15388d35ae8467b42bbc97bb9efe68060ed81e123be0e21c6e",
        )],
        br#"{"id":"evt_123","object":"event"}"#,
        "whsec_test_secret",
    ),
    // hex HMAC-SHA256("slack_signing_secret", "v0:1700000000:" + body).
    Signed::new(
        Provider::Slack,
        &[
            (
                "x-slack-signature",
                "v0=1a75d698892517f60043a90922b88013f141b8a50b6d6c7792456c3cf2290f4f",
            ),
            ("x-slack-request-timestamp", "1700000000"),
        ],
        br#"{"type":"event_callback","event_id":"Ev123"}"#,
        "slack_signing_secret",
    ),
    // Slack's documentation example (a slash command).
    Signed::new(
        Provider::Slack,
        &[
            (
                "x-slack-signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
            ("x-slack-request-timestamp", "1531420618"),
        ],
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        "8f742231b10e8888abcd99yyyzzz85a5",
    )
    .at(1_531_420_618),
    // base64 HMAC-SHA256("shpss_secret", body).
    Signed::new(
        Provider::Shopify,
        &[(
            "x-shopify-hmac-sha256",
            "jqbalbO3Z8mDmrF2/+wzM3KYvbgqzVBF969vgiIy80I=",
        )],
        br#"{"id":820982911946154508}"#,
        "shpss_secret",
    ),
    // twilio-python tests/unit/test_request_validator.py.
    Signed::new(
        Provider::Twilio,
        &[
            ("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309",
        "12345",
    )
    .with_url("https://mycompany.com/myapp.php?foo=1&bar=2"),
    // base64 HMAC-SHA256(secret, "2023-11-14T22:13:20Z" + body).
    Signed::new(
        Provider::Zendesk,
        &[
            (
                "x-zendesk-webhook-signature",
                "dz46c54scGck+f7/k/mokj3YtzgFD9i6yNZ90rozuxc=",
            ),
            ("x-zendesk-webhook-signature-timestamp", "2023-11-14T22:13:20Z"),
        ],
        br#"{"event":"ticket.updated","id":123}"#,
        "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==",
    ),
    // Asserted by an unrelated third-party test suite with Zendesk's static test-delivery
    // secret; recomputed by make_vectors.py.
    Signed::new(
        Provider::Zendesk,
        &[
            (
                "x-zendesk-webhook-signature",
                "S/RDdU2ERmj7LHDDoWJ2onPYH+t7/f2+LTM4dL7UiLM=",
            ),
            ("x-zendesk-webhook-signature-timestamp", "2021-03-25T05:09:27Z"),
        ],
        br#"{"event":"ticket.updated","id":123}"#,
        "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==",
    )
    .at(1_616_648_967),
    // hex HMAC-SHA256("a" * 64, body).
    Signed::new(
        Provider::Sentry,
        &[(
            "sentry-hook-signature",
            "a2dd8293e28c840baa55219328709621b7a0b725d08ec001b22ee97ea038e249",
        )],
        br#"{"action":"created","data":{}}"#,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ),
    // base64 HMAC-SHA256("sfmc_signature_key", body).
    Signed::new(
        Provider::Salesforce,
        &[(
            "x-sfmc-ens-signature",
            "SkscJHhLP5rR+9ip6Tj7IDYu/UaY37vGzabDOI0IceY=",
        )],
        br#"[{"eventCategoryType":"TransactionalSendEvents.EmailSent","compositeId":"abc"}]"#,
        "sfmc_signature_key",
    ),
    // hex HMAC-SHA256("meta_app_secret", body).
    Signed::new(
        Provider::Whatsapp,
        &[(
            "x-hub-signature-256",
            "sha256=e6ad1226d7dbb376b93779e72f6ea6cc56d514dbcb4b3fa023b679f8f0220325",
        )],
        br#"{"object":"whatsapp_business_account","entry":[]}"#,
        "meta_app_secret",
    ),
    // base64 HMAC-SHA256(b64decode("MfKQ…Sw"), "msg_2Lz.1700000000." + body).
    Signed::new(
        Provider::StandardWebhooks,
        &[
            (
                "webhook-signature",
                "v1,2Vu/FN/RuCqUk/Z6CFYcSWv4SLRLTcXBsNdOnB0/ZhM=",
            ),
            ("webhook-id", "msg_2Lz"),
            ("webhook-timestamp", "1700000000"),
        ],
        br#"{"type":"user.created"}"#,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    // base64 HMAC-SHA256(b64decode("Z2l0…ISE="), "01HX.1700000000." + body).
    Signed::new(
        Provider::Gitlab,
        &[
            (
                "webhook-signature",
                "v1,ZqQkSryKxaAv+F9CfPZ19BfFkX5IFYcSAZo+Q4iHk+Y=",
            ),
            ("webhook-id", "01HX"),
            ("webhook-timestamp", "1700000000"),
        ],
        br#"{"object_kind":"push"}"#,
        "whsec_Z2l0bGFiLXNpZ25pbmctdG9rZW4tMzItYnl0ZXMhISE=",
    ),
    // hex HMAC-SHA256("lin_wh_secret", body); the body carries webhookTimestamp (ms).
    Signed::new(
        Provider::Linear,
        &[(
            "linear-signature",
            "91e919dc0fd99df1cae12efef1ca08b082cfa523f101b572ec14ed98863fdf35",
        )],
        br#"{"action":"create","type":"Issue","webhookTimestamp":1700000000000}"#,
        "lin_wh_secret",
    ),
    // python `cryptography`: Ed25519 key from seed 32×0x07 over "1700000000" + body; the
    // secret is the hex public key.
    Signed::new(
        Provider::Discord,
        &[
            ("x-signature-ed25519", "ac3bb6d125bb36fb0feaa50c862e37eb6d6eb97f633df025cae15a399c0615ab99beb65e498af4af0ddabdd249b0d0266c0e949f0a0ba4fec6a15c980494c902"),
            ("x-signature-timestamp", "1700000000"),
        ],
        br#"{"id":"1234567890","type":2}"#,
        "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c",
    ),
    // hex HMAC-SHA1("intercom_client_secret", body).
    Signed::new(
        Provider::Intercom,
        &[("x-hub-signature", "sha1=3faebb0034e47694de045ab8bc314399711ff673")],
        br#"{"type":"notification_event","id":"notif_1"}"#,
        "intercom_client_secret",
    ),
    // base64 HMAC-SHA256(secret, "POST" + URL + body + "1700000000000").
    Signed::new(
        Provider::Hubspot,
        &[
            (
                "x-hubspot-signature-v3",
                "xkXlUyH0CSD5xKGcYg6hcoEW1jQCdHCybUCPu1XTF20=",
            ),
            ("x-hubspot-request-timestamp", "1700000000000"),
        ],
        br#"[{"eventId":100,"subscriptionType":"contact.creation"}]"#,
        "hubspot_client_secret",
    )
    .with_url("https://hooks.example.test/hubspot"),
    // Square's SDK test vector (the same in every Square SDK).
    Signed::new(
        Provider::Square,
        &[(
            "x-square-hmacsha256-signature",
            "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
        )],
        br#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#,
        "Ibxx_5AKakO-3qeNVR61Dw",
    )
    .with_url("https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"),
    // hex HMAC-SHA256("pdl_ntfset_secret", "1700000000:" + body).
    Signed::new(
        Provider::Paddle,
        &[(
            "paddle-signature",
            "ts=1700000000;h1=db76db946b2aedd4aa5e35affca6dd5bb4b71cdd23e9720b6550bb440dc40f26",
        )],
        br#"{"event_id":"evt_01h","notification_id":"ntf_01h"}"#,
        "pdl_ntfset_secret",
    ),
    // hex HMAC-SHA256("twitch_secret_10", "msg-1" + timestamp + body).
    Signed::new(
        Provider::Twitch,
        &[
            (
                "twitch-eventsub-message-signature",
                "sha256=c3a005bc2947fed6d74d4b5e64ba3397fab80a31f15a065afdf3b51e4690afb5",
            ),
            ("twitch-eventsub-message-id", "msg-1"),
            (
                "twitch-eventsub-message-timestamp",
                "2023-11-14T22:13:20.123456789Z",
            ),
        ],
        br#"{"subscription":{"type":"channel.follow"},"event":{}}"#,
        "twitch_secret_10",
    ),
    // hex HMAC-SHA256("calendly_key", "1700000000." + body).
    Signed::new(
        Provider::Calendly,
        &[(
            "calendly-webhook-signature",
            "t=1700000000,v1=e6287d9d3e4f0bf9e7647fa8b70805668b39cfbab6be83fd8485352a240a7e55",
        )],
        br#"{"event":"invitee.created","payload":{}}"#,
        "calendly_key",
    ),
    // base64 HMAC-SHA256("typeform_secret", body).
    Signed::new(
        Provider::Typeform,
        &[(
            "typeform-signature",
            "sha256=PGdTmeoecGIRZd06uP0HbPx/vccrkO59upvUTCFw5XM=",
        )],
        br#"{"event_id":"01HTF","event_type":"form_response"}"#,
        "typeform_secret",
    ),
    // hex HMAC-SHA256("pd_secret", body).
    Signed::new(
        Provider::Pagerduty,
        &[(
            "x-pagerduty-signature",
            "v1=cce3998f2fa078177034caed39c26f2af710aaf87f4451945aa3ef2c8311b4f0",
        )],
        br#"{"event":{"id":"01PD","event_type":"incident.triggered"}}"#,
        "pd_secret",
    ),
    // hex HMAC-SHA256("zoom_secret_token", "v0:1700000000:" + body).
    Signed::new(
        Provider::Zoom,
        &[
            (
                "x-zm-signature",
                "v0=4deeff0e090b0b04feb5548e0a13a9274ed24a54dd7a9ba7a91a116514bec6a6",
            ),
            ("x-zm-request-timestamp", "1700000000"),
        ],
        br#"{"event":"meeting.started","payload":{}}"#,
        "zoom_secret_token",
    ),
    // hex HMAC-SHA256("bitbucket_secret", body).
    Signed::new(
        Provider::Bitbucket,
        &[(
            "x-hub-signature",
            "sha256=4f38f7034114e52890347785a6fbfbd500e373436e9742b4d2dc40b7b1634e6c",
        )],
        br#"{"push":{"changes":[]},"repository":{"full_name":"acme/app"}}"#,
        "bitbucket_secret",
    ),
    // hex HMAC-SHA1("vercel_secret", body).
    Signed::new(
        Provider::Vercel,
        &[(
            "x-vercel-signature",
            "e8598851996fe12f0b97fa4cf37e24963058ef7b",
        )],
        br#"{"id":"evt_vercel_1","type":"deployment.created","payload":{}}"#,
        "vercel_secret",
    ),
    // python `cryptography` (RFC 6979 ECDSA, P-256 scalar 0x1122…1122) over
    // "1700000000" + body; the secret is the base64 DER public key.
    Signed::new(
        Provider::Sendgrid,
        &[
            ("x-twilio-email-event-webhook-signature", "MEUCICjPoKbWnyM2/xqxIt298oFjNacte09wvnqtYfk/bIEIAiEA5+dIave0DXrKJZw4Vcubq37JDAXeJYPeafbQRc031rY="),
            ("x-twilio-email-event-webhook-timestamp", "1700000000"),
        ],
        b"[{\"email\":\"a@example.test\",\"event\":\"delivered\",\"sg_event_id\":\"sg-1\"}]\r\n",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZBPjcDGKkizs+qlLohiN1Bn1hjVvp3THZs1sRQKV/uldzpzgVXsKjxzvXGY/Niz//JEOMJSvyCu7x6CpKwtr2w==",
    ),
    // hex HMAC-SHA256("asana_hook_secret_0123456789", body).
    Signed::new(
        Provider::Asana,
        &[(
            "x-hook-signature",
            "b9acd54e1d71b04fca05d0e5b620fb51f8258447af37ab0675ff541f2c8c1c6a",
        )],
        br#"{"events":[{"action":"changed","resource":{"gid":"1"}}]}"#,
        "asana_hook_secret_0123456789",
    ),
    // hex HMAC-SHA256("dropbox_app_secret", body).
    Signed::new(
        Provider::Dropbox,
        &[(
            "x-dropbox-signature",
            "aa42e3008989ca91b0b0524a6180e951e83ee58388e28c3aad41e64e66f41dca",
        )],
        br#"{"list_folder":{"accounts":["dbid:AAH4f99"]},"delta":{"users":[12345]}}"#,
        "dropbox_app_secret",
    ),
    // hex HMAC-SHA256("mux_webhook_secret", "1700000000." + body).
    Signed::new(
        Provider::Mux,
        &[(
            "mux-signature",
            "t=1700000000,v1=dbf2e71b0f3f72580ec7244185331dde5cf0e46449f0805962165a6b553c4584",
        )],
        br#"{"type":"video.asset.ready","id":"mux-evt-1","data":{"id":"asset1"}}"#,
        "mux_webhook_secret",
    ),
    // hex HMAC-SHA256("secret_notion_verification_token", body).
    Signed::new(
        Provider::Notion,
        &[(
            "x-notion-signature",
            "sha256=5b5b2be92a1c60b301e3af84661c6b3d3353fa640fd10bf028dcdde73527e19f",
        )],
        br#"{"id":"evt_notion_1","type":"page.created","entity":{"id":"p1","type":"page"}}"#,
        "secret_notion_verification_token",
    ),
];

/// Providers that take a shared token in a header: nothing covers the body.
pub const TOKENS: &[Signed<'static>] = &[
    Signed::new(
        Provider::Okta,
        &[("authorization", "okta-hook-key")],
        br#"{"eventType":"com.okta.event_hook","eventId":"evt-1"}"#,
        "okta-hook-key",
    ),
    Signed::new(
        Provider::Telegram,
        &[("x-telegram-bot-api-secret-token", "tg_Secret-1")],
        br#"{"update_id":10000}"#,
        "tg_Secret-1",
    ),
    Signed::new(
        Provider::Gitlab,
        &[("x-gitlab-token", "gitlab-secret-token")],
        br#"{"object_kind":"push"}"#,
        "gitlab-secret-token",
    ),
    // base64("postmark:s3cr3t-p4ss") as HTTP Basic credentials.
    Signed::new(
        Provider::Postmark,
        &[("authorization", "Basic cG9zdG1hcms6czNjcjN0LXA0c3M=")],
        br#"{"RecordType":"Delivery","MessageID":"m-1"}"#,
        "postmark:s3cr3t-p4ss",
    ),
];

/// The window of each provider that signs a timestamp, in seconds after and before the
/// signing time (the default windows; the future side never exceeds five minutes).
pub const WINDOWS: &[(Provider, i64, i64)] = &[
    (Provider::Stripe, 300, 300),
    (Provider::Slack, 300, 300),
    (Provider::Zendesk, 300, 300),
    (Provider::StandardWebhooks, 300, 300),
    (Provider::Gitlab, 300, 300),
    (Provider::Linear, 60, 60),
    (Provider::Discord, 300, 300),
    (Provider::Hubspot, 300, 300),
    (Provider::Paddle, 5, 5),
    (Provider::Twitch, 600, 300),
    (Provider::Calendly, 180, 180),
    (Provider::Zoom, 300, 300),
    (Provider::Sendgrid, 300, 300),
    (Provider::Mux, 300, 300),
];

/// Second names for a signature header (renamed headers), each accepted like the first.
pub const OTHER_HEADER_NAMES: &[(Provider, &str)] = &[
    (Provider::Shopify, "shopify-hmac-sha256"),
    (Provider::Salesforce, "x-signature"),
];

/// Providers whose signature value carries a prefix, which is required.
pub const PREFIXES: &[(Provider, &str)] = &[
    (Provider::Github, "sha256="),
    (Provider::Slack, "v0="),
    (Provider::Twitch, "sha256="),
    (Provider::Typeform, "sha256="),
    (Provider::Zoom, "v0="),
    (Provider::Bitbucket, "sha256="),
    (Provider::Notion, "sha256="),
];

/// Headers covered by the signature besides the signature itself: another value is
/// `Invalid`, no value is `Missing`.
pub const SIGNED_HEADERS: &[(Provider, &str, &str)] = &[
    (Provider::Slack, "x-slack-request-timestamp", "1700000001"),
    (
        Provider::Zendesk,
        "x-zendesk-webhook-signature-timestamp",
        "2023-11-14T22:13:21Z",
    ),
    (Provider::StandardWebhooks, "webhook-id", "msg_other"),
    (
        Provider::StandardWebhooks,
        "webhook-timestamp",
        "1700000001",
    ),
    (Provider::Discord, "x-signature-timestamp", "1700000001"),
    (
        Provider::Hubspot,
        "x-hubspot-request-timestamp",
        "1700000000001",
    ),
    (Provider::Twitch, "twitch-eventsub-message-id", "msg-2"),
    (Provider::Zoom, "x-zm-request-timestamp", "1700000001"),
    (
        Provider::Sendgrid,
        "x-twilio-email-event-webhook-timestamp",
        "1700000001",
    ),
];

/// Providers that sign the URL they called: another URL is `Invalid`.
pub const URL_SIGNED: &[Provider] = &[Provider::Twilio, Provider::Hubspot, Provider::Square];

/// The first signed request of `provider` in [`SIGNED`].
pub fn signed(provider: Provider) -> Signed<'static> {
    *SIGNED
        .iter()
        .find(|s| s.provider == provider)
        .unwrap_or_else(|| panic!("no vector for {provider}"))
}

#[test]
fn every_signed_request_verifies_and_no_altered_copy_does() {
    for signed in SIGNED {
        assert_signed(*signed);
    }
}

#[test]
fn every_shared_token_verifies_whatever_the_body_and_no_other_token_does() {
    for token in TOKENS {
        assert_token(*token);
    }
}

#[test]
fn every_signed_timestamp_is_held_to_its_window() {
    for (provider, past, future) in WINDOWS {
        let signed = signed(*provider);
        assert_eq!(signed.now, T, "{provider}");
        assert_window(signed, *past, *future);
    }
}

#[test]
fn every_other_header_name_is_accepted() {
    for (provider, name) in OTHER_HEADER_NAMES {
        let signed = signed(*provider);
        let value = signed.headers[0].1;
        assert_eq!(
            signed.with_headers(&[(name, value)]).check(),
            Ok(()),
            "{provider}"
        );
    }
}

#[test]
fn a_signature_without_its_prefix_is_invalid() {
    for (provider, prefix) in PREFIXES {
        let signed = signed(*provider);
        let bare = signed.headers[0].1.strip_prefix(prefix).unwrap();
        assert_eq!(
            signed.check_value(bare),
            Err(SignatureError::Invalid),
            "{provider}"
        );
    }
}

#[test]
fn every_signed_header_is_covered_and_required() {
    for (provider, name, other) in SIGNED_HEADERS {
        let signed = signed(*provider);
        assert_eq!(
            signed.check_header(name, other),
            Err(SignatureError::Invalid),
            "{provider} {name}"
        );
        assert_eq!(
            signed.check_without(name),
            Err(SignatureError::Missing),
            "{provider} {name}"
        );
    }
}

#[test]
fn another_url_is_invalid_where_the_url_is_signed() {
    for provider in URL_SIGNED {
        let signed = signed(*provider);
        let other = format!("{}x", signed.url);
        assert_eq!(
            signed.with_url(&other).check(),
            Err(SignatureError::Invalid),
            "{provider}"
        );
    }
}
