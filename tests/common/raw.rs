//! Raw sockets: bytes exactly as written, for framing and timeout tests.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server did with a raw exchange.
#[derive(Debug)]
pub struct Raw {
    /// Everything received.
    pub text: String,
    /// The server closed the connection (EOF or reset) within the deadline.
    pub closed: bool,
}

impl Raw {
    /// The status code of the first response, if any.
    pub fn status(&self) -> Option<u16> {
        self.text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|s| s.parse().ok())
    }

    /// The `error` code of the first response's JSON body, if it has one.
    pub fn error_code(&self) -> Option<String> {
        let (_, rest) = self.text.split_once("\r\n\r\n")?;
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
        let body = values.next()?.ok()?;
        body["error"].as_str().map(str::to_owned)
    }

    /// Assert that the first response is `status` with the JSON error `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, context: &str) {
        assert_eq!(self.status(), Some(status), "{context}: {}", self.text);
        assert_eq!(
            self.error_code().as_deref(),
            Some(code),
            "{context}: {}",
            self.text
        );
    }
}

/// Write `bytes`, then read until the server closes or `deadline` passes.
pub async fn exchange(addr: SocketAddr, bytes: &[u8], deadline: Duration) -> Raw {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    read_until_closed(&mut s, deadline).await
}

/// Read until EOF (or reset) or `deadline`.
pub async fn read_until_closed(s: &mut TcpStream, deadline: Duration) -> Raw {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = tokio::time::timeout(deadline, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    Raw {
        text: String::from_utf8_lossy(&out).into_owned(),
        closed,
    }
}

/// Read one response head and a `Content-Length` body from a kept-alive connection.
pub async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.expect("read");
        assert!(
            n > 0,
            "closed before a full response: {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = head_field(&text, "content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

/// The value of the first field `name` in the head at the start of `text`, trimmed.
pub fn head_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    head_fields(text, name).into_iter().next()
}

/// The values of every field `name` in the head at the start of `text`, trimmed, in order.
pub fn head_fields<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

/// The chunked body at the start of `text` (chunk sizes checked, no trailers), decoded,
/// and what follows its last chunk.
#[track_caller]
pub fn dechunked(mut text: &str) -> (String, &str) {
    let mut body = String::new();
    loop {
        let (size, after) = text
            .split_once("\r\n")
            .unwrap_or_else(|| panic!("a chunk size line: {text:?}"));
        let size = usize::from_str_radix(size, 16).expect("hex size");
        if size == 0 {
            let rest = after
                .strip_prefix("\r\n")
                .unwrap_or_else(|| panic!("the chunked body ends with its last chunk: {text:?}"));
            return (body, rest);
        }
        body.push_str(&after[..size]);
        text = after[size..].strip_prefix("\r\n").expect("CRLF after data");
    }
}
