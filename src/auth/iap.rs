//! The check of a `cookie` port: who a browser request on a route domain is, from its
//! IAP session (or a participant token), and where a browser without one signs in.
//!
//! The sign-in itself (the flows under `/.roomgate/`) is [`crate::signin`]; this module
//! owns the decision `proxy` calls for every request on a `cookie` port, and the values
//! both share: the sign-in host, the sealed return state, the cookie names and lifetimes.
//! A session is valid only on the domain it was handed off to; membership is checked on
//! every request against the current config.

use std::time::Duration;

use http::{header, HeaderMap, Method};
use serde::{Deserialize, Serialize};

use super::membership::participant_scope;
use super::oidc::OidcClient;
use super::redirect::safe_return_path;
use super::session::{SessionStore, StoreError};
use super::signing::{self, random_id};
use super::token::TokenVerifier;
use super::IAP_COOKIE;
use super::{AuthError, Decision, Identity};
use crate::canonical::canonical_host;
use crate::config::{Config, Iap};
use crate::cookies;

/// The sign-in host's own session cookie.
pub const SIGNIN_COOKIE: &str = "__Host-roomgate_signin";
/// Binds a sign-in flow to the browser that started it.
pub const FLOW_COOKIE: &str = "__Host-roomgate_flow";
/// The same two without `secure_cookies` (plain-HTTP local use), where browsers refuse
/// `__Host-` cookies.
pub const PLAIN_SIGNIN_COOKIE: &str = "__roomgate_signin";
pub const PLAIN_FLOW_COOKIE: &str = "__roomgate_flow";

pub const START_PATH: &str = "/.roomgate/start";
pub const LOGIN_PATH: &str = "/.roomgate/login";
pub const OIDC_CALLBACK_PATH: &str = "/.roomgate/oidc/callback";
pub const CALLBACK_PATH: &str = "/.roomgate/callback";
pub const SIGNOUT_PATH: &str = "/.roomgate/signout";

/// Lifetime of a return state and of a sign-in flow.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// Lifetime of a handoff code.
pub const HANDOFF_TTL: Duration = Duration::from_secs(60);
/// Why a sign-in step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// Malformed, tampered, expired, replayed or misdirected state, code or form.
    #[error("invalid sign-in request: {0}")]
    Invalid(&'static str),
    /// The provider refused or its answer did not verify.
    #[error("sign-in failed")]
    Failed,
    /// The provider or the session store could not be reached.
    #[error("sign-in unavailable")]
    Unavailable,
    #[error("too many sign-in attempts")]
    RateLimited,
    /// Every sign-in form slot is checking a password.
    #[error("too many sign-ins at once")]
    Busy,
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "iap session store error");
        SignInError::Unavailable
    }
}

/// What IAP keeps across reloads: the session store and the OIDC relying party.
#[derive(Debug)]
pub struct IapRuntime {
    pub sessions: SessionStore,
    pub oidc: OidcClient,
}

impl IapRuntime {
    /// Sessions in the shared Redis `kv` when there is one, else in memory.
    pub fn new(kv: Option<&crate::kv::Kv>) -> IapRuntime {
        IapRuntime {
            sessions: SessionStore::new(kv),
            oidc: OidcClient::new(),
        }
    }
}

/// The sign-in host as configured, parsed once per config (see `State::build`).
#[derive(Debug, Clone)]
pub struct AuthHost {
    /// `auth_url` without a trailing slash.
    pub base: String,
    /// `scheme://authority`, as browsers send it in `Origin`.
    pub origin: String,
    /// Canonical host name.
    pub host: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The port `auth_url` names, if it names one.
    pub port: Option<u16>,
}

impl AuthHost {
    pub fn from(iap: &Iap) -> Option<AuthHost> {
        let base = iap.auth_url.trim_end_matches('/').to_owned();
        let uri: http::Uri = base.parse().ok()?;
        let authority = uri.authority()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let origin = format!("{scheme}://{}", authority.as_str()).to_ascii_lowercase();
        let host = canonical_host(authority.as_str())?.into_owned();
        Some(AuthHost {
            base,
            origin,
            host,
            scheme,
            port: authority.port_u16(),
        })
    }
}

