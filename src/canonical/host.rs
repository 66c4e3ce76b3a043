//! Hosts: the authority a request names and its one canonical form.

/// The host a request names, as the client sent it: the URI's authority (HTTP/2,
/// absolute-form; it wins over `Host`, RFC 9112 §3.2.2) or else the `Host` header.
/// `None` when the request carries more than one `Host` line (RFC 9112 §3.2: a 400), so no
/// two parts of the pipeline can read different ones. [`canonical_host`] turns it into the
/// one view used for routing.
pub fn request_authority(uri: &http::Uri, headers: &http::HeaderMap) -> Option<Authority> {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return None;
    }
    match uri.authority() {
        Some(a) => Some(Authority::Target(a.clone())),
        None => host.map(|h| Authority::Field(h.clone())),
    }
}

/// The authority a request names ([`request_authority`]). It shares the bytes the request
/// was read into rather than copying them, and stays valid while the request's fields
/// change.
#[derive(Clone, Debug)]
pub enum Authority {
    /// The request target's (absolute-form, HTTP/2 `:authority`).
    Target(http::uri::Authority),
    /// The one `Host` field's.
    Field(http::HeaderValue),
}

impl Authority {
    /// The authority as text; `None` for a `Host` field that is not visible ASCII, which
    /// names no host.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Authority::Target(a) => Some(a.as_str()),
            Authority::Field(v) => v.to_str().ok(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let named = |uri: &http::Uri, headers: &http::HeaderMap| {
            request_authority(uri, headers).and_then(|a| a.as_str().map(str::to_owned))
        };
        assert_eq!(named(&origin_form, &headers).as_deref(), Some("app.test"));
        let absolute: http::Uri = "http://routed.test:8080/x".parse().unwrap();
        assert_eq!(
            named(&absolute, &headers).as_deref(),
            Some("routed.test:8080")
        );
        headers.append(http::header::HOST, "evil.test".parse().unwrap());
        assert_eq!(named(&origin_form, &headers), None);
        assert_eq!(named(&absolute, &headers), None);
        assert_eq!(named(&origin_form, &http::HeaderMap::new()), None);
        // A `Host` that is not text names nothing.
        let mut opaque = http::HeaderMap::new();
        opaque.append(
            http::header::HOST,
            http::HeaderValue::from_bytes(b"caf\xc3\xa9.test").unwrap(),
        );
        assert_eq!(named(&origin_form, &opaque), None);
    }
}
