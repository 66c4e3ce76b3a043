//! The cost of verifying what an attacker sends: the issue-17 requests (a signature list of
//! thousands of entries over a 1 MiB body) against every provider that takes a list.
//!
//! Test-only. The counter behind [`sig::COMPUTED`] counts MACs and signature checks, so
//! these tests state the bound exactly: nothing for a list over the cap, one per secret
//! for the longest list accepted.

use bytes::Bytes;
use http::HeaderMap;

use super::testkit::{headers, post, T, URL};
use super::{sig, verify, Provider, SignatureError};
use crate::sensitive::Secret;

/// A 1 MiB body.
fn big_body() -> Bytes {
    Bytes::from(vec![b'x'; 1 << 20])
}

/// The secrets each list-taking provider is configured with in these tests.
fn secret(provider: Provider) -> Secret {
    match provider {
        // base64 of 24 bytes, as Standard Webhooks keys are.
        Provider::StandardWebhooks | Provider::Gitlab => {
            Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        }
        _ => Secret::new("attack-test-secret"),
    }
}

/// The attack header set for `provider`: `entries` signature entries that match nothing.
fn attack(provider: Provider, entries: usize) -> HeaderMap {
    let hex = "ab".repeat(32);
    let b64 = "A".repeat(43) + "=";
    let list = |sep: &str, item: &str| vec![item; entries].join(sep);
    match provider {
        Provider::Pagerduty => {
            headers(&[("x-pagerduty-signature", &list(",", &format!("v1={hex}")))])
        }
        Provider::Stripe => headers(&[(
            "stripe-signature",
            &format!("t={T},{}", list(",", &format!("v1={hex}"))),
        )]),
        Provider::Calendly => headers(&[(
            "calendly-webhook-signature",
            &format!("t={T},{}", list(",", &format!("v1={hex}"))),
        )]),
        Provider::Paddle => headers(&[(
            "paddle-signature",
            &format!("ts={T};{}", list(";", &format!("h1={hex}"))),
        )]),
        Provider::StandardWebhooks | Provider::Gitlab => headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &T.to_string()),
            ("webhook-signature", &list(" ", &format!("v1,{b64}"))),
        ]),
        other => unreachable!("{other} takes no list"),
    }
}

const LIST_PROVIDERS: [Provider; 6] = [
    Provider::Pagerduty,
    Provider::Stripe,
    Provider::Calendly,
    Provider::Paddle,
    Provider::StandardWebhooks,
    Provider::Gitlab,
];

fn computed_while(f: impl FnOnce()) -> usize {
    let before = sig::COMPUTED.with(|n| n.get());
    f();
    sig::COMPUTED.with(|n| n.get()) - before
}

// Security property (issue 17, finding 1): a list of 15 000 entries over a 1 MiB body is
// refused as `invalid_signature` before any MAC is computed, for every provider that
// takes a list. Before, each entry cost one HMAC over the whole body (8.2 s of CPU).
#[test]
fn a_list_over_the_cap_is_refused_before_any_mac() {
    let body = big_body();
    for provider in LIST_PROVIDERS {
        // Entries empty of value, like `v1=,v1=,…`, and entries that decode.
        for entries in [sig::MAX_LIST_ENTRIES + 1, 15_000] {
            let h = attack(provider, entries);
            let n = computed_while(|| {
                let outcome = verify(
                    provider,
                    &post(&h, URL, &body),
                    body.clone(),
                    &[secret(provider), secret(provider)],
                    T,
                    None,
                );
                assert_eq!(outcome.unwrap_err(), SignatureError::Invalid, "{provider}");
            });
            assert_eq!(n, 0, "{provider} with {entries} entries computed {n} MACs");
        }
    }
}

#[test]
fn an_over_long_list_of_empty_entries_is_refused_before_any_mac() {
    let body = big_body();
    let empty = vec!["v1="; 15_000].join(",");
    let h = headers(&[("x-pagerduty-signature", &empty)]);
    let n = computed_while(|| {
        let outcome = verify(
            Provider::Pagerduty,
            &post(&h, URL, &body),
            body.clone(),
            &[secret(Provider::Pagerduty)],
            T,
            None,
        );
        assert_eq!(outcome.unwrap_err(), SignatureError::Invalid);
    });
    assert_eq!(n, 0);
}

