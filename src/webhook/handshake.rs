//! Provider handshakes: the replies some providers expect instead of (or before) normal
//! delivery — Slack `url_verification`, Zoom `endpoint.url_validation`, Discord PING,
//! Twitch EventSub callback verification, the WhatsApp/Meta subscription GET, Okta's
//! verification GET, Dropbox's `GET ?challenge=` and Asana's `X-Hook-Secret` handshake.
//!
//! Pure functions from a request to an optional reply. POST handshakes are answered only
//! for a [`Verified`] body, or (Asana) for a hook secret that matches the stored one or
//! was just stored because none existed; GET handshakes prove the caller with a verify
//! token or [`okta::SCHEME`], except Dropbox's, which proves nothing and only echoes its
//! challenge as plain text that browsers must not sniff. Echoed values are bounded and
//! must be printable: this module must never reflect unbounded input.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{json, Value};

use super::{asana, okta, sig, Provider, SignatureError, Verified, WebhookRequest};
use crate::sensitive::Secret;

/// The longest challenge value echoed back to a provider.
pub const MAX_ECHO: usize = 1024;

/// A reply roomgate sends itself, without forwarding or enqueueing the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Headers the provider expects on the reply (Asana's `X-Hook-Secret`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl HandshakeReply {
    fn text(body: &str) -> Self {
        HandshakeReply {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            headers: Vec::new(),
        }
    }

    fn json(body: &Value) -> Self {
        HandshakeReply {
            status: 200,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }
}

/// The reply a verified body calls for, when it is a handshake rather than an event.
///
/// `secret` must be the value the body verified with: Zoom keys `encryptedToken` with
/// it. Slack `url_verification` → the challenge as text; Zoom `endpoint.url_validation`
/// → `{plainToken, encryptedToken}`; Discord PING → PONG; Twitch EventSub callback
/// verification → the challenge as text. `None` for ordinary events.
pub fn after_verification(verified: &Verified, secret: &Secret) -> Option<HandshakeReply> {
    let provider = verified.provider();
    if !matches!(
        provider,
        Provider::Slack | Provider::Zoom | Provider::Discord | Provider::Twitch
    ) {
        return None;
    }
    let body: Value = serde_json::from_slice(verified.body()).ok()?;
    match provider {
        Provider::Slack if body.get("type")? == "url_verification" => {
            let challenge = echoable(body.get("challenge")?.as_str()?)?;
            Some(HandshakeReply::text(challenge))
        }
        Provider::Zoom if body.get("event")? == "endpoint.url_validation" => {
            let plain = echoable(body.get("payload")?.get("plainToken")?.as_str()?)?;
            let encrypted = sig::hmac_sha256(secret.expose(), &[plain.as_bytes()])?;
            Some(HandshakeReply::json(&json!({
                "plainToken": plain,
                "encryptedToken": hex::encode(encrypted),
            })))
        }
        Provider::Discord if body.get("type")? == 1 => {
            Some(HandshakeReply::json(&json!({ "type": 1 })))
        }
        // EventSub's `webhook_callback_verification`: echo the challenge as text.
        Provider::Twitch
            if body.get("subscription")?.get("status")?
                == "webhook_callback_verification_pending" =>
        {
            let challenge = echoable(body.get("challenge")?.as_str()?)?;
            Some(HandshakeReply::text(challenge))
        }
        _ => None,
    }
}

/// Answer a GET that subscribes or verifies an endpoint. `query` is the raw query string
/// (without `?`); `challenge_secrets` hold Meta verify tokens, `secrets` the provider's
/// signing values. `Ok(None)` when the GET is not a handshake for `provider`.
pub fn subscription_get(
    provider: Provider,
    headers: &HeaderMap,
    query: &str,
    challenge_secrets: &[Secret],
    secrets: &[Secret],
) -> Result<Option<HandshakeReply>, SignatureError> {
    match provider {
        Provider::Whatsapp => meta_subscribe(query, challenge_secrets),
        Provider::Okta => okta_verification(headers, secrets),
        Provider::Dropbox => dropbox_challenge(query),
        _ => Ok(None),
    }
}

/// Dropbox: `?challenge=C` → `C` as plain text. Dropbox signs nothing here, so the reply
/// holds only a bounded, printable echo (and `ingest` marks it `nosniff`).
fn dropbox_challenge(query: &str) -> Result<Option<HandshakeReply>, SignatureError> {
    let params = query_params(query);
    let Some((_, challenge)) = params.iter().find(|(k, _)| k == "challenge") else {
        return Ok(None);
    };
    let challenge = echoable(challenge).ok_or(SignatureError::Invalid)?;
    Ok(Some(HandshakeReply::text(challenge)))
}

