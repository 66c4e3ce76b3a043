//! Authentication and authorization of callers.
//!
//! Owns the decision whether a request may reach a port and as whom. Decisions are
//! values ([`Decision`]), computed from headers and the injected clock; this module does
//! not forward or log.

pub mod iap;
pub mod membership;
pub mod oidc;
pub mod redirect;
pub mod session;
pub mod signing;
pub mod token;

use http::header::AUTHORIZATION;
use http::HeaderMap;
use serde_json::Value;

/// The IAP session cookie of a route domain; never forwarded upstream.
pub const IAP_COOKIE: &str = "__meshagent_iap";

/// Who a request is from, as the upstream will be told.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `X-MESHAGENT-USER`: token `name`, or the IAP user's email.
    pub user: String,
    /// `X-MESHAGENT-API-SCOPE`: the api grant, `{}` when none.
    pub api_scope: Value,
    /// The user's email when the identity is one (IAP), for the identity assertion.
    pub email: Option<String>,
    /// `X-MESHAGENT-EMBED-SESSION`: the embed session the request came through.
    pub embed_session: Option<String>,
}

/// Why a caller was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication is required")]
    MissingAuth,
    /// Credentials offered only in the URL, which roomgate never reads.
    #[error("credentials in the URL are not accepted")]
    CredentialsInUrl,
    #[error("the token is not valid")]
    InvalidToken,
    #[error("the token does not grant this room")]
    Forbidden,
    #[error("the user is not a participant of this room")]
    NotAParticipant,
    /// The IAP session store could not be reached; fail closed.
    #[error("the session store is unavailable")]
    SessionUnavailable,
}

/// The outcome of authorizing one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Forward without identity (public port).
    Public,
    /// Forward as this identity.
    Allow(Identity),
    /// Send the browser here to sign in (IAP).
    Redirect(String),
    /// Signed in through IAP but not a participant: a browser gets a page with a sign-out
    /// form carrying this CSRF token.
    NotAParticipant {
        email: String,
        csrf: String,
    },
    Deny(AuthError),
}

/// The bearer token in `Authorization`, if any. `Err` when the header is present but not a
/// well-formed bearer credential.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidToken);
    }
    let v = v.to_str().map_err(|_| AuthError::InvalidToken)?;
    let (scheme, token) = v.split_once(' ').ok_or(AuthError::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::InvalidToken);
    }
    Ok(Some(token.trim()))
}

/// True when the query string carries what looks like a credential, so the 401 can say
/// to use the header instead.
pub fn query_has_credentials(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, _)| {
            matches!(
                k.to_ascii_lowercase().as_str(),
                "token" | "access_token" | "jwt" | "auth" | "api_key" | "apikey"
            )
        })
    })
}

/// Authorize a request on a port that needs a participant token.
pub fn authorize_bearer(
    headers: &HeaderMap,
    query: Option<&str>,
    tokens: &token::TokenVerifier,
    room: &str,
    now: i64,
) -> Decision {
    match bearer(headers) {
        Ok(Some(t)) => match tokens.verify(t, room, now) {
            Ok(id) => Decision::Allow(id),
            Err(e) => Decision::Deny(e),
        },
        Ok(None) if query_has_credentials(query) => Decision::Deny(AuthError::CredentialsInUrl),
        Ok(None) => Decision::Deny(AuthError::MissingAuth),
        Err(e) => Decision::Deny(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensitive::Secret;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(AUTHORIZATION, v.parse().unwrap());
        m
    }

    #[test]
    fn token_in_the_query_is_never_read() {
        let keys = vec![("dev".to_string(), Secret::new([1u8; 32].to_vec()))];
        let t = token::mint("dev", &keys[0].1, "acme", "bob", None, None, 0).unwrap();
        let keys = keys.clone();
        let q = format!("access_token={t}");
        assert_eq!(
            authorize_bearer(
                &HeaderMap::new(),
                Some(&q),
                &token::TokenVerifier::new(keys),
                "acme",
                0
            ),
            Decision::Deny(AuthError::CredentialsInUrl)
        );
    }

    #[test]
    fn non_bearer_schemes_are_invalid() {
        assert_eq!(
            bearer(&h("Basic Zm9vOmJhcg==")),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(bearer(&h("Bearer ")), Err(AuthError::InvalidToken));
        assert_eq!(bearer(&h("bearer abc")), Ok(Some("abc")));
        assert_eq!(bearer(&HeaderMap::new()), Ok(None));
    }
}
