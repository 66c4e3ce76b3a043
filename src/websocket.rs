//! WebSockets: which HTTP/1.1 upgrades are WebSocket handshakes (the only upgrade roomgate
//! tunnels), and WebSockets over HTTP/2 (RFC 8441), bridged to the HTTP/1.1 upgrade
//! (RFC 6455) services speak.
//!
//! An h2 client opens a WebSocket with an extended CONNECT (`:method CONNECT`,
//! `:protocol websocket`) and gets `200` when the service accepted it; the service sees the
//! classic `GET` + `Upgrade: websocket` handshake with a key roomgate made, and must answer
//! `101` with the matching `Sec-WebSocket-Accept` before any byte is tunnelled. Everything
//! here is a pure decision on heads; the forwarder does the I/O.

use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use sha1::{Digest, Sha1};

/// The `:protocol` value of a WebSocket extended CONNECT.
pub const PROTOCOL: &str = "websocket";

/// The GUID RFC 6455 §1.3 appends to the key.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What a request's method asks of the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// Not a CONNECT: an ordinary request.
    No,
    /// An RFC 8441 WebSocket: bridged to the service's HTTP/1.1 upgrade.
    WebSocket,
    /// A plain CONNECT tunnel or another `:protocol`: not offered.
    Refused,
}

/// True for an HTTP/1.1 WebSocket handshake (RFC 6455 §4.1): `Connection` lists the
/// `upgrade` token and `Upgrade` is `websocket`, in any case. This is the one upgrade
/// roomgate tunnels: any other `Upgrade` (`h2c`, a made-up token) or an `Upgrade` without
/// `Connection: upgrade` is a hop-by-hop header like the rest, stripped before the request
/// is forwarded as plain HTTP, because after a switch no byte is looked at any more.
pub fn is_handshake(headers: &HeaderMap) -> bool {
    // `Upgrade` first: nearly every request has none.
    upgrades_to_websocket(headers)
        && crate::headers::connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
}

/// True when the message's one `Upgrade` value is `websocket` (any case).
fn upgrades_to_websocket(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::UPGRADE).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(PROTOCOL.as_bytes()),
        _ => false,
    }
}

/// What the service's answer to an HTTP/1.1 client's handshake means.
#[derive(Debug, PartialEq, Eq)]
pub enum Switch {
    /// 101 to `Upgrade: websocket`: tunnel. (The client checks `Sec-WebSocket-Accept`.)
    WebSocket,
    /// Not 101: the client gets the answer as it is.
    Declined,
    /// 101 to anything else: the client must not be switched to it.
    Other,
}

/// Judge a service's answer to a (classic) WebSocket handshake.
pub fn switched(status: StatusCode, headers: &HeaderMap) -> Switch {
    if status != StatusCode::SWITCHING_PROTOCOLS {
        Switch::Declined
    } else if upgrades_to_websocket(headers) {
        Switch::WebSocket
    } else {
        Switch::Other
    }
}

/// Classify a request head.
pub fn classify(method: &Method, extensions: &http::Extensions) -> Connect {
    if method != Method::CONNECT {
        return Connect::No;
    }
    match extensions.get::<hyper::ext::Protocol>() {
        Some(p) if p.as_str().eq_ignore_ascii_case(PROTOCOL) => Connect::WebSocket,
        _ => Connect::Refused,
    }
}

/// Carried in a bridged request's extensions to the forwarder: the `Sec-WebSocket-Accept`
/// the service must answer with.
#[derive(Debug, Clone)]
pub struct Bridged {
    accept: HeaderValue,
}

