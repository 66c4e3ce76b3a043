//! Signature schemes as data: what a provider signs, where the signature travels and how
//! it is encoded, interpreted by one verify function per shape.
//!
//! [`HeaderMac`] covers providers that send one MAC in a header over a fixed layout of
//! literals, other headers, the URL and the raw body, optionally with a signed timestamp
//! header; [`TimestampedList`] covers a `t=…,v1=…` list header; [`SharedToken`] covers a
//! header that must equal the secret. The building blocks (caps, constant-time checks,
//! the window rule) stay in [`super::sig`].

use std::time::Duration;

use super::sig::{self, Window};
use super::{SignatureError, Verdict, WebhookRequest};

/// How a signature value is written.
#[derive(Clone, Copy, Debug)]
pub enum Encoding {
    /// Hex in either case.
    Hex,
    /// Standard padded base64.
    Base64,
}

impl Encoding {
    fn decode(self, text: &str) -> Result<Vec<u8>, SignatureError> {
        match self {
            Encoding::Hex => sig::decode_hex(text),
            Encoding::Base64 => sig::decode_base64(text),
        }
    }
}

/// The HMAC hash.
#[derive(Clone, Copy, Debug)]
pub enum Hash {
    Sha256,
    Sha1,
}

/// One piece of the signed content, in order.
#[derive(Clone, Copy, Debug)]
pub enum Part {
    /// Fixed bytes (`v0:`, `.`).
    Text(&'static [u8]),
    /// A required header's trimmed text, exactly as sent.
    Header(&'static str),
    /// The [`Stamp`] header's text, exactly as sent.
    Timestamp,
    /// The public URL the provider called.
    Url,
    /// The raw body.
    Body,
}

/// How a signed timestamp header is written.
#[derive(Clone, Copy, Debug)]
pub enum TimeFormat {
    /// Decimal unix seconds.
    Unix,
    /// RFC 3339 text.
    Rfc3339,
}

/// A signed timestamp header and the side of `now` its window bounds.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    pub header: &'static str,
    pub format: TimeFormat,
    pub side: Window,
}

/// One MAC in a header over a fixed layout.
#[derive(Clone, Copy, Debug)]
pub struct HeaderMac {
    /// The signature header; the first present of several names (renamed headers).
    pub header: &'static [&'static str],
    /// What precedes the encoded MAC (`sha256=`, `v0=`), or `""`.
    pub prefix: &'static str,
    pub encoding: Encoding,
    pub hash: Hash,
    /// The signed content, concatenated.
    pub signed: &'static [Part],
    /// The signed timestamp, when there is one ([`Part::Timestamp`] signs its text).
    pub stamp: Option<Stamp>,
}

/// The most parts a [`HeaderMac`] layout holds.
const MAX_PARTS: usize = 6;

impl HeaderMac {
    /// An HMAC of the raw body alone in one header, without prefix: the most common
    /// scheme, which the other constructors vary.
    pub const fn body(header: &'static [&'static str], encoding: Encoding, hash: Hash) -> Self {
        HeaderMac {
            header,
            prefix: "",
            encoding,
            hash,
            signed: &[Part::Body],
            stamp: None,
        }
    }

    /// This scheme with `prefix` before the encoded MAC.
    pub const fn prefixed(self, prefix: &'static str) -> Self {
        HeaderMac { prefix, ..self }
    }

    /// This scheme over `signed` rather than the body alone.
    pub const fn over(self, signed: &'static [Part]) -> Self {
        HeaderMac { signed, ..self }
    }

    /// This scheme with a signed timestamp header.
    pub const fn stamped(self, header: &'static str, format: TimeFormat, side: Window) -> Self {
        let stamp = Stamp {
            header,
            format,
            side,
        };
        HeaderMac {
            stamp: Some(stamp),
            ..self
        }
    }

    /// Slack's scheme, which Zoom copied: `v0=` and hex HMAC-SHA256 of
    /// `v0:{timestamp}:{body}`, the timestamp in unix seconds, bounded both ways.
    pub const fn v0(signature: &'static [&'static str], timestamp: &'static str) -> Self {
        const V0: &[Part] = &[
            Part::Text(b"v0:"),
            Part::Timestamp,
            Part::Text(b":"),
            Part::Body,
        ];
        HeaderMac::body(signature, Encoding::Hex, Hash::Sha256)
            .prefixed("v0=")
            .over(V0)
            .stamped(timestamp, TimeFormat::Unix, Window::Both)
    }

    /// [`HeaderMac::verify`] for a scheme without a signed timestamp.
    pub fn verify_untimed(&self, req: &WebhookRequest<'_>, key: &[u8]) -> Verdict {
        debug_assert!(self.stamp.is_none());
        self.verify(req, key, 0, Duration::ZERO)
    }

    /// Check in the order that decides which error wins: the signature header, the other
    /// signed headers (absent → `Missing`), the timestamp window (`Stale`), then the
    /// prefix, the encoding and one constant-time MAC comparison (`Invalid`).
    pub fn verify(
        &self,
        req: &WebhookRequest<'_>,
        key: &[u8],
        now: i64,
        window: Duration,
    ) -> Verdict {
        debug_assert!(self.signed.len() <= MAX_PARTS);
        let value = sig::first_header(req, self.header)?;
        let mut parts: [&[u8]; MAX_PARTS] = [&[]; MAX_PARTS];
        for (slot, part) in parts.iter_mut().zip(self.signed) {
            *slot = match part {
                Part::Text(text) => text,
                Part::Header(name) => sig::header(req, name)?.as_bytes(),
                Part::Timestamp => {
                    let stamp = self.stamp.ok_or(SignatureError::Invalid)?;
                    sig::header(req, stamp.header)?.as_bytes()
                }
                Part::Url => req.url.as_bytes(),
                Part::Body => req.body,
            };
        }
        if let Some(stamp) = self.stamp {
            let text = sig::header(req, stamp.header)?;
            let signed = match stamp.format {
                TimeFormat::Unix => sig::parse_unix(text)?,
                TimeFormat::Rfc3339 => sig::parse_rfc3339(text)?,
            };
            sig::check_window(signed, 1, now, window, stamp.side)?;
        }
        let expected = self.encoding.decode(sig::strip(value, self.prefix)?)?;
        let parts = &parts[..self.signed.len()];
        sig::verdict(match self.hash {
            Hash::Sha256 => sig::sha256_matches(key, parts, &expected),
            Hash::Sha1 => sig::sha1_matches(key, parts, &expected),
        })
    }
}

