//! The runtime rules of embed mode, as pure functions over the request head and the
//! session found.
//!
//! A request on a port that serves embed sessions is in embed mode when it carries the
//! `__Host-roomgate_embed` cookie, an `X-Roomgate-Embed-Token` header, or
//! `Authorization: Bearer mtok_…`. In embed mode nothing else is accepted: no fallback to
//! the port's usual method. The cookie admits GET and HEAD only; every other method needs
//! the token. A request whose `Origin` is neither the route's own origin nor one of the
//! session's allowed origins is refused.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::credentials::looks_like_token;
use super::session::{parse_origin, EmbedSession};
use crate::auth::{AuthError, Identity};

/// The cookie a launch sets: Secure, HttpOnly, SameSite=None, Partitioned, Path=/.
pub const COOKIE: &str = "__Host-roomgate_embed";
/// The header that carries the access token. It is in [`crate::headers::ROOMGATE_PREFIX`]'s
/// space: the pipeline looks for it only when a field of that space is present.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-roomgate-embed-token");
/// The header that tells the service which embed session a request came through.
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("x-meshagent-embed-session");

/// The embed credential a request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    Token(&'a str),
    Cookie(&'a str),
}

/// `None` when the request is not in embed mode; else the credential to judge it by, or
/// why it is refused before any lookup.
pub fn presented<'a>(
    method: &Method,
    headers: &'a HeaderMap,
) -> Option<Result<Presented<'a>, AuthError>> {
    let mut header_values = headers.get_all(&TOKEN_HEADER).iter();
    let header = header_values.next();
    let repeated = header_values.next().is_some();
    let bearer = crate::auth::bearer(headers);
    let cookie = crate::cookies::value(headers, COOKIE);
    let bearer_token = matches!(bearer, Ok(Some(b)) if looks_like_token(b));
    if header.is_none() && cookie.is_none() && !bearer_token {
        return None;
    }
    if repeated {
        return Some(Err(AuthError::InvalidToken));
    }
    let header = match header.map(HeaderValue::to_str) {
        None => None,
        Some(Ok(v)) => Some(v.trim()),
        Some(Err(_)) => return Some(Err(AuthError::InvalidToken)),
    };
    Some(match (header, bearer) {
        // An Authorization that is not the embed token is never a way around it.
        (_, Err(_)) => Err(AuthError::InvalidToken),
        (Some(h), Ok(Some(b))) if h != b => Err(AuthError::InvalidToken),
        (Some(h), _) => Ok(Presented::Token(h)),
        (None, Ok(Some(b))) if looks_like_token(b) => Ok(Presented::Token(b)),
        (None, Ok(Some(_))) => Err(AuthError::InvalidToken),
        (None, Ok(None)) => match cookie {
            Some(c) if *method == Method::GET || *method == Method::HEAD => {
                Ok(Presented::Cookie(c))
            }
            _ => Err(AuthError::MissingAuth),
        },
    })
}

/// Why a request with a live session is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The session is for another room or domain.
    Forbidden,
    /// `Origin` is neither the route's own nor an allowed one.
    ForbiddenOrigin,
}

