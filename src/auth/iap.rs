//! Cookie IAP: browser sign-in through one central sign-in host, handed off to every
//! route domain, and the per-request check of a `cookie` port.
//!
//! Flows (paths under `/.roomgate/`):
//! 1. A browser GET on a route domain without a session gets a 302 to
//!    `{auth_url}/.roomgate/start?rs=…`, where `rs` is a sealed return state (origin, host,
//!    path; audience: the sign-in host; 10 min; single use).
//! 2. `start` on the sign-in host: a user already signed in there (cookie
//!    `__Host-roomgate_signin`) goes straight to the handoff; otherwise a sign-in flow is
//!    recorded server-side under an opaque id (10 min, single use), bound to the browser
//!    by the `__Host-roomgate_flow` cookie, and the browser goes to the provider (OIDC:
//!    the id is the `state`, with PKCE S256 and a nonce) or sees the static sign-in form.
//!    (Without `secure_cookies` the two are `__roomgate_*`, scoped to `/.roomgate/`.)
//! 3. `oidc/callback` (the only redirect URI) or `login` (static form) ends the flow and
//!    creates the sign-in host session.
//! 4. Handoff: a one-time code (60 s, single use, audience: the route's host) is posted
//!    by an auto-submitting form to `{origin}/.roomgate/callback`, which creates the
//!    domain's own session, sets `__meshagent_iap` and 303s to the original path.
//! 5. `signout` (POST, CSRF token) ends the sign-in session and every domain session
//!    handed off from it, whichever of them it is posted to, and clears the cookie.
//!
//! Every parameter that crosses the browser is sealed or opaque, and everything
//! malformed fails closed with a 4xx. Provider tokens never leave `oidc`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::{Deserialize, Serialize};

use super::membership::participant_scope;
use super::oidc::{OidcClient, OidcError};
use super::redirect::safe_return_path;
use super::session::{Session, SessionStore, StoreError};
use super::signing::{self, digest, random_id};
use super::IAP_COOKIE;
use super::{pages, AuthError, Decision, Identity};
use crate::body::{full, Body};
use crate::canonical::normalize_email;
use crate::canonical::{canonical_host, canonical_path, DomainPattern};
use crate::config::{Config, Iap, IapProvider, Listen};
use crate::conn::ConnInfo;
use crate::cpu::{self, Slots};
use crate::error::ProxyError;
use crate::route::Resolved;
use crate::state::{Shared, State};

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
/// Static sign-in attempts allowed per user, and per client IP, in [`LOGIN_WINDOW`].
pub const LOGIN_LIMIT_PER_USER: u64 = 10;
pub const LOGIN_LIMIT_PER_IP: u64 = 50;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(900);
/// Largest form body read on `/.roomgate/*`.
const MAX_FORM_BYTES: usize = 8 * 1024;

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
    base: String,
    /// `scheme://authority`, as browsers send it in `Origin`.
    origin: String,
    /// Canonical host name.
    host: String,
    /// `http` or `https`.
    scheme: String,
    /// The port `auth_url` names, if it names one.
    port: Option<u16>,
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
struct ReturnState {
    /// `scheme://host[:port]` of the route domain as the browser used it.
    origin: String,
    /// Canonical host: the handoff code's audience.
    host: String,
    /// Same-origin path and query.
    path: String,
    /// Makes the state single-use.
    jti: String,
}

/// A sign-in in progress, stored server-side under its opaque id.
#[derive(Debug, Serialize, Deserialize)]
struct Flow {
    ret: ReturnState,
    /// Digest of the browser's `__roomgate_flow` cookie.
    binding: String,
    #[serde(default)]
    pkce_verifier: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// What a handoff code stands for, stored server-side under the code's digest.
#[derive(Debug, Serialize, Deserialize)]
struct Handoff {
    aud: String,
    path: String,
    session: Session,
}

// ---- pure helpers ----------------------------------------------------------------------

/// The sign-in host's own cookies: their names and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AuthCookies {
    signin: &'static str,
    flow: &'static str,
    path: &'static str,
}

