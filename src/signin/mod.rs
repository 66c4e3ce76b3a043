//! The sign-in app: browser sign-in through one central sign-in host, handed off to every
//! route domain (the check of a `cookie` port itself is [`crate::auth::iap`]).
//!
//! Flows (paths under `/.roomgate/`):
//! 1. A browser GET on a route domain without a session gets a 302 to
//!    `{auth_url}/.roomgate/start?rs=…`, where `rs` is a sealed return state (origin, host,
//!    path; audience: the sign-in host; 10 min; single use).
//! 2. `start` on the sign-in host ([`flow`]): a user already signed in there (cookie
//!    `__Host-roomgate_signin`) goes straight to the handoff; otherwise a sign-in flow is
//!    recorded server-side under an opaque id (10 min, single use), bound to the browser
//!    by the `__Host-roomgate_flow` cookie, and the browser goes to the provider (OIDC:
//!    the id is the `state`, with PKCE S256 and a nonce) or sees the static sign-in form.
//!    (Without `secure_cookies` the two are `__roomgate_*`, scoped to `/.roomgate/`.)
//! 3. `oidc/callback` (the only redirect URI, [`flow`]) or `login` (static form,
//!    [`login`]) ends the flow and creates the sign-in host session.
//! 4. Handoff: a one-time code (60 s, single use, audience: the route's host) is posted
//!    by an auto-submitting form to `{origin}/.roomgate/callback`, which creates the
//!    domain's own session, sets `__meshagent_iap` and 303s to the original path
//!    ([`signout`] holds the callback and sign-out, the two ends of a domain session).
//! 5. `signout` (POST, CSRF token) ends the sign-in session and every domain session
//!    handed off from it, whichever of them it is posted to, and clears the cookie.
//!
//! Every parameter that crosses the browser is sealed or opaque, and everything
//! malformed fails closed with a 4xx. Provider tokens never leave `auth::oidc`.

mod flow;
mod login;
mod signout;

use flow::{oidc_callback, signed_in, start, take_flow};
use login::login;
use signout::{callback, signout, signout_page};

use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::{Deserialize, Serialize};

use crate::auth::iap::{AuthHost, SignInError};
use crate::auth::iap::{
    ReturnState, CALLBACK_PATH, FLOW_COOKIE, LOGIN_PATH, OIDC_CALLBACK_PATH, PLAIN_FLOW_COOKIE,
    PLAIN_SIGNIN_COOKIE, SIGNIN_COOKIE, SIGNOUT_PATH, START_PATH,
};
use crate::auth::redirect::safe_return_path;
use crate::auth::session::Session;
use crate::auth::signing::{self, digest, random_id};
use crate::auth::IAP_COOKIE;
use crate::body::{full, Body};
use crate::canonical::normalize_email;
use crate::canonical::{canonical_host, DomainPattern};
use crate::config::{Config, Iap, IapProvider, Listen};
use crate::conn::ConnInfo;
use crate::cookies::set_cookie;
use crate::cookies::value as cookie_value;
use crate::error::ProxyError;
use crate::pages;
use crate::state::{Shared, State};

/// Largest form body read on `/.roomgate/*`.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// Static sign-in attempts allowed per user, and per client IP, in [`LOGIN_WINDOW`].
pub const LOGIN_LIMIT_PER_USER: u64 = 10;
pub const LOGIN_LIMIT_PER_IP: u64 = 50;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(900);
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

/// Everything a sign-in handler needs about one request.
pub struct Reserved<'a> {
    pub shared: &'a Shared,
    pub state: &'a State,
    pub conn: &'a ConnInfo,
    /// Canonical host.
    pub host: &'a str,
    pub path: &'a str,
}

impl Reserved<'_> {
    /// The time as the injected clock tells it.
    pub fn now(&self) -> i64 {
        (self.shared.clock)()
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::headers::header_map as h;

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
}
