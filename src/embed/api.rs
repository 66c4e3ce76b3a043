//! The management API (mint, refresh, revoke), the launch, and the iframe's session
//! info: the I/O around [`super::session`] and the store.
//!
//! Every management call is authenticated first, by `Authorization: Bearer mk_…` only
//! (a key anywhere in the URL is never read), then its body is read under a size cap and
//! parsed strictly; any error answers before anything is created. Answers are JSON.

use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use super::credentials::{self, key_digest};
use super::decide::{Presented, COOKIE};
use super::session::{check_mint, EmbedSession, MintRequest};
use super::store::{Grant, KeyRecord};
use super::{csp_value, json, Call, API_PREFIX, LAUNCH_PATH};
use crate::auth::AuthError;
use crate::body::{full, Body};
use crate::error::ProxyError;

/// Largest management API body read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn unavailable(e: super::store::StoreError) -> ProxyError {
    tracing::warn!(error = %e, "embed store error");
    ProxyError::Auth(AuthError::SessionUnavailable)
}

fn invalid(msg: impl Into<String>) -> ProxyError {
    ProxyError::InvalidRequest(msg.into())
}

/// Route a management call.
pub async fn serve(
    r: &Call<'_>,
    parts: http::request::Parts,
    body: Body,
) -> Result<Response<Body>, ProxyError> {
    let rest = r.path.strip_prefix(API_PREFIX).unwrap_or_default();
    let segments: Vec<&str> = rest.splitn(4, '/').collect();
    match (segments.as_slice(), &parts.method) {
        (["sessions"], &Method::POST) => mint(r, &parts, body).await,
        (["sessions", id, "tokens"], &Method::POST) => refresh(r, &parts, body, id).await,
        (["sessions", id], &Method::DELETE) => revoke(r, &parts, id).await,
        (["sessions"] | ["sessions", _] | ["sessions", _, "tokens"], _) => {
            Err(ProxyError::MethodNotAllowed)
        }
        _ => Err(ProxyError::NoRoute),
    }
}

/// The management key of a call: from `Authorization: Bearer mk_…` only.
async fn key(r: &Call<'_>, parts: &http::request::Parts) -> Result<KeyRecord, ProxyError> {
    let presented = match crate::auth::bearer(&parts.headers) {
        Ok(Some(k)) => k,
        Ok(None) if crate::auth::query_has_credentials(parts.uri.query()) => {
            return Err(ProxyError::Auth(AuthError::CredentialsInUrl))
        }
        Ok(None) => return Err(ProxyError::Auth(AuthError::MissingAuth)),
        Err(e) => return Err(ProxyError::Auth(e)),
    };
    let digest = key_digest(presented).ok_or(ProxyError::Auth(AuthError::InvalidToken))?;
    match r.runtime.store.find_key(&digest, r.now).await {
        Ok(Some(k)) => Ok(k),
        Ok(None) => Err(ProxyError::Auth(AuthError::InvalidToken)),
        Err(e) => Err(unavailable(e)),
    }
}

/// The body, whole, under [`MAX_BODY_BYTES`].
async fn read(body: Body) -> Result<bytes::Bytes, ProxyError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ProxyError::PayloadTooLarge),
        Err(_) => Err(ProxyError::BadRequestBody),
    }
}

fn parse<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, ProxyError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("body: {e}")))
}

/// `scheme://domain[:port]` of the listener the call came on (default ports omitted).
fn origin_for(r: &Call<'_>, domain: &str) -> String {
    let (scheme, default) = if r.conn.tls {
        ("https", 443)
    } else {
        ("http", 80)
    };
    match r.conn.local_port {
        0 => format!("{scheme}://{domain}"),
        p if p == default => format!("{scheme}://{domain}"),
        p => format!("{scheme}://{domain}:{p}"),
    }
}

/// POST `/.roomgate/api/v1/embed/sessions`.
async fn mint(
    r: &Call<'_>,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response<Body>, ProxyError> {
    let key = key(r, parts).await?;
    let bytes = read(body).await?;
    let req: MintRequest = parse(&bytes)?;
    if !key.grants(&req.room) {
        return Err(ProxyError::Auth(AuthError::Forbidden));
    }
    let config = &r.config;
    let new = check_mint(req, config, r.routes).map_err(|e| invalid(e.0))?;
    let embed = &config.file.embed;
    let now = r.now;
    let sid = credentials::new_session_id();
    let expires_at = now + new.ttl;
    let token = credentials::new_token(&sid);
    let token_expires_at = (now + embed.token_ttl.0.as_secs() as i64).min(expires_at);
    let code = credentials::new_code(&sid);
    let launch_expires_at = (now + embed.launch_ttl.0.as_secs() as i64).min(expires_at);
    let session = EmbedSession {
        id: sid.clone(),
        room: new.room,
        domain: new.domain,
        path: new.path,
        user: new.user,
        api: new.api,
        allowed_origins: new.allowed_origins,
        created_at: now,
        expires_at,
    };
    let token_digest = crate::auth::signing::digest(&token);
    let code_digest = crate::auth::signing::digest(&code);
    r.runtime
        .store
        .create(
            &session,
            Grant {
                digest: &token_digest,
                expires_at: token_expires_at,
            },
            Grant {
                digest: &code_digest,
                expires_at: launch_expires_at,
            },
            now,
        )
        .await
        .map_err(unavailable)?;
    tracing::info!(embed.session = %sid, route.room = %session.room, key.id = %key.id, "embed session minted");
    let launch_url = format!("{}{LAUNCH_PATH}?c={code}", origin_for(r, &session.domain));
    Ok(json(
        StatusCode::CREATED,
        serde_json::json!({
            "session_id": sid,
            "launch_url": launch_url,
            "access_token": token,
            "token_expires_at": rfc3339(token_expires_at),
            "expires_at": rfc3339(expires_at),
        })
        .to_string(),
    ))
}

