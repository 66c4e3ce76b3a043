//! Decoding a chunked response body (RFC 9112 §7.1), strictly.
//!
//! Pure: it reads from the front of a buffer and says what it found. A size line must be
//! hex digits, then optionally extensions, then CRLF; each chunk's data must be followed
//! by CRLF; trailer fields must be well-formed field lines, and are read and dropped. Anything else is an error, because a
//! lenient reading of a body is how a pooled connection ends up out of step with the
//! service's responses.

use bytes::{Bytes, BytesMut};

/// The longest size line (digits and extensions) read.
const MAX_LINE: usize = 4096;
/// The most trailer bytes read before giving up.
const MAX_TRAILERS: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkError;

/// What the decoder found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// Read more into the buffer.
    More,
    /// The last chunk and the trailers are read.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer fields, this many bytes read so far.
    Trailers(usize),
    Done,
}

#[derive(Debug)]
pub struct Decoder {
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { state: State::Size }
    }
}

impl Decoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next piece of the body from the front of `buf`.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        self.advance(buf)?;
        match self.state {
            State::Done => Ok(Step::Done),
            State::Data(left) if !buf.is_empty() => {
                let take = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                let data = buf.split_to(take).freeze();
                self.state = match left - take as u64 {
                    0 => State::DataEnd,
                    left => State::Data(left),
                };
                // Read past what follows the data as far as the buffer goes, so that the
                // end of the body is known as soon as its bytes are here.
                self.advance(buf)?;
                Ok(Step::Data(data))
            }
            _ => Ok(Step::More),
        }
    }

    /// Consume everything up to the next data byte (or the end), as far as `buf` goes.
    fn advance(&mut self, buf: &mut BytesMut) -> Result<(), ChunkError> {
        loop {
            match self.state {
                State::Size => {
                    let Some(line) = line(buf, MAX_LINE)? else {
                        return Ok(());
                    };
                    let size = chunk_size(&buf[..line])?;
                    let _ = buf.split_to(line + 2);
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::Data(size)
                    };
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(());
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ChunkError);
                    }
                    let _ = buf.split_to(2);
                    self.state = State::Size;
                }
                State::Trailers(read) => {
                    let Some(line) = line(buf, MAX_TRAILERS.saturating_sub(read))? else {
                        return Ok(());
                    };
                    if line > 0 && !is_field_line(&buf[..line]) {
                        return Err(ChunkError);
                    }
                    let _ = buf.split_to(line + 2);
                    self.state = if line == 0 {
                        State::Done
                    } else {
                        State::Trailers(read + line + 2)
                    };
                }
                State::Data(_) | State::Done => return Ok(()),
            }
        }
    }
}

/// The length of the CRLF-terminated line at the front of `buf` (without the CRLF), or
/// `None` while it is incomplete. A bare LF, or a line longer than `max`, is an error.
fn line(buf: &[u8], max: usize) -> Result<Option<usize>, ChunkError> {
    match memchr::memchr(b'\n', &buf[..buf.len().min(max + 2)]) {
        Some(0) => Err(ChunkError),
        Some(lf) if buf[lf - 1] == b'\r' && !buf[..lf - 1].contains(&b'\r') => Ok(Some(lf - 1)),
        Some(_) => Err(ChunkError),
        None if buf.len() >= max + 2 => Err(ChunkError),
        None => Ok(None),
    }
}

/// `field-name ":" OWS field-value OWS` (RFC 9110 §5), as a trailer line must be: a
/// token for the name, a value of visible characters, spaces and tabs.
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', line) else {
        return false;
    };
    http::HeaderName::from_bytes(&line[..colon]).is_ok()
        && http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).is_ok()
}

/// `1*HEXDIG [ *WS ";" extensions ]`: the size; extensions are ignored but must hold no
/// control characters other than tab.
fn chunk_size(line: &[u8]) -> Result<u64, ChunkError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(ChunkError);
    }
    // At most 16 hex digits: they fit.
    let size = std::str::from_utf8(&line[..digits])
        .ok()
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or(ChunkError)?;
    // Only spaces and tabs may come between the size and its extensions (RFC 9112 §7.1.1).
    let blank = line[digits..]
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let rest = &line[digits + blank..];
    let clean = rest
        .iter()
        .all(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f));
    if rest.is_empty() || (rest[0] == b';' && clean) {
        Ok(size)
    } else {
        Err(ChunkError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode `wire` fed in pieces of `step` bytes; the body, or the error.
    fn decode(wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match d.next(&mut buf)? {
                Step::Data(b) => body.extend_from_slice(&b),
                Step::Done => return Ok((body, buf.len())),
                Step::More if fed < wire.len() => {
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
                Step::More => return Err(ChunkError),
            }
        }
    }

    #[test]
    fn chunks_fed_in_any_pieces_decode_to_the_body() {
        let wire = b"4\r\nWiki\r\n5;name=val\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, wire.len()] {
            let (body, left) = decode(wire, step).unwrap();
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.", "step {step}");
            // What follows the body is not consumed.
            assert!(left <= 4, "step {step}");
        }
        let (_, left) = decode(wire, wire.len()).unwrap();
        assert_eq!(left, 4);
        {}
    }

    #[test]
    fn the_end_is_known_once_its_bytes_are_in_the_buffer() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"2\r\nok\r\n0\r\n\r\n"[..]);
        assert_eq!(d.next(&mut buf), Ok(Step::Data(Bytes::from_static(b"ok"))));
        assert!(d.is_done());
        assert!(buf.is_empty());
    }

    #[test]
    fn malformed_framing_is_an_error() {
        for bad in [
            &b"\r\nok\r\n0\r\n\r\n"[..],
            b"2\nok\r\n0\r\n\r\n",
            b"2\r\nokX\r\n0\r\n\r\n",
            b"-2\r\nok\r\n0\r\n\r\n",
            b"0x2\r\nok\r\n0\r\n\r\n",
            b"2 2\r\nok\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"2;a\x01b\r\nok\r\n0\r\n\r\n",
            b"2\r\nok\r\n0\r\nX: 1\n\r\n",
            b"2\r\r\nok\r\n0\r\n\r\n",
            b"2\r\nok\r\n0\r\nX-T\x07: 1\r\n\r\n",
            b"2\r\nok\r\n0\r\nno colon\r\n\r\n",
            b"2\r\nok\r\n0\r\nX: 1\r\n folded\r\n\r\n",
            b"2\r\nok\r\n0\r\n: empty name\r\n\r\n",
            b"2\x0c\r\nok\r\n0\r\n\r\n",
        ] {
            assert_eq!(
                decode(bad, 1),
                Err(ChunkError),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("2;{}\r\nok\r\n0\r\n\r\n", "e".repeat(MAX_LINE));
        assert_eq!(decode(long.as_bytes(), 512), Err(ChunkError));
        let trailers = format!("0\r\n{}\r\n\r\n", "x: yyyyyyyyyyyyyy\r\n".repeat(4000));
        assert_eq!(decode(trailers.as_bytes(), 4096), Err(ChunkError));
    }

    #[test]
    fn a_size_with_whitespace_before_extensions_is_read() {
        assert_eq!(chunk_size(b"1F"), Ok(31));
        assert_eq!(chunk_size(b"a \t;x=\"y z\""), Ok(10));
        assert_eq!(chunk_size(b"ffffffffffffffff"), Ok(u64::MAX));
    }
}
