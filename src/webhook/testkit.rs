//! Test-only helpers: literal headers and a POST [`WebhookRequest`] around them.
//!
//! Helpers build requests; they never sign. Expected signatures in the provider tests are
//! constants computed outside Rust (`testdata/make_vectors.py`).

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::WebhookRequest;

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
