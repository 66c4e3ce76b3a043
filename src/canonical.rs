//! The one canonical view of what names a request: its host (lowercased, port and
//! trailing dot stripped, no empty label), its path (dot-segments and repeated slashes
//! resolved once; ambiguous encodings refused), a route's domain pattern, and an email
//! address as membership rules compare it.
//!
//! Routing, endpoint matching, authorization, forwarding and config validation all use the
//! values produced here; nothing downstream re-parses the raw request target. Pure.

use std::borrow::Cow;
use std::fmt;

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

/// The host a request names, as the client sent it: the URI's authority (HTTP/2,
/// absolute-form; it wins over `Host`, RFC 9112 §3.2.2) or else the `Host` header.
/// `None` when the request carries more than one `Host` line (RFC 9112 §3.2: a 400), so no
/// two parts of the pipeline can read different ones. [`canonical_host`] turns it into the
/// one view used for routing.
pub fn request_authority<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Option<&'a str> {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return None;
    }
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| host.and_then(|h| h.to_str().ok()))
}

/// The canonical host of a request: lowercased, without port or trailing dot.
/// `None` when the value is not a plausible host name or IP literal. Borrows when the
/// value is already canonical (the common case), else holds the lowercased copy inline
/// (a host name is at most 253 bytes), so no request allocates for its host.
pub fn canonical_host(raw: &str) -> Option<Host<'_>> {
    if well_formed_labels(raw)
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Some(Host(HostRepr::Borrowed(raw)));
    }
    canonical_host_slow(raw)
}

/// A canonical host name ([`canonical_host`]); reads as a `str`.
#[derive(Clone)]
pub struct Host<'a>(HostRepr<'a>);

// The inline copy is the point: a request with a mixed-case host does not allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum HostRepr<'a> {
    Borrowed(&'a str),
    /// ASCII, `len` bytes of `bytes`.
    Inline {
        bytes: [u8; HOST_CAPACITY],
        len: u8,
    },
}

/// The longest canonical host: a 253-byte name, or a bracketed IPv6 literal (47 bytes).
const HOST_CAPACITY: usize = 253;

impl Host<'_> {
    /// `text`, lowercased, when it fits (callers have checked it is ASCII).
    fn lowercased(text: &str) -> Option<Host<'static>> {
        let mut bytes = [0u8; HOST_CAPACITY];
        let len = u8::try_from(text.len()).ok()?;
        bytes
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        bytes.make_ascii_lowercase();
        Some(Host(HostRepr::Inline { bytes, len }))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            HostRepr::Borrowed(s) => s,
            // Built from ASCII only, so this never falls back.
            HostRepr::Inline { bytes, len } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
        }
    }

    pub fn into_owned(self) -> String {
        self.as_str().to_owned()
    }
}

impl std::ops::Deref for Host<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Host<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Default for Host<'_> {
    fn default() -> Self {
        Host(HostRepr::Borrowed(""))
    }
}

impl std::fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Host<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Host<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Host<'_> {}

impl PartialEq<str> for Host<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Host<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A name of at most 253 bytes whose dot-separated labels are each 1 to 63 bytes long:
/// `.apps.test`, `a..test` and a second trailing dot have an empty label, and a wildcard
/// never stands for an empty one.
fn well_formed_labels(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let mut label = 0usize;
    for &b in host.as_bytes() {
        if b == b'.' {
            if label == 0 {
                return false;
            }
            label = 0;
        } else {
            label += 1;
            if label > 63 {
                return false;
            }
        }
    }
    label > 0
}

fn canonical_host_slow(raw: &str) -> Option<Host<'static>> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal, optionally with a port; the brackets must hold an address.
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)) {
            return None;
        }
        let addr: std::net::Ipv6Addr = rest[..end].parse().ok()?;
        return Host::lowercased(&format!("[{addr}]"));
    } else {
        match raw.bytes().rposition(|b| b == b':') {
            Some(colon) if valid_port(&raw[colon + 1..]) => &raw[..colon],
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if !well_formed_labels(host)
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return None;
    }
    Host::lowercased(host)
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with /")]
    NotAbsolute,
    #[error(
        "the path holds a fragment, NUL, backslash, encoded slash or a dot-segment with parameters"
    )]
    Ambiguous,
    #[error("the path has an invalid percent-encoding")]
    BadEncoding,
}

