//! The URL a webhook provider called, as it signed it: rebuilt from the request as the
//! client (or a trusted proxy in front) saw it.

use crate::canonical::canonical_host;
use crate::forwarded;

/// The URL as the provider called it: scheme and host as the client (or a trusted proxy)
/// saw them, and the raw request target. Providers that sign the URL sign this.
///
/// `headers` are as [`forwarded::decide`] left them. A proxy chain may list several
/// values (`https, http`): the first is the client's. A scheme other than `http` or
/// `https` is not believed; the listener's (`tls`) stands instead.
pub(super) fn public_url(
    headers: &http::HeaderMap,
    tls: bool,
    trusted: bool,
    raw_host: &str,
    raw_target: &str,
) -> String {
    let listener = if tls { "https" } else { "http" };
    if !trusted {
        // An untrusted peer's claims are not believed (and are gone from `headers`).
        return [listener, "://", raw_host, raw_target].concat();
    }
    let first = |name: &http::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let scheme = match first(&forwarded::X_FORWARDED_PROTO) {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ => listener,
    };
    // A trusted proxy's X-Forwarded-Host, unless it names the canonical host of the Host
    // as sent: that keeps its port, which some providers sign.
    let host = match first(&forwarded::X_FORWARDED_HOST) {
        Some(fwd) if canonical_host(raw_host).as_deref() != Some(fwd) => fwd,
        _ => raw_host,
    };
    [scheme, "://", host, raw_target].concat()
}

/// The wall clock at millisecond resolution or finer, for a webhook's `received_at` and
/// delivery id (the injected [`crate::state::Clock`] counts whole seconds). Only a webhook
/// request reads it.
pub(super) fn received_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::header_map as forwarded;

    /// A trusted proxy chain's `X-Forwarded-Proto: https, http` names the client's scheme
    /// first; the URL a provider signed is never `https, http://...`.
    #[test]
    fn public_url_takes_the_first_forwarded_scheme_and_host() {
        let h = forwarded(&[
            ("x-forwarded-proto", "HTTPS , http"),
            ("x-forwarded-host", "hooks.acme.test, inner.test"),
        ]);
        assert_eq!(
            public_url(&h, false, true, "app.test:8080", "/hook?a=1"),
            "https://hooks.acme.test/hook?a=1"
        );
    }

    #[test]
    fn public_url_falls_back_to_the_listener_scheme() {
        for (proto, tls, want) in [
            (Some("javascript"), false, "http"),
            (Some("ftp, https"), true, "https"),
            (Some(" , https"), false, "http"),
            (Some(""), true, "https"),
            (None, false, "http"),
            (None, true, "https"),
            (Some("http"), true, "http"),
        ] {
            let h = match proto {
                Some(p) => forwarded(&[("x-forwarded-proto", p)]),
                None => http::HeaderMap::new(),
            };
            assert_eq!(
                public_url(&h, tls, true, "app.test", "/hook"),
                format!("{want}://app.test/hook"),
                "{proto:?}, tls: {tls}"
            );
        }
    }

    /// The same host as the Host header (canonical) keeps the Host as sent, with its port.
    #[test]
    fn public_url_keeps_the_port_of_the_host_as_sent() {
        let h = forwarded(&[
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "app.test"),
        ]);
        assert_eq!(
            public_url(&h, false, true, "App.Test:8080", "/hook"),
            "http://App.Test:8080/hook"
        );
    }

    /// From an untrusted peer, the URL is the listener's scheme and the Host as sent,
    /// whatever forwarding claims the headers carry.
    #[test]
    fn public_url_from_an_untrusted_peer_ignores_forwarding_claims() {
        let h = forwarded(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.test"),
        ]);
        assert_eq!(
            public_url(&h, false, false, "App.Test:8080", "/hook?a=1"),
            "http://App.Test:8080/hook?a=1"
        );
        assert_eq!(
            public_url(&h, true, false, "app.test", "/hook"),
            "https://app.test/hook"
        );
    }
}
