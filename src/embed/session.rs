//! What an embed session is, and the rules a mint request must meet.
//!
//! Owns the stored record ([`EmbedSession`]), the parsing of the management API's mint
//! body ([`MintRequest`], unknown fields refused) into a checked [`NewSession`], the
//! origin grammar of `allowed_origins`, and the `frame-ancestors` value built from it.
//! Pure: the config and `now` come in, values or an [`ApiError`] come out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::redirect::safe_return_path;
use crate::canonical::canonical_host;
use crate::config::{Config, Embed};
use crate::route::RouteTable;

/// Most origins one session may be embedded on.
pub const MAX_ORIGINS: usize = 16;
/// Longest user name, and largest api scope (compact JSON), accepted.
const MAX_USER: usize = 256;
const MAX_API: usize = 4096;

/// An embed session as stored (under its id; it holds no secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedSession {
    pub id: String,
    pub room: String,
    /// The canonical route domain the session serves.
    pub domain: String,
    /// Where the launch sends the iframe.
    pub path: String,
    /// `X-MESHAGENT-USER`.
    pub user: String,
    /// `X-MESHAGENT-API-SCOPE`, a JSON object.
    pub api: Value,
    /// Normalised origins (`https://host[:port]`) that may frame the app and call it.
    pub allowed_origins: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
}

impl EmbedSession {
    /// The `Content-Security-Policy` of every response in this session's embed mode.
    pub fn frame_ancestors(&self) -> String {
        frame_ancestors(&self.allowed_origins)
    }
}

/// `frame-ancestors o1 o2`; `'none'` for no origin.
pub fn frame_ancestors(origins: &[String]) -> String {
    if origins.is_empty() {
        return "frame-ancestors 'none'".to_owned();
    }
    let mut v = String::from("frame-ancestors");
    for o in origins {
        v.push(' ');
        v.push_str(o);
    }
    v
}

/// Why a management API call was refused (400 `invalid_request`, with this message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub String);

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(msg.into())
}