/// Normalise a request path once (RFC 3986 §6.2.2): reject what different parsers read
/// differently (`#`, `%23`, NUL, `\`, `%2F`, `%5C`, invalid escapes, and `..;` or `.;`,
/// which Tomcat reads as a dot-segment), decode escaped unreserved characters (`%61` is
/// `a`, `%2E` is `.`, `%7E` is `~`) and write every other escape with upper-case hex,
/// collapse repeated slashes and resolve `.` and `..` segments (never above the root).
/// Borrows when the path is already canonical (the common case).
pub fn canonical_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if is_canonical_path(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    canonical_path_slow(raw).map(Cow::Owned)
}

/// True when normalising would not change `raw`: plain bytes, no escape, no empty, `.` or
/// `..` segment, no segment that a parser stripping `;` parameters reads as one.
fn is_canonical_path(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let plain = bytes
        .iter()
        .all(|&b| b > 0x20 && b != 0x7f && !matches!(b, b'%' | b'#' | b'\\'));
    if !plain {
        return false;
    }
    // Segments between slashes (the last may be empty: a trailing slash is kept).
    let mut segments = bytes[1..].split(|&b| b == b'/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if (seg.is_empty() && !last) || is_dot_segment(seg) || has_dot_params(seg) {
            return false;
        }
    }
    true
}

