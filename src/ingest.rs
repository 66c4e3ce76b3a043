//! Webhook ingestion: check the caller's address, verify a provider's signature with the
//! room secret, answer the provider's handshakes, and enqueue the verified body (or hand
//! it back for forwarding).
//!
//! Owns the order of the steps and what each failure becomes; the signature math (and
//! which methods a provider sends) lives in `webhook`, the storage in `secret` and
//! `queue`. It must never enqueue or forward a body that did not pass `webhook::verify`
//! (or, for Notion's one-time verification
//! request, `notion::verification_request` while no token is stored), never answer 202
//! before the queue acknowledged the write, and never store a secret offered by a caller
//! except Asana's first hook secret for an endpoint that has none (trust on first use).

use std::net::IpAddr;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

use crate::body::{full, Body};
use crate::config::Policy;
use crate::cpu::{self, JobFailed};
use crate::error::ProxyError;
use crate::queue::{json_string_body, Fields, MessageMeta, Queue, QueueError, QueueMessage};
use crate::secret::{SecretError, SecretStore};
use crate::sensitive::Secret;
use crate::telemetry::{Metrics, WebhookResult};
use crate::webhook::{
    self, asana, handshake, notion, Provider, SignatureError, Verified, VerifyOptions,
    WebhookRequest,
};

/// What the caller does next with a webhook request.
#[derive(Debug)]
pub enum Ingested {
    /// roomgate answered it (202 after enqueue, or a provider handshake).
    Respond(Response<Body>),
    /// Verified; forward this exact body to the service.
    Forward(Verified),
}

/// Where the request is and who it is for.
pub struct Target<'a> {
    pub provider: Provider,
    /// The caller's address (`trusted_proxies` honoured).
    pub client_ip: IpAddr,
    pub policy: &'a Policy,
    pub room: &'a str,
    /// The canonical host and path (the path as routed, without query).
    pub host: &'a str,
    pub path: &'a str,
    /// The public URL the provider called (scheme, Host as sent, raw path and query).
    pub public_url: &'a str,
    /// The forwarding fields roomgate adds ([`crate::forwarded::Forwarded::fields`]): a
    /// message records them with the request's own.
    pub forwarded: &'a [(&'a str, &'a [u8])],
    pub now: time::OffsetDateTime,
}

/// The stores ingestion reads and writes.
pub struct Sinks<'a> {
    pub secrets: &'a SecretStore,
    pub queue: &'a Queue,
    pub metrics: &'a Metrics,
}

/// Every secret failure is 503 `secret_unavailable` to the provider (it retries); the log
/// says which kind it was, so an operator can tell a misspelt id from a store outage.
/// `SecretError` never carries a value, so its text is safe to log.
fn secret_error(provider: Provider, e: SecretError) -> ProxyError {
    let kind = match &e {
        SecretError::NotFound { .. } => "not_found",
        SecretError::Unavailable(_) => "unavailable",
        SecretError::Invalid(_) => "invalid",
    };
    tracing::warn!(
        webhook.provider = provider.as_str(),
        secret.error = kind,
        error = %e,
        "room secret unavailable"
    );
    ProxyError::SecretUnavailable
}

/// Read at most `limit` bytes of body; 413 as soon as it is known to be larger.
pub async fn read_body(parts: &Parts, body: Body, limit: u64) -> Result<Bytes, ProxyError> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::PayloadTooLarge);
    }
    match Limited::new(body, limit as usize).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ProxyError::PayloadTooLarge)
        }
        Err(_) => Err(ProxyError::BadRequestBody),
    }
}

