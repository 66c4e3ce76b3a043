//! The sign-in flow on the sign-in host: `start` (a sealed return state in, a flow or a
//! handoff out), the OIDC callback, the sign-in host session, and the handoff of a
//! one-time code to the route domain.

use std::sync::Arc;

use super::*;
use crate::auth::iap::{FLOW_TTL, HANDOFF_TTL};
use crate::auth::oidc::OidcError;

/// GET `/.roomgate/start?rs=…` on the sign-in host.
pub(super) async fn start(
    r: &Reserved<'_>,
    iap: &Iap,
    auth: &AuthHost,
    parts: &http::request::Parts,
) -> Result<Response<Body>, SignInError> {
    let keys = &r.state.config.cookie_keys;
    let now = r.now();
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

pub(super) fn redirect_uri(auth: &AuthHost) -> String {
    format!("{}{OIDC_CALLBACK_PATH}", auth.base)
}

pub(super) fn oidc_config(
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

pub(super) fn oidc_error(e: OidcError) -> SignInError {
    tracing::warn!(error = %e, "oidc sign-in error");
    match e {
        OidcError::Unavailable(_) => SignInError::Unavailable,
        OidcError::Rejected(_) => SignInError::Failed,
    }
}

/// The return state must still name a routed host and a safe path in the current config,
/// and an origin roomgate serves that host on.
pub(super) fn check_return(
    state: &State,
    auth: &AuthHost,
    ret: &ReturnState,
) -> Result<(), SignInError> {
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
pub(super) async fn take_flow(
    r: &Reserved<'_>,
    parts: &http::request::Parts,
    flow_id: &str,
    peek: bool,
) -> Result<Flow, SignInError> {
    let sessions = &r.shared.iap.sessions;
    let now = r.now();
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
pub(super) async fn oidc_callback(
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
    let now = r.now();
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
pub(super) async fn signed_in(
    r: &Reserved<'_>,
    iap: &Iap,
    ret: ReturnState,
    session: Session,
) -> Result<Response<Body>, SignInError> {
    let now = r.now();
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
pub(super) async fn handoff(
    r: &Reserved<'_>,
    ret: ReturnState,
    mut session: Session,
    parent: String,
    cookies: Option<[String; 2]>,
) -> Result<Response<Body>, SignInError> {
    let now = r.now();
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
