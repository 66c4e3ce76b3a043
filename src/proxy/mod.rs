//! The request pipeline: hygiene, routing, authorization, then forward.
//!
//! [`handle`] is the one place that composes the pure decisions with the I/O modules, and
//! the one place that logs an error and renders it. Every request loads the state once,
//! computes one canonical host and path, and uses those for routing, endpoint matching,
//! authorization and forwarding.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use http::{header, HeaderValue, Request, Response, Uri};

use crate::admission;
use crate::auth::{self, Decision};
use crate::body::{full, Body};
use crate::canonical::{canonical_host, canonical_path, request_authority, Authority};
use crate::config::Validation;
use crate::conn::ConnInfo;
use crate::embed;
use crate::error::ProxyError;
use crate::forward;
use crate::forwarded::{self, Hop};
use crate::headers;
use crate::ingest::{self, Ingested};
use crate::state::{Shared, State};
use crate::telemetry::RouteMetrics;
use crate::websocket::{self, Connect};

mod identity;
mod public_url;

use identity::{authorize, set_identity};
use public_url::{public_url, received_now};

/// Paths under this prefix are roomgate's own.
pub const RESERVED_PREFIX: &str = "/.roomgate/";

/// roomgate's own cookies, never forwarded: IAP's and embed mode's.
const NOT_FORWARDED_COOKIES: [&str; 6] = {
    let iap = auth::iap::NOT_FORWARDED_COOKIES;
    [
        iap[0],
        iap[1],
        iap[2],
        iap[3],
        iap[4],
        embed::decide::COOKIE,
    ]
};

/// What one request's access-log line and metrics report.
#[derive(Debug, Default)]
struct Outcome<'s> {
    /// Whether the access log is on: host and path are copied only then.
    log: bool,
    host: String,
    path: String,
    route: Option<&'s Arc<String>>,
    /// The matched route's request series.
    series: Option<&'s RouteMetrics>,
    room: Option<&'s Arc<crate::config::PortSpec>>,
    auth: &'static str,
    /// Embed mode: the `frame-ancestors` every response carries.
    csp: Option<HeaderValue>,
    /// A rate-limited endpoint: the `RateLimit-*` headers of the response.
    rate: Option<crate::ratelimit::RateHeaders>,
}

/// Serve one request. Never fails: errors become JSON responses here.
// Not an `async fn`: it would keep its arguments (the request among them) twice in its
// state, which every connection holds.
#[allow(clippy::manual_async_fn)]
pub fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    mut req: Request<Body>,
) -> impl Future<Output = Response<Body>> + Send {
    async move {
        let started = Instant::now();
        let state = shared.state.load_full();
        let method = req.method().clone();
        let mut outcome = Outcome {
            log: tracing::enabled!(target: "roomgate::access", tracing::Level::INFO),
            auth: "none",
            ..Default::default()
        };
        // Room for what roomgate adds (request id, X-Forwarded-*, identity): one growth, not
        // one per insert.
        req.headers_mut().reserve(8);
        let request_id = headers::ensure_request_id(req.headers_mut());
        let (mut resp, err) = match pipeline(&shared, &state, &conn, req, &mut outcome).await {
            Ok(resp) => (resp, None),
            Err(e) => (e.to_response(), Some(e)),
        };
        if let Some(csp) = &outcome.csp {
            embed::frame_headers(resp.headers_mut(), csp);
        }
        if let (Some(rate), false) = (
            outcome.rate,
            matches!(err, Some(ProxyError::RateLimited { .. })),
        ) {
            rate.apply(resp.headers_mut());
        }
        resp.headers_mut()
            .insert(headers::X_REQUEST_ID, request_id.clone());
        let status = resp.status().as_u16();
        let elapsed = started.elapsed();
        shared.metrics.record_request(
            outcome.route.unwrap_or(&shared.metrics.no_route),
            outcome.series,
            status,
            match &err {
                None => "forwarded",
                Some(e) => e.status_code().1,
            },
            elapsed.as_secs_f64(),
        );
        tracing::event!(
            target: "roomgate::access",
            tracing::Level::INFO,
            request.id = request_id.to_str().unwrap_or(""),
            http.method = %method,
            http.host = %outcome.host,
            http.path = %outcome.path,
            http.status = status,
            http.response_bytes = http_body::Body::size_hint(resp.body()).exact(),
            duration_ms = crate::telemetry::millis(elapsed),
            route.domain = outcome.route.map(|r| r.as_str()).unwrap_or(""),
            route.room = outcome.room.map(|p| p.room.as_str()).unwrap_or(""),
            auth.result = outcome.auth,
            client.ip = %conn.peer.ip(),
            error.code = err.as_ref().map(|e| e.status_code().1).unwrap_or(""),
            error.detail = err.as_ref().map(|e| e.to_string()).unwrap_or_default(),
            "request"
        );
        resp
    }
}