/// A refresh body: empty, or an object without fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {}

/// The session a management call names, if its key may act on it.
async fn owned_session(
    r: &Call<'_>,
    key: &KeyRecord,
    sid: &str,
) -> Result<EmbedSession, ProxyError> {
    if !credentials::is_session_id(sid) {
        return Err(invalid("session: not a session id"));
    }
    let session = r
        .runtime
        .store
        .session(sid, r.now)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| invalid("session: unknown, revoked or expired"))?;
    if !key.grants(&session.room) {
        return Err(ProxyError::Auth(AuthError::Forbidden));
    }
    Ok(session)
}

/// POST `/.roomgate/api/v1/embed/sessions/{id}/tokens`.
async fn refresh(
    r: &Call<'_>,
    parts: &http::request::Parts,
    body: Body,
    sid: &str,
) -> Result<Response<Body>, ProxyError> {
    let key = key(r, parts).await?;
    let bytes = read(body).await?;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let _: RefreshRequest = parse(&bytes)?;
    }
    let session = owned_session(r, &key, sid).await?;
    let now = r.now;
    let token = credentials::new_token(&session.id);
    let digest = crate::auth::signing::digest(&token);
    let token_expires_at =
        (now + r.config.file.embed.token_ttl.0.as_secs() as i64).min(session.expires_at);
    let added = r
        .runtime
        .store
        .add_token(
            &session.id,
            Grant {
                digest: &digest,
                expires_at: token_expires_at,
            },
            now,
        )
        .await
        .map_err(unavailable)?;
    if added.is_none() {
        return Err(invalid("session: unknown, revoked or expired"));
    }
    Ok(json(
        StatusCode::CREATED,
        serde_json::json!({
            "access_token": token,
            "token_expires_at": rfc3339(token_expires_at),
        })
        .to_string(),
    ))
}

/// DELETE `/.roomgate/api/v1/embed/sessions/{id}`.
async fn revoke(
    r: &Call<'_>,
    parts: &http::request::Parts,
    sid: &str,
) -> Result<Response<Body>, ProxyError> {
    let key = key(r, parts).await?;
    let session = owned_session(r, &key, sid).await?;
    r.runtime
        .store
        .revoke(&session.id)
        .await
        .map_err(unavailable)?;
    r.runtime.forget(&session.id);
    tracing::info!(embed.session = %session.id, key.id = %key.id, "embed session revoked");
    let mut resp = Response::new(full(""));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

/// GET `/.roomgate/embed/launch?c=<code>`: use the code once, set the embed cookie, and
/// send the iframe to the session's path.
pub async fn launch(
    r: &Call<'_>,
    parts: &http::request::Parts,
) -> Result<Response<Body>, ProxyError> {
    let refused = ProxyError::Auth(AuthError::InvalidToken);
    let mut codes = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "c")
        .map(|(_, v)| v);
    let code = match (codes.next(), codes.next()) {
        (Some(c), None) => c,
        _ => return Err(refused),
    };
    let (sid, code_digest) = credentials::parse_code(&code).ok_or(refused.clone())?;
    let now = r.now;
    let cookie = credentials::new_code(&sid);
    let cookie_digest = crate::auth::signing::digest(&cookie);
    let session_end = now + r.config.file.embed.session_ttl.0.as_secs() as i64;
    let session = r
        .runtime
        .store
        .launch(
            &sid,
            &code_digest,
            Grant {
                digest: &cookie_digest,
                expires_at: session_end,
            },
            now,
        )
        .await
        .map_err(unavailable)?
        .ok_or(refused)?;
    if session.domain != r.host {
        return Err(ProxyError::Auth(AuthError::Forbidden));
    }
    let set_cookie = cookie::Cookie::build((COOKIE, cookie))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(cookie::SameSite::None)
        .partitioned(true)
        .max_age(cookie::time::Duration::seconds(
            (session.expires_at - now).max(0),
        ))
        .build()
        .to_string();
    let mut resp = Response::new(full(""));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&session.path) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&set_cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, csp_value(Some(&session)));
    tracing::info!(embed.session = %session.id, "embed session launched");
    Ok(resp)
}

/// GET `/.roomgate/embed/session` with the embed cookie: what `embed.js` inside the
/// iframe needs (the origins it may take tokens from). Never a token.
pub async fn session_info(
    r: &Call<'_>,
    parts: &http::request::Parts,
) -> Result<Response<Body>, ProxyError> {
    let cookie = crate::cookies::value(&parts.headers, COOKIE)
        .ok_or(ProxyError::Auth(AuthError::MissingAuth))?;
    let session = r
        .runtime
        .session_for(Presented::Cookie(cookie), r.now)
        .await
        .map_err(ProxyError::Auth)?;
    if session.domain != r.host {
        return Err(ProxyError::Auth(AuthError::Forbidden));
    }
    let mut resp = json(
        StatusCode::OK,
        serde_json::json!({
            "session_id": session.id,
            "allowed_origins": session.allowed_origins,
            "expires_at": rfc3339(session.expires_at),
        })
        .to_string(),
    );
    resp.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, csp_value(Some(&session)));
    Ok(resp)
}
