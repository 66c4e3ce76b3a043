//! The static provider's sign-in form (`POST /.roomgate/login`): argon2 password checks on
//! the CPU pool, one per CPU at once, and the per-user and per-IP attempt limits.

use std::sync::OnceLock;

use super::*;
use crate::cpu::{self, Slots};

/// POST `/.roomgate/login` on the sign-in host (static provider).
pub(super) async fn login(
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
    let now = r.now();
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
pub(super) fn login_slots() -> &'static Slots {
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
pub(super) fn dummy_hash() -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unaffordable_hash_is_never_computed() {
        let costly =
            "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        let started = std::time::Instant::now();
        assert!(!verify_password(costly, "password"));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
