//! The heads of the HTTP/1.1 exchange with a service: the request head roomgate writes,
//! and the response head it reads back, with how that response's body is framed (RFC 9112
//! §6.3) and whether the connection may carry another exchange.
//!
//! Pure: bytes and header maps in, decisions out. Anything this module cannot read with
//! certainty is an error, and an exchange that errs never returns its connection to the
//! pool: a connection whose framing is in doubt could hand one client's response to the
//! next. Hop-by-hop fields are dropped as the head is read: what is returned is what the
//! client may receive.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::framing::{framing, state_length, Fields, Span};
pub use super::framing::{settle_length, Framing};

/// The largest response head read (status line and fields).
pub const MAX_HEAD: usize = 64 * 1024;
/// The most response header fields read; hyper's limit too.
pub const MAX_HEADERS: usize = 100;

/// Why a response could not be read. Every one fails the exchange (502) and closes the
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed response head")]
    Malformed,
    #[error("response head over {MAX_HEAD} bytes or {MAX_HEADERS} fields")]
    TooLarge,
    #[error("invalid or conflicting content-length or transfer-encoding")]
    Framing,
    #[error("transfer-encoding in an HTTP/1.0 response")]
    LegacyTransferEncoding,
}

/// How the body of a request is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body.
    None,
    /// `Content-Length`: a body whose size is known before it is sent.
    Exact(u64),
    /// `Transfer-Encoding: chunked`: a body streamed without a known size.
    Chunked,
}

/// A final response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another exchange once this body is read.
    pub reusable: bool,
}

/// Write the head of a request: `METHOD target HTTP/1.1`, then `headers` as they are and
/// the `added` fields (named nowhere in `headers`), except that the framing fields are
/// roomgate's to set from `length`. A bodiless request states `content-length: 0` where a
/// body is expected (POST, PUT, PATCH) or the client stated a length; otherwise it states
/// none (RFC 9110 §8.6).
pub fn encode_request(
    method: &Method,
    target: &str,
    (headers, added): (&HeaderMap, &[(&str, &[u8])]),
    length: BodyLength,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut stated_length = false;
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            stated_length = true;
            continue;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    for (name, value) in added {
        field(out, name.as_bytes(), value);
    }
    match length {
        BodyLength::Exact(n) => {
            let mut digits = itoa::Buffer::new();
            field(out, b"content-length", digits.format(n).as_bytes());
        }
        BodyLength::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        BodyLength::None
            if stated_length || matches!(*method, Method::POST | Method::PUT | Method::PATCH) =>
        {
            out.extend_from_slice(b"content-length: 0\r\n");
        }
        BodyLength::None => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// Write one header field line.
fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Read the final response head (or a `101`) from the front of `buf`, removing it and the
/// interim (1xx) heads before it, which are not forwarded: `Ok(None)` while it is
/// incomplete. `head_request`: the request was HEAD, so no response has a body.
///
/// The final head's fields are read into `map`, taken (and emptied) once that head is
/// whole; an interim head or an incomplete one leaves it as it is. The exchange passes
/// the request's own map, written out by then, so its allocation carries the response
/// (and, kept by hyper's serving once the response is written, the client's next
/// request) instead of a new map per response.
pub fn parse_response(
    buf: &mut BytesMut,
    head_request: bool,
    map: &mut HeaderMap,
) -> Result<Option<Head>, HeadError> {
    loop {
        match parse_one(buf, head_request, map)? {
            Some(Parsed::Final(head)) => return Ok(Some(head)),
            Some(Parsed::Interim) if !buf.is_empty() => {}
            Some(Parsed::Interim) | None => return Ok(None),
        }
    }
}

/// Read one response head, interim or final, from the front of `buf`.
fn parse_one(
    buf: &mut BytesMut,
    head_request: bool,
    map: &mut HeaderMap,
) -> Result<Option<Parsed>, HeadError> {
    let mut spans: [Span; MAX_HEADERS] = [(0, 0, 0, 0); MAX_HEADERS];
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let (len, code, minor, count) = {
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut resp,
            &buf[..],
            &mut slots,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed),
        };
        if len > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        note_spans(&buf[..], resp.headers, &mut spans);
        let code = resp.code.ok_or(HeadError::Malformed)?;
        let minor = resp.version.ok_or(HeadError::Malformed)?;
        (len, code, minor, resp.headers.len())
    };
    let head: Bytes = buf.split_to(len).freeze();
    let status = StatusCode::from_u16(code).map_err(|_| HeadError::Malformed)?;
    let switched = status == StatusCode::SWITCHING_PROTOCOLS;
    if status.is_informational() && !switched {
        return Ok(Some(Parsed::Interim));
    }
    let mut fields = Fields::default();
    let mut headers = std::mem::take(map);
    headers.clear();
    headers.reserve(count);
    for &(ns, ne, vs, ve) in &spans[..count] {
        let name = HeaderName::from_bytes(&head[ns as usize..ne as usize])
            .map_err(|_| HeadError::Malformed)?;
        let raw = &head[vs as usize..ve as usize];
        if fields.hop(&name, raw).map_err(|_| HeadError::Framing)?
            && !(switched && name == header::UPGRADE)
        {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize))
            .map_err(|_| HeadError::Malformed)?;
        headers.append(name, value);
    }
    if fields.coded && minor == 0 {
        return Err(HeadError::LegacyTransferEncoding);
    }
    // Nearly always one field of one number and no coding: nothing to settle. Otherwise
    // the fields were already read into the one length they agree on.
    if fields.length.is_some() && (fields.coded || fields.repeated_length) {
        state_length(&mut headers, fields.length.filter(|_| !fields.coded));
    }
    if fields.listed {
        // Rare: `Connection` names end-to-end-looking fields that are this hop's only.
        for name in fields.listed_names(&head, &spans[..count]) {
            headers.remove(name);
        }
    }
    if switched {
        // The protocol switched to is named on, for the client's side of the switch.
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let (framing, reusable) = framing(status, minor, &fields, head_request);
    Ok(Some(Parsed::Final(Head {
        status,
        headers,
        framing,
        reusable,
    })))
}

