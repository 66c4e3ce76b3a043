//! The pipeline's steps between routing and forwarding that this module owns: judging a
//! request in embed mode, and charging it against its endpoint's rate limit and daily
//! quota.
//!
//! Each turns the pure decisions of [`crate::embed::decide`] and [`crate::ratelimit`],
//! and the lookups they need, into an identity or a [`ProxyError`]. It does not forward,
//! log a credential, or render a response.

use std::future::Future;

use futures_util::future::Either;
use http::{header, HeaderMap, HeaderValue};

use crate::auth::{AuthError, Identity};
use crate::embed::{self, decide::Presented};
use crate::error::ProxyError;
use crate::headers;
use crate::ratelimit::{self, Charged, Refused};
use crate::route::Resolved;
use crate::state::Shared;

/// Judge a request in embed mode: the identity, or the refusal; and the
/// `frame-ancestors` its response carries either way. `own_url` is the route's own
/// origin as the client named it (needed only when the request has an `Origin`).
pub async fn judge_embed(
    shared: &Shared,
    presented: Result<Presented<'_>, AuthError>,
    room: &str,
    host: &str,
    headers: &HeaderMap,
    own_url: Option<&str>,
) -> (Result<Identity, ProxyError>, HeaderValue) {
    let presented = match presented {
        Ok(p) => p,
        Err(e) => return (Err(ProxyError::Auth(e)), embed::csp_value(None)),
    };
    let session = match shared.embed.session_for(presented, (shared.clock)()).await {
        Ok(s) => s,
        Err(e) => return (Err(ProxyError::Auth(e)), embed::csp_value(None)),
    };
    let own = own_url.and_then(|u| embed::session::parse_origin(u).ok());
    let origin = headers.get(header::ORIGIN);
    let result =
        embed::decide::admit(&session, room, host, origin, own.as_deref()).map_err(|r| match r {
            embed::decide::Refusal::Forbidden => ProxyError::Auth(AuthError::Forbidden),
            embed::decide::Refusal::ForbiddenOrigin => ProxyError::ForbiddenOrigin,
        });
    (result, embed::csp_value(Some(&session)))
}

/// Who a request counts against: its identity, else its client address.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub identity: Option<&'a Identity>,
    pub peer: std::net::IpAddr,
    pub trusted: &'a [ipnet::IpNet],
}

/// Charge the request against the endpoint's rate limit and daily quota, per caller
/// (the identity's user, else the client address). The headers of an admitted request
/// are in the [`Charged`] answer; a refusal carries its own.
///
/// Not an `async fn`: an endpoint without limits is answered at once, and the charge
/// (a Redis round trip, boxed) does not size every request's future.
pub fn limit<'a>(
    shared: &'a Shared,
    headers: &'a HeaderMap,
    resolved: &'a Resolved<'a>,
    caller: Caller<'a>,
) -> impl Future<Output = Result<Charged, ProxyError>> + Send + 'a {
    let policy = resolved.policy;
    if policy.rate_limit.is_none() && policy.quota_daily.is_none() {
        return Either::Left(std::future::ready(Ok(Charged::default())));
    }
    Either::Right(Box::pin(charge(shared, headers, resolved, caller)))
}

async fn charge(
    shared: &Shared,
    headers: &HeaderMap,
    resolved: &Resolved<'_>,
    caller: Caller<'_>,
) -> Result<Charged, ProxyError> {
    let policy = resolved.policy;
    let who = match caller.identity {
        Some(id) => format!("user:{}", id.user),
        None => format!(
            "ip:{}",
            headers::client_ip(headers, caller.peer, caller.trusted)
        ),
    };
    let port = &resolved.port;
    let scope = format!("{}:{}:{}", port.room, port.num, resolved.endpoint);
    let now = (shared.clock)();
    ratelimit::charge(&*shared.embed.limits, policy, &scope, &who, now)
        .await
        .map_err(|refused| match refused {
            Refused::RateLimited {
                headers,
                retry_after,
            } => ProxyError::RateLimited {
                headers,
                retry_after,
            },
            Refused::QuotaExceeded { retry_after } => ProxyError::QuotaExceeded { retry_after },
        })
}