/// The sealed return state: where the browser goes back to after sign-in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReturnState {
    /// `scheme://host[:port]` of the route domain as the browser used it.
    pub origin: String,
    /// Canonical host: the handoff code's audience.
    pub host: String,
    /// Same-origin path and query.
    pub path: String,
    /// Makes the state single-use.
    pub jti: String,
}

/// The cookies roomgate never forwards to a service: the domain session, and the sign-in
/// host's own (a sign-in host that is also a route domain gets them on every path).
pub const NOT_FORWARDED_COOKIES: [&str; 5] = [
    IAP_COOKIE,
    SIGNIN_COOKIE,
    FLOW_COOKIE,
    PLAIN_SIGNIN_COOKIE,
    PLAIN_FLOW_COOKIE,
];

/// True for a top-level browser navigation: GET/HEAD, not XHR, not an upgrade, and an
/// `Accept` that admits `text/html`.
pub fn wants_html(method: &Method, headers: &HeaderMap) -> bool {
    if !(method == Method::GET || method == Method::HEAD)
        || headers.contains_key("x-requested-with")
        || headers.contains_key(header::UPGRADE)
    {
        return false;
    }
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            !zero && matches!(media.as_str(), "text/html" | "text/*" | "*/*")
        })
}

/// Where a request is, as the pipeline resolved it for routing: authorization reads the
/// same view rather than deriving its own from the request.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    /// The authority as the client sent it (target or `Host`): the origin's port.
    pub raw_host: &'a str,
    /// The canonical host and path.
    pub host: &'a str,
    pub path: &'a str,
    /// The request came to a TLS listener.
    pub tls: bool,
}

/// The origin the browser used: scheme and host:port. The scheme is a trusted proxy's
/// `X-Forwarded-Proto` (no other reaches the map, [`crate::forwarded::decide`]), else the
/// listener's.
pub fn request_origin(headers: &HeaderMap, place: &Place<'_>) -> String {
    let scheme = match headers
        .get(crate::forwarded::X_FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        Some(_) => "http",
        None if place.tls => "https",
        None => "http",
    };
    let port = place
        .raw_host
        .rsplit_once(':')
        .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(String::new(), |(_, p)| format!(":{p}"));
    format!("{scheme}://{}{port}", place.host)
}

fn looks_like_jwt(v: &str) -> bool {
    v.split('.').count() == 3
}

/// What the check of a `cookie` port reads: the current config and token keys, the
/// sign-in host, the session store and the time.
pub struct CookieGate<'a> {
    pub config: &'a Config,
    pub tokens: &'a TokenVerifier,
    pub auth_host: Option<&'a AuthHost>,
    pub sessions: &'a SessionStore,
    pub now: i64,
    pub place: Place<'a>,
}

/// Authorize a request on a `cookie` port of `room`: participant token in
/// `Authorization` (valid passes, invalid is rejected), else the `__meshagent_iap` cookie
/// (a session or a participant token), with membership checked against the current
/// config; browsers without a session are sent to sign in.
pub async fn authorize(gate: CookieGate<'_>, parts: &http::request::Parts, room: &str) -> Decision {
    let CookieGate {
        config,
        tokens,
        now,
        ..
    } = gate;
    match super::bearer(&parts.headers) {
        Ok(None) => {}
        Ok(Some(_)) | Err(_) => {
            return super::authorize_bearer(&parts.headers, parts.uri.query(), tokens, room, now)
        }
    }
    let Some(iap) = &config.file.iap else {
        return Decision::Deny(AuthError::MissingAuth);
    };
    let html = wants_html(&parts.method, &parts.headers);
    match cookies::value(&parts.headers, IAP_COOKIE) {
        Some(value) if looks_like_jwt(value) => match tokens.verify(value, room, now) {
            Ok(id) => return Decision::Allow(id),
            // An expired or broken token must not lock a browser out: it signs in again,
            // and the new session replaces the cookie.
            Err(AuthError::InvalidToken) if html => {}
            Err(e) => return Decision::Deny(e),
        },
        Some(value) => match gate.sessions.get(value, iap.idle_ttl.0, now).await {
            // A session is valid only on the domain it was handed off to.
            Ok(Some((d, session))) if session.is_domain_session_for(gate.place.host) => {
                let rules = config
                    .room(room)
                    .map(|r| r.participants.as_slice())
                    .unwrap_or(&[]);
                return match participant_scope(rules, &session.email, &session.groups) {
                    Some(api_scope) => Decision::Allow(Identity {
                        user: session.email.clone(),
                        api_scope,
                        email: Some(session.email.clone()),
                        embed_session: None,
                    }),
                    None if html => Decision::NotAParticipant {
                        email: session.email.clone(),
                        csrf: signing::tag(&config.cookie_keys, "signout", &d).unwrap_or_default(),
                    },
                    None => Decision::Deny(AuthError::NotAParticipant),
                };
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "iap session store error");
                return Decision::Deny(AuthError::SessionUnavailable);
            }
        },
        None => {}
    }
    if !html {
        return Decision::Deny(AuthError::MissingAuth);
    }
    match gate
        .auth_host
        .and_then(|auth| sign_in_location(config, auth, parts, &gate.place, now))
    {
        Some(location) => Decision::Redirect(location),
        None => Decision::Deny(AuthError::MissingAuth),
    }
}

