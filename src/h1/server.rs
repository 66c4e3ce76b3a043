//! The client side of roomgate's own HTTP/1.1 serving (see `server::direct`): which
//! request heads it serves itself, read into a [`Request`], and the response head it
//! writes back.
//!
//! Only the plainest requests are served here: HTTP/1.1, a method other than CONNECT, an
//! origin-form target without `#`, no field that changes the connection or asks for an
//! interim answer (`Transfer-Encoding`, `Upgrade`, `Expect`), and either no body or one
//! plain `Content-Length` whose bytes have all arrived with the head (a webhook's small
//! POST, nearly always). A body still on its way goes to hyper, which streams it. Anything else,
//! including every head this module cannot read, is [`Parse::Elsewhere`]: hyper takes the
//! connection from that head on, with its own checks and answers. So this module never
//! rejects anything itself, and a request it reads is one hyper would have read the same
//! way.
//!
//! Pure: bytes in, a request or a decision out; a response head in, bytes out.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};

use super::head::{digits, field, note_spans, Span};
use crate::headers::list_tokens;

/// The most fields a head served here may have; one with more goes to hyper, whose
/// `limits.max_headers` decides.
const MAX_FIELDS: usize = 100;

/// What the front of the read buffer holds.
#[derive(Debug)]
// Returned once per head and taken apart at once: a box would cost an allocation per
// request for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Parse {
    /// The head is not complete yet.
    Partial,
    /// Not a request served here (or not one this module can read): hyper takes the
    /// connection, these bytes included. The buffer is left as it was.
    Elsewhere,
    /// A request without a body, its head removed from the buffer.
    Simple(Simple),
}

/// A request served here.
#[derive(Debug)]
pub struct Simple {
    pub request: Request<()>,
    /// The whole body (empty without one).
    pub body: Bytes,
    /// The client asked to close the connection after this exchange.
    pub close: bool,
}

/// Read one request from the front of `buf` if it is one served here; `max_fields` is
/// `limits.max_headers`. The fields' values and the body share one frozen copy of the
/// bytes read.
pub fn parse_request(buf: &mut BytesMut, max_fields: usize) -> Parse {
    let mut spans: [Span; MAX_FIELDS] = [(0, 0, 0, 0); MAX_FIELDS];
    let mut slots = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let (len, method, target, count, close, length) = {
        let mut req = httparse::Request::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
            &mut req,
            &buf[..],
            &mut slots,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Parse::Partial,
            Err(_) => return Parse::Elsewhere,
        };
        let (Some(1), Some(method), Some(path)) = (req.version, req.method, req.path) else {
            return Parse::Elsewhere;
        };
        if !path.starts_with('/') || path.contains('#') || req.headers.len() > max_fields {
            return Parse::Elsewhere;
        }
        let Ok(method) = Method::from_bytes(method.as_bytes()) else {
            return Parse::Elsewhere;
        };
        if method == Method::CONNECT {
            return Parse::Elsewhere;
        }
        let mut close = false;
        let mut length = None;
        for h in req.headers.iter() {
            let name = h.name.as_bytes();
            if ["transfer-encoding", "upgrade", "expect"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            {
                return Parse::Elsewhere;
            }
            if name.eq_ignore_ascii_case(b"content-length") {
                // One field of digits only; a repeat or a list is the framing watch's to judge.
                match (length, digits(h.value)) {
                    (None, Some(n)) => length = Some(n),
                    _ => return Parse::Elsewhere,
                }
            }
            if name.eq_ignore_ascii_case(b"connection") {
                close |= list_tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"close"));
            }
        }
        let length = length.unwrap_or(0);
        if ((buf.len() - len) as u64) < length {
            return Parse::Elsewhere;
        }
        note_spans(&buf[..], req.headers, &mut spans);
        let start = buf.as_ptr() as usize;
        let target = path.as_ptr() as usize - start;
        (
            len,
            method,
            target..target + path.len(),
            req.headers.len(),
            close,
            length as usize,
        )
    };
    let head = buf.split_to(len).freeze();
    match request(&head, method, target, &spans[..count]) {
        Some(request) => {
            let body = buf.split_to(length).freeze();
            Parse::Simple(Simple {
                request,
                body,
                close,
            })
        }
        None => {
            // The `http` types refused what httparse took: rare, so the copy back is too.
            let mut whole = BytesMut::with_capacity(head.len() + buf.len());
            whole.extend_from_slice(&head);
            whole.extend_from_slice(buf);
            *buf = whole;
            Parse::Elsewhere
        }
    }
}