async fn pipeline<'s>(
    shared: &Shared,
    state: &'s State,
    conn: &ConnInfo,
    req: Request<Body>,
    outcome: &mut Outcome<'s>,
) -> Result<Response<Body>, ProxyError> {
    let (mut parts, body) = req.into_parts();

    // One pass over the names: the steps below act only on what is there.
    let names = headers::Names::of(&parts.headers);
    if names.underscore() {
        return Err(ProxyError::InvalidHeader("underscore in a header name"));
    }
    // roomgate is no forward proxy: the one CONNECT it takes is an RFC 8441 WebSocket.
    let connect = websocket::classify(&parts.method, &parts.extensions);
    if connect == Connect::Refused {
        return Err(ProxyError::MethodNotAllowed);
    }
    // The authority routed on is the one the service receives as `Host` (below).
    let authority = request_authority(&parts.uri, &parts.headers);
    let Some((raw_host, host)) = authority
        .as_ref()
        .and_then(Authority::as_str)
        .and_then(|raw| Some((raw, canonical_host(raw)?)))
    else {
        return Err(ProxyError::InvalidHeader(
            "missing, repeated or malformed Host",
        ));
    };
    if outcome.log {
        outcome.host = host.to_string();
    }
    // Borrowed from the request's target, which stays as it is until the path is written
    // back into it below.
    let path = match canonical_path(parts.uri.path()) {
        Ok(p) => p,
        Err(e) => return Err(ProxyError::InvalidPath(e)),
    };
    if outcome.log {
        outcome.path = path.to_string();
    }
    if !conn.host_fits(&host) {
        return Err(ProxyError::Misdirected);
    }
    if path.starts_with(RESERVED_PREFIX) {
        // These take the request whole: the path stops borrowing from it.
        let path = path.into_owned();
        if embed::serves(&path) {
            outcome.auth = "embed";
            let call = embed::Call {
                runtime: &shared.embed,
                config: &state.config,
                routes: &state.routes,
                conn,
                host: &host,
                path: &path,
                now: (shared.clock)(),
            };
            let result = Box::pin(embed::serve(call, parts, body)).await;
            if result.is_err() && matches!(path.as_str(), embed::LAUNCH_PATH | embed::SESSION_PATH)
            {
                outcome.csp = Some(embed::csp_value(None));
            }
            return result;
        }
        outcome.auth = "iap";
        let reserved = crate::signin::Reserved {
            shared,
            state,
            conn,
            host: &host,
            path: &path,
        };
        // Boxed: the sign-in flow's state would otherwise size every request's future.
        return match Box::pin(crate::signin::serve(reserved, parts, body)).await {
            Ok(resp) => Ok(resp),
            Err(e) => Err(e),
        };
    }
    let Some(resolved) = state.routes.resolve(&host, &path) else {
        return Err(ProxyError::NoRoute);
    };
    outcome.route = Some(resolved.domain);
    outcome.series = Some(resolved.metrics);
    outcome.room = Some(resolved.port);

    let config = &state.config;
    // Only a WebSocket handshake keeps `Upgrade`; any other is stripped as hop-by-hop.
    let upgrade = names.upgrade() && websocket::is_handshake(&parts.headers);
    names.strip_identity(&mut parts.headers);
    names.strip_hop_by_hop(&mut parts.headers, upgrade);
    let trusted = headers::is_trusted(conn.peer.ip(), &config.file.trusted_proxies);
    let forwarded = forwarded::decide(
        &mut parts.headers,
        Hop {
            peer: &conn.peer_value,
            tls: conn.tls,
            host: &host,
            trusted,
        },
    );

    // Embed mode only on a port that serves it; elsewhere the embed credentials are
    // nobody's and are dropped below.
    let embed_mode = resolved
        .policy
        .embed
        .then(|| embed::decide::presented(&parts.method, &parts.headers))
        .flatten();
    let in_embed_mode = embed_mode.is_some();
    // Authorization reads the host and path routing used.
    let place = auth::iap::Place {
        raw_host,
        host: &host,
        path: &path,
        tls: conn.tls,
    };
    let (identity, body) = match (resolved.policy.validation, embed_mode) {
        (Validation::Webhook(provider), _) => {
            let raw_target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let public_url = public_url(&parts.headers, conn.tls, trusted, raw_host, raw_target);
            let target = ingest::Target {
                provider,
                client_ip: headers::client_ip(
                    &parts.headers,
                    conn.peer.ip(),
                    &config.file.trusted_proxies,
                ),
                policy: resolved.policy,
                room: &resolved.port.room,
                host: &host,
                path: &path,
                public_url: &public_url,
                forwarded: forwarded.fields(),
                now: received_now(),
            };
            let sinks = ingest::Sinks {
                secrets: &shared.secrets,
                queue: &shared.queue,
                metrics: &shared.metrics,
            };
            match Box::pin(ingest::ingest(target, &parts, body, sinks)).await {
                Ok(Ingested::Respond(resp)) => {
                    outcome.auth = "verified";
                    return Ok(resp);
                }
                Ok(Ingested::Forward(verified)) => {
                    outcome.auth = "verified";
                    (None, full(verified.into_body()))
                }
                Err(e) => {
                    outcome.auth =
                        if matches!(e, ProxyError::Signature(_) | ProxyError::SourceNotAllowed) {
                            "denied"
                        } else {
                            "error"
                        };
                    return Err(e);
                }
            }
        }
        (_, Some(presented)) => {
            // The route's own origin, needed only to judge an `Origin`.
            let own = parts
                .headers
                .contains_key(header::ORIGIN)
                .then(|| public_url(&parts.headers, conn.tls, trusted, raw_host, ""));
            // Boxed: the embed session lookup's state would otherwise size every request's
            // future.
            let judged = Box::pin(admission::judge_embed(
                shared,
                presented,
                &resolved.port.room,
                &host,
                &parts.headers,
                own.as_deref(),
            ))
            .await;
            outcome.csp = Some(judged.1);
            match judged.0 {
                Ok(identity) => {
                    outcome.auth = "embed";
                    (Some(identity), body)
                }
                Err(e) => {
                    outcome.auth = "denied";
                    return Err(e);
                }
            }
        }
        (_, None) => match authorize(shared, state, &parts, &resolved, place).await {
            Decision::Public => {
                outcome.auth = "public";
                (None, body)
            }
            Decision::Allow(identity) => {
                outcome.auth = "allowed";
                // A participant token in `Authorization` was verified here: roomgate's
                // credential, not the service's, unless the port asks for it.
                if !resolved.policy.forward_authorization {
                    parts.headers.remove(header::AUTHORIZATION);
                }
                (Some(identity), body)
            }
            Decision::Redirect(location) => {
                outcome.auth = "redirect";
                let mut resp = Response::new(crate::body::empty());
                *resp.status_mut() = http::StatusCode::FOUND;
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return Ok(resp);
            }
            Decision::NotAParticipant { email, csrf } => {
                outcome.auth = "denied";
                return Err(ProxyError::NotAParticipantPage { email, csrf });
            }
            Decision::Deny(e) => {
                outcome.auth = "denied";
                return Err(ProxyError::Auth(e));
            }
        },
    };
    let caller = admission::Caller {
        identity: identity.as_ref(),
        peer: conn.peer.ip(),
        trusted: &config.file.trusted_proxies,
    };
    let charged = match admission::limit(shared, &parts.headers, &resolved, caller).await {
        Ok(c) => c,
        Err(e) => {
            outcome.auth = "rate_limited";
            return Err(e);
        }
    };
    outcome.rate = charged.headers;
    let asserted = state
        .config
        .assertion
        .as_deref()
        .zip(identity.as_ref())
        .map(|(a, id)| {
            let iss = public_url(&parts.headers, conn.tls, trusted, raw_host, "");
            let claims = crate::assertion::Claims {
                iss: &iss,
                aud: &host,
                sub: &id.user,
                email: id.email.as_deref(),
                room: &resolved.port.room,
                api: &id.api_scope,
            };
            a.sign(&claims, (shared.clock)())
        });
    if set_identity(&mut parts.headers, identity.as_ref(), asserted.flatten()).is_err() {
        outcome.auth = "denied";
        return Err(ProxyError::Auth(auth::AuthError::InvalidToken));
    }
    if names.cookie() {
        crate::cookies::strip(&mut parts.headers, &NOT_FORWARDED_COOKIES);
    }
    let token_sent =
        names.roomgate() && parts.headers.remove(embed::decide::TOKEN_HEADER).is_some();
    if token_sent || in_embed_mode {
        // The embed token is a credential of roomgate's, not the service's, unless the
        // port asks for it.
        if !resolved.policy.forward_authorization
            && auth::bearer(&parts.headers)
                .is_ok_and(|b| b.is_some_and(embed::credentials::looks_like_token))
        {
            parts.headers.remove(header::AUTHORIZATION);
        }
    }
    // The service gets the authority that was routed and authorized: an absolute-form
    // target's or HTTP/2 `:authority` wins over a `Host` naming another (RFC 9112 §3.2.2).
    // A `Host` that already says it (nearly always) is kept as it is.
    if parts.headers.get(header::HOST).map(HeaderValue::as_bytes) != Some(raw_host.as_bytes()) {
        match HeaderValue::from_str(raw_host) {
            Ok(h) => parts.headers.insert(header::HOST, h),
            Err(_) => {
                return Err(ProxyError::InvalidHeader(
                    "missing, repeated or malformed Host",
                ))
            }
        };
    }
    // The upstream receives the canonical path. A borrowed one is the target's own path;
    // the target is rebuilt only when normalising changed it.
    if let Cow::Owned(path) = path {
        if path != parts.uri.path() {
            let Some(u) = rebuild_uri(&path, parts.uri.query()) else {
                return Err(ProxyError::InvalidPath(
                    crate::canonical::PathError::BadEncoding,
                ));
            };
            parts.uri = u;
        }
    }
    let body = if connect == Connect::WebSocket {
        // Authorized like any request; the service gets the HTTP/1.1 handshake.
        websocket::to_upgrade(&mut parts);
        crate::body::empty()
    } else {
        body
    };
    let req = Request::from_parts(parts, body);
    // Boxed: built in place once, instead of copied with every move of the request's
    // future (into its box, then into each poll).
    let to = forward::To {
        port: resolved.port,
        route: resolved.domain,
        forwarded: &forwarded,
        handshake: upgrade || connect == Connect::WebSocket,
    };
    let result = Box::pin(
        shared
            .upstreams
            .forward(to, req, state.forward_limits, &shared.metrics),
    )
    .await;
    if let Some(quota_key) = charged.refund {
        let failed = match &result {
            Ok(resp) => resp.status().is_server_error(),
            Err(e) => matches!(
                e,
                ProxyError::BadGateway | ProxyError::UpstreamTimeout | ProxyError::UpstreamNotReady
            ),
        };
        if failed {
            let limits = Arc::clone(&shared.embed.limits);
            tokio::spawn(async move {
                if let Err(e) = limits.refund(&quota_key).await {
                    tracing::warn!(error = %e, "a quota refund was lost");
                }
            });
        }
    }
    result
}

/// The canonical path with the original query, as the upstream will receive it.
fn rebuild_uri(path: &str, query: Option<&str>) -> Option<Uri> {
    let pq = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    pq.parse().ok()
}
