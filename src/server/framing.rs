//! A read-side watch on HTTP/1 message framing, below hyper.
//!
//! hyper already refuses most smuggling forms with 400 (invalid or conflicting
//! `Content-Length` values, a final `Transfer-Encoding` other than `chunked`,
//! `Transfer-Encoding` on HTTP/1.0). Two ambiguous forms it accepts, and it erases the
//! evidence before the request reaches a service: a message with both `Content-Length`
//! and `Transfer-Encoding` (it drops `Content-Length`, decodes chunked and closes after),
//! and a repeated `Content-Length` with equal values (it keeps one). roomgate refuses both,
//! as the reference proxies do, so this wrapper follows the byte stream with the same
//! framing rules and records a per-connection [`Refusal`] when it sees such a head. The
//! connection layer then answers 400 and closes, and nothing is forwarded. The same goes
//! for a request target holding `#`: the `http` crate drops a fragment silently, so the
//! raw bytes are the only place it can be seen and refused.
//!
//! It only observes: it never changes, delays or buffers the bytes hyper reads. The one
//! thing it adds is the bytes roomgate's own serving had read before it handed the
//! connection to hyper (`server::direct`): those are read first, and watched like the
//! rest. Once the stream stops being plain HTTP/1 (HTTP/2 preface, an upgrade, something
//! it cannot parse, a head larger than the limit) it stops looking, and hyper's own
//! checks apply.
//!
//! Because it sees every head arrive, it also keeps the [`HeadClock`]: when a read leaves a
//! head incomplete, it notes the time, and the connection's watcher holds that head to
//! `header_read_timeout` (slowloris). A head that arrives whole, as nearly all do, costs
//! no clock read and no timer.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::moment::AtomicMoment;

/// Why every further request on a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Both `Content-Length` and `Transfer-Encoding`, or `Content-Length` repeated.
    AmbiguousFraming,
    /// A `#` in the request target.
    Fragment,
}

/// When the request head now being read began, if one is incomplete: written by the
/// [`FramingGuard`], read by the connection's watcher.
#[derive(Debug)]
pub struct HeadClock(AtomicMoment);

impl HeadClock {
    pub fn new(epoch: Instant) -> Self {
        HeadClock(AtomicMoment::new(epoch))
    }

    /// When the incomplete head began; `None` between heads.
    pub fn started(&self) -> Option<Instant> {
        self.0.get()
    }

    pub(super) fn set(&self, incomplete: bool) {
        if incomplete {
            self.0.set(Instant::now());
        } else {
            self.0.clear();
        }
    }
}

/// An IO object that watches the HTTP/1 framing of what is read through it.
pub struct FramingGuard<T> {
    /// Bytes read from `io` before the guard took it (roomgate's own serving read them,
    /// then handed the connection on): read first, and watched like the rest.
    prefix: Bytes,
    io: T,
    sniffer: Sniffer,
    refusal: Arc<OnceLock<Refusal>>,
    clock: Arc<HeadClock>,
    /// What `clock` was last told.
    incomplete: bool,
}