/// The request a parsed head describes; `None` when a part is not valid for `http`.
fn request(
    head: &Bytes,
    method: Method,
    target: std::ops::Range<usize>,
    spans: &[Span],
) -> Option<Request<()>> {
    let uri = Uri::from_maybe_shared(head.slice(target)).ok()?;
    // Room for what roomgate adds (request id, X-Forwarded-*, identity).
    let mut headers = HeaderMap::with_capacity(spans.len() + 8);
    for &(ns, ne, vs, ve) in spans {
        let name = HeaderName::from_bytes(&head[ns as usize..ne as usize]).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize)).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

/// How a response's body is framed on the way to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body and no length: 1xx and 204.
    None,
    /// No body, the length fields as stated (a HEAD request, 304); `Some` adds a
    /// `Content-Length` where the head states none.
    Stated(Option<u64>),
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl Framing {
    /// Whether a body is written after the head.
    pub fn has_body(self) -> bool {
        matches!(self, Framing::Length(_) | Framing::Chunked)
    }
}

/// How to frame a response with `status` to a request (`head_request`: a HEAD) whose body
/// is known to be `exact` bytes long, if it is known.
///
/// A HEAD answer states a length of its own only for a body that is there: one roomgate
/// made itself (a JSON error), which hyper would describe the same way. A forwarded HEAD
/// answer comes with an empty body that stands for nothing, so its length is the
/// service's field, if it sent one; `content-length: 0` would tell the client that the
/// GET's body is empty when the service never said how long it is.
pub fn framing(status: StatusCode, head_request: bool, exact: Option<u64>) -> Framing {
    if status.is_informational() || status == StatusCode::NO_CONTENT {
        Framing::None
    } else if status == StatusCode::NOT_MODIFIED {
        Framing::Stated(None)
    } else if head_request {
        Framing::Stated(exact.filter(|&n| n > 0))
    } else {
        match exact {
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        }
    }
}

