//! JSON bodies for the answers hyper writes on its own.
//!
//! When an HTTP/1 head cannot be parsed (a malformed request line or header, a head larger
//! than the read buffer, more headers than `max_headers`, a request target too long),
//! hyper never calls the service: it writes a bare `400`, `431` or `414` with
//! `content-length: 0` and closes the connection. Every other rejection roomgate makes is
//! a JSON error with a stable code, so this write-side wrapper recognises exactly that
//! bare answer and sends the same status with a JSON body in its place.
//!
//! The recognition is exact, so nothing else can be taken for it: a status line of one of
//! those three codes, then `connection: close`, `content-length: 0` and `date`, and
//! nothing more. A response
//! that went through the service always carries `x-request-id` (or a body), so a service's
//! own `400` is never rewritten.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's IO whose bare hyper error answers are given JSON bodies.
pub struct JsonErrors<T> {
    io: T,
    /// A replacement answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> JsonErrors<T> {
    pub fn new(io: T) -> Self {
        JsonErrors { io, pending: None }
    }
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    /// Write what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, done)) = &mut self.pending {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &answer[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
            if *done == answer.len() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Take `bytes` (all of one write) as written when they are a bare hyper error answer,
    /// queueing the JSON answer in their place.
    fn replaced(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let answer = json_answer(bytes)?;
        self.pending = Some((answer, 0));
        // Written now if the socket takes it (it nearly always does); otherwise on flush.
        if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
            return Some(Poll::Ready(Err(e)));
        }
        Some(Poll::Ready(Ok(bytes.len())))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(done) = this.replaced(cx, buf) {
            return done;
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        // hyper writes a bare answer as one buffer; only a lone slice is looked at.
        if let [one] = bufs {
            if let Some(done) = this.replaced(cx, one) {
                return done;
            }
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// The JSON answer for a bare hyper error answer, or `None` for anything else.
fn json_answer(bytes: &[u8]) -> Option<Vec<u8>> {
    // The bare answer is about 80 bytes; a response is nearly always longer or another
    // status, and is let through after these two comparisons.
    if bytes.len() > 160 || !bytes.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let head = std::str::from_utf8(bytes).ok()?.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let (status, code, message) = match lines.next()? {
        "HTTP/1.1 400 Bad Request" => (
            "400 Bad Request",
            "invalid_header",
            "The request head is malformed.",
        ),
        "HTTP/1.1 431 Request Header Fields Too Large" => (
            "431 Request Header Fields Too Large",
            "headers_too_large",
            "The request head is too large or has too many headers.",
        ),
        "HTTP/1.1 414 URI Too Long" => (
            "414 URI Too Long",
            "uri_too_long",
            "The request target is too long.",
        ),
        _ => return None,
    };
    let (mut close, mut length, mut date) = (false, false, false);
    for line in lines {
        match line.split_once(": ")? {
            ("connection", "close") if !close => close = true,
            ("content-length", "0") if !length => length = true,
            ("date", _) if !date => date = true,
            _ => return None,
        }
    }
    if !length {
        return None;
    }
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    Some(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(answer: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn hyper_s_bare_answers_get_json_bodies_with_their_status() {
        let date = "date: Sat, 21 Nov 2026 07:40:00 GMT";
        for (bare, status, code) in [
            (
                "HTTP/1.1 400 Bad Request",
                "HTTP/1.1 400 ",
                "invalid_header",
            ),
            (
                "HTTP/1.1 431 Request Header Fields Too Large",
                "HTTP/1.1 431 ",
                "headers_too_large",
            ),
            ("HTTP/1.1 414 URI Too Long", "HTTP/1.1 414 ", "uri_too_long"),
        ] {
            let written =
                format!("{bare}\r\nconnection: close\r\ncontent-length: 0\r\n{date}\r\n\r\n");
            let answer = json_answer(written.as_bytes()).expect(bare);
            assert!(answer.starts_with(status.as_bytes()), "{bare}");
            assert_eq!(body_of(&answer)["error"], code);
            // Without a date header (hyper can be told to leave it out) too.
            let written = format!("{bare}\r\ncontent-length: 0\r\n\r\n");
            assert!(json_answer(written.as_bytes()).is_some(), "{bare}");
        }
    }

    #[test]
    fn a_response_that_came_through_the_service_is_never_rewritten() {
        for written in [
            // A service's own 400: roomgate always adds x-request-id.
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: a\r\ndate: x\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\nx-request-id: a\r\n\r\n",
            // With a body.
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\ndate: x\r\n\r\nno",
            // Other statuses, other shapes.
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ndate: x\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n",
            "HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert_eq!(json_answer(written.as_bytes()), None, "{written:?}");
        }
    }
}