/// With `secure_cookies`, the `__Host-` names (Secure, Path=/, no Domain: a browser takes
/// them from no other host, so a sibling domain cannot plant a flow or sign-in cookie);
/// without, plain names scoped to `/.roomgate/`.
fn auth_cookies(iap: &Iap) -> AuthCookies {
    if iap.secure_cookies {
        AuthCookies {
            signin: SIGNIN_COOKIE,
            flow: FLOW_COOKIE,
            path: "/",
        }
    } else {
        AuthCookies {
            signin: PLAIN_SIGNIN_COOKIE,
            flow: PLAIN_FLOW_COOKIE,
            path: "/.roomgate/",
        }
    }
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

/// The value of cookie `name` in the request, if any (the first one).
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

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

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, host-only, `Secure` unless disabled.
/// `max_age` 0 clears the cookie.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    let mut c = cookie::Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age.max(0)));
    if max_age <= 0 {
        c = c.expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
    }
    c.build().to_string()
}

/// The host as the client sent it (authority or `Host`), for origins with a port.
fn raw_host(parts: &http::request::Parts) -> Option<&str> {
    crate::canonical::request_authority(&parts.uri, &parts.headers)
}

/// The origin the browser used: scheme (as `set_forwarded` recorded it) and host:port.
fn request_origin(parts: &http::request::Parts, host: &str) -> String {
    let scheme = match parts
        .headers
        .get(crate::headers::X_FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let port = raw_host(parts)
        .and_then(|r| {
            r.rsplit_once(':')
                .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .map(|(_, p)| p.to_owned())
        })
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    format!("{scheme}://{host}{port}")
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut resp = Response::new(full(""));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn add_cookie(resp: &mut Response<Body>, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// True when `Origin` is present and equals `expected` (`scheme://host[:port]`).
fn origin_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.eq_ignore_ascii_case(expected))
}

/// `false` only when an `Origin` is present and names another host than `host`.
fn origin_allows_host(headers: &HeaderMap, host: &str) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(o) => o
            .split_once("://")
            .and_then(|(_, a)| canonical_host(a))
            .is_some_and(|h| h == host),
    }
}

fn looks_like_jwt(v: &str) -> bool {
    v.split('.').count() == 3
}

/// True when `host` (canonical) is a configured route domain, exactly or through a
/// wildcard, whatever paths it routes.
fn domain_configured(config: &Config, host: &str) -> bool {
    config
        .file
        .routes
        .iter()
        .any(|r| domain_matches(&r.domain, host))
}

/// True when the route domain `pattern` covers the canonical `host` (as routing does: a
/// wildcard covers exactly one more label).
fn domain_matches(pattern: &str, host: &str) -> bool {
    match DomainPattern::parse(pattern) {
        Ok(DomainPattern::Exact(d)) => d == host,
        Ok(DomainPattern::Wildcard(d)) => {
            host.split_once('.').is_some_and(|(_, parent)| parent == d)
        }
        Err(_) => false,
    }
}

/// True when a handoff may post its code to `origin` for the route host `host`: the
/// sign-in host's scheme (an https sign-in host never hands off over plain http), `host`
/// itself, and a port roomgate is reached on: the scheme's default, the one `auth_url`
/// names, or that of roomgate's own listener for the scheme. Anything else came from a
/// `Host` header the client chose.
fn handoff_origin_allowed(origin: &str, host: &str, auth: &AuthHost, listen: &Listen) -> bool {
    let scheme = auth.scheme.as_str();
    let (default, listener) = if scheme == "https" {
        (443, listen.https)
    } else {
        (80, listen.http)
    };
    origin == format!("{scheme}://{host}")
        || [Some(default), auth.port, listener.map(|a| a.port())]
            .into_iter()
            .flatten()
            .any(|p| origin == format!("{scheme}://{host}:{p}"))
}

// ---- the cookie port check -------------------------------------------------------------