/// Write a response head: the status line, `headers` (their framing and `Connection`
/// fields replaced by roomgate's), `date` where they carry none, and `Connection: close`
/// when `close`.
pub fn encode_response(
    status: StatusCode,
    headers: &HeaderMap,
    framing: Framing,
    date: &[u8],
    close: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let keep_length = matches!(framing, Framing::Stated(_));
    let mut dated = false;
    let mut stated_length = false;
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH {
            if !keep_length {
                continue;
            }
            stated_length = true;
        } else if name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            continue;
        } else if name == header::DATE {
            dated = true;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !dated {
        field(out, b"date", date);
    }
    match framing {
        Framing::Length(n) | Framing::Stated(Some(n)) if !stated_length => {
            field(
                out,
                b"content-length",
                itoa::Buffer::new().format(n).as_bytes(),
            );
        }
        Framing::Chunked => field(out, b"transfer-encoding", b"chunked"),
        _ => {}
    }
    if close {
        field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

/// The line that starts a chunk of `len` bytes.
pub fn chunk_size_line(len: usize, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{len:x}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> (Parse, BytesMut) {
        let mut buf = BytesMut::from(raw);
        (parse_request(&mut buf, 100), buf)
    }

    /// A request served here, and what stays in the buffer after it.
    #[track_caller]
    fn simple(raw: &str) -> (Simple, BytesMut) {
        match parse(raw) {
            (Parse::Simple(s), rest) => (s, rest),
            (parsed, _) => panic!("{raw:?}: {parsed:?}"),
        }
    }

    #[test]
    fn a_plain_get_is_read_and_what_follows_stays_in_the_buffer() {
        let (s, rest) = simple(
            "GET /a/b?q=1 HTTP/1.1\r\nHost: App.Test\r\nX-A: 1\r\nx-a: 2\r\nConnection: keep-alive\r\n\r\nGET /next",
        );
        let r = s.request;
        assert!(!s.close);
        assert_eq!(r.method(), Method::GET);
        assert_eq!(r.uri().path(), "/a/b");
        assert_eq!(r.uri().query(), Some("q=1"));
        assert_eq!(r.version(), Version::HTTP_11);
        assert_eq!(r.headers()["host"], "App.Test");
        let xa: Vec<_> = r.headers().get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert_eq!(r.headers()["connection"], "keep-alive");
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn a_body_that_came_with_its_head_is_read_with_it() {
        let (s, rest) =
            simple("POST /hook HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /");
        assert_eq!(s.request.method(), Method::POST);
        assert_eq!(&s.body[..], b"hello");
        assert_eq!(s.request.headers()["content-length"], "5");
        assert_eq!(&rest[..], b"GET /");
        let (s, _) = simple("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(s.body.is_empty());
    }

    #[test]
    fn connection_close_is_noted() {
        let (s, _) = simple("HEAD / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n");
        assert!(s.close);
        assert_eq!(s.request.method(), Method::HEAD);
    }

    #[test]
    fn an_incomplete_head_waits_for_more() {
        let (parsed, rest) = parse("GET / HTTP/1.1\r\nHost: a\r\n");
        assert!(matches!(parsed, Parse::Partial), "{parsed:?}");
        assert_eq!(rest.len(), 25);
    }

    #[test]
    fn every_other_request_goes_elsewhere_with_its_bytes_untouched() {
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "x-f: 1\r\n".repeat(101));
        for raw in [
            "POST /hook HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhi",
            "POST /hook HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
            "POST /hook HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nhi",
            "POST /hook HTTP/1.1\r\nContent-Length: +2\r\n\r\nhi",
            "POST /hook HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\nhi",
            "POST /hook HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nhi",
            "POST /hook HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET / HTTP/1.1\r\nbad header\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
            "G@T / HTTP/1.1\r\n\r\n",
            many.as_str(),
        ] {
            let (parsed, rest) = parse(raw);
            assert!(matches!(parsed, Parse::Elsewhere), "{raw:?}: {parsed:?}");
            assert_eq!(&rest[..], raw.as_bytes(), "{raw:?}");
        }
    }

    #[test]
    fn the_configured_field_limit_applies() {
        let raw = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n";
        let mut buf = BytesMut::from(raw);
        assert!(matches!(parse_request(&mut buf, 2), Parse::Elsewhere));
        assert_eq!(&buf[..], raw.as_bytes());
        assert!(matches!(parse_request(&mut buf, 3), Parse::Simple(_)));
    }

    #[test]
    fn framing_follows_status_method_and_known_length() {
        assert_eq!(framing(StatusCode::OK, false, Some(5)), Framing::Length(5));
        assert_eq!(framing(StatusCode::OK, false, None), Framing::Chunked);
        assert_eq!(
            framing(StatusCode::OK, true, Some(42)),
            Framing::Stated(Some(42))
        );
        assert_eq!(
            framing(StatusCode::NO_CONTENT, false, Some(0)),
            Framing::None
        );
        assert_eq!(
            framing(StatusCode::NOT_MODIFIED, false, None),
            Framing::Stated(None)
        );
        assert!(!framing(StatusCode::OK, true, None).has_body());
    }

    /// A forwarded HEAD answer comes with an empty body in place of the GET's: no length
    /// is made up from it (the service's own field, if any, is in the head).
    #[test]
    fn an_empty_head_answer_states_no_length_of_its_own() {
        let none = framing(StatusCode::OK, true, Some(0));
        assert_eq!(none, Framing::Stated(None));
        assert!(!encode(StatusCode::OK, &HeaderMap::new(), none, false).contains("length"));
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("5"));
        assert!(encode(StatusCode::OK, &h, none, false).contains("\r\ncontent-length: 5\r\n"));
    }

    fn encode(status: StatusCode, headers: &HeaderMap, framing: Framing, close: bool) -> String {
        let mut out = Vec::new();
        encode_response(
            status,
            headers,
            framing,
            b"Sat, 21 Nov 2026 10:00:00 GMT",
            close,
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_response_head_carries_roomgates_framing_and_a_date() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert("content-length", HeaderValue::from_static("999"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("connection", HeaderValue::from_static("close"));
        assert_eq!(
            encode(StatusCode::OK, &h, Framing::Length(12), false),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ndate: Sat, 21 Nov 2026 10:00:00 GMT\r\ncontent-length: 12\r\n\r\n"
        );
        assert_eq!(
            encode(StatusCode::NOT_FOUND, &h, Framing::Chunked, true),
            "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ndate: Sat, 21 Nov 2026 10:00:00 GMT\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_stated_length_and_a_services_date_are_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            "date",
            HeaderValue::from_static("Mon, 01 Jan 2024 00:00:00 GMT"),
        );
        h.insert("content-length", HeaderValue::from_static("42"));
        assert_eq!(
            encode(StatusCode::OK, &h, Framing::Stated(Some(0)), false),
            "HTTP/1.1 200 OK\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\ncontent-length: 42\r\n\r\n"
        );
        h.remove("content-length");
        assert!(encode(StatusCode::OK, &h, Framing::Stated(Some(7)), false)
            .ends_with("content-length: 7\r\n\r\n"));
        assert!(!encode(StatusCode::NO_CONTENT, &h, Framing::None, false).contains("length"));
    }

    #[test]
    fn a_chunk_size_is_hex() {
        let mut out = Vec::new();
        chunk_size_line(65_535, &mut out);
        assert_eq!(out, b"ffff\r\n");
    }
}