/// `scheme://host[:port]`, lowercased, without the scheme's default port. A path (even
/// `/`), query, fragment, user info, wildcard or anything but a DNS name or an IP
/// address is refused: each origin goes verbatim into a `Content-Security-Policy`.
pub fn parse_origin(raw: &str) -> Result<String, &'static str> {
    const SHAPE: &str = "must be an origin like https://host[:port], without path or wildcard";
    let (scheme, rest) = raw.split_once("://").ok_or(SHAPE)?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(SHAPE),
    };
    if rest.is_empty() || rest.len() > 260 {
        return Err(SHAPE);
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']').ok_or(SHAPE)?;
            addr.parse::<std::net::Ipv6Addr>().map_err(|_| SHAPE)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(SHAPE)?),
            };
            (format!("[{}]", addr.to_ascii_lowercase()), port)
        }
        None => {
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            let host = host.to_ascii_lowercase();
            let dns = !host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !dns {
                return Err(SHAPE);
            }
            (host, port)
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(SHAPE),
            }
        }
        Some(_) => return Err(SHAPE),
    };
    Ok(match port {
        Some(n) if n != default => format!("{scheme}://{host}:{n}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The mint body, exactly: any other field is an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    pub room: String,
    pub domain: String,
    #[serde(default)]
    pub path: Option<String>,
    pub user: String,
    #[serde(default)]
    pub api: Option<Value>,
    pub allowed_origins: Vec<String>,
    /// A duration string (`"30m"`); omitted: `embed.session_ttl`.
    #[serde(default)]
    pub ttl: Option<String>,
}

/// A mint request that passed every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub room: String,
    pub domain: String,
    pub path: String,
    pub user: String,
    pub api: Value,
    pub allowed_origins: Vec<String>,
    /// Seconds the session lives.
    pub ttl: i64,
}

/// Check a mint request against the config: the room exists, `domain` routes `path` to
/// a port of that room that serves embed sessions, the origins are origins, the ttl is
/// positive and at most `embed.session_ttl`.
pub fn check_mint(
    req: MintRequest,
    config: &Config,
    routes: &RouteTable,
) -> Result<NewSession, ApiError> {
    let embed: &Embed = &config.file.embed;
    if config.room(&req.room).is_none() {
        return Err(bad("room: unknown room"));
    }
    let domain = canonical_host(req.domain.trim())
        .map(|d| d.into_owned())
        .filter(|d| !d.is_empty() && !d.contains('/'))
        .ok_or_else(|| bad("domain: not a host name"))?;
    let path = match req.path.as_deref() {
        None => "/".to_owned(),
        Some(p) => safe_return_path(p).ok_or_else(|| {
            bad("path: must be a same-origin path starting with / (no scheme, host or dot segment)")
        })?,
    };
    let route_path = path.split_once('?').map_or(path.as_str(), |(p, _)| p);
    let canonical =
        crate::canonical::canonical_path(route_path).map_err(|_| bad("path: not a valid path"))?;
    match routes.resolve(&domain, &canonical) {
        Some(r) if r.port.room == req.room && r.policy.embed => {}
        Some(r) if r.port.room == req.room => {
            return Err(bad(
                "path: the port this path reaches does not serve embed sessions (roomgate.embed)",
            ))
        }
        _ => return Err(bad("domain: not a route of this room")),
    }
    let user = req.user.trim();
    if user.is_empty() || user.len() > MAX_USER || user.chars().any(char::is_control) {
        return Err(bad("user: 1 to 256 characters, no control characters"));
    }
    let api = req.api.unwrap_or_else(|| Value::Object(Default::default()));
    if !api.is_object() || api.to_string().len() > MAX_API {
        return Err(bad("api: must be a JSON object of at most 4096 bytes"));
    }
    if req.allowed_origins.is_empty() || req.allowed_origins.len() > MAX_ORIGINS {
        return Err(bad("allowed_origins: 1 to 16 origins"));
    }
    let mut origins = Vec::with_capacity(req.allowed_origins.len());
    for (i, o) in req.allowed_origins.iter().enumerate() {
        let o = parse_origin(o).map_err(|m| bad(format!("allowed_origins[{i}]: {m}")))?;
        if !origins.contains(&o) {
            origins.push(o);
        }
    }
    let max = embed.session_ttl.0.as_secs() as i64;
    let ttl = match req.ttl.as_deref() {
        None => max,
        Some(t) => {
            let d = crate::config::parse_duration(t)
                .map_err(|_| bad("ttl: not a duration like \"30m\""))?;
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if secs < 1 {
                return Err(bad("ttl: must be at least 1s"));
            }
            if secs > max {
                return Err(bad(format!(
                    "ttl: must not exceed embed.session_ttl ({})",
                    humantime::format_duration(embed.session_ttl.0)
                )));
            }
            secs
        }
    };
    Ok(NewSession {
        room: req.room,
        domain,
        path,
        user: user.to_owned(),
        api,
        allowed_origins: origins,
        ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        for (raw, want) in [
            ("https://Host.Test", "https://host.test"),
            ("https://host.test:443", "https://host.test"),
            ("http://host.test:80", "http://host.test"),
            ("https://host.test:8443", "https://host.test:8443"),
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
            ("https://[::1]:8443", "https://[::1]:8443"),
        ] {
            assert_eq!(parse_origin(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    /// Security: an origin goes verbatim into `Content-Security-Policy`, so anything that
    /// is not exactly an origin (a path, a wildcard, a quote, a `;` that would start
    /// another directive) is refused.
    #[test]
    fn origins_with_paths_wildcards_or_directives_are_refused() {
        for raw in [
            "https://host.test/",
            "https://host.test/app",
            "https://*.host.test",
            "*",
            "https://host.test?x",
            "https://host.test#f",
            "https://user@host.test",
            "https://host.test; script-src *",
            "https://host.test 'unsafe-inline'",
            "ftp://host.test",
            "host.test",
            "https://",
            "https://host.test:0",
            "https://host.test:99999",
            "https://host.test:",
            "null",
            "'self'",
        ] {
            assert!(parse_origin(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn frame_ancestors_lists_the_origins_or_none() {
        assert_eq!(frame_ancestors(&[]), "frame-ancestors 'none'");
        assert_eq!(
            frame_ancestors(&["https://a.test".into(), "https://b.test:8443".into()]),
            "frame-ancestors https://a.test https://b.test:8443"
        );
    }
}
