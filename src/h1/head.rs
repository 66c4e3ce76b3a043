//! The heads of roomgate's own HTTP/1.1 exchange: the request head it writes for a request
//! without a body, and the response head it reads back, with how that response's body is
//! framed (RFC 9112 §6.3) and whether the connection may carry another exchange.
//!
//! Pure: bytes and header maps in, decisions out. Anything this module cannot read with
//! certainty is an error, and an exchange that errs never returns its connection to the
//! pool: a connection whose framing is in doubt could hand one client's response to the
//! next.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use crate::headers::{is_hop_by_hop, list_tokens};

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
    #[error("invalid or conflicting content-length")]
    ContentLength,
    #[error("transfer-encoding in an HTTP/1.0 response")]
    LegacyTransferEncoding,
    #[error("the service switched protocols unasked")]
    Switched,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a HEAD request, 1xx, 204 or 304.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the service closes the connection.
    UntilClose,
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

/// Write the head of a request without a body: `METHOD target HTTP/1.1`, then `headers`
/// as they are, except that framing fields are roomgate's to set. A bodyless request
/// states `content-length: 0` where a body is expected (POST, PUT, PATCH) or the client
/// stated one; otherwise it states no length (RFC 9110 §8.6).
pub fn encode_request(method: &Method, target: &str, headers: &HeaderMap, out: &mut Vec<u8>) {
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
    if stated_length || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Write one header field line.
pub(super) fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A length of decimal digits only (`parse` alone would take a sign), as `Content-Length`
/// and nothing else.
pub(super) fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Read one response head from the front of `buf`, removing it: `Ok(None)` while the head
/// is incomplete. Interim (1xx) heads are read like final ones; [`Parsed::Interim`] says
/// to skip them. `head_request`: the request was HEAD, so no response has a body.
pub fn parse_response(buf: &mut BytesMut, head_request: bool) -> Result<Option<Parsed>, HeadError> {
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
    if status.is_informational() {
        return match status {
            StatusCode::SWITCHING_PROTOCOLS => Err(HeadError::Switched),
            _ => Ok(Some(Parsed::Interim)),
        };
    }
    let mut fields = Fields::default();
    let mut headers = HeaderMap::with_capacity(count);
    for &(ns, ne, vs, ve) in &spans[..count] {
        let name = HeaderName::from_bytes(&head[ns as usize..ne as usize])
            .map_err(|_| HeadError::Malformed)?;
        let raw = &head[vs as usize..ve as usize];
        if fields.hop(&name, raw)? {
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
    let (framing, reusable) = framing(status, minor, &fields, head_request);
    Ok(Some(Parsed::Final(Head {
        status,
        headers,
        framing,
        reusable,
    })))
}

/// Where a field's name and value lie in the head they were parsed from, as byte ranges
/// (name start, name end, value start, value end): the fields can then share one frozen
/// copy of the head instead of one allocation each.
pub(super) type Span = (u32, u32, u32, u32);

/// Note where each of `fields`, parsed from `head`, lies in it.
pub(super) fn note_spans(head: &[u8], fields: &[httparse::Header<'_>], spans: &mut [Span]) {
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

/// What the framing fields of a response head say. Hop-by-hop fields are read here and
/// not kept: they describe the connection to the service, never the client's.
#[derive(Debug, Default)]
struct Fields {
    length: Option<u64>,
    /// The length was stated more than once (a second field, or a list in one).
    repeated_length: bool,
    /// `Transfer-Encoding` is present; `chunked` says whether its last coding is chunked.
    coded: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    /// `Connection` names fields other than the hop-by-hop ones.
    listed: bool,
}

impl Fields {
    /// Note a field; true when it is hop-by-hop (not to be forwarded). A `Content-Length`
    /// is kept here, and settled once the whole head is read ([`settle_length`]).
    fn hop(&mut self, name: &HeaderName, raw: &[u8]) -> Result<bool, HeadError> {
        if name == header::CONTENT_LENGTH {
            self.length(raw)?;
            return Ok(false);
        }
        if !is_hop_by_hop(name.as_str()) {
            return Ok(false);
        }
        if name == header::CONNECTION {
            for token in list_tokens(raw) {
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                } else if !token.eq_ignore_ascii_case(b"upgrade") {
                    self.listed = true;
                }
            }
        } else if name == header::TRANSFER_ENCODING {
            self.coded = true;
            if let Some(last) = list_tokens(raw).last() {
                self.chunked = last.eq_ignore_ascii_case(b"chunked");
            }
        }
        Ok(true)
    }

    /// One `Content-Length` value, which must agree with those before it.
    fn length(&mut self, raw: &[u8]) -> Result<(), HeadError> {
        self.repeated_length |= self.length.is_some() || raw.contains(&b',');
        self.length = Some(fold_length(self.length, raw)?);
        Ok(())
    }

    /// The names listed in `Connection` values.
    fn listed_names(&self, head: &[u8], spans: &[Span]) -> Vec<HeaderName> {
        spans
            .iter()
            .filter(|(ns, ne, _, _)| {
                head[*ns as usize..*ne as usize].eq_ignore_ascii_case(b"connection")
            })
            .flat_map(|&(_, _, vs, ve)| list_tokens(&head[vs as usize..ve as usize]))
            .filter_map(|t| HeaderName::from_bytes(t).ok())
            .collect()
    }
}

/// Leave the `Content-Length` fields of a response head to forward as its framing
/// allows: none when the body is transfer-coded (`coded`), since RFC 9112 §6.3 has the
/// coding override the length and roomgate frames that body anew; otherwise at most one,
/// the single number the fields agree on (`7, 7`, or the field twice, is `7`: RFC 9110
/// §8.6). Left as sent, the stale length would frame the body for the next hop (a client
/// taking the first bytes of a chunked body as the whole), and a repeat would be refused
/// there. Fields that disagree have failed the exchange already (502); if any reach here
/// they are dropped, and the body's own framing stands.
pub fn settle_length(headers: &mut HeaderMap, coded: bool) {
    if coded {
        state_length(headers, None);
        return;
    }
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return;
    };
    // The common case, one field of one number, stays as it came.
    if values.next().is_none() && digits(first.as_bytes()).is_some() {
        return;
    }
    let agreed = headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .try_fold(None, |stated, v| {
            fold_length(stated, v.as_bytes()).map(Some)
        });
    state_length(headers, agreed.ok().flatten());
}

/// Leave exactly one `Content-Length` field saying `length`, or none.
fn state_length(headers: &mut HeaderMap, length: Option<u64>) {
    match length {
        Some(n) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        None => {
            headers.remove(header::CONTENT_LENGTH);
        }
    }
}

/// The number a `Content-Length` value states, taken together with the number earlier
/// values stated (`stated`): a number, or the same number repeated (RFC 9110 §8.6);
/// anything else is an error.
fn fold_length(mut stated: Option<u64>, raw: &[u8]) -> Result<u64, HeadError> {
    for part in raw.split(|b| *b == b',') {
        let n = digits(part.trim_ascii()).ok_or(HeadError::ContentLength)?;
        match stated {
            Some(m) if m != n => return Err(HeadError::ContentLength),
            _ => stated = Some(n),
        }
    }
    stated.ok_or(HeadError::ContentLength)
}

/// What [`parse_response`] read.
#[derive(Debug)]
pub enum Parsed {
    /// A 1xx other than 101 (100 Continue, 103 Early Hints): not forwarded; the final
    /// response follows.
    Interim,
    Final(Head),
}

/// How a final response's body is framed, and whether the connection stays usable after
/// it (RFC 9112 §6.3 and §9.3).
fn framing(
    status: StatusCode,
    minor_version: u8,
    fields: &Fields,
    head_request: bool,
) -> (Framing, bool) {
    let http11 = minor_version >= 1;
    // An HTTP/1.0 service keeps the connection only when it says so.
    let keep_alive = !fields.close && (http11 || fields.keep_alive);
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return (Framing::Empty, keep_alive);
    }
    if fields.coded {
        // Chunked only when it is the final coding; otherwise the body runs to the close.
        // A length beside it is ignored, and the connection not trusted after it.
        return if fields.chunked {
            (Framing::Chunked, keep_alive && fields.length.is_none())
        } else {
            (Framing::UntilClose, false)
        };
    }
    match fields.length {
        Some(n) => (Framing::Length(n), keep_alive),
        None => (Framing::UntilClose, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, head_request: bool) -> Result<Option<Parsed>, HeadError> {
        parse_response(&mut BytesMut::from(raw), head_request)
    }

    fn head(raw: &str) -> Head {
        match parse(raw, false) {
            Ok(Some(Parsed::Final(h))) => h,
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
        let mut out = Vec::new();
        encode_request(&Method::GET, "/p?q=1", &h, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /p?q=1 HTTP/1.1\r\nhost: svc.test\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 0\r\n\r\n"
        );
        let mut out = Vec::new();
        h.remove(header::TRANSFER_ENCODING);
        encode_request(&Method::DELETE, "/", &h, &mut out);
        assert!(!String::from_utf8_lossy(&out).contains("content-length"));
        let mut out = Vec::new();
        encode_request(&Method::POST, "/", &h, &mut out);
        assert!(String::from_utf8_lossy(&out).ends_with("content-length: 0\r\n\r\n"));
    }

    #[test]
    fn a_head_is_read_and_what_follows_it_stays_in_the_buffer() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nokNEXT",
        );
        let Ok(Some(Parsed::Final(h))) = parse_response(&mut buf, false) else {
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
        assert!(matches!(parse_response(&mut buf, false), Ok(None)));
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

    #[test]
    fn interim_heads_are_skipped_and_a_switch_is_refused() {
        assert!(matches!(
            parse("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false),
            Ok(Some(Parsed::Interim))
        ));
        assert_eq!(
            parse(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
                false
            )
            .unwrap_err(),
            HeadError::Switched
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
            Ok(Some(Parsed::Final(h))) => h,
            other => panic!("{other:?}"),
        };
        assert_eq!(h.framing, Framing::Empty);
        assert_eq!(h.headers["content-length"], "7");
    }

    const NONE: [&str; 0] = [];

    /// The lengths a response head is forwarded with, read as the service sent it.
    fn lengths(raw: &str, head_request: bool) -> Vec<String> {
        let h = match parse(raw, head_request) {
            Ok(Some(Parsed::Final(h))) => h,
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

    /// What hyper's client hands on is settled by the same rule: it keeps every length
    /// field as it came, and one beside a transfer coding unchecked.
    #[test]
    fn settled_lengths_follow_the_framing() {
        let settled = |values: &[&'static str], coded: bool| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::CONTENT_LENGTH, HeaderValue::from_static(v));
            }
            settle_length(&mut h, coded);
            h.get_all(header::CONTENT_LENGTH)
                .iter()
                .map(|v| v.to_str().expect("ascii").to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(settled(&["5"], false), ["5"]);
        assert_eq!(settled(&["5", "5"], false), ["5"]);
        assert_eq!(settled(&["5 , 5"], false), ["5"]);
        assert_eq!(settled(&["5"], true), NONE);
        assert_eq!(settled(&["5", "6"], true), NONE);
        assert_eq!(settled(&["5", "6"], false), NONE);
        assert_eq!(settled(&[], false), NONE);
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
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\n{bad}\r\n\r\n");
            assert_eq!(
                parse(&raw, false).unwrap_err(),
                HeadError::ContentLength,
                "{bad}"
            );
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