impl<T> FramingGuard<T> {
    /// Watch `prefix`, then `io`; `refusal` is set once a head that must be refused has
    /// been read, and `clock` follows incomplete heads.
    pub fn new(
        prefix: Bytes,
        io: T,
        refusal: Arc<OnceLock<Refusal>>,
        max_head: usize,
        clock: Arc<HeadClock>,
    ) -> Self {
        FramingGuard {
            prefix,
            io,
            sniffer: Sniffer::new(max_head),
            refusal,
            clock,
            incomplete: false,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FramingGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if this.prefix.is_empty() {
            ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        } else {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
        }
        if let Some(r) = this.sniffer.feed(&buf.filled()[before..]) {
            let _ = this.refusal.set(r);
        }
        let incomplete = this.sniffer.head_incomplete();
        if incomplete != this.incomplete {
            this.incomplete = incomplete;
            this.clock.set(incomplete);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FramingGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Where the sniffer is in the HTTP/1 byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Collecting a request head.
    Head,
    /// Skipping a body of known length.
    Body(u64),
    /// Chunked body: reading a chunk-size line.
    ChunkSize,
    /// Chunked body: skipping chunk data.
    ChunkData(u64),
    /// Chunked body: the CRLF after chunk data.
    ChunkDataEnd,
    /// Chunked body: trailer lines until an empty one.
    Trailer,
    /// No longer HTTP/1 we can follow; hyper decides alone.
    Off,
}

/// What a request head says about framing.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// The connection must not be served further.
    Refuse(Refusal),
    /// The message's body is framed like this (or the stream leaves HTTP/1).
    Next(Phase),
}

/// The HTTP/1 framing state machine behind [`FramingGuard`].
#[derive(Debug)]
pub(crate) struct Sniffer {
    phase: Phase,
    /// The head or line being collected.
    buf: Vec<u8>,
    max_head: usize,
    refusal: Option<Refusal>,
}

/// As many as a head the server accepts can hold (`limits.max_headers` is capped at this).
const MAX_HEADERS: usize = crate::config::Limits::MAX_HEADERS_CAP;

impl Sniffer {
    pub(crate) fn new(max_head: usize) -> Self {
        Sniffer {
            phase: Phase::Head,
            buf: Vec::new(),
            max_head,
            refusal: None,
        }
    }

    /// Follow `data`; `Some` once a head to refuse has been seen on this connection.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Option<Refusal> {
        while !data.is_empty() {
            // A whole head in one read (nearly always): examined where it lies.
            if self.phase == Phase::Head && self.buf.is_empty() && self.whole_head(&mut data) {
                continue;
            }
            match self.phase {
                Phase::Off => break,
                Phase::Body(n) | Phase::ChunkData(n) => {
                    let k = n.min(data.len() as u64);
                    data = &data[k as usize..];
                    let left = n - k;
                    self.phase = match (self.phase, left) {
                        (Phase::Body(_), 0) => Phase::Head,
                        (Phase::Body(_), _) => Phase::Body(left),
                        (_, 0) => Phase::ChunkDataEnd,
                        _ => Phase::ChunkData(left),
                    };
                }
                Phase::Head | Phase::ChunkSize | Phase::ChunkDataEnd | Phase::Trailer => {
                    // Up to and including the next line end, in one copy.
                    let end = memchr::memchr(b'\n', data);
                    let take = end.map_or(data.len(), |i| i + 1);
                    if self.buf.len() + take > self.max_head {
                        self.off();
                        break;
                    }
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if end.is_some() {
                        self.on_line_end();
                    }
                }
            }
        }
        self.refusal
    }

    /// True while part of a request head has been read and not its end.
    pub(crate) fn head_incomplete(&self) -> bool {
        self.phase == Phase::Head && !self.buf.is_empty()
    }

    /// If `data` starts with a complete head that decides what comes next, act on it and
    /// step past it; `false` (nothing consumed) when the head is incomplete or holds only
    /// blank lines, for the line-at-a-time path.
    fn whole_head(&mut self, data: &mut &[u8]) -> bool {
        let Some(end) = head_end(data) else {
            return false;
        };
        if end > self.max_head {
            return false;
        }
        if let Some(next) = quick_phase(&data[..end]) {
            self.phase = next;
            *data = &data[end..];
            return true;
        }
        match examine(&data[..end]) {
            None => false,
            Some(Head::Refuse(r)) => {
                self.refusal = Some(r);
                self.off();
                *data = &[];
                true
            }
            Some(Head::Next(next)) => {
                self.phase = next;
                if next == Phase::Off {
                    self.off();
                    *data = &[];
                } else {
                    *data = &data[end..];
                }
                true
            }
        }
    }

    fn off(&mut self) {
        self.phase = Phase::Off;
        self.buf = Vec::new();
    }

    /// A `\n` was just collected.
    fn on_line_end(&mut self) {
        let line = trim_eol(&self.buf);
        match self.phase {
            Phase::Head => {
                // A head ends with an empty line (CRLF or bare LF, as httparse accepts).
                let ends = self.buf.ends_with(b"\n\r\n") || self.buf.ends_with(b"\n\n");
                if !ends {
                    return;
                }
                match examine(&self.buf) {
                    None => return, // only blank lines so far
                    Some(Head::Refuse(r)) => {
                        self.refusal = Some(r);
                        self.off();
                        return;
                    }
                    Some(Head::Next(next)) => self.phase = next,
                }
            }
            Phase::ChunkSize => {
                let size = line
                    .split(|b| *b == b';')
                    .next()
                    .map(|s| s.trim_ascii())
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| u64::from_str_radix(s, 16).ok());
                self.phase = match size {
                    Some(0) => Phase::Trailer,
                    Some(n) => Phase::ChunkData(n),
                    None => Phase::Off,
                };
            }
            Phase::ChunkDataEnd => {
                self.phase = if line.is_empty() {
                    Phase::ChunkSize
                } else {
                    Phase::Off
                };
            }
            Phase::Trailer => {
                if line.is_empty() {
                    self.phase = Phase::Head;
                }
            }
            Phase::Body(_) | Phase::ChunkData(_) | Phase::Off => {}
        }
        if self.phase == Phase::Off {
            self.off();
        } else {
            self.buf.clear();
        }
    }
}