/// Authorize a request on a `cookie` port: participant token in `Authorization` (valid
/// passes, invalid is rejected), else the `__meshagent_iap` cookie (a session or a
/// participant token), with membership checked against the current config; browsers
/// without a session are sent to sign in.
pub async fn authorize(
    shared: &Shared,
    state: &State,
    parts: &http::request::Parts,
    resolved: &Resolved<'_>,
) -> Decision {
    let config = &state.config;
    let now = (shared.clock)();
    let room = &resolved.port.room;
    match super::bearer(&parts.headers) {
        Ok(None) => {}
        Ok(Some(_)) | Err(_) => {
            return super::authorize_bearer(
                &parts.headers,
                parts.uri.query(),
                &state.tokens,
                room,
                now,
            )
        }
    }
    let Some(iap) = &config.file.iap else {
        return Decision::Deny(AuthError::MissingAuth);
    };
    let html = wants_html(&parts.method, &parts.headers);
    let host = raw_host(parts).and_then(canonical_host);
    match cookie_value(&parts.headers, IAP_COOKIE) {
        Some(value) if looks_like_jwt(value) => match state.tokens.verify(value, room, now) {
            Ok(id) => return Decision::Allow(id),
            // An expired or broken token must not lock a browser out: it signs in again,
            // and the new session replaces the cookie.
            Err(AuthError::InvalidToken) if html => {}
            Err(e) => return Decision::Deny(e),
        },
        Some(value) => match shared.iap.sessions.get(value, iap.idle_ttl.0, now).await {
            // A session is valid only on the domain it was handed off to.
            Ok(Some((d, session)))
                if host
                    .as_deref()
                    .is_some_and(|h| session.is_domain_session_for(h)) =>
            {
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
    match sign_in_location(state, parts, now) {
        Some(location) => Decision::Redirect(location),
        None => Decision::Deny(AuthError::MissingAuth),
    }
}

/// `{auth_url}/.roomgate/start?rs=<sealed return state>` for this request.
fn sign_in_location(state: &State, parts: &http::request::Parts, now: i64) -> Option<String> {
    let config = &state.config;
    let auth = state.auth_host.as_ref()?;
    let host = canonical_host(raw_host(parts)?)?.into_owned();
    let path = canonical_path(parts.uri.path()).ok()?.into_owned();
    let target = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let ret = ReturnState {
        origin: request_origin(parts, &host),
        host,
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

// ---- the reserved paths ----------------------------------------------------------------

/// Everything a reserved-path handler needs about one request.
pub struct Reserved<'a> {
    pub shared: &'a Shared,
    pub state: &'a State,
    pub conn: &'a ConnInfo,
    /// Canonical host.
    pub host: &'a str,
    pub path: &'a str,
}

/// Serve `/.roomgate/*`. `NoRoute` for paths roomgate does not serve on this host.
pub async fn serve(
    r: Reserved<'_>,
    parts: http::request::Parts,
    body: Body,
) -> Result<Response<Body>, ProxyError> {
    let Some(iap) = r.state.config.file.iap.as_ref() else {
        return Err(ProxyError::NoRoute);
    };
    let Some(auth) = r.state.auth_host.as_ref() else {
        return Err(ProxyError::NoRoute);
    };
    let on_auth = r.host == auth.host;
    // A route domain, whichever paths it routes (one routed only under `/v1` signs in too).
    let routed = domain_configured(&r.state.config, r.host);
    let method = parts.method.clone();
    let result = match (r.path, on_auth) {
        (START_PATH, true) => match method {
            Method::GET => start(&r, iap, auth, &parts).await,
            _ => return Err(ProxyError::MethodNotAllowed),
        },
        (OIDC_CALLBACK_PATH, true) => match method {
            Method::GET => oidc_callback(&r, iap, &parts).await,
            _ => return Err(ProxyError::MethodNotAllowed),
        },
        (LOGIN_PATH, true) if iap.provider == IapProvider::Static => match method {
            Method::POST => login(&r, iap, auth, &parts, body).await,
            _ => return Err(ProxyError::MethodNotAllowed),
        },
        (CALLBACK_PATH, _) if routed => match method {
            Method::POST => callback(&r, iap, auth, &parts, body).await,
            _ => return Err(ProxyError::MethodNotAllowed),
        },
        (SIGNOUT_PATH, _) if routed || on_auth => match method {
            Method::GET | Method::HEAD => Ok(signout_page(&r, iap, on_auth, &parts)),
            Method::POST => signout(&r, iap, on_auth, &parts, body).await,
            _ => return Err(ProxyError::MethodNotAllowed),
        },
        _ => return Err(ProxyError::NoRoute),
    };
    result.map_err(ProxyError::SignIn)
}

async fn read_form(
    parts: &http::request::Parts,
    body: Body,
) -> Result<Vec<(String, String)>, SignInError> {
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(SignInError::Invalid("not a form"));
    }
    let bytes = Limited::new(body, MAX_FORM_BYTES)
        .collect()
        .await
        .map_err(|_| SignInError::Invalid("form body unreadable or too large"))?
        .to_bytes();
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn now(r: &Reserved<'_>) -> i64 {
    (r.shared.clock)()
}

/// GET `/.roomgate/start?rs=…` on the sign-in host.
async fn start(
    r: &Reserved<'_>,
    iap: &Iap,
    auth: &AuthHost,
    parts: &http::request::Parts,
) -> Result<Response<Body>, SignInError> {
    let keys = &r.state.config.cookie_keys;
    let now = now(r);
    let rs = query_param(parts.uri.query(), "rs").ok_or(SignInError::Invalid("no rs"))?;
    let ret: ReturnState = signing::open(keys, "return", &auth.host, now, &rs)
        .map_err(|_| SignInError::Invalid("return state"))?;
    check_return(r.state, auth, &ret)?;
    let sessions = &r.shared.iap.sessions;
    if !sessions
        .put_once("rs", &ret.jti, "1", FLOW_TTL, now)
        .await?
    {
        return Err(SignInError::Invalid("return state replayed"));
    }
    // Already signed in at the sign-in host: hand off without the provider.
    let names = auth_cookies(iap);
    if let Some(id) = cookie_value(&parts.headers, names.signin) {
        if let Some((d, session)) = sessions.get(id, iap.idle_ttl.0, now).await? {
            if session.is_sign_in_session_for(&auth.host) {
                return handoff(r, ret, Arc::unwrap_or_clone(session), d, None).await;
            }
        }
    }
    let (binding, new_cookie) = match cookie_value(&parts.headers, names.flow) {
        Some(v) if v.len() == 43 => (v.to_owned(), None),
        _ => {
            let v = random_id();
            let c = set_cookie(
                names.flow,
                &v,
                names.path,
                FLOW_TTL.as_secs() as i64,
                iap.secure_cookies,
            );
            (v, Some(c))
        }
    };
    let flow_id = random_id();
    let mut flow = Flow {
        ret,
        binding: digest(&binding),
        pkce_verifier: None,
        nonce: None,
    };
    let mut resp = match iap.provider {
        IapProvider::Static => pages::sign_in_form(&flow_id, "", None),
        IapProvider::Oidc => {
            let (cfg, secret) = oidc_config(r.state)?;
            let req = r
                .shared
                .iap
                .oidc
                .authorize_url(cfg, secret, &redirect_uri(auth), &flow_id)
                .await
                .map_err(oidc_error)?;
            flow.pkce_verifier = Some(req.pkce_verifier);
            flow.nonce = Some(req.nonce);
            redirect(StatusCode::FOUND, &req.url)
        }
    };
    let json = serde_json::to_string(&flow).map_err(|_| SignInError::Unavailable)?;
    if !sessions
        .put_once("flow", &flow_id, &json, FLOW_TTL, now)
        .await?
    {
        return Err(SignInError::Unavailable);
    }
    if let Some(c) = new_cookie {
        add_cookie(&mut resp, c);
    }
    Ok(resp)
}

fn redirect_uri(auth: &AuthHost) -> String {
    format!("{}{OIDC_CALLBACK_PATH}", auth.base)
}

fn oidc_config(
    state: &State,
) -> Result<(&crate::config::Oidc, &crate::sensitive::Secret), SignInError> {
    let cfg = state
        .config
        .file
        .iap
        .as_ref()
        .and_then(|i| i.oidc.as_ref())
        .ok_or(SignInError::Unavailable)?;
    let secret = state
        .config
        .oidc_client_secret
        .as_ref()
        .ok_or(SignInError::Unavailable)?;
    Ok((cfg, secret))
}

fn oidc_error(e: OidcError) -> SignInError {
    tracing::warn!(error = %e, "oidc sign-in error");
    match e {
        OidcError::Unavailable(_) => SignInError::Unavailable,
        OidcError::Rejected(_) => SignInError::Failed,
    }
}

/// The return state must still name a routed host and a safe path in the current config,
/// and an origin roomgate serves that host on.
fn check_return(state: &State, auth: &AuthHost, ret: &ReturnState) -> Result<(), SignInError> {
    if safe_return_path(&ret.path).is_none() {
        return Err(SignInError::Invalid("return path"));
    }
    if !handoff_origin_allowed(&ret.origin, &ret.host, auth, &state.config.file.listen) {
        return Err(SignInError::Invalid("return origin scheme or port"));
    }
    let path_only = ret.path.split('?').next().unwrap_or("/");
    if state.routes.resolve(&ret.host, path_only).is_none() {
        return Err(SignInError::Invalid("return host is not routed"));
    }
    Ok(())
}

/// Take a flow by id, checking that this browser started it.
async fn take_flow(
    r: &Reserved<'_>,
    parts: &http::request::Parts,
    flow_id: &str,
    peek: bool,
) -> Result<Flow, SignInError> {
    let sessions = &r.shared.iap.sessions;
    let now = now(r);
    let json = if peek {
        sessions.peek_once("flow", flow_id, now).await?
    } else {
        sessions.take_once("flow", flow_id, now).await?
    }
    .ok_or(SignInError::Invalid("unknown or used flow"))?;
    let flow: Flow = serde_json::from_str(&json).map_err(|_| SignInError::Invalid("flow"))?;
    let flow_cookie = r
        .state
        .config
        .file
        .iap
        .as_ref()
        .map(|i| auth_cookies(i).flow)
        .ok_or(SignInError::Unavailable)?;
    let bound = cookie_value(&parts.headers, flow_cookie)
        .is_some_and(|c| signing::digest(c).as_bytes() == flow.binding.as_bytes());
    if !bound {
        return Err(SignInError::Invalid("flow not started by this browser"));
    }
    Ok(flow)
}

/// GET `/.roomgate/oidc/callback?code&state` on the sign-in host.
async fn oidc_callback(
    r: &Reserved<'_>,
    iap: &Iap,
    parts: &http::request::Parts,
) -> Result<Response<Body>, SignInError> {
    let q = parts.uri.query();
    let state_id = query_param(q, "state").ok_or(SignInError::Invalid("no state"))?;
    let flow = take_flow(r, parts, &state_id, false).await?;
    if let Some(err) = query_param(q, "error") {
        tracing::info!(oidc.error = %err.chars().take(64).collect::<String>(), "provider refused sign-in");
        return Err(SignInError::Failed);
    }
    let code = query_param(q, "code").ok_or(SignInError::Invalid("no code"))?;
    let (cfg, secret) = oidc_config(r.state)?;
    let auth = r.state.auth_host.as_ref().ok_or(SignInError::Unavailable)?;
    let user = r
        .shared
        .iap
        .oidc
        .exchange(
            cfg,
            secret,
            &redirect_uri(auth),
            &code,
            flow.pkce_verifier
                .as_deref()
                .ok_or(SignInError::Invalid("flow"))?,
            flow.nonce.as_deref().ok_or(SignInError::Invalid("flow"))?,
        )
        .await
        .map_err(oidc_error)?;
    let email = normalize_email(&user.email).ok_or(SignInError::Failed)?;
    let now = now(r);
    let session = Session {
        subject: user.subject,
        email,
        name: user.name,
        groups: user.groups,
        issued: now,
        expires: now + iap.session_ttl.0.as_secs() as i64,
        provider: "oidc".into(),
        parent: None,
        host: None,
    };
    signed_in(r, iap, flow.ret, session).await
}

/// Create the sign-in host session, then hand off to the route domain.
async fn signed_in(
    r: &Reserved<'_>,
    iap: &Iap,
    ret: ReturnState,
    session: Session,
) -> Result<Response<Body>, SignInError> {
    let now = now(r);
    tracing::info!(iap.provider = %session.provider, "iap sign-in");
    let names = auth_cookies(iap);
    let auth = r.state.auth_host.as_ref().ok_or(SignInError::Unavailable)?;
    let session = Session {
        host: Some(auth.host.clone()),
        parent: None,
        ..session
    };
    let id = r
        .shared
        .iap
        .sessions
        .create(&session, iap.idle_ttl.0, now)
        .await?
        .ok_or(SignInError::Unavailable)?;
    let cookie = set_cookie(
        names.signin,
        &id,
        names.path,
        session.expires - now,
        iap.secure_cookies,
    );
    let clear_flow = set_cookie(names.flow, "", names.path, 0, iap.secure_cookies);
    handoff(r, ret, session, digest(&id), Some([cookie, clear_flow])).await
}

/// Issue a one-time code for `ret.host` and answer with the auto-submitting form.
async fn handoff(
    r: &Reserved<'_>,
    ret: ReturnState,
    mut session: Session,
    parent: String,
    cookies: Option<[String; 2]>,
) -> Result<Response<Body>, SignInError> {
    let now = now(r);
    session.parent = Some(parent);
    session.host = Some(ret.host.clone());
    let code = random_id();
    let record = Handoff {
        aud: ret.host.clone(),
        path: ret.path.clone(),
        session,
    };
    let json = serde_json::to_string(&record).map_err(|_| SignInError::Unavailable)?;
    if !r
        .shared
        .iap
        .sessions
        .put_once("handoff", &code, &json, HANDOFF_TTL, now)
        .await?
    {
        return Err(SignInError::Unavailable);
    }
    let mut resp = pages::handoff(&ret.origin, &code);
    for c in cookies.into_iter().flatten() {
        add_cookie(&mut resp, c);
    }
    Ok(resp)
}

/// POST `/.roomgate/login` on the sign-in host (static provider).
async fn login(
    r: &Reserved<'_>,
    iap: &Iap,
    auth: &AuthHost,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response<Body>, SignInError> {
    if !origin_allows_host(&parts.headers, &auth.host) {
        return Err(SignInError::Invalid("cross-origin sign-in form"));
    }
    let form = read_form(parts, body).await?;
    let flow_id = field(&form, "flow").ok_or(SignInError::Invalid("no flow"))?;
    let email_raw = field(&form, "email").unwrap_or("");
    let password = field(&form, "password").unwrap_or("");
    // The flow id is the form's CSRF token: it is bound to this browser's flow cookie.
    take_flow(r, parts, flow_id, true).await?;
    let now = now(r);
    let email = email_raw.trim().to_ascii_lowercase();
    let sessions = &r.shared.iap.sessions;
    let ip = crate::headers::client_ip(
        &parts.headers,
        r.conn.peer.ip(),
        &r.state.config.file.trusted_proxies,
    );
    let per_user = sessions
        .hit("login-user", &email, LOGIN_WINDOW, now)
        .await?;
    let per_ip = sessions
        .hit("login-ip", &ip.to_string(), LOGIN_WINDOW, now)
        .await?;
    if per_user > LOGIN_LIMIT_PER_USER || per_ip > LOGIN_LIMIT_PER_IP {
        tracing::warn!(client.ip = %ip, "iap sign-in rate limited");
        return Err(SignInError::RateLimited);
    }
    let user = iap
        .static_users
        .as_ref()
        .and_then(|s| {
            s.users
                .iter()
                .find(|u| normalize_email(&u.email).as_deref() == Some(email.as_str()))
        })
        .cloned();
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    // At most one check per CPU at a time; the one over that is refused, not queued.
    let Some(_slot) = login_slots().try_take() else {
        tracing::warn!(client.ip = %ip, "iap sign-in refused: every login slot is busy");
        return Err(SignInError::Busy);
    };
    let password = password.to_owned();
    let ok = cpu::run(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(client.ip = %ip, "iap static sign-in failed");
        return Ok(pages::sign_in_form(
            flow_id,
            email_raw,
            Some("Wrong email or password."),
        ));
    };
    let flow = take_flow(r, parts, flow_id, false).await?;
    let session = Session {
        subject: email.clone(),
        email,
        name: None,
        groups: user.groups.clone(),
        issued: now,
        expires: now + iap.session_ttl.0.as_secs() as i64,
        provider: "static".into(),
        parent: None,
        host: None,
    };
    signed_in(r, iap, flow.ret, session).await
}

/// The sign-in form posts whose password is being checked at once: one per CPU.
fn login_slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| Slots::new(cpu::cpus()))
}

/// Verify a password against an argon2 PHC hash; a hash whose costs are over
/// `config::password` limits is never computed and verifies nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    if crate::config::password::check_hash(hash).is_err() {
        return false;
    }
    PasswordHash::new(hash).ok().is_some_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of nothing anyone knows, so an unknown user costs as much as a known one.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).ok();
        salt.and_then(|s| {
            argon2::Argon2::default()
                .hash_password(random_id().as_bytes(), &s)
                .ok()
                .map(|h| h.to_string())
        })
        .unwrap_or_default()
    })
}