/// Admit a request of a live session on `room` and the canonical `host`, whose own
/// origin is `own_origin` (normalised).
pub fn admit(
    session: &EmbedSession,
    room: &str,
    host: &str,
    origin: Option<&HeaderValue>,
    own_origin: Option<&str>,
) -> Result<Identity, Refusal> {
    if session.room != room || session.domain != host {
        return Err(Refusal::Forbidden);
    }
    if let Some(origin) = origin {
        let origin = origin.to_str().ok().and_then(|o| parse_origin(o).ok());
        let allowed = origin.is_some_and(|o| {
            Some(o.as_str()) == own_origin || session.allowed_origins.contains(&o)
        });
        if !allowed {
            return Err(Refusal::ForbiddenOrigin);
        }
    }
    Ok(Identity {
        user: session.user.clone(),
        api_scope: session.api.clone(),
        email: None,
        embed_session: Some(session.id.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::header_map;

    #[test]
    fn the_token_header_is_one_of_roomgates_own() {
        assert!(TOKEN_HEADER
            .as_str()
            .starts_with(crate::headers::ROOMGATE_PREFIX));
    }

    const T: &str = "mtok_aaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn p<'a>(method: &str, h: &'a HeaderMap) -> Option<Result<Presented<'a>, AuthError>> {
        presented(&method.parse().unwrap(), h)
    }

    #[test]
    fn a_request_without_embed_credentials_is_not_in_embed_mode() {
        let h = header_map(&[("authorization", "Bearer eyJ.a.b"), ("cookie", "x=1")]);
        assert_eq!(p("GET", &h), None);
    }

    #[test]
    fn the_token_comes_from_its_header_or_as_a_bearer() {
        let h = header_map(&[("x-roomgate-embed-token", T)]);
        assert_eq!(p("POST", &h), Some(Ok(Presented::Token(T))));
        let bearer = format!("Bearer {T}");
        let h = header_map(&[("authorization", &bearer)]);
        assert_eq!(p("DELETE", &h), Some(Ok(Presented::Token(T))));
        let h = header_map(&[("authorization", &bearer), ("x-roomgate-embed-token", T)]);
        assert_eq!(p("POST", &h), Some(Ok(Presented::Token(T))));
    }

    /// Security: in embed mode an Authorization that is not the embed token is refused,
    /// never used instead (no fallback to the port's usual method).
    #[test]
    fn embed_mode_refuses_any_other_authorization() {
        for other in [
            "Bearer eyJhbGciOi.x.y",
            "Basic Zm9vOmJhcg==",
            "Bearer mtok_other",
        ] {
            let h = header_map(&[("authorization", other), ("x-roomgate-embed-token", T)]);
            assert_eq!(p("GET", &h), Some(Err(AuthError::InvalidToken)), "{other}");
        }
        for other in ["Bearer eyJhbGciOi.x.y", "Basic Zm9vOmJhcg=="] {
            let h = header_map(&[
                ("authorization", other),
                ("cookie", "__Host-roomgate_embed=c"),
            ]);
            assert_eq!(p("GET", &h), Some(Err(AuthError::InvalidToken)), "{other}");
        }
        let h = header_map(&[("x-roomgate-embed-token", T), ("x-roomgate-embed-token", T)]);
        assert_eq!(p("GET", &h), Some(Err(AuthError::InvalidToken)));
    }

    /// Security: the cookie (sent by the browser on its own) admits documents and assets
    /// only; a state-changing call needs the token the app holds.
    #[test]
    fn the_cookie_admits_get_and_head_only() {
        let h = header_map(&[("cookie", "a=1; __Host-roomgate_embed=c")]);
        assert_eq!(p("GET", &h), Some(Ok(Presented::Cookie("c"))));
        assert_eq!(p("HEAD", &h), Some(Ok(Presented::Cookie("c"))));
        for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            assert_eq!(p(m, &h), Some(Err(AuthError::MissingAuth)), "{m}");
        }
    }

    fn session() -> EmbedSession {
        EmbedSession {
            id: "es_1".into(),
            room: "acme".into(),
            domain: "app.acme.test".into(),
            path: "/".into(),
            user: "cust-42".into(),
            api: serde_json::json!({"x": 1}),
            allowed_origins: vec!["https://host.test".into()],
            created_at: 0,
            expires_at: 10,
        }
    }

    #[test]
    fn a_session_admits_its_room_and_domain_from_allowed_origins() {
        let s = session();
        let own = Some("https://app.acme.test");
        let id = admit(&s, "acme", "app.acme.test", None, own).unwrap();
        assert_eq!(id.user, "cust-42");
        assert_eq!(id.embed_session.as_deref(), Some("es_1"));
        for origin in [
            "https://host.test",
            "HTTPS://HOST.TEST:443",
            "https://app.acme.test",
        ] {
            let o = HeaderValue::from_str(origin).unwrap();
            assert!(
                admit(&s, "acme", "app.acme.test", Some(&o), own).is_ok(),
                "{origin}"
            );
        }
    }

    /// Security: a call from a page on an origin the session does not allow is refused
    /// (403 forbidden_origin), and a session works only on its own room and domain.
    #[test]
    fn foreign_origins_and_other_routes_are_refused() {
        let s = session();
        let own = Some("https://app.acme.test");
        for origin in [
            "https://evil.test",
            "null",
            "https://host.test:8443",
            "http://host.test",
        ] {
            let o = HeaderValue::from_str(origin).unwrap();
            assert_eq!(
                admit(&s, "acme", "app.acme.test", Some(&o), own),
                Err(Refusal::ForbiddenOrigin),
                "{origin}"
            );
        }
        assert_eq!(
            admit(&s, "other", "app.acme.test", None, own),
            Err(Refusal::Forbidden)
        );
        assert_eq!(
            admit(&s, "acme", "docs.acme.test", None, own),
            Err(Refusal::Forbidden)
        );
    }
}