/// `{auth_url}/.roomgate/start?rs=<sealed return state>` for this request.
fn sign_in_location(
    config: &Config,
    auth: &AuthHost,
    parts: &http::request::Parts,
    place: &Place<'_>,
    now: i64,
) -> Option<String> {
    let target = match parts.uri.query() {
        Some(q) => format!("{}?{q}", place.path),
        None => place.path.to_owned(),
    };
    let ret = ReturnState {
        origin: request_origin(&parts.headers, place),
        host: place.host.to_owned(),
        path: safe_return_path(&target).unwrap_or_else(|| "/".into()),
        jti: random_id(),
    };
    let sealed = signing::seal(
        &config.cookie_keys,
        "return",
        &auth.host,
        now + FLOW_TTL.as_secs() as i64,
        &ret,
    )
    .or_else(|_| {
        // An over-long path still signs in, and lands on `/`.
        let short = ReturnState {
            path: "/".into(),
            ..ret
        };
        signing::seal(
            &config.cookie_keys,
            "return",
            &auth.host,
            now + FLOW_TTL.as_secs() as i64,
            &short,
        )
    })
    .ok()?;
    Some(format!("{}{START_PATH}?rs={sealed}", auth.base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::header_map as h;

    /// The origin a sign-in returns to: the listener's scheme, unless a trusted proxy's
    /// `X-Forwarded-Proto` is in the map (an untrusted peer's never is), with the port the
    /// browser used.
    #[test]
    fn the_origin_has_the_listeners_scheme_unless_a_trusted_proxy_named_one() {
        let origin = |pairs: &[(&str, &str)], tls: bool| {
            let headers = h(pairs);
            let place = Place {
                raw_host: headers["host"].to_str().unwrap(),
                host: "app.test",
                path: "/",
                tls,
            };
            request_origin(&headers, &place)
        };
        let plain = [("host", "App.test:8443")];
        assert_eq!(origin(&plain, true), "https://app.test:8443");
        assert_eq!(origin(&plain, false), "http://app.test:8443");
        let proxied = [("host", "app.test"), ("x-forwarded-proto", "http")];
        assert_eq!(origin(&proxied, true), "http://app.test");
        let proxied = [("host", "app.test"), ("x-forwarded-proto", "https")];
        assert_eq!(origin(&proxied, false), "https://app.test");
    }

    #[test]
    fn a_browser_navigation_wants_html() {
        let accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(&Method::GET, &h(&[("accept", accept)])));
        assert!(wants_html(&Method::HEAD, &h(&[("accept", "*/*")])));
    }

    #[test]
    fn api_clients_xhr_uploads_and_non_get_do_not_want_html() {
        assert!(!wants_html(
            &Method::GET,
            &h(&[("accept", "application/json")])
        ));
        assert!(!wants_html(&Method::GET, &h(&[])));
        assert!(!wants_html(
            &Method::GET,
            &h(&[("accept", "text/html;q=0")])
        ));
        assert!(!wants_html(
            &Method::GET,
            &h(&[
                ("accept", "text/html"),
                ("x-requested-with", "XMLHttpRequest")
            ])
        ));
        assert!(!wants_html(&Method::POST, &h(&[("accept", "text/html")])));
        assert!(!wants_html(
            &Method::GET,
            &h(&[("accept", "text/html"), ("upgrade", "websocket")])
        ));
    }
}
