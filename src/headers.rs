//! Header hygiene, applied to every request before any routing decision is acted on.
//!
//! Owns what may cross the proxy in either direction: header names with `_` are refused
//! (nginx and others fold `_` and `-`, which lets `X_MESHAGENT_USER` impersonate), every
//! client copy of `X-MESHAGENT-*` is dropped, hop-by-hop headers are removed, and the
//! client address is read from a trusted proxy's `X-Forwarded-For` (what the service is
//! told of the hop is [`crate::forwarded`]'s). [`Names`] reads a message's field names
//! once, and each step acts only on what that pass found. Pure functions over a
//! `HeaderMap`; it must not decide authorization.

use std::net::IpAddr;

use http::header::{Entry, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

pub const X_MESHAGENT_USER: HeaderName = HeaderName::from_static("x-meshagent-user");
pub const X_MESHAGENT_API_SCOPE: HeaderName = HeaderName::from_static("x-meshagent-api-scope");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const IDENTITY_PREFIX: &str = "x-meshagent-";

/// roomgate's own fields (the embed token): never a service's.
pub const ROOMGATE_PREFIX: &str = "x-roomgate-";

const HOPS: usize = 8;

/// Headers that describe one hop and never travel further (RFC 9110 §7.6.1). `Upgrade`
/// is handled apart: it is kept for a WebSocket handshake.
static HOP_BY_HOP: [HeaderName; HOPS] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
];

/// What one pass over a message's field names found. Each hygiene step then looks up or
/// changes only what is there: nearly every request carries none of it, and a lookup by
/// name costs a hash, where the pass costs a few comparisons per field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Names {
    underscore: bool,
    identity: bool,
    /// Which of [`HOP_BY_HOP`] are present.
    hops: [bool; HOPS],
    upgrade: bool,
    roomgate: bool,
    cookie: bool,
}

impl Names {
    pub fn of(headers: &HeaderMap) -> Names {
        let mut names = Names::default();
        for name in headers.keys() {
            let name = name.as_str();
            // No early exit: the compiler compares a name's bytes many at a time.
            names.underscore |= name.bytes().fold(false, |seen, b| seen | (b == b'_'));
            // The first byte rules out nearly every name at once.
            match name.as_bytes().first() {
                Some(b'x') => {
                    names.identity |= name.starts_with(IDENTITY_PREFIX);
                    names.roomgate |= name.starts_with(ROOMGATE_PREFIX);
                }
                Some(b'c') if name == "cookie" => names.cookie = true,
                Some(b'c' | b'k' | b'p' | b't' | b'u') => match hop_index(name) {
                    Some(HOPS) => names.upgrade = true,
                    Some(i) => names.hops[i] = true,
                    None => {}
                },
                _ => {}
            }
        }
        names
    }

    /// A name with `_`: such a request is refused (`_` and `-` alias in other proxies and
    /// CGI, so `X_MESHAGENT_USER` could pass for the identity header).
    pub fn underscore(&self) -> bool {
        self.underscore
    }

    /// An `Upgrade` field.
    pub fn upgrade(&self) -> bool {
        self.upgrade
    }

    /// A name in roomgate's own `x-roomgate-` space (the embed token's).
    pub fn roomgate(&self) -> bool {
        self.roomgate
    }

    /// A `Cookie` field.
    pub fn cookie(&self) -> bool {
        self.cookie
    }