/// Which text of the timestamp a [`TimestampedList`] signs.
#[derive(Clone, Copy, Debug)]
pub enum SignedTime {
    /// The header's text as sent.
    AsSent,
    /// The number it parses to, in decimal (leading zeros dropped), as @mux/mux-node does.
    AsParsed,
}

/// The "signed timestamp and a list of hex HMACs" header scheme shared by Stripe
/// (`t=…,v1=…`), Calendly, Mux (`t=…,v1=…`) and Paddle (`ts=…;h1=…`): HMAC-SHA256 of
/// `{timestamp}{joiner}{body}`; any listed signature may match (secret rotation).
#[derive(Clone, Copy, Debug)]
pub struct TimestampedList {
    pub header: &'static str,
    pub separator: char,
    pub timestamp_key: &'static str,
    pub signature_key: &'static str,
    pub joiner: &'static [u8],
    pub side: Window,
    pub signed_time: SignedTime,
}

impl TimestampedList {
    /// `t=<unix>,v1=<hex>[,v1=…]` over `{t}.{body}` (Stripe's layout), the timestamp
    /// signed as sent.
    pub const fn t_v1(header: &'static str, side: Window) -> Self {
        TimestampedList {
            header,
            separator: ',',
            timestamp_key: "t",
            signature_key: "v1",
            joiner: b".",
            side,
            signed_time: SignedTime::AsSent,
        }
    }

    /// This scheme signing the timestamp's number rather than its text.
    pub const fn signing_parsed_time(self) -> Self {
        TimestampedList {
            signed_time: SignedTime::AsParsed,
            ..self
        }
    }

    /// The list cap first, then the window, then one MAC compared with every listed
    /// signature.
    pub fn verify(
        &self,
        req: &WebhookRequest<'_>,
        key: &[u8],
        now: i64,
        window: Duration,
    ) -> Verdict {
        let value = sig::header(req, self.header)?;
        let items = sig::capped_pairs(value, self.separator)?;
        let ts = sig::pair(value, self.separator, self.timestamp_key)?;
        let parsed = sig::parse_unix(ts)?;
        sig::check_window(parsed, 1, now, window, self.side)?;
        let signatures = items
            .iter()
            .filter(|(name, _)| *name == self.signature_key)
            .map(|(_, signature)| *signature);
        sig::list_matches(signatures, sig::decode_hex, || {
            let text = match self.signed_time {
                SignedTime::AsSent => std::borrow::Cow::Borrowed(ts),
                SignedTime::AsParsed => std::borrow::Cow::Owned(parsed.to_string()),
            };
            sig::sha256_tag(key, &[text.as_bytes(), self.joiner, req.body])
        })
    }
}

/// A header that must equal the secret (compared in constant time); nothing is signed.
#[derive(Clone, Copy, Debug)]
pub struct SharedToken {
    pub header: &'static str,
}

impl SharedToken {
    pub fn verify(
        &self,
        req: &WebhookRequest<'_>,
        secret: &crate::sensitive::Secret,
    ) -> Result<(), SignatureError> {
        let presented = sig::header(req, self.header)?;
        sig::verdict(secret.ct_eq(presented.as_bytes()))
    }
}
