//! Test-only helpers: literal headers, a POST [`WebhookRequest`] around them, and
//! [`Signed`], one signed request per provider from which the common cases (accepted,
//! tampered body, wrong secret, no signature, the timestamp window) are derived.
//!
//! Helpers build requests; they never sign. Expected signatures in the provider tests are
//! constants computed outside Rust (`testdata/make_vectors.py`).

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::{verify_one, Provider, SignatureError, VerifyOptions, WebhookRequest};
use crate::sensitive::Secret;

/// The clock used by constructed vectors: 2023-11-14T22:13:20Z.
pub const T: i64 = 1_700_000_000;

pub const URL: &str = "https://hooks.example.test/hook";

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

pub fn post<'a>(headers: &'a HeaderMap, url: &'a str, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest {
        method: &Method::POST,
        headers,
        url,
        body,
    }
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A request a provider signed, checked through the provider dispatch with the
/// provider's default window. The first header is the signature.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    pub provider: Provider,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub secret: &'a str,
    /// The clock the request was signed at (`T` unless a documented example says
    /// otherwise).
    pub now: i64,
    pub url: &'a str,
}

impl<'a> Signed<'a> {
    /// A request signed at [`T`] for [`URL`].
    pub const fn new(
        provider: Provider,
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
        secret: &'a str,
    ) -> Self {
        Signed {
            provider,
            headers,
            body,
            secret,
            now: T,
            url: URL,
        }
    }

    /// The verdict for this request.
    pub fn check(&self) -> Result<(), SignatureError> {
        let h = headers(self.headers);
        let window = self.provider.default_tolerance();
        let options = VerifyOptions::default();
        let req = post(&h, self.url, self.body);
        verify_one(
            self.provider,
            &req,
            &Secret::new(self.secret),
            self.now,
            window,
            options,
        )
    }

    /// The verdict with the signature header's value replaced.
    pub fn check_value(&self, value: &str) -> Result<(), SignatureError> {
        self.check_header(self.headers[0].0, value)
    }

    /// The verdict with one header's value replaced (or added).
    pub fn check_header(&self, name: &str, value: &str) -> Result<(), SignatureError> {
        let mut pairs: Vec<(&str, &str)> = self
            .headers
            .iter()
            .copied()
            .filter(|(n, _)| *n != name)
            .collect();
        pairs.push((name, value));
        self.with_headers(&pairs).check()
    }

    /// The verdict without the named header.
    pub fn check_without(&self, name: &str) -> Result<(), SignatureError> {
        let pairs: Vec<(&str, &str)> = self
            .headers
            .iter()
            .copied()
            .filter(|(n, _)| *n != name)
            .collect();
        self.with_headers(&pairs).check()
    }

    pub fn with_headers<'b>(&self, headers: &'b [(&'b str, &'b str)]) -> Signed<'b>
    where
        'a: 'b,
    {
        Signed { headers, ..*self }
    }

    pub fn with_body(self, body: &'a [u8]) -> Self {
        Signed { body, ..self }
    }

    pub fn with_secret(self, secret: &'a str) -> Self {
        Signed { secret, ..self }
    }

    pub const fn with_url(self, url: &'a str) -> Self {
        Signed { url, ..self }
    }

    /// The same request checked at `now`.
    pub const fn at(self, now: i64) -> Self {
        Signed { now, ..self }
    }

    /// The same request checked `seconds` after it was signed (negative: before).
    pub fn later(self, seconds: i64) -> Self {
        Signed {
            now: self.now + seconds,
            ..self
        }
    }
}

/// The cases every signing provider shares: the request verifies; another body or
/// another secret is `Invalid`; without its signature header it is `Missing`.
pub fn assert_signed(signed: Signed<'_>) {
    let provider = signed.provider;
    assert_eq!(signed.check(), Ok(()), "{provider}: signed request");
    let tampered: &[u8] = if signed.body == b"{}" { b"[]" } else { b"{}" };
    assert_eq!(
        signed.with_body(tampered).check(),
        Err(SignatureError::Invalid),
        "{provider}: tampered body"
    );
    assert_eq!(
        signed.with_secret("other").check(),
        Err(SignatureError::Invalid),
        "{provider}: wrong secret"
    );
    assert_eq!(
        signed.check_without(signed.headers[0].0),
        Err(SignatureError::Missing),
        "{provider}: no signature header"
    );
}

/// The timestamp window: accepted `past` seconds after signing and `future` seconds
/// before, `Stale` one second beyond either.
pub fn assert_window(signed: Signed<'_>, past: i64, future: i64) {
    let provider = signed.provider;
    assert_eq!(signed.later(past).check(), Ok(()), "{provider}: +{past}s");
    assert_eq!(
        signed.later(past + 1).check(),
        Err(SignatureError::Stale),
        "{provider}: +{past}s + 1"
    );
    assert_eq!(
        signed.later(-future).check(),
        Ok(()),
        "{provider}: -{future}s"
    );
    assert_eq!(
        signed.later(-future - 1).check(),
        Err(SignatureError::Stale),
        "{provider}: -{future}s - 1"
    );
}

/// The cases every shared-token provider shares: the token is accepted over any body; a
/// longer or another secret is `Invalid`; without the header it is `Missing`.
pub fn assert_token(token: Signed<'_>) {
    let provider = token.provider;
    assert_eq!(token.check(), Ok(()), "{provider}: token");
    assert_eq!(
        token.with_body(b"anything").check(),
        Ok(()),
        "{provider}: the token does not cover the body"
    );
    let longer = format!("{}-1", token.secret);
    for secret in ["other", longer.as_str()] {
        assert_eq!(
            token.with_secret(secret).check(),
            Err(SignatureError::Invalid),
            "{provider}: secret {secret:?}"
        );
    }
    assert_eq!(
        token.check_without(token.headers[0].0),
        Err(SignatureError::Missing),
        "{provider}: no token header"
    );
}