/// Turn an authorized extended CONNECT head into the HTTP/1.1 handshake for the service:
/// `GET`, `Upgrade: websocket`, a fresh `Sec-WebSocket-Key`. The client's
/// `Sec-WebSocket-Version`, `-Protocol` and `-Extensions` pass as they are.
pub fn to_upgrade(parts: &mut http::request::Parts) {
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    parts.method = Method::GET;
    parts.extensions.remove::<hyper::ext::Protocol>();
    let h = &mut parts.headers;
    h.insert(header::UPGRADE, HeaderValue::from_static(PROTOCOL));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.remove(header::CONTENT_LENGTH);
    let accept = accept_for(key.as_bytes());
    h.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::try_from(key).expect("base64 is a valid header value"),
    );
    parts.extensions.insert(Bridged {
        accept: HeaderValue::try_from(accept).expect("base64 is a valid header value"),
    });
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2): base64 of SHA-1 over key + GUID.
pub fn accept_for(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// What the service's answer to a bridged handshake means for the h2 client.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 101 with the right accept value: answer the client 200 and tunnel.
    Accepted,
    /// The service refused (an error status): the client gets that answer as it is.
    Refused,
    /// Not a valid handshake answer; the client must not believe it has a WebSocket.
    Invalid(&'static str),
}

/// Judge the service's answer. A 2xx other than 101 would read as success to an h2 client
/// and is therefore invalid, not passed through.
pub fn judge(status: StatusCode, headers: &HeaderMap, bridged: &Bridged) -> Verdict {
    if status != StatusCode::SWITCHING_PROTOCOLS {
        return if status.is_success() || status.is_informational() {
            Verdict::Invalid("service answered the handshake without switching protocols")
        } else {
            Verdict::Refused
        };
    }
    if !upgrades_to_websocket(headers) {
        return Verdict::Invalid("service switched to a protocol other than websocket");
    }
    match headers.get(header::SEC_WEBSOCKET_ACCEPT) {
        Some(v) if v == bridged.accept => Verdict::Accepted,
        _ => Verdict::Invalid("wrong or missing Sec-WebSocket-Accept"),
    }
}

/// Rewrite an accepted 101 into the h2 client's answer: 200, without the HTTP/1.1
/// handshake headers (h2 forbids connection-specific ones).
pub fn to_h2_answer(status: &mut StatusCode, headers: &mut HeaderMap) {
    *status = StatusCode::OK;
    for name in [
        header::CONNECTION,
        header::UPGRADE,
        header::SEC_WEBSOCKET_ACCEPT,
        header::CONTENT_LENGTH,
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(protocol: Option<&'static str>) -> http::request::Parts {
        let mut req = http::Request::builder()
            .method(Method::CONNECT)
            .uri("https://ws.acme.test/chat")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-protocol", "chat")
            .body(())
            .expect("request");
        if let Some(p) = protocol {
            req.extensions_mut()
                .insert(hyper::ext::Protocol::from_static(p));
        }
        req.into_parts().0
    }

    fn head(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_websocket_handshake_needs_connection_upgrade_and_upgrade_websocket_in_any_case() {
        for pairs in [
            &[("connection", "upgrade"), ("upgrade", "websocket")][..],
            &[
                ("connection", "Keep-Alive, Upgrade"),
                ("upgrade", "WebSocket"),
            ],
            &[
                ("connection", "keep-alive"),
                ("connection", " UPGRADE "),
                ("upgrade", " websocket "),
            ],
        ] {
            assert!(is_handshake(&head(pairs)), "{pairs:?}");
        }
    }

    #[test]
    fn any_other_upgrade_is_not_a_websocket_handshake() {
        for pairs in [
            &[("upgrade", "websocket")][..],
            &[("connection", "keep-alive"), ("upgrade", "websocket")],
            &[("connection", "upgrade")],
            &[
                ("connection", "Upgrade, HTTP2-Settings"),
                ("upgrade", "h2c"),
            ],
            &[("connection", "upgrade"), ("upgrade", "foo")],
            &[("connection", "upgrade"), ("upgrade", "websocket, h2c")],
            &[
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("upgrade", "h2c"),
            ],
            &[("connection", "upgraded"), ("upgrade", "websocket")],
        ] {
            assert!(!is_handshake(&head(pairs)), "{pairs:?}");
        }
    }

    #[test]
    fn only_a_101_to_websocket_switches_an_http1_client() {
        let ws = head(&[("upgrade", "WebSocket")]);
        assert_eq!(
            switched(StatusCode::SWITCHING_PROTOCOLS, &ws),
            Switch::WebSocket
        );
        for other in [
            head(&[("upgrade", "foo")]),
            head(&[("upgrade", "h2c")]),
            head(&[]),
        ] {
            assert_eq!(
                switched(StatusCode::SWITCHING_PROTOCOLS, &other),
                Switch::Other
            );
        }
        assert_eq!(switched(StatusCode::FORBIDDEN, &ws), Switch::Declined);
        assert_eq!(switched(StatusCode::OK, &head(&[])), Switch::Declined);
    }

    #[test]
    fn accept_matches_the_rfc_6455_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn only_a_websocket_extended_connect_is_bridged() {
        let get = http::Request::get("/")
            .body(())
            .expect("request")
            .into_parts()
            .0;
        assert_eq!(classify(&get.method, &get.extensions), Connect::No);
        let ws = connect(Some("websocket"));
        assert_eq!(classify(&ws.method, &ws.extensions), Connect::WebSocket);
        let plain = connect(None);
        assert_eq!(classify(&plain.method, &plain.extensions), Connect::Refused);
        let other = connect(Some("connect-udp"));
        assert_eq!(classify(&other.method, &other.extensions), Connect::Refused);
    }

    #[test]
    fn the_service_sees_a_classic_handshake_with_a_fresh_key() {
        let mut a = connect(Some("websocket"));
        to_upgrade(&mut a);
        assert_eq!(a.method, Method::GET);
        assert!(a.extensions.get::<hyper::ext::Protocol>().is_none());
        assert_eq!(a.headers["upgrade"], "websocket");
        assert_eq!(a.headers["connection"], "upgrade");
        assert_eq!(a.headers["sec-websocket-version"], "13");
        assert_eq!(a.headers["sec-websocket-protocol"], "chat");
        let key = a.headers["sec-websocket-key"].clone();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(key.as_bytes())
            .expect("base64 key");
        assert_eq!(decoded.len(), 16);
        let bridged = a.extensions.get::<Bridged>().expect("bridged").clone();
        assert_eq!(bridged.accept, accept_for(key.as_bytes()));

        let mut b = connect(Some("websocket"));
        to_upgrade(&mut b);
        assert_ne!(b.headers["sec-websocket-key"], key, "keys are not reused");
    }

    #[test]
    fn only_a_101_with_the_right_accept_opens_the_tunnel() {
        let mut parts = connect(Some("websocket"));
        to_upgrade(&mut parts);
        let bridged = parts.extensions.get::<Bridged>().expect("bridged").clone();
        let key = parts.headers["sec-websocket-key"].as_bytes().to_vec();
        let answer = |status: u16, upgrade: Option<&str>, accept: Option<String>| {
            let mut h = HeaderMap::new();
            if let Some(u) = upgrade {
                h.insert(header::UPGRADE, u.parse().expect("value"));
            }
            if let Some(a) = accept {
                h.insert(header::SEC_WEBSOCKET_ACCEPT, a.parse().expect("value"));
            }
            judge(StatusCode::from_u16(status).expect("status"), &h, &bridged)
        };
        let right = Some(accept_for(&key));
        assert_eq!(
            answer(101, Some("websocket"), right.clone()),
            Verdict::Accepted
        );
        assert_eq!(
            answer(101, Some("WebSocket"), right.clone()),
            Verdict::Accepted
        );
        assert!(matches!(
            answer(101, Some("websocket"), Some(accept_for(b"another key"))),
            Verdict::Invalid(_)
        ));
        assert!(matches!(
            answer(101, Some("websocket"), None),
            Verdict::Invalid(_)
        ));
        assert!(matches!(
            answer(101, Some("h2c"), right.clone()),
            Verdict::Invalid(_)
        ));
        assert!(matches!(answer(200, None, None), Verdict::Invalid(_)));
        assert_eq!(answer(403, None, None), Verdict::Refused);
        assert_eq!(answer(404, None, None), Verdict::Refused);
    }

    #[test]
    fn the_h2_answer_is_200_without_handshake_headers() {
        let mut status = StatusCode::SWITCHING_PROTOCOLS;
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("x"));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
        to_h2_answer(&mut status, &mut h);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h.len(), 1);
        assert_eq!(h["sec-websocket-protocol"], "chat");
    }
}