/// The length of the head at the start of `data` (through the `\n` of its empty last
/// line, CRLF or bare LF), if it is all there.
fn head_end(data: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', data)
        .find(|&i| {
            (i >= 1 && data[i - 1] == b'\n')
                || (i >= 2 && data[i - 1] == b'\r' && data[i - 2] == b'\n')
        })
        .map(|i| i + 1)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Header names that frame a message or end the HTTP/1 stream.
const FRAMING_NAMES: [&[u8]; 3] = [b"content-length", b"transfer-encoding", b"upgrade"];

/// The phase after a common head, decided without a full parse. The head qualifies when
/// its request line is HTTP/1.x, not `CONNECT` and holds no `#`, and among its lines that
/// start like a framing header name there is at most one, a well-formed
/// `Content-Length: <digits>`. Then what follows is another head (no body, or a zero
/// length) or a body of that length, exactly as [`examine`] would find (or hyper refuses
/// the head as malformed and closes). `None`: [`examine`] decides.
fn quick_phase(head: &[u8]) -> Option<Phase> {
    const CONTENT_LENGTH: &[u8] = b"content-length";
    let first_end = memchr::memchr(b'\n', head)?;
    let first = trim_eol(&head[..=first_end]);
    let http1 = first.ends_with(b" HTTP/1.1") || first.ends_with(b" HTTP/1.0");
    if !http1 || first.starts_with(b"CONNECT ") || memchr::memchr(b'#', first).is_some() {
        return None;
    }
    let rest = &head[first_end + 1..];
    let mut length: Option<u64> = None;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', rest) {
        let line = &rest[start..end];
        start = end + 1;
        let framing = matches!(line.first(), Some(b'c' | b'C' | b't' | b'T' | b'u' | b'U'))
            && FRAMING_NAMES.iter().any(|name| {
                line.get(..name.len())
                    .is_some_and(|l| l.eq_ignore_ascii_case(name))
            });
        if !framing {
            continue;
        }
        let content_length = line
            .get(..CONTENT_LENGTH.len())
            .is_some_and(|l| l.eq_ignore_ascii_case(CONTENT_LENGTH));
        if length.is_some() || !content_length {
            return None;
        }
        let value = line[CONTENT_LENGTH.len()..]
            .strip_prefix(b":")?
            .trim_ascii();
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        length = Some(std::str::from_utf8(value).ok()?.parse().ok()?);
    }
    Some(match length {
        None | Some(0) => Phase::Head,
        Some(n) => Phase::Body(n),
    })
}

