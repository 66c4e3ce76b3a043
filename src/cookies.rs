//! The request's `Cookie` header, read one way everywhere (with the `cookie` crate), and
//! the `Set-Cookie` values roomgate's sign-in writes.
//!
//! Pure: header maps in, values out. It never logs a cookie.

use http::{header, HeaderMap, HeaderValue};

/// The pairs of every `Cookie` field, as the `cookie` crate reads them: each
/// `;`-separated part with its raw text, and its name and value when it parses.
fn parts(headers: &HeaderMap) -> impl Iterator<Item = (&str, Option<(&str, &str)>)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|raw| !raw.is_empty())
        .map(|raw| {
            let pair = cookie::Cookie::parse(raw)
                .ok()
                .and_then(|c| Some((c.name_raw()?, c.value_raw()?)));
            (raw, pair)
        })
}

/// The value of cookie `name` in the request (the first one; surrounding quotes
/// removed), if it has a non-empty one.
pub fn value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    parts(headers)
        .filter_map(|(_, pair)| pair)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Remove the cookies named `names` from `Cookie`, keeping every other part as sent. A
/// request without a `Cookie` header costs one lookup; one that names none of them, one
/// scan.
pub fn strip(headers: &mut HeaderMap, names: &[&str]) {
    let present = headers.get_all(header::COOKIE).iter().any(|v| {
        names
            .iter()
            .any(|n| memchr::memmem::find(v.as_bytes(), n.as_bytes()).is_some())
    });
    if !present {
        return;
    }
    let kept: Vec<&str> = parts(headers)
        .filter(|(_, pair)| !pair.is_some_and(|(n, _)| names.contains(&n)))
        .map(|(raw, _)| raw)
        .collect();
    let kept = (!kept.is_empty())
        .then(|| HeaderValue::from_str(&kept.join("; ")).ok())
        .flatten();
    headers.remove(header::COOKIE);
    if let Some(v) = kept {
        headers.insert(header::COOKIE, v);
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, host-only, `Secure` unless disabled.
/// `max_age` 0 clears the cookie.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    let mut c = cookie::Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age.max(0)));
    if max_age <= 0 {
        c = c.expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
    }
    c.build().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::header_map as h;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let m = h(&[
            ("cookie", "a=1; __meshagent_iapx=2"),
            ("cookie", "__meshagent_iap=v"),
        ]);
        assert_eq!(value(&m, "__meshagent_iap"), Some("v"));
        assert_eq!(value(&m, "b"), None);
        assert_eq!(
            value(&h(&[("cookie", "q=\"quoted\"")]), "q"),
            Some("quoted")
        );
        assert_eq!(value(&h(&[("cookie", "e=")]), "e"), None);
    }

    #[test]
    fn named_cookies_are_removed_and_every_other_part_kept_as_sent() {
        let mut m = h(&[
            ("cookie", "a=1; __meshagent_iap=secret; b=2"),
            ("cookie", "__meshagent_iapx=3; odd"),
        ]);
        strip(&mut m, &["__meshagent_iap"]);
        assert_eq!(m[header::COOKIE], "a=1; b=2; __meshagent_iapx=3; odd");
        let mut only = h(&[("cookie", "__meshagent_iap=secret")]);
        strip(&mut only, &["__meshagent_iap"]);
        assert!(!only.contains_key(header::COOKIE));
        let mut two = h(&[("cookie", "x=1; b=2"), ("cookie", "y=3; a=4")]);
        strip(&mut two, &["x", "a"]);
        assert_eq!(two[header::COOKIE], "b=2; y=3");
        let mut none = h(&[("cookie", "ab=1; xa=2")]);
        strip(&mut none, &["a", "x"]);
        assert_eq!(none[header::COOKIE], "ab=1; xa=2");
    }

    #[test]
    fn the_session_cookie_is_secure_httponly_lax_and_host_only() {
        let c = set_cookie("__meshagent_iap", "v", "/", 60, true);
        assert!(c.contains("HttpOnly"));
        assert!(c.contains("SameSite=Lax"));
        assert!(c.contains("Secure"));
        assert!(c.contains("Path=/"));
        assert!(!c.to_ascii_lowercase().contains("domain="));
        assert!(!set_cookie("n", "v", "/", 60, false).contains("Secure"));
    }
}
