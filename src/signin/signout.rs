//! The two ends of a route domain's session: the handoff callback that creates it
//! (`POST /.roomgate/callback`) and sign-out (`/.roomgate/signout`), which ends it with the
//! sign-in host session it came from and every other domain session handed off from that.

use super::*;

/// POST `/.roomgate/callback` on a route domain: redeem a handoff code.
pub(super) async fn callback(
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
    let now = r.now();
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
pub(super) fn session_cookie(iap: &Iap, on_auth: bool) -> (&'static str, &'static str) {
    if on_auth {
        let names = auth_cookies(iap);
        (names.signin, names.path)
    } else {
        (IAP_COOKIE, "/")
    }
}

/// GET `/.roomgate/signout`: a confirmation form (sign-out itself needs the POST).
pub(super) fn signout_page(
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
pub(super) async fn signout(
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
