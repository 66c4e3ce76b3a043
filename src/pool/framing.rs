//! How a response head frames its body (RFC 9112 §6.3), read from its framing fields:
//! `Content-Length`, `Transfer-Encoding` and `Connection`.
//!
//! Pure: field values in, decisions out. [`settle_length`] is also how a response read by
//! hyper (from an h2c service) has its length settled before it is forwarded.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use crate::headers::{is_hop_by_hop, list_tokens, listed_fields};

/// Framing fields that cannot be read with certainty: a `Content-Length` that is not one
/// number, numbers that disagree, or a `Transfer-Encoding` list with an empty element
/// (`chunked,`), which HTTP implementations read differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BadFraming;

/// Where a field's name and value lie in the head they were parsed from, as byte ranges
/// (name start, name end, value start, value end): the fields can then share one frozen
/// copy of the head instead of one allocation each.
pub(super) type Span = (u32, u32, u32, u32);

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
    /// `101 Switching Protocols`: the connection now carries the protocol switched to.
    Switched,
}

/// What the framing fields of a response head say. Hop-by-hop fields are read here and
/// not kept: they describe the connection to the service, never the client's.
#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) length: Option<u64>,
    /// The length was stated more than once (a second field, or a list in one).
    pub(super) repeated_length: bool,
    /// `Transfer-Encoding` is present; `chunked` says whether its last coding is chunked.
    pub(super) coded: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    /// `Connection` names fields other than the hop-by-hop ones.
    pub(super) listed: bool,
}

impl Fields {
    /// Note a field; true when it is hop-by-hop (not to be forwarded). A `Content-Length`
    /// is kept here, and settled once the whole head is read ([`settle_length`]).
    pub(super) fn hop(&mut self, name: &HeaderName, raw: &[u8]) -> Result<bool, BadFraming> {
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
            if raw.split(|b| *b == b',').any(|c| c.trim_ascii().is_empty()) {
                return Err(BadFraming);
            }
            self.coded = true;
            if let Some(last) = list_tokens(raw).last() {
                self.chunked = last.eq_ignore_ascii_case(b"chunked");
            }
        }
        Ok(true)
    }

    /// One `Content-Length` value, which must agree with those before it.
    fn length(&mut self, raw: &[u8]) -> Result<(), BadFraming> {
        self.repeated_length |= self.length.is_some() || raw.contains(&b',');
        self.length = Some(fold_length(self.length, raw)?);
        Ok(())
    }

    /// The fields `Connection` values name for removal (those beyond the hop-by-hop ones,
    /// which were dropped as they were read, `Upgrade` kept on a `101`).
    pub(super) fn listed_names(&self, head: &[u8], spans: &[Span]) -> Vec<HeaderName> {
        let values = spans
            .iter()
            .filter(|(ns, ne, _, _)| {
                head[*ns as usize..*ne as usize].eq_ignore_ascii_case(b"connection")
            })
            .flat_map(|&(_, _, vs, ve)| list_tokens(&head[vs as usize..ve as usize]));
        listed_fields(values).collect()
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
pub(super) fn state_length(headers: &mut HeaderMap, length: Option<u64>) {
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
fn fold_length(mut stated: Option<u64>, raw: &[u8]) -> Result<u64, BadFraming> {
    for part in raw.split(|b| *b == b',') {
        let n = digits(part.trim_ascii()).ok_or(BadFraming)?;
        match stated {
            Some(m) if m != n => return Err(BadFraming),
            _ => stated = Some(n),
        }
    }
    stated.ok_or(BadFraming)
}

/// How a final response's body is framed, and whether the connection stays usable after
/// it (RFC 9112 §6.3 and §9.3).
pub(super) fn framing(
    status: StatusCode,
    minor_version: u8,
    fields: &Fields,
    head_request: bool,
) -> (Framing, bool) {
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return (Framing::Switched, false);
    }
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

/// A length of decimal digits only (`parse` alone would take a sign), as `Content-Length`
/// and nothing else.
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
        assert_eq!(settled(&["+5"], false), NONE);
        assert_eq!(settled(&[], false), NONE);
    }
}
