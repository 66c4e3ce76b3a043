//! What roomgate tells a service about the hop a request came on: `X-Forwarded-For`,
//! `-Proto` and `-Host`.
//!
//! [`decide`] settles the values once per request and takes every client claim that must
//! not reach the service out of the request's map. roomgate's own values are not put into
//! that map: the HTTP/1.1 client writes them with the request head, and the h2c path
//! inserts them into its request ([`Forwarded::insert_into`]). So the rest of the pipeline
//! reads in the map no forwarding claim of an untrusted peer, and a trusted proxy's as it
//! sent them, its `X-Forwarded-For` extended with the peer.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::canonical::Host;

const FOR: &str = "x-forwarded-for";
const PROTO: &str = "x-forwarded-proto";
const HOST: &str = "x-forwarded-host";
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static(FOR);
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static(PROTO);
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static(HOST);

/// The peer address as an `X-Forwarded-For` value; formatted once per connection.
pub fn peer_value(peer: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&peer.to_string()).unwrap_or(HeaderValue::from_static("unknown"))
}

/// What roomgate saw of the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The peer address, as [`peer_value`] wrote it.
    pub peer: &'a HeaderValue,
    pub tls: bool,
    /// The canonical host of the request: letters, digits, `-`, `.` or a bracketed IPv6
    /// address, so always a valid field value.
    pub host: &'a Host<'a>,
    /// Whether the peer is a trusted proxy whose `X-Forwarded-*` are believed.
    pub trusted: bool,
}

/// One field roomgate adds: a (lowercase) name and its value, borrowed from what the
/// request was decided on.
pub type Field<'a> = (&'static str, &'a [u8]);

/// The forwarding fields a request goes to its service with beside its own: from an
/// untrusted peer `X-Forwarded-For`, `-Proto` and `-Host`; from a trusted proxy the
/// `-Proto` and `-Host` it did not send. Borrowed, so settling and sending them allocates
/// nothing.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    fields: [Field<'a>; 3],
    len: usize,
}

impl<'a> Forwarded<'a> {
    fn push(&mut self, name: &'static str, value: &'a [u8]) {
        self.fields[self.len] = (name, value);
        self.len += 1;
    }

    /// The fields to send, none of them in the request's map.
    pub fn fields(&self) -> &[Field<'a>] {
        &self.fields[..self.len]
    }

    /// Put the fields into `headers` (a request sent over h2c).
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        for (name, value) in self.fields() {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}

/// Settle `X-Forwarded-For`, `-Proto` and `-Host` for the service.
///
/// From an untrusted peer every forwarding claim is taken out of `headers` (those three
/// and each [`is_client_forwarding`] one) and the fields say what roomgate saw. From a
/// trusted proxy its claims stay, its `X-Forwarded-For` (in `headers`) gets the peer
/// appended, and roomgate's own `-Proto` and `-Host` are sent only where it sent none.
pub fn decide<'a>(headers: &mut HeaderMap, hop: Hop<'a>) -> Forwarded<'a> {
    let proto: &'static [u8] = if hop.tls { b"https" } else { b"http" };
    let host = hop.host.as_bytes();
    let mut fwd = Forwarded {
        fields: [("", b""); 3],
        len: 0,
    };
    if !hop.trusted {
        strip_claims(headers);
        fwd.push(FOR, hop.peer.as_bytes());
        fwd.push(PROTO, proto);
        fwd.push(HOST, host);
        return fwd;
    }
    let mut chain = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    if !chain.is_empty() {
        chain.push_str(", ");
    }
    chain.push_str(hop.peer.to_str().unwrap_or("unknown"));
    // Kept in the map: the client address is read from the chain (`headers::client_ip`).
    // Made of values that were valid, separators and an address: always valid.
    let chain = HeaderValue::from_str(&chain).unwrap_or_else(|_| hop.peer.clone());
    headers.insert(X_FORWARDED_FOR, chain);
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        fwd.push(PROTO, proto);
    }
    if !headers.contains_key(&X_FORWARDED_HOST) {
        fwd.push(HOST, host);
    }
    fwd
}

/// A (lowercase) header by which a proxy tells the next hop what it saw: the client's
/// address, scheme, port, host or path prefix, or the URL before a rewrite. Believed only
/// from a trusted proxy.
fn is_client_forwarding(name: &str) -> bool {
    matches!(
        name,
        "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "forwarded"
            | "x-forwarded-port"
            | "x-forwarded-prefix"
            | "x-forwarded-scheme"
            | "x-forwarded-server"
            | "x-forwarded-ssl"
            | "x-real-ip"
            | "x-original-url"
            | "x-rewrite-url"
    )
}