/// The reply to Asana's handshake: 200 with the hook secret echoed in `X-Hook-Secret`.
pub fn asana_reply(offered: &str) -> Result<HandshakeReply, SignatureError> {
    let value = HeaderValue::from_str(offered).map_err(|_| SignatureError::Invalid)?;
    Ok(HandshakeReply {
        status: 200,
        content_type: "text/plain; charset=utf-8",
        body: Vec::new(),
        headers: vec![(HeaderName::from_static(asana::SECRET_HEADER), value)],
    })
}

/// An Asana handshake for an endpoint whose hook secret is already stored: answered only
/// when `offered` is one of the stored values (compared in constant time, every value
/// checked), else `Invalid`. A first handshake is stored trust-on-first-use by `ingest`;
/// a later one with another secret must never replace it.
pub fn asana_known(offered: &str, stored: &[Secret]) -> Result<HandshakeReply, SignatureError> {
    let matched = stored.iter().fold(false, |found, secret| {
        found | secret.ct_eq(offered.as_bytes())
    });
    sig::verdict(matched)?;
    asana_reply(offered)
}

/// Meta: `hub.mode=subscribe&hub.verify_token=T&hub.challenge=C` → `C` when `T` is one
/// of the verify tokens.
fn meta_subscribe(
    query: &str,
    verify_tokens: &[Secret],
) -> Result<Option<HandshakeReply>, SignatureError> {
    let params = query_params(query);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(mode) = get("hub.mode") else {
        return Ok(None);
    };
    if mode != "subscribe" {
        return Err(SignatureError::Invalid);
    }
    let token = get("hub.verify_token").ok_or(SignatureError::Missing)?;
    // Check every token so the time taken does not depend on which one matched.
    let matched = verify_tokens.iter().fold(false, |found, secret| {
        found | secret.ct_eq(token.as_bytes())
    });
    sig::verdict(matched)?;
    let challenge = get("hub.challenge")
        .and_then(echoable)
        .ok_or(SignatureError::Invalid)?;
    Ok(Some(HandshakeReply::text(challenge)))
}

/// Okta: `X-Okta-Verification-Challenge: V` with a valid hook auth header →
/// `{"verification": V}`.
fn okta_verification(
    headers: &HeaderMap,
    secrets: &[Secret],
) -> Result<Option<HandshakeReply>, SignatureError> {
    let Some(challenge) = headers.get("x-okta-verification-challenge") else {
        return Ok(None);
    };
    let req = WebhookRequest {
        method: &Method::GET,
        headers,
        url: "",
        body: &[],
    };
    let mut outcome = Err(SignatureError::Invalid);
    for secret in secrets {
        outcome = okta::SCHEME.verify(&req, secret);
        if outcome != Err(SignatureError::Invalid) {
            break;
        }
    }
    outcome?;
    let challenge = challenge
        .to_str()
        .ok()
        .and_then(echoable)
        .ok_or(SignatureError::Invalid)?;
    Ok(Some(HandshakeReply::json(
        &json!({ "verification": challenge }),
    )))
}

/// A value that may be echoed: non-empty, at most [`MAX_ECHO`] bytes, no control
/// characters.
fn echoable(value: &str) -> Option<&str> {
    let ok = !value.is_empty() && value.len() <= MAX_ECHO && !value.chars().any(char::is_control);
    ok.then_some(value)
}