/// POST `/.roomgate/callback` on a route domain: redeem a handoff code.
async fn callback(
    r: &Reserved<'_>,
    iap: &Iap,
    auth: &AuthHost,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response<Body>, SignInError> {
    // Only the sign-in host's page posts here (login CSRF defence).
    if !origin_is(&parts.headers, &auth.origin) {
        return Err(SignInError::Invalid(
            "callback not posted by the sign-in host",
        ));
    }
    let form = read_form(parts, body).await?;
    let code = field(&form, "code").ok_or(SignInError::Invalid("no code"))?;
    let now = now(r);
    let sessions = &r.shared.iap.sessions;
    let json = sessions
        .take_once("handoff", code, now)
        .await?
        .ok_or(SignInError::Invalid("unknown, expired or used code"))?;
    let record: Handoff =
        serde_json::from_str(&json).map_err(|_| SignInError::Invalid("handoff"))?;
    if record.aud != r.host {
        return Err(SignInError::Invalid("code for another domain"));
    }
    if record.session.expires <= now {
        return Err(SignInError::Invalid("session expired"));
    }
    let path = safe_return_path(&record.path).unwrap_or_else(|| "/".into());
    let id = sessions
        .create(&record.session, iap.idle_ttl.0, now)
        .await?
        .ok_or(SignInError::Invalid("signed out since the handoff"))?;
    let mut resp = redirect(StatusCode::SEE_OTHER, &path);
    add_cookie(
        &mut resp,
        set_cookie(
            IAP_COOKIE,
            &id,
            "/",
            record.session.expires - now,
            iap.secure_cookies,
        ),
    );
    Ok(resp)
}

/// The session cookie's name and path: the sign-in host's own, or a route domain's.
fn session_cookie(iap: &Iap, on_auth: bool) -> (&'static str, &'static str) {
    if on_auth {
        let names = auth_cookies(iap);
        (names.signin, names.path)
    } else {
        (IAP_COOKIE, "/")
    }
}

/// GET `/.roomgate/signout`: a confirmation form (sign-out itself needs the POST).
fn signout_page(
    r: &Reserved<'_>,
    iap: &Iap,
    on_auth: bool,
    parts: &http::request::Parts,
) -> Response<Body> {
    match cookie_value(&parts.headers, session_cookie(iap, on_auth).0) {
        Some(v) => pages::sign_out_confirm(
            &signing::tag(&r.state.config.cookie_keys, "signout", &digest(v)).unwrap_or_default(),
        ),
        None => pages::signed_out(),
    }
}

/// POST `/.roomgate/signout`: end this session, the sign-in host session it came from and
/// every other domain session handed off from that one (on the sign-in host: its own
/// session and all of those).
async fn signout(
    r: &Reserved<'_>,
    iap: &Iap,
    on_auth: bool,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response<Body>, SignInError> {
    if !origin_allows_host(&parts.headers, r.host) {
        return Err(SignInError::Invalid("cross-origin sign-out"));
    }
    let form = read_form(parts, body).await?;
    // A sign-in host that is also a route domain holds both cookies; its "not a
    // participant" page signs the domain session's token, the confirmation form the
    // sign-in session's. Either ends the sign-in.
    let mut cookies = vec![session_cookie(iap, on_auth)];
    if on_auth {
        cookies.push(session_cookie(iap, false));
    }
    let present: Vec<_> = cookies
        .into_iter()
        .filter_map(|(name, path)| Some((name, path, digest(cookie_value(&parts.headers, name)?))))
        .collect();
    if present.is_empty() {
        return Ok(pages::signed_out());
    }
    let csrf = field(&form, "csrf").unwrap_or("");
    let Some((name, path, d)) = present
        .into_iter()
        .find(|(_, _, d)| signing::check_tag(&r.state.config.cookie_keys, "signout", d, csrf))
    else {
        return Err(SignInError::Invalid("sign-out csrf token"));
    };
    r.shared.iap.sessions.sign_out(&d).await?;
    tracing::info!("iap sign-out");
    let mut resp = pages::signed_out();
    add_cookie(&mut resp, set_cookie(name, "", path, 0, iap.secure_cookies));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::header_map as h;

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

    #[test]
    fn cookies_are_found_by_exact_name() {
        let m = h(&[
            ("cookie", "a=1; __meshagent_iapx=2"),
            ("cookie", "__meshagent_iap=v"),
        ]);
        assert_eq!(cookie_value(&m, "__meshagent_iap"), Some("v"));
        assert_eq!(cookie_value(&m, "b"), None);
    }

    #[test]
    fn the_session_cookie_is_secure_httponly_lax_and_host_only() {
        let c = set_cookie("__meshagent_iap", "v", "/", 60, true);
        assert!(c.contains("HttpOnly"));
        assert!(c.contains("SameSite=Lax"));
        assert!(c.contains("Secure"));
        assert!(c.contains("Path=/"));
        assert!(!c.to_ascii_lowercase().contains("domain="));
        assert!(!set_cookie("n", "v", "/", 60, false).contains("Secure"));
    }

    #[test]
    fn sign_in_host_cookies_are_host_prefixed_only_when_secure() {
        let secure = AuthCookies {
            signin: "__Host-roomgate_signin",
            flow: "__Host-roomgate_flow",
            path: "/",
        };
        let plain = AuthCookies {
            signin: "__roomgate_signin",
            flow: "__roomgate_flow",
            path: "/.roomgate/",
        };
        let iap = |secure_cookies: bool| Iap {
            auth_url: "https://auth.test".into(),
            provider: IapProvider::Static,
            oidc: None,
            static_users: None,
            cookie_keys: vec![],
            session_ttl: crate::config::HumanDuration(Duration::from_secs(60)),
            idle_ttl: crate::config::HumanDuration(Duration::from_secs(60)),
            secure_cookies,
        };
        assert_eq!(auth_cookies(&iap(true)), secure);
        assert_eq!(auth_cookies(&iap(false)), plain);
    }

    #[test]
    fn a_route_domain_is_matched_exactly_or_by_a_one_label_wildcard() {
        assert!(domain_matches("api.acme.test", "api.acme.test"));
        assert!(domain_matches("API.acme.test.", "api.acme.test"));
        assert!(!domain_matches("api.acme.test", "x.api.acme.test"));
        assert!(domain_matches("*.apps.test", "a.apps.test"));
        assert!(!domain_matches("*.apps.test", "apps.test"));
        assert!(!domain_matches("*.apps.test", "a.b.apps.test"));
        assert!(!domain_matches("not a domain", "not a domain"));
    }

    fn auth(url: &str) -> AuthHost {
        let uri: http::Uri = url.parse().unwrap();
        AuthHost {
            base: url.into(),
            origin: url.into(),
            host: uri.host().unwrap().into(),
            scheme: uri.scheme_str().unwrap().into(),
            port: uri.port_u16(),
        }
    }

    fn listen(http: Option<&str>, https: Option<&str>) -> Listen {
        Listen {
            http: http.map(|a| a.parse().unwrap()),
            https: https.map(|a| a.parse().unwrap()),
            admin: None,
            redirect_http_to_https: false,
        }
    }

    #[test]
    fn a_handoff_goes_only_to_the_sign_in_scheme_and_a_port_roomgate_serves() {
        let a = auth("https://auth.test");
        let l = listen(Some("0.0.0.0:8080"), Some("0.0.0.0:8443"));
        let ok = |o: &str| handoff_origin_allowed(o, "app.test", &a, &l);
        assert!(ok("https://app.test"));
        assert!(ok("https://app.test:443"));
        assert!(ok("https://app.test:8443"), "the https listener's port");
        assert!(!ok("http://app.test"), "never downgraded to plain http");
        assert!(!ok("http://app.test:8080"));
        assert!(!ok("https://app.test:4444"), "a port from the Host header");
        assert!(!ok("https://app.test:8080"), "the plain listener's port");
        assert!(
            !ok("https://evil.test"),
            "another host than the code's audience"
        );
        assert!(!ok("https://app.test.evil.test"));
        // The port auth_url names is one roomgate is reached on (a port-forwarded listener).
        let a = auth("https://auth.test:9443");
        assert!(handoff_origin_allowed(
            "https://app.test:9443",
            "app.test",
            &a,
            &l
        ));
        // A plain-http sign-in host (local use) hands off over http to its listener's port.
        let a = auth("http://auth.test:8080");
        let l = listen(Some("127.0.0.1:8080"), None);
        assert!(handoff_origin_allowed(
            "http://app.test:8080",
            "app.test",
            &a,
            &l
        ));
        assert!(handoff_origin_allowed(
            "http://app.test",
            "app.test",
            &a,
            &l
        ));
        assert!(!handoff_origin_allowed(
            "https://app.test:8080",
            "app.test",
            &a,
            &l
        ));
        assert!(!handoff_origin_allowed(
            "http://app.test:4444",
            "app.test",
            &a,
            &l
        ));
    }

    #[test]
    fn the_callback_origin_must_be_the_sign_in_host() {
        assert!(origin_is(
            &h(&[("origin", "http://auth.test:8080")]),
            "http://auth.test:8080"
        ));
        assert!(!origin_is(
            &h(&[("origin", "http://evil.test")]),
            "http://auth.test:8080"
        ));
        assert!(!origin_is(&h(&[]), "http://auth.test:8080"));
        assert!(origin_allows_host(&h(&[]), "app.test"));
        assert!(!origin_allows_host(&h(&[("origin", "null")]), "app.test"));
        assert!(origin_allows_host(
            &h(&[("origin", "https://APP.test:1")]),
            "app.test"
        ));
    }

    // Security property (issue 17, finding 2): a hash asking for more than a login can
    // afford (here 4 TB) is never computed: it verifies nothing, at once.
    #[test]
    fn an_unaffordable_hash_is_never_computed() {
        let costly =
            "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        let started = std::time::Instant::now();
        assert!(!verify_password(costly, "password"));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
