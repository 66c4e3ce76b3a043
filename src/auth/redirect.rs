//! Where a browser may be sent back to after sign-in or sign-out.
//!
//! Owns the one test for return targets: a same-origin relative path (and query), never
//! anything a browser could read as another origin. The whole target is checked as sent
//! (no backslash, fragment, control character or whitespace, no `//` or `/\` start, no
//! dot segment). The path is checked percent-decoded as well, so `/%2F%2Fevil`,
//! `/%5Cevil`, encoded control characters and encoded dot segments are refused too. An
//! encoded space, `%23` or non-UTF-8 escape is data, so deep links such as
//! `/files/my%20doc.pdf?q=caf%E9` come back as they were. Pure.

use percent_encoding::percent_decode_str;

/// The longest return path kept.
pub const MAX_RETURN_LEN: usize = 2048;

/// `Some(path)` when `raw` is a safe same-origin return target; `None` otherwise.
pub fn safe_return_path(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_RETURN_LEN || !raw.starts_with('/') {
        return None;
    }
    // As sent: browsers drop tabs and newlines anywhere in a URL and read `\` as `/`,
    // so `/\t/evil` is `//evil` to them.
    if raw
        .chars()
        .any(|c| c == '\\' || c == '#' || c.is_control() || c.is_whitespace())
    {
        return None;
    }
    // The path decoded, which also covers it as sent (decoding removes no `/`, `.` or
    // `\`), for a service that decodes the path and redirects to it again.
    let path = raw.split_once('?').map_or(raw, |(path, _)| path);
    if leads_elsewhere(&percent_decode_str(path).decode_utf8_lossy()) {
        return None;
    }
    // It must also be a valid request target as the URI grammar reads it.
    raw.parse::<http::uri::PathAndQuery>().ok()?;
    Some(raw.to_owned())
}

/// Whether a path could name another origin or climb: a `//` or `/\` start, a
/// backslash or control character anywhere, or a dot segment.
fn leads_elsewhere(path: &str) -> bool {
    path.starts_with("//")
        || path.starts_with("/\\")
        || path.chars().any(|c| c == '\\' || c.is_control())
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_and_queries_are_kept() {
        for p in [
            "/",
            "/a/b",
            "/a?b=c&d=%2F",
            "/@alice",
            "/a/b.c/",
            "/a-b_c~d?x=1",
            // Deep links: encoded spaces, `#` and non-UTF-8 bytes are data.
            "/files/my%20doc.pdf",
            "/deep/page?q=hello%20world&x=1",
            "/search?q=caf%E9",
            "/x?a=%23b",
            "/%ff",
            "/a?next=%2F%2Fevil.test",
        ] {
            assert_eq!(safe_return_path(p), Some(p.to_owned()), "{p}");
        }
    }

    #[test]
    fn anything_a_browser_could_read_as_another_origin_is_refused() {
        for p in [
            "//evil.test",
            "//evil.test/a",
            "/\\evil.test",
            "\\\\evil.test",
            "https://evil.test",
            "https:evil.test",
            "http:/evil.test",
            "evil.test",
            "/%2F%2Fevil.test",
            "/%2f/evil.test",
            "/%5Cevil.test",
            "/%5cevil.test",
            "/%09/evil.test",
            "/%0d%0aLocation:%20https://evil.test",
            "/ /evil.test",
            "/\t/evil.test",
            "/%2e%2e/%2e%2e//evil.test",
            "/../evil",
            "/a/%2E%2E/b",
            "/a#//evil.test",
            "@evil.test",
            "",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_return_path(p), None, "{p:?}");
        }
    }

    #[test]
    fn an_oversized_path_is_refused() {
        assert_eq!(
            safe_return_path(&format!("/{}", "a".repeat(MAX_RETURN_LEN))),
            None
        );
    }
}
