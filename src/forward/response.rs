//! What a service's response becomes before it goes on to the client: roomgate's body
//! type, no hop-by-hop fields, and a `Content-Length` that matches the body sent on.
//!
//! Pure: a response head in, a response head out.

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::{Body, BodyError};

/// A service's response as roomgate passes it on: its body type, and without its
/// hop-by-hop fields (`Upgrade` is kept on a `101`, with `Connection: upgrade`). Its
/// `Content-Length` is settled ([`settle_length`]): hyper keeps the
/// service's fields as they came, even beside a `Transfer-Encoding` it framed the body by.
pub(super) fn cleaned(resp: Response<Incoming>) -> Response<Body> {
    let upgrade = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let mut resp = resp.map(|b| b.map_err(BodyError::new).boxed());
    let coded = resp.headers().contains_key(header::TRANSFER_ENCODING);
    settle_length(resp.headers_mut(), coded);
    crate::headers::strip_hop_by_hop(resp.headers_mut(), upgrade);
    if upgrade {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    resp
}

/// Leave the `Content-Length` fields of a response head to forward as its framing
/// allows: none when the body is transfer-coded (`coded`), since RFC 9112 §6.3 has the
/// coding override the length and the body is framed anew toward the client; otherwise at
/// most one, the single number the fields agree on (`7, 7`, or the field twice, is `7`:
/// RFC 9110 §8.6). Left as sent, the stale length would frame the body for the next hop
/// (a client taking the first bytes of a chunked body as the whole), and a repeat would
/// be refused there. hyper's client refuses fields that disagree (502); should any reach
/// here they are dropped, and the body's own framing stands.
pub fn settle_length(headers: &mut HeaderMap, coded: bool) {
    if coded {
        headers.remove(header::CONTENT_LENGTH);
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
    match agreed.flatten() {
        Some(n) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        None => {
            headers.remove(header::CONTENT_LENGTH);
        }
    }
}

/// The number a `Content-Length` value states, taken together with the number earlier
/// values stated: a number, or the same number repeated; `None` for anything else.
fn fold_length(mut stated: Option<u64>, raw: &[u8]) -> Option<u64> {
    for part in raw.split(|b| *b == b',') {
        let n = digits(part.trim_ascii())?;
        match stated {
            Some(m) if m != n => return None,
            _ => stated = Some(n),
        }
    }
    stated
}

/// A decimal number of digits only (no sign, no space).
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [&str; 0] = [];

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
        assert_eq!(settled(&["+5"], false), NONE);
        assert_eq!(settled(&[], false), NONE);
    }
}