/// The canonical path as routes and endpoints are matched against it: every segment
/// without its `;` parameters (RFC 3986 §3.3), and the segments that leaves empty
/// dropped. Tomcat, Jetty and Spring strip parameters before they route, so `/admin;x=1`
/// and `/;x/admin` are `/admin` to them and must meet `/admin`'s policy here too. The
/// service still receives the path as it was. Borrows when there is no `;` (nearly
/// always).
pub fn match_view(path: &str) -> Cow<'_, str> {
    if !path.contains(';') {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/').peekable();
    while let Some(seg) = segments.next() {
        let name = seg.split_once(';').map_or(seg, |(name, _)| name);
        if !name.is_empty() {
            out.push('/');
            out.push_str(name);
        } else if segments.peek().is_none() {
            out.push('/');
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

/// `.` or `..`.
fn is_dot_segment(seg: &[u8]) -> bool {
    matches!(seg, b"." | b"..")
}

/// `.;…` or `..;…`: a dot-segment to a server that strips path parameters (Tomcat, Jetty),
/// a name to everyone else.
fn has_dot_params(seg: &[u8]) -> bool {
    seg.iter()
        .position(|&b| b == b';')
        .is_some_and(|i| is_dot_segment(&seg[..i]))
}

/// RFC 3986 `unreserved`: an escape of one of these means the character itself.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Works on bytes, so UTF-8 (raw or escaped) passes unchanged: only ASCII is decoded,
/// inserted or removed, always between whole characters.
fn canonical_path_slow(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = raw.as_bytes();
    let mut decoded: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' | 0 | b'\\' => return Err(PathError::Ambiguous),
            b'%' => {
                let (hi, lo) = match bytes.get(i + 1..i + 3) {
                    Some(&[hi, lo]) => (hi, lo),
                    _ => return Err(PathError::BadEncoding),
                };
                let v = match (hex_value(hi), hex_value(lo)) {
                    (Some(h), Some(l)) => h << 4 | l,
                    _ => return Err(PathError::BadEncoding),
                };
                match v {
                    b'/' | b'\\' | b'#' | 0 => return Err(PathError::Ambiguous),
                    _ if is_unreserved(v) => decoded.push(v),
                    // Keep every other escape as written, with upper-case hex.
                    _ => decoded.extend_from_slice(&[
                        b'%',
                        hi.to_ascii_uppercase(),
                        lo.to_ascii_uppercase(),
                    ]),
                }
                i += 3;
                continue;
            }
            _ if b < 0x20 || b == 0x7f => return Err(PathError::Ambiguous),
            _ => decoded.push(b),
        }
        i += 1;
    }
    let segments: Vec<&[u8]> = decoded.split(|&b| b == b'/').collect();
    let last = segments.len() - 1;
    let mut out: Vec<&[u8]> = Vec::with_capacity(segments.len());
    let mut trailing_slash = false;
    for (idx, seg) in segments.iter().enumerate().skip(1) {
        match *seg {
            b"" | b"." => trailing_slash = idx == last,
            b".." => {
                out.pop();
                trailing_slash = idx == last;
            }
            s if has_dot_params(s) => return Err(PathError::Ambiguous),
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut path = Vec::with_capacity(decoded.len());
    for s in &out {
        path.push(b'/');
        path.extend_from_slice(s);
    }
    if path.is_empty() || trailing_slash {
        path.push(b'/');
    }
    // Valid UTF-8 in, only ASCII changed: valid UTF-8 out.
    String::from_utf8(path).map_err(|_| PathError::BadEncoding)
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

    /// Security: path parameters do not hide a segment from matching. Servers that strip
    /// them (Tomcat, Jetty, Spring) read these as the plain path.
    #[test]
    fn path_parameters_are_left_out_of_the_match_view() {
        for (path, view) in [
            ("/admin;x=1", "/admin"),
            ("/admin;x=1/users", "/admin/users"),
            ("/admin;jsessionid=A;b=c/users;p", "/admin/users"),
            ("/;x/admin", "/admin"),
            ("/;x", "/"),
            ("/admin/;x", "/admin/"),
            ("/a;/b", "/a/b"),
        ] {
            assert_eq!(match_view(path), view, "{path}");
        }
        for plain in ["/", "/admin", "/admin/", "/a/b%3Bc"] {
            assert!(
                matches!(match_view(plain), Cow::Borrowed(p) if p == plain),
                "{plain}"
            );
        }
    }

    #[test]
    fn host_is_lowercased_and_loses_port_and_trailing_dot() {
        assert_eq!(
            canonical_host("App.Acme.LOCALHOST.:8080").as_deref(),
            Some("app.acme.localhost")
        );
        assert_eq!(canonical_host("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(canonical_host("a b"), None);
        assert_eq!(canonical_host("evil.com:80:80"), None);
        assert_eq!(canonical_host("user@evil.com"), None);
    }

    // Found by the canonical fuzz target: `..` became `.`, which is no host and is not
    // its own canonical form. Only one trailing dot is dropped.
    #[test]
    fn only_one_trailing_dot_is_dropped() {
        assert_eq!(canonical_host(".."), None);
        assert_eq!(canonical_host("a.test.."), None);
        assert_eq!(canonical_host("a.test.:443").as_deref(), Some("a.test"));
    }

    /// Security: no label is empty, so `.apps.test` can never match `*.apps.test` (a
    /// wildcard stands for one whole label).
    #[test]
    fn a_host_with_an_empty_label_is_refused() {
        for bad in [
            ".apps.test",
            ".Apps.test",
            "a..apps.test",
            "apps.test..",
            ".",
            "..",
            ".apps.test:8080",
            "apps.test..:80",
        ] {
            assert_eq!(canonical_host(bad), None, "{bad}");
        }
        let long_label = format!("{}.test", "a".repeat(64));
        assert_eq!(canonical_host(&long_label), None);
        assert_eq!(
            canonical_host(&format!("{}.test", "a".repeat(63))).as_deref(),
            Some(format!("{}.test", "a".repeat(63)).as_str())
        );
        assert_eq!(
            canonical_host("x.apps.test.").as_deref(),
            Some("x.apps.test")
        );
    }

    /// Security: the brackets of an IP literal hold an IPv6 address and nothing else, so a
    /// Host like `[@evil.test/]` never reaches a `Location` built from the host.
    #[test]
    fn bracketed_hosts_must_be_ipv6_addresses() {
        assert_eq!(canonical_host("[::1]").as_deref(), Some("[::1]"));
        assert_eq!(
            canonical_host("[0:0:0:0:0:0:0:1]:8080").as_deref(),
            Some("[::1]")
        );
        assert_eq!(
            canonical_host("[2001:DB8::A]").as_deref(),
            Some("[2001:db8::a]")
        );
        for bad in [
            "[@evil.test/]",
            "[evil.test]",
            "[]",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[127.0.0.1]",
            "[fe80::1%25eth0]",
            "[::1/x]",
        ] {
            assert_eq!(canonical_host(bad), None, "{bad}");
        }
    }

    /// Security: routing, authorization and the service read one host. Two `Host` lines
    /// name none (a 400); an absolute-form or HTTP/2 authority wins over `Host`.
    #[test]
    fn the_authority_is_the_uri_s_else_the_one_host_header() {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::HOST, "app.test".parse().unwrap());
        let origin_form: http::Uri = "/x".parse().unwrap();
        assert_eq!(request_authority(&origin_form, &headers), Some("app.test"));
        let absolute: http::Uri = "http://routed.test:8080/x".parse().unwrap();
        assert_eq!(
            request_authority(&absolute, &headers),
            Some("routed.test:8080")
        );
        headers.append(http::header::HOST, "evil.test".parse().unwrap());
        assert_eq!(request_authority(&origin_form, &headers), None);
        assert_eq!(request_authority(&absolute, &headers), None);
        assert_eq!(
            request_authority(&origin_form, &http::HeaderMap::new()),
            None
        );
    }

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

    /// The path-normalisation table: what routing, authorization and the upstream see.
    #[test]
    fn paths_are_normalised_once_and_ambiguous_forms_rejected() {
        let ok = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("//a///b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/%2e%2e/b", "/b"),
            ("/a/%2E/b/", "/a/b/"),
            ("/a/b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a%20b", "/a%20b"),
            ("/a%7eb", "/a~b"),
            // Escaped unreserved characters are the characters (RFC 3986 §6.2.2.2).
            ("/%61dmin", "/admin"),
            ("/webhooks/%73tripe", "/webhooks/stripe"),
            ("/%7Euser", "/~user"),
            ("/%41%5a%30%39%2D%5f%2e%7E", "/AZ09-_.~"),
            // Every other escape keeps its meaning, written with upper-case hex.
            ("/a%3bb%3F%c3%a9", "/a%3Bb%3F%C3%A9"),
            ("/a;b/c;d=1", "/a;b/c;d=1"),
            ("/...;/..x", "/...;/..x"),
            // UTF-8, escaped or raw, passes the slow path unchanged.
            ("/caf%C3%A9//x", "/caf%C3%A9/x"),
            ("/café//x", "/café/x"),
            ("/日本/./語/", "/日本/語/"),
        ];
        for (raw, want) in ok {
            assert_eq!(canonical_path(raw).as_deref(), Ok(want), "{raw}");
            assert_eq!(
                canonical_path_slow(raw).as_deref(),
                Ok(want),
                "{raw} (slow path)"
            );
        }
        let bad = [
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "/a%23b",
            "/a%00b",
            "/a%zz",
            "/a%2",
            "a/b",
            "/a%+1",
            "/a%-1",
            "/a%é",
            // Tomcat and Jetty read `..;` as `..`: refused, not forwarded as a name.
            "/public/..;/admin",
            "/..;x=1/admin",
            "/a/.;/b",
            "/a/%2e%2e;/b",
            "/a/%2E;p",
        ];
        for raw in bad {
            assert!(canonical_path(raw).is_err(), "{raw} should be rejected");
        }
        // The fast path may send a canonical path to the slow one, never the reverse.
        for raw in [
            "/a%20b",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/.",
            "/a/",
            "/",
            "/a/b.c/..d",
        ] {
            if is_canonical_path(raw) {
                assert_eq!(canonical_path_slow(raw).as_deref(), Ok(raw), "{raw}");
            }
        }
        for plain in ["/", "/a/", "/api/v1/items", "/a/b.c/..d"] {
            assert!(is_canonical_path(plain), "{plain}");
        }
    }
}