/// Form-decoded `name=value` pairs of a query string; undecodable pairs are dropped.
fn query_params(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    query
        .split('&')
        .filter(|item| !item.is_empty())
        .filter_map(|item| {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};
    use crate::webhook::verify;
    use bytes::Bytes;

    fn verified(provider: Provider, pairs: &[(&str, &str)], body: &[u8], secret: &str) -> Verified {
        let h = headers(pairs);
        let req = post(&h, URL, body);
        verify(
            provider,
            &req,
            Bytes::copy_from_slice(body),
            &[Secret::new(secret)],
            T,
            Some(secs(300)),
        )
        .unwrap()
    }

    fn slack(body: &[u8], hex_mac: &str) -> Option<HandshakeReply> {
        let signature = format!("v0={hex_mac}");
        let pairs = [
            ("x-slack-signature", signature.as_str()),
            ("x-slack-request-timestamp", "1700000000"),
        ];
        let v = verified(Provider::Slack, &pairs, body, "slack_signing_secret");
        after_verification(&v, &Secret::new("slack_signing_secret"))
    }

    // The Slack MACs below: testdata/make_vectors.py, hex HMAC-SHA256(
    // "slack_signing_secret", "v0:1700000000:" + body).
    #[test]
    fn slack_url_verification_echoes_the_challenge() {
        let reply = slack(
            br#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#,
            "7a8144be661caf424d8e2ea45d5adfe56b5d3da1da75e0810f94f2d1257da7a6",
        )
        .unwrap();
        assert_eq!(reply.status, 200);
        assert!(reply.content_type.starts_with("text/plain"));
        assert_eq!(
            reply.body,
            b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        );
    }

    #[test]
    fn slack_events_are_not_handshakes() {
        assert_eq!(
            slack(
                br#"{"type":"event_callback","event_id":"Ev1"}"#,
                "5fbc02fcca822f1fbad47b676fe00c674124e15579941083d64219763a31c146"
            ),
            None
        );
    }

    #[test]
    fn oversized_slack_challenge_is_not_echoed() {
        let body = format!(
            r#"{{"type":"url_verification","challenge":"{}"}}"#,
            "a".repeat(2000)
        );
        assert_eq!(
            slack(
                body.as_bytes(),
                "e335867a3738d0cff8d3dac9375e4e5e021aa586d6d2434909f716fe240c9a09"
            ),
            None
        );
    }

    #[test]
    fn zoom_url_validation_returns_the_encrypted_token() {
        // testdata/make_vectors.py: signature of BODY at 1700000000 and
        // encryptedToken = hex HMAC-SHA256("zoom_secret_token", "qgg8vlvZRS6UYooatFL8Aw").
        let body = br#"{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1700000000000}"#;
        let pairs = [
            (
                "x-zm-signature",
                "v0=53f30a92c5e70d82f547b80d5567e38ce8b3aaf61acd9fd311ba037ecef5f5ec",
            ),
            ("x-zm-request-timestamp", "1700000000"),
        ];
        let v = verified(Provider::Zoom, &pairs, body, "zoom_secret_token");
        let reply = after_verification(&v, &Secret::new("zoom_secret_token")).unwrap();
        assert_eq!(reply.content_type, "application/json");
        let json: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            json,
            json!({
                "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
                "encryptedToken": "bd48235863f4a6323ccc4963c594908b7c97f88b4a6a95278f4f093690b12726",
            })
        );
    }

    #[test]
    fn discord_ping_is_answered_with_a_pong() {
        // testdata/make_vectors.py: Ed25519 (seed 32×0x07) over "1700000000" + BODY.
        let pairs = [
            ("x-signature-ed25519", "f7caed702889e902c2cde4a4fb00f601284aa47ff4caf84588d7c8c3d8fe7183fd73e13e30d0c07d1515b6684f7b3cfaa231c421768d9667b104f760cf0da302"),
            ("x-signature-timestamp", "1700000000"),
        ];
        let key = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
        let v = verified(Provider::Discord, &pairs, br#"{"type":1}"#, key);
        let reply = after_verification(&v, &Secret::new(key)).unwrap();
        assert_eq!(reply.body, br#"{"type":1}"#);
        assert_eq!(reply.content_type, "application/json");
    }

    #[test]
    fn twitch_callback_verification_echoes_the_challenge() {
        // testdata/make_vectors.py: hex HMAC-SHA256("twitch_secret_10",
        // "msg-2" + "2023-11-14T22:13:20Z" + BODY).
        let body = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2","status":"webhook_callback_verification_pending","type":"channel.follow"}}"#;
        let pairs = [
            (
                "twitch-eventsub-message-signature",
                "sha256=7699540514ecf84099fb0007f0180ca008f11d94b8ab243bf8203b865cd714f1",
            ),
            ("twitch-eventsub-message-id", "msg-2"),
            ("twitch-eventsub-message-timestamp", "2023-11-14T22:13:20Z"),
        ];
        let v = verified(Provider::Twitch, &pairs, body, "twitch_secret_10");
        let reply = after_verification(&v, &Secret::new("twitch_secret_10")).unwrap();
        assert_eq!(reply.body, b"pogchamp-kappa-360noscope-vohiyo");
        assert!(reply.content_type.starts_with("text/plain"));
    }

    #[test]
    fn other_providers_have_no_post_handshake() {
        let pairs = [(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )];
        let v = verified(
            Provider::Github,
            &pairs,
            b"Hello, World!",
            "It's a Secret to Everybody",
        );
        assert_eq!(after_verification(&v, &Secret::new("x")), None);
    }

    fn meta(query: &str) -> Result<Option<HandshakeReply>, SignatureError> {
        let tokens = [Secret::new("old-token"), Secret::new("verify-token")];
        subscription_get(Provider::Whatsapp, &HeaderMap::new(), query, &tokens, &[])
    }

    #[test]
    fn meta_subscription_with_the_verify_token_echoes_the_challenge() {
        let reply =
            meta("hub.mode=subscribe&hub.verify_token=verify-token&hub.challenge=1158201444")
                .unwrap()
                .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"1158201444");
    }

    #[test]
    fn meta_query_values_are_form_decoded() {
        let reply = meta("hub.mode=subscribe&hub.verify_token=verify%2Dtoken&hub.challenge=a+b")
            .unwrap()
            .unwrap();
        assert_eq!(reply.body, b"a b");
    }

    #[test]
    fn meta_subscription_with_a_wrong_token_is_invalid() {
        assert_eq!(
            meta("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn meta_subscription_without_a_token_is_missing() {
        assert_eq!(
            meta("hub.mode=subscribe&hub.challenge=1"),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn oversized_meta_challenge_is_rejected() {
        let query = format!(
            "hub.mode=subscribe&hub.verify_token=verify-token&hub.challenge={}",
            "9".repeat(MAX_ECHO + 1)
        );
        assert_eq!(meta(&query), Err(SignatureError::Invalid));
    }

    #[test]
    fn get_without_hub_mode_is_not_a_handshake() {
        assert_eq!(meta("page=2"), Ok(None));
    }

    fn okta(pairs: &[(&str, &str)]) -> Result<Option<HandshakeReply>, SignatureError> {
        let secrets = [Secret::new("okta-hook-key")];
        subscription_get(Provider::Okta, &headers(pairs), "", &[], &secrets)
    }

    #[test]
    fn okta_verification_with_the_auth_header_returns_the_challenge() {
        let reply = okta(&[
            ("authorization", "okta-hook-key"),
            ("x-okta-verification-challenge", "VBiVzqy4TBkz"),
        ])
        .unwrap()
        .unwrap();
        let json: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(json, json!({ "verification": "VBiVzqy4TBkz" }));
    }

    // Security property: the challenge is only answered for an authenticated caller.
    #[test]
    fn okta_verification_without_the_auth_header_is_refused() {
        assert_eq!(
            okta(&[("x-okta-verification-challenge", "VBiVzqy4TBkz")]),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            okta(&[
                ("authorization", "guess"),
                ("x-okta-verification-challenge", "VBiVzqy4TBkz"),
            ]),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn okta_get_without_a_challenge_is_not_a_handshake() {
        assert_eq!(okta(&[("authorization", "okta-hook-key")]), Ok(None));
    }

    #[test]
    fn providers_without_a_get_handshake_return_none() {
        assert_eq!(
            subscription_get(
                Provider::Github,
                &HeaderMap::new(),
                "hub.mode=subscribe",
                &[],
                &[]
            ),
            Ok(None)
        );
    }

    fn dropbox(query: &str) -> Result<Option<HandshakeReply>, SignatureError> {
        subscription_get(Provider::Dropbox, &HeaderMap::new(), query, &[], &[])
    }

    #[test]
    fn dropbox_challenge_is_echoed_as_plain_text() {
        let reply = dropbox("challenge=Kj3Vb6Rfx0l").unwrap().unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"Kj3Vb6Rfx0l");
        assert!(reply.content_type.starts_with("text/plain"));
        assert_eq!(dropbox("list=1"), Ok(None));
    }

    // Security property: an unauthenticated echo is bounded and printable.
    #[test]
    fn an_oversized_or_unprintable_dropbox_challenge_is_not_echoed() {
        let long = format!("challenge={}", "a".repeat(MAX_ECHO + 1));
        assert_eq!(dropbox(&long), Err(SignatureError::Invalid));
        assert_eq!(dropbox("challenge=a%0Db"), Err(SignatureError::Invalid));
        assert_eq!(dropbox("challenge="), Err(SignatureError::Invalid));
    }

    #[test]
    fn asana_reply_echoes_the_hook_secret_in_its_header() {
        let reply = asana_reply("b74ab31f23ee").unwrap();
        assert_eq!(reply.status, 200);
        assert!(reply.body.is_empty());
        assert_eq!(
            reply.headers,
            vec![(
                HeaderName::from_static("x-hook-secret"),
                HeaderValue::from_static("b74ab31f23ee")
            )]
        );
    }

    // Security property: once a hook secret is stored, a handshake offering another one is
    // refused, so no caller can replace the key events are verified with.
    #[test]
    fn an_asana_handshake_with_another_secret_than_the_stored_one_is_refused() {
        let stored = [Secret::new("new-secret"), Secret::new("b74ab31f23ee")];
        assert!(asana_known("b74ab31f23ee", &stored).is_ok());
        assert_eq!(
            asana_known("attacker-secret", &stored),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            asana_known("b74ab31f23ee", &[]),
            Err(SignatureError::Invalid)
        );
    }
}
