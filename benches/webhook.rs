//! Cost of `webhook::verify` per provider at 1 KiB and 256 KiB bodies, and of the attack
//! requests of issue 17 (a worst-case signature list over a 1 MiB body) for every provider
//! that takes a list.
//!
//! Signatures are produced here with the RustCrypto primitives (and aws-lc for SendGrid's
//! ECDSA) directly, not roomgate code, so each iteration of `webhook_verify` measures one
//! successful verification (SendGrid's includes parsing its public key, as every request
//! does); each iteration of `webhook_attack` measures one refusal.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use roomgate::sensitive::Secret;
use roomgate::webhook::{verify, Provider, SignatureError, WebhookRequest};
use sha1::Sha1;
use sha2::Sha256;

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://hooks.example.test/hook";

struct Case {
    provider: Provider,
    headers: HeaderMap,
    url: &'static str,
    body: Bytes,
    secret: Secret,
}

fn sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac key");
    parts.iter().for_each(|p| mac.update(p));
    mac.finalize().into_bytes().to_vec()
}

fn sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("hmac key");
    parts.iter().for_each(|p| mac.update(p));
    mac.finalize().into_bytes().to_vec()
}

fn headers(pairs: &[(&str, String)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            )
        })
        .collect()
}

fn json_body(size: usize) -> Vec<u8> {
    let mut body = br#"{"id":"evt_1","data":""#.to_vec();
    body.resize(size - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

fn cases(size: usize) -> Vec<Case> {
    let ts = NOW.to_string();
    let json = json_body(size);
    let mut out = Vec::new();

    let key = b"github-secret";
    out.push(Case {
        provider: Provider::Github,
        headers: headers(&[(
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(sha256(key, &[&json]))),
        )]),
        url: URL,
        body: Bytes::from(json.clone()),
        secret: Secret::new(key.to_vec()),
    });

    let key = b"whsec_stripe_secret";
    let v1 = hex::encode(sha256(key, &[ts.as_bytes(), b".", &json]));
    out.push(Case {
        provider: Provider::Stripe,
        headers: headers(&[("stripe-signature", format!("t={ts},v1={v1}"))]),
        url: URL,
        body: Bytes::from(json.clone()),
        secret: Secret::new(key.to_vec()),
    });

    let key = b"slack_signing_secret";
    let v0 = hex::encode(sha256(key, &[b"v0:", ts.as_bytes(), b":", &json]));
    out.push(Case {
        provider: Provider::Slack,
        headers: headers(&[
            ("x-slack-signature", format!("v0={v0}")),
            ("x-slack-request-timestamp", ts.clone()),
        ]),
        url: URL,
        body: Bytes::from(json.clone()),
        secret: Secret::new(key.to_vec()),
    });

    let raw_key = [7u8; 32];
    let mac = sha256(&raw_key, &[b"msg_1.", ts.as_bytes(), b".", &json]);
    out.push(Case {
        provider: Provider::StandardWebhooks,
        headers: headers(&[
            ("webhook-id", "msg_1".to_owned()),
            ("webhook-timestamp", ts.clone()),
            ("webhook-signature", format!("v1,{}", STANDARD.encode(mac))),
        ]),
        url: URL,
        body: Bytes::from(json.clone()),
        secret: Secret::new(format!("whsec_{}", STANDARD.encode(raw_key))),
    });

    let mut form = b"From=%2B15005550006&Body=".to_vec();
    form.resize(size, b'x');
    let value = &form[b"From=%2B15005550006&Body=".len()..];
    let token = b"twilio_auth_token";
    let mac = sha1(
        token,
        &[URL.as_bytes(), b"Body", value, b"From+15005550006"],
    );
    out.push(Case {
        provider: Provider::Twilio,
        headers: headers(&[
            ("x-twilio-signature", STANDARD.encode(mac)),
            (
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ]),
        url: URL,
        body: Bytes::from(form),
        secret: Secret::new(token.to_vec()),
    });

    let key = b"mux-signing-secret";
    let v1 = hex::encode(sha256(key, &[ts.as_bytes(), b".", &json]));
    out.push(Case {
        provider: Provider::Mux,
        headers: headers(&[("mux-signature", format!("t={ts},v1={v1}"))]),
        url: URL,
        body: Bytes::from(json.clone()),
        secret: Secret::new(key.to_vec()),
    });

    out.push(sendgrid_case(&ts, &json));

    let signing = SigningKey::from_bytes(&[9u8; 32]);
    let mut message = ts.as_bytes().to_vec();
    message.extend_from_slice(&json);
    let signature = signing.sign(&message);
    out.push(Case {
        provider: Provider::Discord,
        headers: headers(&[
            ("x-signature-ed25519", hex::encode(signature.to_bytes())),
            ("x-signature-timestamp", ts.clone()),
        ]),
        url: URL,
        body: Bytes::from(json),
        secret: Secret::new(hex::encode(signing.verifying_key().to_bytes())),
    });

    out
}

/// ECDSA P-256 over `timestamp + body` with a fresh key; the room secret is its base64
/// DER SubjectPublicKeyInfo, as SendGrid shows it.
fn sendgrid_case(ts: &str, json: &[u8]) -> Case {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("p256 key");
    let spki = pair.public_key().as_der().expect("spki");
    let mut message = ts.as_bytes().to_vec();
    message.extend_from_slice(json);
    let signature = pair
        .sign(&SystemRandom::new(), &message)
        .expect("ecdsa signature");
    Case {
        provider: Provider::Sendgrid,
        headers: headers(&[
            (
                "x-twilio-email-event-webhook-signature",
                STANDARD.encode(signature.as_ref()),
            ),
            ("x-twilio-email-event-webhook-timestamp", ts.to_owned()),
        ]),
        url: URL,
        body: Bytes::from(json.to_vec()),
        secret: Secret::new(STANDARD.encode(spki.as_ref())),
    }
}

fn bench_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("webhook_verify");
    for (label, size) in [("1KiB", 1024), ("256KiB", 256 * 1024)] {
        group.throughput(Throughput::Bytes(size as u64));
        for case in cases(size) {
            let req = WebhookRequest {
                method: &Method::POST,
                headers: &case.headers,
                url: case.url,
                body: &case.body,
            };
            let secrets = [case.secret.clone()];
            assert!(
                verify(case.provider, &req, case.body.clone(), &secrets, NOW, None).is_ok(),
                "{} bench case must verify",
                case.provider
            );
            group.bench_with_input(
                BenchmarkId::new(case.provider.as_str(), label),
                &req,
                |b, req| {
                    b.iter(|| {
                        verify(
                            case.provider,
                            black_box(req),
                            case.body.clone(),
                            &secrets,
                            NOW,
                            Some(Duration::from_secs(300)),
                        )
                    })
                },
            );
        }
    }
    group.finish();
}

/// One attack: a provider, its headers, and the secret the endpoint holds.
struct Attack {
    name: &'static str,
    provider: Provider,
    headers: HeaderMap,
    secret: Secret,
}

/// The worst signature headers for each list-taking provider: lists of `entries` items
/// (the timestamp counts as one) of well-formed signatures that match nothing (every one
/// decodes, so none is skipped; the Ed25519 ones are canonical signatures by another key,
/// so each is hashed over the body before it fails).
fn attacks(entries: usize) -> Vec<Attack> {
    let ts = NOW.to_string();
    let hex = "ab".repeat(32);
    let b64 = "A".repeat(43) + "=";
    let other_key = SigningKey::from_bytes(&[9; 32]);
    let ed = STANDARD.encode(other_key.sign(b"another message").to_bytes());
    let list = |sep: &str, item: String| vec![item; entries].join(sep);
    let timestamped = |sep: &str, item: String| vec![item; entries - 1].join(sep);
    let sw_key = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let sw = |sig: String| {
        headers(&[
            ("webhook-id", "msg_1".into()),
            ("webhook-timestamp", ts.clone()),
            ("webhook-signature", sig),
        ])
    };
    vec![
        Attack {
            name: "pagerduty",
            provider: Provider::Pagerduty,
            headers: headers(&[("x-pagerduty-signature", list(",", format!("v1={hex}")))]),
            secret: Secret::new("pd-secret"),
        },
        Attack {
            name: "stripe",
            provider: Provider::Stripe,
            headers: headers(&[(
                "stripe-signature",
                format!("t={ts},{}", timestamped(",", format!("v1={hex}"))),
            )]),
            secret: Secret::new("whsec_stripe"),
        },
        Attack {
            name: "calendly",
            provider: Provider::Calendly,
            headers: headers(&[(
                "calendly-webhook-signature",
                format!("t={ts},{}", timestamped(",", format!("v1={hex}"))),
            )]),
            secret: Secret::new("calendly-key"),
        },
        Attack {
            name: "paddle",
            provider: Provider::Paddle,
            headers: headers(&[(
                "paddle-signature",
                format!("ts={ts};{}", timestamped(";", format!("h1={hex}"))),
            )]),
            secret: Secret::new("pdl_secret"),
        },
        Attack {
            name: "standard-webhooks-v1",
            provider: Provider::StandardWebhooks,
            headers: sw(list(" ", format!("v1,{b64}"))),
            secret: sw_key.clone(),
        },
        Attack {
            name: "standard-webhooks-v1a",
            provider: Provider::StandardWebhooks,
            headers: sw(list(" ", format!("v1a,{ed}"))),
            secret: Secret::new("whpk_bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E="),
        },
        Attack {
            name: "gitlab-signed",
            provider: Provider::Gitlab,
            headers: sw(list(" ", format!("v1,{b64}"))),
            secret: sw_key,
        },
    ]
}

fn bench_attacks(c: &mut Criterion) {
    let mut group = c.benchmark_group("webhook_attack");
    let body = Bytes::from(vec![b'x'; 1 << 20]);
    // The longest list read (16 items: one MAC per secret), and the issue's 15 000 entries
    // (refused before any MAC).
    for (label, entries) in [("16_entries_1MiB", 16), ("15000_entries_1MiB", 15_000)] {
        for attack in attacks(entries) {
            let req = WebhookRequest {
                method: &Method::POST,
                headers: &attack.headers,
                url: URL,
                body: &body,
            };
            let secrets = [attack.secret.clone()];
            // Refused for its signatures (not its timestamp): the MAC path is measured.
            assert_eq!(
                verify(attack.provider, &req, body.clone(), &secrets, NOW, None).err(),
                Some(SignatureError::Invalid),
                "{} attack must be an invalid signature",
                attack.name
            );
            group.bench_with_input(BenchmarkId::new(attack.name, label), &req, |b, req| {
                b.iter(|| {
                    verify(
                        attack.provider,
                        black_box(req),
                        body.clone(),
                        &secrets,
                        NOW,
                        None,
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_verify, bench_attacks);
criterion_main!(benches);