/// The 202 body of an enqueued webhook:
/// `{"status":"accepted","queue":…,"id":…,"delivery_id":…}`.
fn accepted_body(queue: &str, id: &str, delivery_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + queue.len() + id.len() + delivery_id.len());
    out.extend_from_slice(br#"{"status":"accepted","queue":""#);
    json_string_body(&mut out, queue.as_bytes());
    out.extend_from_slice(br#"","id":""#);
    json_string_body(&mut out, id.as_bytes());
    out.extend_from_slice(br#"","delivery_id":""#);
    json_string_body(&mut out, delivery_id.as_bytes());
    out.extend_from_slice(br#""}"#);
    out
}

/// Verify and dispatch one webhook request.
pub async fn ingest(
    target: Target<'_>,
    parts: &Parts,
    body: Body,
    sinks: Sinks<'_>,
) -> Result<Ingested, ProxyError> {
    let policy = target.policy;
    let count = |result| sinks.metrics.count_webhook(target.provider, result);
    if !target.provider.accepts(&parts.method) {
        return Err(ProxyError::MethodNotAllowed);
    }
    let secret_id = policy
        .secret_id
        .as_deref()
        .ok_or(ProxyError::SecretUnavailable)?;
    if !source_allowed(&policy.source_ips, target.client_ip) {
        count(WebhookResult::SourceRefused);
        return Err(ProxyError::SourceNotAllowed);
    }

    if parts.method == Method::GET {
        let secrets = sinks
            .secrets
            .get_at(target.room, &policy.processor, secret_id, target.now)
            .await
            .map_err(|e| secret_error(target.provider, e))?;
        let challenge = match &policy.challenge_secret_id {
            Some(id) => sinks
                .secrets
                .get_at(target.room, &policy.processor, id, target.now)
                .await
                .map_err(|e| secret_error(target.provider, e))?,
            None => std::sync::Arc::from([]),
        };
        let query = parts.uri.query().unwrap_or("");
        match handshake::subscription_get(
            target.provider,
            &parts.headers,
            query,
            &challenge,
            &secrets,
        ) {
            Ok(Some(reply)) => {
                count(WebhookResult::Handshake);
                return Ok(Ingested::Respond(reply_response(reply)));
            }
            // A GET that is no handshake is not a delivery either.
            Ok(None) => return Err(ProxyError::MethodNotAllowed),
            Err(e) => {
                count(signature_result(e));
                return Err(ProxyError::Signature(e));
            }
        }
    }
    if target.provider == Provider::Asana {
        match asana::offered_secret(&parts.headers) {
            Ok(Some(offered)) => {
                return asana_handshake(&target, secret_id, offered, sinks.secrets)
                    .await
                    .inspect(|_| count(WebhookResult::Handshake))
                    .inspect_err(|e| {
                        if let ProxyError::Signature(e) = e {
                            count(signature_result(*e));
                        }
                    })
            }
            Ok(None) => {}
            Err(e) => {
                count(signature_result(e));
                return Err(ProxyError::Signature(e));
            }
        }
    }

    let bytes = read_body(parts, body, policy.max_body_bytes).await?;
    let request = WebhookRequest {
        method: &parts.method,
        headers: &parts.headers,
        url: target.public_url,
        body: &bytes,
    };
    let secrets = match sinks
        .secrets
        .get_at(target.room, &policy.processor, secret_id, target.now)
        .await
    {
        Ok(secrets) => secrets,
        // Notion's verification request arrives before its token can be stored: admitted
        // unsigned, in its exact shape, only while the endpoint has no token.
        Err(e @ SecretError::NotFound { .. }) if target.provider == Provider::Notion => {
            let Some(verified) = notion::verification_request(&request, bytes.clone()) else {
                return Err(secret_error(target.provider, e));
            };
            tracing::info!(
                webhook.provider = target.provider.as_str(),
                "notion verification request admitted unsigned"
            );
            return dispatch(&target, parts, verified, &sinks, count).await;
        }
        Err(e) => return Err(secret_error(target.provider, e)),
    };
    let now_unix = target.now.unix_timestamp();
    let options = VerifyOptions {
        tolerance: policy.tolerance,
        hubspot_legacy: policy.hubspot_legacy,
    };
    let checked = if bytes.len() < INLINE_VERIFY_BYTES {
        check(
            target.provider,
            &request,
            &bytes,
            &secrets,
            now_unix,
            options,
        )
    } else {
        // A MAC over a large body is CPU work the async workers must not do.
        let provider = target.provider;
        let (method, headers) = (parts.method.clone(), parts.headers.clone());
        let url = target.public_url.to_owned();
        let body = bytes.clone();
        cpu::run(move || {
            let request = WebhookRequest {
                method: &method,
                headers: &headers,
                url: &url,
                body: &body,
            };
            check(provider, &request, &body, &secrets, now_unix, options)
        })
        .await
        .unwrap_or_else(|JobFailed| {
            tracing::error!(
                webhook.provider = provider.as_str(),
                "webhook verification panicked"
            );
            Err(SignatureError::Invalid)
        })
    };
    let verified = match checked {
        Ok((verified, None)) => verified,
        Ok((_, Some(reply))) => {
            count(WebhookResult::Handshake);
            return Ok(Ingested::Respond(reply_response(reply)));
        }
        Err(e) => {
            count(signature_result(e));
            return Err(ProxyError::Signature(e));
        }
    };
    dispatch(&target, parts, verified, &sinks, count).await
}

/// Enqueue a verified body (202) or hand it back for forwarding.
async fn dispatch(
    target: &Target<'_>,
    parts: &Parts,
    verified: Verified,
    sinks: &Sinks<'_>,
    count: impl Fn(WebhookResult),
) -> Result<Ingested, ProxyError> {
    let policy = target.policy;
    let Some(queue) = &policy.queue else {
        count(WebhookResult::Forwarded);
        return Ok(Ingested::Forward(verified));
    };
    let meta = MessageMeta {
        method: parts.method.clone(),
        host: target.host.into(),
        path: target.path.into(),
        room: target.room.into(),
        queue: queue.as_str().into(),
        processor: policy.processor.as_str().into(),
    };
    let headers = Fields {
        own: &parts.headers,
        added: target.forwarded,
    };
    let message = QueueMessage::new(verified, meta, headers, target.now);
    match sinks.queue.enqueue(&message).await {
        Ok(done) => {
            count(if done.duplicate {
                WebhookResult::Duplicate
            } else {
                WebhookResult::Enqueued
            });
            tracing::info!(
                webhook.provider = target.provider.as_str(),
                queue.name = %queue,
                queue.id = %done.id,
                queue.duplicate = done.duplicate,
                "webhook enqueued"
            );
            let body = accepted_body(queue, &done.id, &done.delivery_id);
            let mut resp = Response::new(full(body));
            *resp.status_mut() = StatusCode::ACCEPTED;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(Ingested::Respond(resp))
        }
        Err(QueueError::Unavailable(detail)) => {
            count(WebhookResult::QueueUnavailable);
            tracing::warn!(webhook.provider = target.provider.as_str(), error = %detail, "enqueue failed");
            Err(ProxyError::QueueUnavailable)
        }
    }
}

/// Whether `ip` may call an endpoint whose allow-list is `allowed` (empty: anyone). An
/// IPv4 address seen as IPv6 (`::ffff:a.b.c.d`) is compared as IPv4.
fn source_allowed(allowed: &[ipnet::IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    allowed.is_empty() || allowed.iter().any(|net| net.contains(&ip))
}

/// Asana's `X-Hook-Secret` handshake: the first hook secret an endpoint sees is stored as
/// its room secret (trust on first use) and answered; later handshakes are answered only
/// with a stored value, otherwise 401 `invalid_signature`. `roomgate secrets rm` re-arms
/// the endpoint. Nothing is enqueued or forwarded.
async fn asana_handshake(
    target: &Target<'_>,
    secret_id: &str,
    offered: &str,
    secrets: &SecretStore,
) -> Result<Ingested, ProxyError> {
    let (room, identity) = (target.room, target.policy.processor.as_str());
    let stored = secrets
        .set_if_absent(room, identity, secret_id, Secret::new(offered))
        .await
        .map_err(|e| secret_error(target.provider, e))?;
    let reply = if stored {
        tracing::info!(
            webhook.provider = target.provider.as_str(),
            secret.id = secret_id,
            "asana hook secret stored (first handshake)"
        );
        handshake::asana_reply(offered)
    } else {
        let known = secrets
            .get_at(room, identity, secret_id, target.now)
            .await
            .map_err(|e| secret_error(target.provider, e))?;
        handshake::asana_known(offered, &known)
    };
    let reply = reply.map_err(ProxyError::Signature)?;
    Ok(Ingested::Respond(reply_response(reply)))
}

/// Bodies at least this long are verified on the CPU pool ([`cpu::run`]): one HMAC over
/// 64 KiB takes well under a millisecond, one over the 1 MiB default limit several.
pub const INLINE_VERIFY_BYTES: usize = 64 * 1024;

/// Verify a request and find the handshake reply it calls for: the pure, CPU-bound part
/// of ingestion, run inline or on the CPU pool.
fn check(
    provider: Provider,
    request: &WebhookRequest<'_>,
    body: &Bytes,
    secrets: &[Secret],
    now: i64,
    options: VerifyOptions,
) -> Result<(Verified, Option<handshake::HandshakeReply>), SignatureError> {
    let verified = webhook::verify_with(provider, request, body.clone(), secrets, now, options)?;
    let reply = handshake_reply(&verified, request, secrets, now, options);
    Ok((verified, reply))
}

/// A provider handshake answer, keyed with the secret that verified the request (Zoom
/// derives its token from it; during a rotation that may not be the first value).
fn handshake_reply(
    verified: &Verified,
    request: &WebhookRequest<'_>,
    secrets: &[Secret],
    now: i64,
    options: VerifyOptions,
) -> Option<handshake::HandshakeReply> {
    let signer = match secrets {
        [only] => only,
        many => many.iter().find(|s| {
            webhook::verify_with(
                verified.provider(),
                request,
                verified.body().clone(),
                std::slice::from_ref(*s),
                now,
                options,
            )
            .is_ok()
        })?,
    };
    handshake::after_verification(verified, signer)
}

fn signature_result(e: SignatureError) -> WebhookResult {
    match e {
        SignatureError::Missing => WebhookResult::MissingSignature,
        SignatureError::Invalid => WebhookResult::InvalidSignature,
        SignatureError::Stale => WebhookResult::StaleTimestamp,
    }
}

/// A handshake reply: never cached, never sniffed as another type than it says.
fn reply_response(reply: handshake::HandshakeReply) -> Response<Body> {
    let mut resp = Response::new(full(reply.body));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    for (name, value) in reply.headers {
        headers.insert(name, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_202_body_is_json_whatever_the_delivery_id_holds() {
        for delivery in ["d-1", "quote\" back\\ nl\n tab\t nul\u{0} é ✓", ""] {
            let body = accepted_body("github-events", "1700000000000-0", delivery);
            let parsed: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(
                parsed,
                serde_json::json!({
                    "status": "accepted",
                    "queue": "github-events",
                    "id": "1700000000000-0",
                    "delivery_id": delivery,
                }),
            );
        }
    }

    /// Log lines written while `f` runs, without colours.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_secret_failure_is_logged_with_its_kind_and_answered_503() {
        let log = logged(|| {
            let e = SecretError::NotFound {
                room: "acme".into(),
                identity: "webhook-worker".into(),
                id: "gh-secert".into(),
            };
            assert!(matches!(
                secret_error(Provider::Github, e),
                ProxyError::SecretUnavailable
            ));
            let e = SecretError::Unavailable("redis timed out".into());
            assert!(matches!(
                secret_error(Provider::Github, e),
                ProxyError::SecretUnavailable
            ));
        });
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(lines[0].contains("WARN"), "{log}");
        assert!(lines[0].contains("secret.error=\"not_found\""), "{log}");
        assert!(lines[0].contains("gh-secert"), "{log}");
        assert!(lines[1].contains("secret.error=\"unavailable\""), "{log}");
        assert!(lines[1].contains("redis timed out"), "{log}");
    }

    #[test]
    fn source_ips_allow_listed_networks_only_and_empty_allows_all() {
        let nets: Vec<ipnet::IpNet> = ["3.134.147.250/32", "10.0.0.0/8"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(source_allowed(&nets, ip("3.134.147.250")));
        assert!(source_allowed(&nets, ip("10.9.8.7")));
        assert!(source_allowed(&nets, ip("::ffff:10.9.8.7")));
        assert!(!source_allowed(&nets, ip("3.134.147.251")));
        assert!(!source_allowed(&nets, ip("2001:db8::1")));
        assert!(source_allowed(&[], ip("192.0.2.1")));
    }
}
