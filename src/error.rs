//! The proxy's error type and its one mapping to HTTP status and stable error code.
//!
//! Every rejection a client can see is a [`ProxyError`]; [`ProxyError::status_code`] is
//! the exhaustive table of what each becomes. Bodies carry the code and a fixed message,
//! never internals: details go to the log, once, in the outer handler.

use http::{header, HeaderValue, Response, StatusCode};

use crate::auth::iap::SignInError;
use crate::auth::AuthError;
use crate::body::{full, Body};
use crate::canonical::PathError;
use crate::webhook::SignatureError;

/// Every way a request can be refused or fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("no route for this host and path")]
    NoRoute,
    #[error("invalid header: {0}")]
    InvalidHeader(&'static str),
    #[error("invalid path: {0}")]
    InvalidPath(PathError),
    #[error("host does not match the TLS server name")]
    Misdirected,
    #[error(transparent)]
    Auth(AuthError),
    #[error(transparent)]
    Signature(SignatureError),
    /// A webhook endpoint's `roomgate.validation.source_ips` does not hold the caller.
    #[error("the client address is not allowed on this endpoint")]
    SourceNotAllowed,
    #[error("the body exceeds the limit")]
    PayloadTooLarge,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the body could not be read")]
    BadRequestBody,
    #[error("the room secret is unavailable")]
    SecretUnavailable,
    #[error("the queue is unavailable")]
    QueueUnavailable,
    #[error("the upstream could not be reached")]
    BadGateway,
    #[error("the upstream did not become ready")]
    UpstreamNotReady,
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    #[error(transparent)]
    SignIn(SignInError),
    /// Embed mode: an `Origin` the session does not allow.
    #[error("the origin is not allowed for this embed session")]
    ForbiddenOrigin,
    /// Over `roomgate.rate_limit`.
    #[error("rate limit exceeded")]
    RateLimited {
        headers: crate::ratelimit::RateHeaders,
        retry_after: u64,
    },
    /// Over `roomgate.quota.daily`; `retry_after` reaches the next 00:00 UTC.
    #[error("daily quota exceeded")]
    QuotaExceeded { retry_after: u64 },
    /// A malformed management API call; the message says what to fix (it names only
    /// the caller's own input).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// `not_a_participant` for a browser: an HTML page with a sign-out form.
    #[error("the user is not a participant of this room")]
    NotAParticipantPage { email: String, csrf: String },
}

