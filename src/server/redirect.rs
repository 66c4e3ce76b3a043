//! The plain listener's redirect to HTTPS (`listen.redirect_http_to_https`).

use http::{header, HeaderValue, Request, Response, StatusCode};

use crate::body::Body;
use crate::canonical::{canonical_host, canonical_path};
use crate::error::ProxyError;

/// The plain listener's answer when `listen.redirect_http_to_https` is set: 308 to the
/// same host (on the HTTPS port), path and query.
pub fn redirect_to_https<B>(req: &Request<B>, https_port: Option<u16>) -> Response<Body> {
    let authority = crate::canonical::request_authority(req.uri(), req.headers());
    let raw_host = authority.as_ref().and_then(|a| a.as_str()).unwrap_or("");
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = https_location(raw_host, path_and_query, https_port);
    let status = if target.is_some() {
        StatusCode::PERMANENT_REDIRECT
    } else {
        StatusCode::BAD_REQUEST
    };
    tracing::event!(
        target: "roomgate::access",
        tracing::Level::INFO,
        http.method = %req.method(),
        http.host = %canonical_host(raw_host).unwrap_or_default(),
        http.path = %canonical_path(req.uri().path()).unwrap_or_default(),
        http.status = status.as_u16(),
        auth.result = "redirect",
        "request"
    );
    let Some(location) = target.and_then(|t| HeaderValue::from_str(&t).ok()) else {
        return ProxyError::InvalidHeader("missing or malformed Host").to_response();
    };
    let mut resp = Response::new(crate::body::empty());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}

/// `https://host[:port]/path?query` for a plain-HTTP request, or `None` when the Host is
/// not a plausible host name. The port is omitted when it is 443.
pub fn https_location(
    raw_host: &str,
    path_and_query: &str,
    https_port: Option<u16>,
) -> Option<String> {
    let host = canonical_host(raw_host)?;
    let port = match https_port {
        Some(443) | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    let pq = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        "/"
    };
    Some(format!("https://{host}{port}{pq}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_location_keeps_path_and_query_and_names_the_https_port() {
        assert_eq!(
            https_location("App.Test:8080", "/a/b?x=1", Some(8443)).as_deref(),
            Some("https://app.test:8443/a/b?x=1")
        );
        assert_eq!(
            https_location("app.test", "/", Some(443)).as_deref(),
            Some("https://app.test/")
        );
    }

    #[test]
    fn https_location_refuses_a_malformed_host() {
        assert_eq!(https_location("evil.test/x", "/", Some(443)), None);
        assert_eq!(https_location("", "/", Some(443)), None);
    }
}
