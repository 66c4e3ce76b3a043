//! Embed sessions: a backend embeds a room's app in an iframe on its own pages.
//!
//! Owns the management API (`/.roomgate/api/v1/embed/...`, see [`api`]), the launch
//! (`/.roomgate/embed/launch`), the served `embed.js`, the JWKS on route domains, and the
//! judging of requests in embed mode ([`decide`]) against sessions found through
//! [`EmbedRuntime::session_for`]. Management keys stay with the backend and are
//! accepted only as `Authorization: Bearer mk_…`; access tokens travel in a header or
//! by `postMessage`, never in a URL; the launch URL is used once; every key, token, code
//! and cookie is stored as a digest only. It never logs a credential.
//!
//! Each instance keeps a looked-up session for at most [`CACHE_TTL`], so a revocation
//! reaches every instance within that (plus one round trip).

pub mod api;
pub mod credentials;
pub mod decide;
pub mod keys;
pub mod session;
pub mod store;
pub mod store_redis;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Method, Response, StatusCode};

use crate::auth::AuthError;
use crate::body::{full, Body};
use crate::config::Config;
use crate::error::ProxyError;
use crate::kv::Kv;
use crate::ratelimit::{LimitStore, MemoryLimits};
use decide::Presented;
use session::EmbedSession;
use store::{EmbedStore, Kind, MemoryStore};

/// How long an instance trusts a session it looked up. Revocation reaches every
/// instance within this.
pub const CACHE_TTL: Duration = Duration::from_millis(500);
/// Sessions cached per instance; the cache starts over when it would grow past this.
const CACHE_CAPACITY: usize = 10_000;

pub const API_PREFIX: &str = "/.roomgate/api/v1/embed/";
pub const LAUNCH_PATH: &str = "/.roomgate/embed/launch";
pub const SESSION_PATH: &str = "/.roomgate/embed/session";
pub const SCRIPT_PATH: &str = "/.roomgate/embed.js";
pub const JWKS_PATH: &str = "/.roomgate/jwks.json";

/// The script for both sides of the iframe.
pub const SCRIPT: &str = include_str!("embed.js");

/// True for the reserved paths this module serves.
pub fn serves(path: &str) -> bool {
    path.starts_with(API_PREFIX)
        || matches!(path, LAUNCH_PATH | SESSION_PATH | SCRIPT_PATH | JWKS_PATH)
}

/// What outlives reloads: the stores and the per-instance session cache.
pub struct EmbedRuntime {
    pub store: Arc<dyn EmbedStore>,
    pub limits: Arc<dyn LimitStore>,
    cache: Mutex<HashMap<String, (Arc<EmbedSession>, Instant)>>,
}

impl std::fmt::Debug for EmbedRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedRuntime").finish_non_exhaustive()
    }
}

impl EmbedRuntime {
    /// On the shared Redis when the config has one, else in memory (keys in
    /// `embed.keys_file`).
    pub fn from_config(config: &Config, kv: Option<&Kv>) -> EmbedRuntime {
        match kv {
            Some(kv) => {
                let redis = Arc::new(store_redis::RedisStore::new(kv));
                EmbedRuntime::new(redis.clone(), redis)
            }
            None => EmbedRuntime::new(
                Arc::new(MemoryStore::new(keys_file(config))),
                Arc::new(MemoryLimits::default()),
            ),
        }
    }

    pub fn new(store: Arc<dyn EmbedStore>, limits: Arc<dyn LimitStore>) -> EmbedRuntime {
        EmbedRuntime {
            store,
            limits,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<EmbedSession>, Instant)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live session a presented token or cookie belongs to. `InvalidToken` for a
    /// malformed, unknown, expired or revoked one; `SessionUnavailable` when the store
    /// cannot answer.
    pub async fn session_for(
        &self,
        presented: Presented<'_>,
        now: i64,
    ) -> Result<Arc<EmbedSession>, AuthError> {
        let (kind, parsed) = match presented {
            Presented::Token(t) => (Kind::Token, credentials::parse_token(t)),
            Presented::Cookie(c) => (Kind::Cookie, credentials::parse_code(c)),
        };
        let (sid, digest) = parsed.ok_or(AuthError::InvalidToken)?;
        if let Some((s, at)) = self.cache().get(&digest) {
            if at.elapsed() < CACHE_TTL && s.expires_at > now {
                return Ok(Arc::clone(s));
            }
        }
        match self.store.by_credential(&sid, kind, &digest, now).await {
            Ok(Some(s)) => {
                let s = Arc::new(s);
                let mut cache = self.cache();
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(digest, (Arc::clone(&s), Instant::now()));
                Ok(s)
            }
            Ok(None) => {
                self.cache().remove(&digest);
                Err(AuthError::InvalidToken)
            }
            Err(e) => {
                tracing::warn!(error = %e, "embed store error");
                Err(AuthError::SessionUnavailable)
            }
        }
    }

    /// Forget this instance's cached lookups of a session (after revoking it here).
    fn forget(&self, sid: &str) {
        self.cache().retain(|_, (s, _)| s.id != sid);
    }
}

/// `embed.keys_file`, relative to the config file.
pub fn keys_file(config: &Config) -> PathBuf {
    config
        .load_context()
        .resolve_path(&config.file.embed.keys_file)
}

/// One request to a path of [`serves`], and what serving it reads.
pub struct Call<'a> {
    pub runtime: &'a EmbedRuntime,
    pub config: &'a Config,
    pub routes: &'a crate::route::RouteTable,
    pub conn: &'a crate::conn::ConnInfo,
    /// Canonical host and path.
    pub host: &'a str,
    pub path: &'a str,
    pub now: i64,
}

/// Serve the reserved paths of [`serves`].
pub async fn serve(
    r: Call<'_>,
    parts: http::request::Parts,
    body: Body,
) -> Result<Response<Body>, ProxyError> {
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    match r.path {
        p if p.starts_with(API_PREFIX) => api::serve(&r, parts, body).await,
        SCRIPT_PATH if get => Ok(script()),
        JWKS_PATH if get => match &r.config.assertion {
            Some(a) => Ok(json(StatusCode::OK, a.jwks().to_owned())),
            None => Err(ProxyError::NoRoute),
        },
        LAUNCH_PATH if get => api::launch(&r, &parts).await,
        SESSION_PATH if get => api::session_info(&r, &parts).await,
        _ => Err(ProxyError::MethodNotAllowed),
    }
}

fn script() -> Response<Body> {
    let mut resp = Response::new(full(SCRIPT));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// A JSON response that no cache keeps.
pub(crate) fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Make `headers` those of an embed-mode response: the session's `frame-ancestors`
/// (`'none'` when no session was found) and no `X-Frame-Options`.
pub fn frame_headers(headers: &mut http::HeaderMap, csp: &HeaderValue) {
    headers.remove(header::X_FRAME_OPTIONS);
    headers.append(header::CONTENT_SECURITY_POLICY, csp.clone());
}

/// The `frame-ancestors` header value of a session (or of none).
pub fn csp_value(session: Option<&EmbedSession>) -> HeaderValue {
    let v = match session {
        Some(s) => s.frame_ancestors(),
        None => session::frame_ancestors(&[]),
    };
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("frame-ancestors 'none'"))
}