impl ProxyError {
    /// Status, stable code, and the message shown to clients. No `_` arm: a new variant
    /// must be mapped here.
    pub fn status_code(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            ProxyError::NoRoute => (S::NOT_FOUND, "no_route", "No route for this host and path."),
            ProxyError::InvalidHeader(_) => (S::BAD_REQUEST, "invalid_header", "The request carries an invalid header."),
            ProxyError::InvalidPath(_) => (S::BAD_REQUEST, "invalid_path", "The request path is not accepted."),
            ProxyError::Misdirected => (S::MISDIRECTED_REQUEST, "misdirected_request", "The Host does not match the TLS server name."),
            ProxyError::Auth(AuthError::MissingAuth) => (S::UNAUTHORIZED, "missing_auth", "Authentication is required: send Authorization: Bearer <participant token>."),
            ProxyError::Auth(AuthError::CredentialsInUrl) => (S::UNAUTHORIZED, "missing_auth", "Credentials in the URL are never read: send the token in the Authorization: Bearer header."),
            ProxyError::Auth(AuthError::InvalidToken) => (S::UNAUTHORIZED, "invalid_token", "The token is not valid."),
            ProxyError::Auth(AuthError::Forbidden) => (S::FORBIDDEN, "forbidden", "The token does not grant access to this room."),
            ProxyError::Auth(AuthError::NotAParticipant) => (S::FORBIDDEN, "not_a_participant", "You are not a participant of this room."),
            ProxyError::NotAParticipantPage { .. } => (S::FORBIDDEN, "not_a_participant", "You are not a participant of this room."),
            ProxyError::Auth(AuthError::SessionUnavailable) => (S::SERVICE_UNAVAILABLE, "session_unavailable", "Sessions are unavailable; retry later."),
            ProxyError::SignIn(SignInError::Invalid(_)) => (S::BAD_REQUEST, "invalid_sign_in", "The sign-in request is not valid or has expired; start again."),
            ProxyError::SignIn(SignInError::Failed) => (S::UNAUTHORIZED, "sign_in_failed", "Sign-in failed."),
            ProxyError::SignIn(SignInError::Unavailable) => (S::SERVICE_UNAVAILABLE, "sign_in_unavailable", "Sign-in is unavailable; retry later."),
            ProxyError::SignIn(SignInError::RateLimited) => (S::TOO_MANY_REQUESTS, "rate_limited", "Too many sign-in attempts; retry later."),
            ProxyError::SignIn(SignInError::Busy) => (S::TOO_MANY_REQUESTS, "rate_limited", "Too many sign-ins at once; retry in a moment."),
            ProxyError::Signature(SignatureError::Missing) => (S::UNAUTHORIZED, "missing_signature", "The webhook signature is missing."),
            ProxyError::Signature(SignatureError::Invalid) => (S::UNAUTHORIZED, "invalid_signature", "The webhook signature is not valid."),
            ProxyError::Signature(SignatureError::Stale) => (S::UNAUTHORIZED, "stale_timestamp", "The webhook timestamp is outside the accepted window."),
            ProxyError::SourceNotAllowed => (S::FORBIDDEN, "forbidden", "This address may not call this endpoint."),
            ProxyError::PayloadTooLarge => (S::PAYLOAD_TOO_LARGE, "payload_too_large", "The request body is too large."),
            ProxyError::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed", "This method is not allowed here."),
            ProxyError::BadRequestBody => (S::BAD_REQUEST, "invalid_body", "The request body could not be read."),
            ProxyError::SecretUnavailable => (S::SERVICE_UNAVAILABLE, "secret_unavailable", "The verification secret is unavailable; retry later."),
            ProxyError::QueueUnavailable => (S::SERVICE_UNAVAILABLE, "queue_unavailable", "The queue is unavailable; retry later."),
            ProxyError::BadGateway => (S::BAD_GATEWAY, "bad_gateway", "The service could not be reached."),
            ProxyError::UpstreamNotReady => (S::SERVICE_UNAVAILABLE, "upstream_not_ready", "The service is starting; retry later."),
            ProxyError::UpstreamTimeout => (S::GATEWAY_TIMEOUT, "upstream_timeout", "The service did not answer in time."),
            ProxyError::ForbiddenOrigin => (S::FORBIDDEN, "forbidden_origin", "This origin may not use this embed session."),
            ProxyError::RateLimited { .. } => (S::TOO_MANY_REQUESTS, "rate_limited", "Too many requests; retry later."),
            ProxyError::QuotaExceeded { .. } => (S::TOO_MANY_REQUESTS, "quota_exceeded", "The daily quota is used up; it resets at 00:00 UTC."),
            ProxyError::InvalidRequest(_) => (S::BAD_REQUEST, "invalid_request", "The request is not valid."),
        }
    }

    /// Seconds a client should wait before retrying, for retryable errors.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ProxyError::RateLimited { retry_after, .. }
            | ProxyError::QuotaExceeded { retry_after } => {
                Some(u32::try_from(*retry_after).unwrap_or(u32::MAX))
            }
            ProxyError::SecretUnavailable | ProxyError::QueueUnavailable => Some(5),
            ProxyError::UpstreamNotReady => Some(5),
            ProxyError::Auth(AuthError::SessionUnavailable)
            | ProxyError::SignIn(SignInError::Unavailable) => Some(5),
            ProxyError::SignIn(SignInError::RateLimited) => Some(60),
            ProxyError::SignIn(SignInError::Busy) => Some(1),
            _ => None,
        }
    }

    /// The JSON error response.
    pub fn to_response(&self) -> Response<Body> {
        if let ProxyError::NotAParticipantPage { email, csrf } = self {
            return crate::pages::not_a_participant(email, csrf);
        }
        let (status, code, message) = self.status_code();
        let message = match self {
            ProxyError::InvalidRequest(detail) => detail.as_str(),
            _ => message,
        };
        let body = serde_json::json!({ "error": code, "message": message }).to_string();
        let mut resp = Response::new(full(body));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(
            self,
            ProxyError::Auth(AuthError::MissingAuth | AuthError::CredentialsInUrl)
        ) {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ProxyError::RateLimited { headers, .. } = self {
            headers.apply(h);
        }
        if matches!(self, ProxyError::Auth(AuthError::InvalidToken)) {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors_carry_retry_after() {
        for e in [
            ProxyError::QueueUnavailable,
            ProxyError::SecretUnavailable,
            ProxyError::UpstreamNotReady,
        ] {
            let r = e.to_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(r.headers().contains_key(header::RETRY_AFTER));
        }
    }

    #[test]
    fn missing_auth_challenges_for_a_bearer_token() {
        let r = ProxyError::Auth(AuthError::MissingAuth).to_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    // The sign-in form's concurrency cap answers like its rate limit, but asks for a
    // short wait: the slot frees as soon as one password check ends.
    #[test]
    fn a_busy_sign_in_is_429_rate_limited_with_a_short_retry_after() {
        let r = ProxyError::SignIn(SignInError::Busy).to_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            ProxyError::SignIn(SignInError::Busy).status_code().1,
            "rate_limited"
        );
    }
}