    /// Remove every `X-MESHAGENT-*` header, whatever its case (names are lowercased by
    /// `http`).
    pub fn strip_identity(&self, headers: &mut HeaderMap) {
        if !self.identity {
            return;
        }
        let spoofed: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with(IDENTITY_PREFIX))
            .cloned()
            .collect();
        for name in spoofed {
            headers.remove(name);
        }
    }

    /// Remove hop-by-hop headers and every header named in `Connection`. `Upgrade` is
    /// kept only when `keep_upgrade` (a WebSocket handshake being forwarded), and then
    /// `Connection: upgrade` is set for the next hop. A message that carries at most
    /// `Connection: keep-alive` (nearly all of them) costs no allocation and at most one
    /// removal.
    pub fn strip_hop_by_hop(&self, headers: &mut HeaderMap, keep_upgrade: bool) {
        if self.hops[0]
            && !headers
                .get_all(http::header::CONNECTION)
                .iter()
                .all(|v| names_nothing(v.as_bytes()))
        {
            let listed: Vec<HeaderName> = listed_fields(connection_tokens(headers)).collect();
            for name in listed {
                headers.remove(name);
            }
        }
        for (name, _) in HOP_BY_HOP.iter().zip(self.hops).filter(|(_, p)| *p) {
            headers.remove(name);
        }
        if self.upgrade && !keep_upgrade {
            headers.remove(http::header::UPGRADE);
        } else if self.upgrade {
            headers.insert(
                http::header::CONNECTION,
                HeaderValue::from_static("upgrade"),
            );
        }
    }
}

/// The tokens of every `Connection` value (comma-separated, trimmed, empty ones skipped).
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| list_tokens(v.as_bytes()))
}

/// The fields that `Connection` tokens name for removal beyond the fixed hop-by-hop ones
/// and `Upgrade`: every token other than `keep-alive`, `close` and `upgrade` that is a
/// field name.
pub fn listed_fields<'a>(
    tokens: impl Iterator<Item = &'a [u8]> + 'a,
) -> impl Iterator<Item = HeaderName> + 'a {
    tokens
        .filter(|t| !names_nothing(t))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .filter(|n| hop_index(n.as_str()).is_none())
}

/// The elements of one comma-separated field value, trimmed, empty ones skipped.
pub fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// The position of a (lowercase) name in [`HOP_BY_HOP`], `HOPS` for `Upgrade`, `None`
/// for an end-to-end header: one `match`, no comparison against every entry.
fn hop_index(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => HOPS,
        _ => return None,
    })
}

/// True for a (lowercase) hop-by-hop name, `Upgrade` included: it never travels further.
pub fn is_hop_by_hop(name: &str) -> bool {
    hop_index(name).is_some()
}

/// A `Connection` token (or whole value) that names no header left to remove.
fn names_nothing(token: &[u8]) -> bool {
    [&b"keep-alive"[..], b"close", b"upgrade"]
        .iter()
        .any(|k| token.eq_ignore_ascii_case(k))
}

/// True when `peer` is inside one of the trusted proxy networks.
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    trusted.iter().any(|n| n.contains(&peer))
}

/// The client address: the peer, or for a trusted proxy the right-most untrusted entry of
/// `X-Forwarded-For`.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = headers
        .get_all(&crate::forwarded::X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    while let Some(ip) = chain.pop() {
        if !is_trusted(ip, trusted) {
            return ip;
        }
    }
    peer
}

/// Keep a well-formed inbound `X-Request-Id`, else generate one (a random UUID, v4);
/// returns the id, to be echoed on the response.
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    let fresh = || {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        // Random (v4): no clock read and no shared sequence, as nginx's `$request_id`.
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        // Hex digits and hyphens are always a valid value.
        HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("-"))
    };
    // One lookup of the name for both the look and the insert.
    match headers.entry(X_REQUEST_ID) {
        Entry::Occupied(kept) if well_formed_id(kept.get().as_bytes()) => kept.get().clone(),
        Entry::Occupied(mut replaced) => {
            let id = fresh();
            replaced.insert(id.clone());
            id
        }
        Entry::Vacant(missing) => missing.insert(fresh()).clone(),
    }
}

/// An id roomgate passes on as it came: 1 to 128 of `A-Za-z0-9-_.:`.
fn well_formed_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Tests: a header map from name/value pairs, repeated names appended in order.
#[cfg(test)]
pub(crate) fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

#[cfg(test)]
mod tests {
    use super::header_map as map;
    use super::*;

    #[test]
    fn underscore_header_names_are_refused() {
        assert!(Names::of(&map(&[("X_MESHAGENT_USER", "mallory")])).underscore());
        assert!(!Names::of(&map(&[("x-ok", "1"), ("x-a-b", "2")])).underscore());
    }

