//! The one canonical view of what names a request: its host (lowercased, port and
//! trailing dot stripped, no empty label), its path (dot-segments and repeated slashes
//! resolved once; ambiguous encodings refused), a route's domain pattern, and an email
//! address as membership rules compare it.
//!
//! Routing, endpoint matching, authorization, forwarding and config validation all use the
//! values produced here; nothing downstream re-parses the raw request target. Pure.

use std::fmt;

mod host;
mod path;

pub use host::{canonical_host, request_authority, Authority, Host};
pub use path::{canonical_path, match_view, PathError};

/// A route's domain: an exact name or a one-label wildcard (`*.apps.example.test`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    Exact(String),
    /// The suffix after `*.`.
    Wildcard(String),
}

impl DomainPattern {
    pub fn parse(raw: &str) -> Result<DomainPattern, String> {
        let lower = raw.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower),
        };
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || !name.split('.').all(valid_label) {
            return Err(format!(
                "{raw:?} is not a domain name (letters, digits, '-', dots; wildcard only as a leading '*.')"
            ));
        }
        Ok(if wild {
            DomainPattern::Wildcard(name.to_owned())
        } else {
            DomainPattern::Exact(name.to_owned())
        })
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Wildcard(d) => write!(f, "*.{d}"),
        }
    }
}
/// The domain of a well-formed email, lowercased: exactly one `@`, a non-empty local
/// part, a domain of DNS characters without empty labels. `None` for anything else.
pub fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.split_once('@')?;
    if local.is_empty()
        || domain.contains('@')
        || local.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let domain = domain.to_ascii_lowercase();
    if domain.is_empty()
        || domain.split('.').any(str::is_empty)
        || !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return None;
    }
    Some(domain)
}

/// The email as compared: trimmed and ASCII-lowercased, when well-formed. Unicode case
/// folding is not applied: it maps distinct characters together (U+212A, the Kelvin sign,
/// becomes `k`), so another account could pass as an email a rule names.
pub fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim();
    email_domain(email)?;
    Some(email.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_domains_cover_exactly_one_label() {
        assert_eq!(
            DomainPattern::parse("*.Apps.Example.test").unwrap(),
            DomainPattern::Wildcard("apps.example.test".into())
        );
        assert!(DomainPattern::parse("a.*.example.test").is_err());
        assert!(DomainPattern::parse("**.example.test").is_err());
        assert!(DomainPattern::parse("exa_mple.test").is_err());
    }
}