// Security property: the longest list accepted costs one MAC per secret, not one per
// entry, so the work per request is bounded by the number of active secret values.
#[test]
fn the_longest_list_accepted_costs_one_mac_per_secret() {
    let body = big_body();
    for provider in LIST_PROVIDERS {
        let h = attack(provider, sig::MAX_LIST_ENTRIES - 1);
        for secrets in [1, 2] {
            let values = vec![secret(provider); secrets];
            let n = computed_while(|| {
                let outcome = verify(
                    provider,
                    &post(&h, URL, &body),
                    body.clone(),
                    &values,
                    T,
                    None,
                );
                assert_eq!(outcome.unwrap_err(), SignatureError::Invalid, "{provider}");
            });
            assert_eq!(n, secrets, "{provider} with {secrets} secret(s)");
        }
    }
}

// Security property: asymmetric `v1a` signatures each hash the body again, so at most
// `MAX_ASYMMETRIC_ENTRIES` (one) of them is checked per key whatever the list holds.
#[test]
fn asymmetric_signatures_are_checked_at_most_once_per_key() {
    let body = big_body();
    let sig = "v1a,".to_owned() + &"A".repeat(86) + "==";
    let h = headers(&[
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", &T.to_string()),
        (
            "webhook-signature",
            &vec![sig.as_str(); sig::MAX_LIST_ENTRIES].join(" "),
        ),
    ]);
    let key = Secret::new("whpk_bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E=");
    let n = computed_while(|| {
        let outcome = verify(
            Provider::StandardWebhooks,
            &post(&h, URL, &body),
            body.clone(),
            &[key],
            T,
            None,
        );
        assert_eq!(outcome.unwrap_err(), SignatureError::Invalid);
    });
    assert_eq!(n, sig::MAX_ASYMMETRIC_ENTRIES);
}

// Every other provider checks a fixed number of signatures: one MAC per secret (two for
// HubSpot's escaped URL form, four for Twilio's port and de-duplication variants).
#[test]
fn single_signature_providers_cost_a_fixed_number_of_macs() {
    let body = Bytes::from_static(b"{}");
    let hex = "ab".repeat(32);
    let b64 = "A".repeat(43) + "=";
    let ts = T.to_string();
    type Case = (Provider, Vec<(&'static str, String)>, usize);
    let cases: [Case; 5] = [
        (
            Provider::Github,
            vec![("x-hub-signature-256", format!("sha256={hex}"))],
            1,
        ),
        (
            Provider::Slack,
            vec![
                ("x-slack-signature", format!("v0={hex}")),
                ("x-slack-request-timestamp", ts.clone()),
            ],
            1,
        ),
        (
            Provider::Twitch,
            vec![
                ("twitch-eventsub-message-signature", format!("sha256={hex}")),
                ("twitch-eventsub-message-id", "m".into()),
                (
                    "twitch-eventsub-message-timestamp",
                    "2023-11-14T22:13:20Z".into(),
                ),
            ],
            1,
        ),
        (
            Provider::Shopify,
            vec![("x-shopify-hmac-sha256", b64.clone())],
            1,
        ),
        (
            Provider::Hubspot,
            vec![
                ("x-hubspot-signature-v3", b64),
                ("x-hubspot-request-timestamp", format!("{ts}000")),
            ],
            1,
        ),
    ];
    for (provider, pairs, per_secret) in cases {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let h = headers(&pairs);
        let n = computed_while(|| {
            let outcome = verify(
                provider,
                &post(&h, URL, &body),
                body.clone(),
                &[Secret::new("s1"), Secret::new("s2")],
                T,
                None,
            );
            assert_eq!(outcome.unwrap_err(), SignatureError::Invalid, "{provider}");
        });
        assert_eq!(n, 2 * per_secret, "{provider}");
    }
}