/// Note where each of `fields`, parsed from `head`, lies in it.
fn note_spans(head: &[u8], fields: &[httparse::Header<'_>], spans: &mut [Span]) {
    let start = head.as_ptr() as usize;
    for (span, h) in spans.iter_mut().zip(fields) {
        let name = h.name.as_ptr() as usize - start;
        let value = h.value.as_ptr() as usize - start;
        *span = (
            name as u32,
            (name + h.name.len()) as u32,
            value as u32,
            (value + h.value.len()) as u32,
        );
    }
}

/// What [`parse_one`] read.
#[derive(Debug)]
enum Parsed {
    /// A 1xx other than 101 (100 Continue, 103 Early Hints): not forwarded; the final
    /// response (or a 101) follows.
    Interim,
    Final(Head),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read `raw` into a map that still holds a request's field, as the exchange's does:
    /// the response must carry none of it.
    fn parse(raw: &str, head_request: bool) -> Result<Option<Head>, HeadError> {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_static("request.test"));
        parse_response(&mut BytesMut::from(raw), head_request, &mut map)
    }

    fn head(raw: &str) -> Head {
        match parse(raw, false) {
            Ok(Some(h)) => h,
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    #[test]
    fn a_request_head_keeps_the_fields_and_sets_its_own_framing() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("svc.test"));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        let encoded = |method: Method, h: &HeaderMap, length: BodyLength| {
            let mut out = Vec::new();
            encode_request(&method, "/p?q=1", (h, &[]), length, &mut out);
            String::from_utf8(out).expect("ascii")
        };
        assert_eq!(
            encoded(Method::GET, &h, BodyLength::None),
            "GET /p?q=1 HTTP/1.1\r\nhost: svc.test\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 0\r\n\r\n"
        );
        assert_eq!(
            encoded(Method::PUT, &h, BodyLength::Exact(12)),
            "PUT /p?q=1 HTTP/1.1\r\nhost: svc.test\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 12\r\n\r\n"
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        assert_eq!(
            encoded(Method::POST, &h, BodyLength::Chunked),
            "POST /p?q=1 HTTP/1.1\r\nhost: svc.test\r\nx-a: 1\r\nx-a: 2\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        h.remove(header::TRANSFER_ENCODING);
        h.remove(header::CONTENT_LENGTH);
        assert!(!encoded(Method::DELETE, &h, BodyLength::None).contains("content-length"));
        assert!(encoded(Method::POST, &h, BodyLength::None).ends_with("content-length: 0\r\n\r\n"));
    }

    /// Fields added on the way follow the request's own, before the framing.
    #[test]
    fn added_fields_follow_the_requests_own() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("svc.test"));
        let added: [(&str, &[u8]); 2] = [
            ("x-forwarded-for", b"192.0.2.1"),
            ("x-forwarded-proto", b"https"),
        ];
        let mut out = Vec::new();
        encode_request(
            &Method::PUT,
            "/",
            (&h, &added),
            BodyLength::Exact(3),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "PUT / HTTP/1.1\r\nhost: svc.test\r\nx-forwarded-for: 192.0.2.1\r\nx-forwarded-proto: https\r\ncontent-length: 3\r\n\r\n"
        );
    }

    #[test]
    fn a_head_is_read_and_what_follows_it_stays_in_the_buffer() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nokNEXT",
        );
        let Ok(Some(h)) = parse_response(&mut buf, false, &mut HeaderMap::new()) else {
            panic!("no head")
        };
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.framing, Framing::Length(2));
        assert!(h.reusable);
        let all: Vec<_> = h.headers.get_all("x-a").iter().collect();
        assert_eq!(all, ["1", "2"]);
        assert_eq!(&buf[..], b"okNEXT");
    }

    #[test]
    fn an_incomplete_head_asks_for_more_and_consumes_nothing() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Len");
        assert!(matches!(
            parse_response(&mut buf, false, &mut HeaderMap::new()),
            Ok(None)
        ));
        assert_eq!(buf.len(), 28);
    }

    #[test]
    fn oversized_or_malformed_heads_are_errors() {
        let big = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&big, false).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x{i}: 1\r\n")).collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(parse(&many, false).unwrap_err(), HeadError::TooLarge);
        for bad in [
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 099 Low\r\n\r\n",
            "HTTX/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nbad name: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nx: a\r\n folded\r\n\r\n",
            "HTTP/1.1 200 OK\r\nx: a\0b\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad, false).unwrap_err(),
                HeadError::Malformed,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_names_are_not_kept() {
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n\
             X-Hop: secret\r\nTransfer-Encoding: chunked\r\nUpgrade: h2c\r\nTrailer: x\r\n\
             Proxy-Authenticate: Basic\r\nX-End: 1\r\n\r\n",
        );
        let names: Vec<_> = h.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-end"]);
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.reusable);
    }

    /// `close`, `keep-alive` and `upgrade` in `Connection` name no field to remove, as
    /// for every other message roomgate passes on (`headers::Names::strip_hop_by_hop`).
    #[test]
    fn connection_options_name_no_field() {
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nClose: 1\r\nX-Hop: 2\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let names: Vec<_> = h.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["close", "content-length"]);
    }

    #[test]
    fn interim_heads_are_skipped_and_a_switch_keeps_its_upgrade() {
        let mut early = BytesMut::from("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
        assert!(matches!(
            parse_response(&mut early, false, &mut HeaderMap::new()),
            Ok(None)
        ));
        assert!(early.is_empty(), "the interim head is read and dropped");
        let h = head(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
             HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(h.status, StatusCode::CREATED);
        let h = head(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Hop\r\n\
             X-Hop: 1\r\nSec-WebSocket-Accept: abc\r\n\r\n",
        );
        assert_eq!((h.framing, h.reusable), (Framing::Switched, false));
        let fields: Vec<_> = h
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().expect("ascii")))
            .collect();
        assert_eq!(
            fields,
            [
                "upgrade: websocket",
                "sec-websocket-accept: abc",
                "connection: upgrade"
            ]
        );
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let f = |raw: &str| {
            let h = head(raw);
            (h.framing, h.reusable)
        };
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Chunked, true)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"),
            (Framing::Chunked, true)
        );
        // Chunked wins over a length, and the connection is not reused after.
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            (Framing::Chunked, false)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            (Framing::UntilClose, false)
        );
        assert_eq!(f("HTTP/1.1 200 OK\r\n\r\n"), (Framing::UntilClose, false));
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n"),
            (Framing::Length(7), true)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\n"),
            (Framing::Length(7), false)
        );
        assert_eq!(
            f("HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\n"),
            (Framing::Length(7), false)
        );
        assert_eq!(
            f("HTTP/1.0 200 OK\r\nContent-Length: 7\r\nConnection: Keep-Alive\r\n\r\n"),
            (Framing::Length(7), true)
        );
        assert_eq!(
            f("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"),
            (Framing::Empty, true)
        );
        assert_eq!(
            f("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Empty, true)
        );
        let h = match parse("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", true) {
            Ok(Some(h)) => h,
            other => panic!("{other:?}"),
        };
        assert_eq!(h.framing, Framing::Empty);
        assert_eq!(h.headers["content-length"], "7");
    }

    const NONE: [&str; 0] = [];

    /// The lengths a response head is forwarded with, read as the service sent it.
    fn lengths(raw: &str, head_request: bool) -> Vec<String> {
        let h = match parse(raw, head_request) {
            Ok(Some(h)) => h,
            other => panic!("{raw:?}: {other:?}"),
        };
        h.headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    }

    /// A length beside a transfer coding does not describe the body roomgate forwards
    /// (RFC 9112 §6.3): kept, it would cut the re-framed body short at the next hop.
    #[test]
    fn a_transfer_coded_response_is_forwarded_without_a_length() {
        for raw in [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        ] {
            for head_request in [false, true] {
                assert_eq!(lengths(raw, head_request), NONE, "{raw:?}");
            }
        }
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")
                .framing,
            Framing::Chunked
        );
    }

    /// Equal lengths, repeated or listed, are one length (RFC 9110 §8.6), forwarded once:
    /// the next hop may refuse a repeat.
    #[test]
    fn equal_lengths_are_forwarded_as_one() {
        for fields in [
            "Content-Length: 5\r\nContent-Length: 5",
            "Content-Length: 5, 5",
            "Content-Length: 5,5\r\nX-A: 1\r\ncontent-length: 5",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\n{fields}\r\n\r\n");
            for head_request in [false, true] {
                assert_eq!(lengths(&raw, head_request), ["5"], "{fields:?}");
            }
        }
        assert_eq!(
            lengths("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true),
            ["5"]
        );
        assert_eq!(lengths("HTTP/1.1 200 OK\r\n\r\n", true), NONE);
    }

    #[test]
    fn a_doubtful_length_is_an_error() {
        for bad in [
            "Content-Length: 7\r\nContent-Length: 8",
            "Content-Length: 7\r\nTransfer-Encoding: chunked\r\nContent-Length: 8",
            "Content-Length: 7, 8",
            "Content-Length: +7",
            "Content-Length: 0x7",
            "Content-Length: ",
            "Content-Length: 99999999999999999999",
            "Transfer-Encoding: chunked,",
            "Transfer-Encoding: gzip,,chunked",
            "Transfer-Encoding: ",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\n{bad}\r\n\r\n");
            assert_eq!(parse(&raw, false).unwrap_err(), HeadError::Framing, "{bad}");
        }
        assert_eq!(
            parse(
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            )
            .unwrap_err(),
            HeadError::LegacyTransferEncoding
        );
    }
}
