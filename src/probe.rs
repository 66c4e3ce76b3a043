//! `roomgate probe`: one HTTP GET with a deadline, for container health checks (the
//! runtime image has no curl or shell).
//!
//! Owns the probe's URL rules, its single bounded exchange and the verdict on the
//! answer: a 2xx status passes, anything else fails. It reads only the status line: a
//! response body is never read or printed, and no message names the URL's path or query
//! (only its host and port), so a probe's output never carries what a URL might hold.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

/// Where a probe goes: a plain-HTTP address and the request target sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address, without IPv6 brackets (what a connect resolves).
    pub host: String,
    pub port: u16,
    /// `host:port` as written in the URL: the `Host` header and the name in messages.
    pub authority: String,
    /// Path and query, sent as the request target and never shown.
    pub path_and_query: String,
}

/// Why a probe failed. Messages name the address, never the path, query or a body.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("invalid URL: {0}")]
    InvalidUrl(&'static str),
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("no answer from {authority} within {}", humantime::format_duration(*limit))]
    Timeout { authority: String, limit: Duration },
    #[error("HTTP exchange with {authority} failed: {source}")]
    Exchange {
        authority: String,
        source: hyper::Error,
    },
    #[error("{authority} answered {status}")]
    Status {
        authority: String,
        status: StatusCode,
    },
}

/// Parse a probe URL: `http://host[:port]/path[?query]`. HTTPS is refused (the admin
/// listener speaks plain HTTP) and so are credentials in the URL.
pub fn target(url: &str) -> Result<Target, ProbeError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| ProbeError::InvalidUrl("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(_) => {
            return Err(ProbeError::InvalidUrl(
                "only http:// URLs (the admin listener speaks plain HTTP)",
            ))
        }
        None => return Err(ProbeError::InvalidUrl("give an absolute http:// URL")),
    }
    let authority = uri
        .authority()
        .ok_or(ProbeError::InvalidUrl("the URL has no host"))?;
    if authority.as_str().contains('@') {
        return Err(ProbeError::InvalidUrl("credentials in the URL are refused"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(ProbeError::InvalidUrl("the URL has no host"));
    }
    Ok(Target {
        host: host.to_owned(),
        port: authority.port_u16().unwrap_or(80),
        authority: authority.as_str().to_owned(),
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned()),
    })
}

/// The verdict on an answer: a 2xx passes, every other status fails.
pub fn verdict(authority: &str, status: StatusCode) -> Result<StatusCode, ProbeError> {
    if status.is_success() {
        Ok(status)
    } else {
        Err(ProbeError::Status {
            authority: authority.to_owned(),
            status,
        })
    }
}

/// GET the target once; connect, request and response head all within `limit`.
/// Returns the 2xx status, or why the probe failed.
pub async fn probe(target: &Target, limit: Duration) -> Result<StatusCode, ProbeError> {
    let status = tokio::time::timeout(limit, exchange(target))
        .await
        .map_err(|_| ProbeError::Timeout {
            authority: target.authority.clone(),
            limit,
        })??;
    verdict(&target.authority, status)
}

/// One HTTP/1.1 request on a fresh connection; only the status is kept.
async fn exchange(target: &Target) -> Result<StatusCode, ProbeError> {
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|source| ProbeError::Connect {
            authority: target.authority.clone(),
            source,
        })?;
    let failed = |source| ProbeError::Exchange {
        authority: target.authority.clone(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    let driver = tokio::spawn(connection);
    let request = Request::get(target.path_and_query.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::USER_AGENT, "roomgate-probe")
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| ProbeError::InvalidUrl("the URL's path cannot be sent"))?;
    let response = sender.send_request(request).await.map_err(failed)?;
    driver.abort();
    Ok(response.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_url_gives_host_port_and_target() {
        let t = target("http://127.0.0.1:9090/readyz?verbose=1").unwrap();
        assert_eq!(
            t,
            Target {
                host: "127.0.0.1".into(),
                port: 9090,
                authority: "127.0.0.1:9090".into(),
                path_and_query: "/readyz?verbose=1".into(),
            }
        );
    }

    #[test]
    fn the_port_defaults_to_80_and_the_path_to_root() {
        let t = target("http://localhost").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("localhost", 80));
        assert_eq!(t.path_and_query, "/");
    }

    #[test]
    fn an_ipv6_host_loses_its_brackets_for_the_connect_only() {
        let t = target("http://[::1]:9090/healthz").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.authority, "[::1]:9090");
    }

    #[test]
    fn https_relative_and_credential_urls_are_refused() {
        for url in [
            "https://127.0.0.1:9090/healthz",
            "/healthz",
            "127.0.0.1:9090",
            "http://user:pw@127.0.0.1:9090/healthz",
            "not a url",
        ] {
            assert!(
                matches!(target(url), Err(ProbeError::InvalidUrl(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn only_a_2xx_status_passes() {
        assert!(verdict("a:1", StatusCode::OK).is_ok());
        assert!(verdict("a:1", StatusCode::NO_CONTENT).is_ok());
        for status in [
            StatusCode::MOVED_PERMANENTLY,
            StatusCode::NOT_FOUND,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            assert!(verdict("a:1", status).is_err(), "{status}");
        }
    }

    /// A failure names the address and the status, never the URL's path or query.
    #[test]
    fn a_failure_message_never_names_the_path_or_query() {
        let t = target("http://127.0.0.1:9/private/path?token=abc").unwrap();
        let message = verdict(&t.authority, StatusCode::FORBIDDEN)
            .unwrap_err()
            .to_string();
        assert_eq!(message, "127.0.0.1:9 answered 403 Forbidden");
    }
}