/// Remove every [`is_client_forwarding`] header. One pass over the names; nothing is
/// allocated when none is there (nearly always).
fn strip_claims(headers: &mut HeaderMap) {
    if !headers.keys().any(|k| is_client_forwarding(k.as_str())) {
        return;
    }
    let claimed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_client_forwarding(k.as_str()))
        .cloned()
        .collect();
    for name in claimed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::header_map as map;

    fn hop<'a>(peer: &'a HeaderValue, host: &'a Host<'a>, trusted: bool) -> Hop<'a> {
        Hop {
            peer,
            tls: false,
            host,
            trusted,
        }
    }

    /// The fields as a list of (name, value) strings.
    fn sent<'a>(fwd: &Forwarded<'a>) -> Vec<(&'static str, &'a str)> {
        fwd.fields()
            .iter()
            .map(|(n, v)| (*n, std::str::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn forwarded_headers_from_untrusted_peers_are_replaced() {
        let mut h = map(&[
            ("host", "app.test"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "bank.test"),
        ]);
        let host = crate::canonical::canonical_host("app.test").unwrap();
        let peer = peer_value("10.0.0.9".parse().unwrap());
        let fwd = decide(&mut h, hop(&peer, &host, false));
        assert_eq!(
            sent(&fwd),
            [
                ("x-forwarded-for", "10.0.0.9"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "app.test"),
            ]
        );
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["host"], "no client copy stays beside roomgate's");
    }

    /// The h2c path puts the same fields into its request, replacing nothing else.
    #[test]
    fn the_fields_go_into_a_map_as_they_are_sent() {
        let mut h = map(&[("host", "App.Test:8080"), ("x-other", "kept")]);
        let host = crate::canonical::canonical_host("app.test").unwrap();
        let peer = peer_value("2001:db8::1".parse().unwrap());
        let fwd = decide(&mut h, hop(&peer, &host, false));
        fwd.insert_into(&mut h);
        assert_eq!(h["x-forwarded-for"], "2001:db8::1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.test", "the canonical host");
        assert_eq!(h["x-other"], "kept");
        assert_eq!(h.len(), 5);
    }

    /// Security: what a proxy before roomgate saw is believed only from a trusted proxy;
    /// an untrusted client's claims never reach the service.
    #[test]
    fn other_forwarding_headers_pass_only_from_a_trusted_proxy() {
        let claims = [
            ("forwarded", "for=6.6.6.6;proto=https;host=bank.test"),
            ("Forwarded", "for=7.7.7.7"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/admin"),
            ("x-forwarded-scheme", "https"),
            ("x-forwarded-server", "bank.test"),
            ("x-forwarded-ssl", "on"),
            ("x-real-ip", "6.6.6.6"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("x-end-to-end", "kept"),
        ];
        let host = crate::canonical::canonical_host("app.test").unwrap();
        let peer = peer_value("10.0.0.9".parse().unwrap());
        for trusted in [false, true] {
            let mut h = map(&claims);
            decide(&mut h, hop(&peer, &host, trusted));
            for (name, _) in &claims {
                let kept = trusted || *name == "x-end-to-end";
                assert_eq!(h.contains_key(*name), kept, "{name}, trusted: {trusted}");
            }
            assert_eq!(
                h.get_all("forwarded").iter().count(),
                if trusted { 2 } else { 0 }
            );
        }
    }

    #[test]
    fn forwarded_chain_from_a_trusted_proxy_is_extended() {
        let mut h = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
            ("x-forwarded-proto", "https"),
        ]);
        let host = crate::canonical::canonical_host("app.test").unwrap();
        let peer = peer_value("10.0.0.9".parse().unwrap());
        let fwd = decide(&mut h, hop(&peer, &host, true));
        assert_eq!(
            sent(&fwd),
            [("x-forwarded-host", "app.test")],
            "the proxy's scheme is kept, the host it did not name is added"
        );
        let chain: Vec<_> = h.get_all("x-forwarded-for").iter().collect();
        assert_eq!(chain, ["1.2.3.4, 5.6.7.8, 10.0.0.9"], "one field, extended");
        assert_eq!(h["x-forwarded-proto"], "https");
    }
}