/// Read a complete head: `None` when it holds no request yet (blank lines only).
fn examine(head: &[u8]) -> Option<Head> {
    // Uninitialised slots: no 16 KiB to zero for every request.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(head, &mut headers) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return None,
        // Not HTTP/1 (an HTTP/2 preface) or malformed: hyper answers it.
        Err(_) => return Some(Head::Next(Phase::Off)),
    }
    if req.path.is_some_and(|p| p.contains('#')) {
        return Some(Head::Refuse(Refusal::Fragment));
    }
    let mut content_lengths = Vec::new();
    let mut last_transfer_coding: Option<&[u8]> = None;
    let mut upgrade = req.method == Some("CONNECT");
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            content_lengths.push(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            last_transfer_coding = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .map(|t| t.trim_ascii());
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if content_lengths.len() > 1 || (!content_lengths.is_empty() && last_transfer_coding.is_some())
    {
        return Some(Head::Refuse(Refusal::AmbiguousFraming));
    }
    if upgrade {
        return Some(Head::Next(Phase::Off));
    }
    let next = match (last_transfer_coding, content_lengths.first()) {
        (Some(t), _) if t.eq_ignore_ascii_case(b"chunked") => Phase::ChunkSize,
        // Not chunked: hyper answers 400.
        (Some(_), _) => Phase::Off,
        (None, Some(v)) => match std::str::from_utf8(v.trim_ascii())
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
        {
            Some(0) => Phase::Head,
            Some(n) => Phase::Body(n),
            // Invalid: hyper answers 400.
            None => Phase::Off,
        },
        (None, None) => Phase::Head,
    };
    Some(Head::Next(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(chunks: &[&[u8]]) -> bool {
        let mut s = Sniffer::new(65536);
        chunks.iter().fold(None, |_, c| s.feed(c)) == Some(Refusal::AmbiguousFraming)
    }

    /// The bytes roomgate's own serving read are read first, and watched like the rest: a
    /// head split between them and the stream is still seen whole. Writes pass through.
    #[tokio::test]
    async fn the_bytes_already_read_come_first_and_are_watched() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut near, far) = tokio::io::duplex(256);
        let refusal = Arc::new(OnceLock::new());
        let clock = Arc::new(HeadClock::new(Instant::now()));
        let mut guard = FramingGuard::new(
            Bytes::from_static(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n"),
            far,
            Arc::clone(&refusal),
            65536,
            clock,
        );
        near.write_all(b"Transfer-Encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        drop(near.shutdown().await);
        let mut first = [0u8; 4];
        guard.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"POST");
        guard.write_all(b"reply").await.unwrap();
        let mut rest = Vec::new();
        guard.read_to_end(&mut rest).await.unwrap();
        assert_eq!(
            rest,
            b" / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert_eq!(refusal.get(), Some(&Refusal::AmbiguousFraming));
        let mut got = [0u8; 5];
        near.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"reply");
    }

    #[test]
    fn content_length_with_transfer_encoding_is_ambiguous() {
        assert!(sniff(&[
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        ]));
        assert!(sniff(&[
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\ncontent-length: 4\r\n\r\n"
        ]));
    }

    #[test]
    fn repeated_content_length_is_ambiguous_even_with_equal_values() {
        assert!(sniff(&[
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"
        ]));
    }

    /// The shortcut never decides differently from the full parse.
    #[test]
    fn quick_phases_are_exactly_what_the_full_parse_finds() {
        use Phase::{Body, Head as Next};
        let cases: &[(&[u8], Option<Phase>)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", Some(Next)),
            (b"GET / HTTP/1.0\nHost: a\n\n", Some(Next)),
            (b"DELETE /x?y=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nTE: x\r\nUser-Agent: u\r\n\r\n", Some(Next)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", Some(Body(5))),
            (b"POST / HTTP/1.1\r\nHost: a\r\ncontent-length:\t1024 \r\nX-Hub-Signature-256: sha256=00\r\n\r\n", Some(Body(1024))),
            (b"POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n", Some(Next)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH: 1\r\nContent-Length: 1\r\n\r\n", None),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", None),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", None),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\n", None),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", None),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 1\r\n\r\n", None),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Lengths: 1\r\n\r\n", None),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", None),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", None),
            (b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: gzip\r\n\r\n", None),
            (b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", None),
            (b"POST /ws HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nUpgrade: x\r\n\r\n", None),
            (b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", None),
            (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", None),
            (b"PRI * HTTP/2.0\r\n\r\n", None),
            (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", None),
            (b"GET / HTTP/1.1\r\nHost: a\r\n Content-Length: 5\r\n\r\n", Some(Next)),
        ];
        for (head, quick) in cases {
            let text = String::from_utf8_lossy(head);
            assert_eq!(quick_phase(head), *quick, "{text:?}");
            if let Some(phase) = quick {
                // What the full parse says, or hyper refuses the head outright.
                let full = examine(head);
                assert!(
                    full == Some(Head::Next(*phase)) || full == Some(Head::Next(Phase::Off)),
                    "{text:?}: {full:?}"
                );
            }
        }
    }

    #[test]
    fn a_head_is_incomplete_from_its_first_byte_to_its_end_only() {
        let mut s = Sniffer::new(65536);
        assert!(!s.head_incomplete());
        s.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(!s.head_incomplete(), "a whole head");
        s.feed(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel");
        assert!(!s.head_incomplete(), "in a body");
        s.feed(b"loGET /y HTTP/1.1\r\nHo");
        assert!(s.head_incomplete(), "the next head has begun");
        s.feed(b"st: a\r\n");
        assert!(s.head_incomplete());
        s.feed(b"\r\n");
        assert!(!s.head_incomplete(), "it ended");
        s.feed(b"G");
        assert!(s.head_incomplete(), "one byte is enough");
    }

    #[test]
    fn well_framed_keep_alive_traffic_is_not_flagged() {
        let stream: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello",
            b" world",
            b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5;ext=1\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        let mut s = Sniffer::new(65536);
        for c in stream {
            assert_eq!(s.feed(c), None);
        }
        assert_eq!(s.phase, Phase::Head);
    }

    /// Security: a smuggled head hidden inside a well-framed body is body, not a head.
    #[test]
    fn a_head_inside_a_body_is_not_read_as_a_head() {
        let body = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut s = Sniffer::new(65536);
        assert_eq!(s.feed(head.as_bytes()), None);
        assert_eq!(s.feed(body), None);
        assert_eq!(s.phase, Phase::Head);
    }

    #[test]
    fn a_head_split_across_reads_is_still_seen() {
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut s = Sniffer::new(65536);
        let flagged = raw.iter().fold(None, |_, b| s.feed(&[*b]));
        assert_eq!(flagged, Some(Refusal::AmbiguousFraming));
    }

    #[test]
    fn pipelined_heads_in_one_read_are_each_examined() {
        let mut s = Sniffer::new(65536);
        let two = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\n\
            Content-Length: 1\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(s.feed(two), Some(Refusal::AmbiguousFraming));
        // A body in the same read as its head is skipped by length, whatever it holds.
        let mut s = Sniffer::new(65536);
        let body = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n";
        let mut raw =
            format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        raw.extend_from_slice(body);
        raw.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(s.feed(&raw), None);
        assert_eq!(s.phase, Phase::Head);
    }

    #[test]
    fn a_fragment_in_the_request_target_is_refused() {
        let mut s = Sniffer::new(65536);
        assert_eq!(
            s.feed(b"GET /public#/../admin HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(Refusal::Fragment)
        );
    }

    #[test]
    fn http2_and_upgrades_end_the_watch() {
        let mut s = Sniffer::new(65536);
        assert_eq!(s.feed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), None);
        assert_eq!(s.phase, Phase::Off);
        let mut s = Sniffer::new(65536);
        assert_eq!(
            s.feed(
                b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
            ),
            None
        );
        assert_eq!(s.phase, Phase::Off);
    }

    #[test]
    fn an_oversized_head_ends_the_watch() {
        let mut s = Sniffer::new(16);
        assert_eq!(
            s.feed(b"GET / HTTP/1.1\r\nHost: a-very-long-name\r\n\r\n"),
            None
        );
        assert_eq!(s.phase, Phase::Off);
    }
}