    #[test]
    fn one_pass_sees_each_kind_of_name() {
        let none = Names::of(&map(&[("host", "a"), ("x-roomgatex", "1")]));
        assert!(!none.upgrade() && !none.roomgate() && !none.cookie() && !none.identity);
        let all = Names::of(&map(&[
            ("Upgrade", "websocket"),
            ("X-Roomgate-Embed-Token", "t"),
            ("Cookie", "a=b"),
            ("x-meshagent-user", "m"),
            ("te", "trailers"),
        ]));
        assert!(all.upgrade() && all.roomgate() && all.cookie() && all.identity);
        assert_eq!(
            all.hops,
            [false, false, false, false, false, true, false, false]
        );
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            let seen = Names::of(&map(&[(name.as_str(), "1")]));
            assert!(seen.hops[i], "{name}");
        }
    }

    #[test]
    fn identity_headers_are_stripped_whatever_their_case() {
        let mut h = map(&[
            ("X-MeshAgent-User", "mallory"),
            ("x-meshagent-api-scope", "{}"),
            ("X-MESHAGENT-ANYTHING", "1"),
            ("x-other", "kept"),
        ]);
        Names::of(&h).strip_identity(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-other"));
    }

    /// Security: a client cannot hand the service a forged identity assertion or embed
    /// session: both are `X-MESHAGENT-*` and dropped with the rest.
    #[test]
    fn client_sent_assertions_and_embed_sessions_are_stripped() {
        let mut h = map(&[
            ("X-MeshAgent-Assertion", "eyJhbGciOiJub25lIn0.e30."),
            ("x-meshagent-embed-session", "es_forged"),
        ]);
        Names::of(&h).strip_identity(&mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("x-end-to-end", "kept"),
        ]);
        Names::of(&h).strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-end-to-end"));
    }

    #[test]
    fn every_hop_by_hop_name_is_found_by_its_match() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_index(name.as_str()), Some(i), "{name}");
        }
        assert_eq!(hop_index("upgrade"), Some(HOPS));
        for end_to_end in ["host", "content-length", "x-te", "connection-x", "trailers"] {
            assert_eq!(hop_index(end_to_end), None, "{end_to_end}");
        }
    }

    #[test]
    fn usual_connection_values_remove_only_the_hop_headers() {
        for value in ["keep-alive", "Keep-Alive", "close", "Upgrade"] {
            let mut h = map(&[
                ("connection", value),
                ("keep-alive", "timeout=5"),
                ("transfer-encoding", "chunked"),
                ("proxy-authorization", "Basic eA=="),
                ("close", "an end-to-end header named like a token"),
                ("x-end-to-end", "kept"),
            ]);
            Names::of(&h).strip_hop_by_hop(&mut h, false);
            let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
            left.sort_unstable();
            assert_eq!(left, ["close", "x-end-to-end"], "Connection: {value}");
        }
    }

    #[test]
    fn a_listed_name_in_a_second_connection_header_is_removed() {
        let mut h = map(&[
            ("connection", "keep-alive"),
            ("connection", "X-Secret-Hop , close"),
            ("x-secret-hop", "1"),
            ("x-end-to-end", "kept"),
        ]);
        Names::of(&h).strip_hop_by_hop(&mut h, false);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-end-to-end"]);
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_address_a_trusted_proxy_names() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = map(&[("x-forwarded-for", "1.2.3.4, 10.0.0.7")]);
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(
            client_ip(&h, peer, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        let untrusted: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(&h, untrusted, &trusted), untrusted);
    }

    #[test]
    fn malformed_request_ids_are_replaced() {
        let mut h = map(&[("x-request-id", "abc-123")]);
        assert_eq!(ensure_request_id(&mut h), "abc-123");
        let mut bad = map(&[("x-request-id", "a b <script>")]);
        let id = ensure_request_id(&mut bad);
        assert_ne!(id, "a b <script>");
        assert_eq!(bad["x-request-id"], id);
        let generated = uuid::Uuid::parse_str(id.to_str().unwrap()).unwrap();
        assert_eq!(generated.get_version_num(), 4);
        let mut none = HeaderMap::new();
        assert_ne!(ensure_request_id(&mut none), generated.to_string().as_str());
    }
}
