//! Where a browser may be sent back to after sign-in or sign-out.
//!
//! Owns the one test for return targets: a same-origin relative path (and query), never
//! anything a browser could read as another origin. It checks the text as sent and as
//! percent-decoded, so `//evil`, `/\evil`, `/%2F%2Fevil`, `/%5Cevil`, schemes, control
//! characters and encoded whitespace or dot segments are all refused. Pure.

use percent_encoding::percent_decode_str;

/// The longest return path kept.
pub const MAX_RETURN_LEN: usize = 2048;

/// `Some(path)` when `raw` is a safe same-origin return target; `None` otherwise.
pub fn safe_return_path(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_RETURN_LEN || !raw.starts_with('/') {
        return None;
    }
    let decoded = percent_decode_str(raw).decode_utf8().ok()?;
    for text in [raw, decoded.as_ref()] {
        if text.starts_with("//")
            || text.starts_with("/\\")
            || text
                .chars()
                .any(|c| c == '\\' || c == '#' || c.is_control() || c.is_whitespace())
        {
            return None;
        }
        let path = text.split('?').next().unwrap_or("");
        if path.split('/').any(|seg| seg == "." || seg == "..") {
            return None;
        }
    }
    // It must also be a valid request target as the URI grammar reads it.
    raw.parse::<http::uri::PathAndQuery>().ok()?;
    Some(raw.to_owned())
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
            "/%20/evil.test",
            "/a%20b",
            "/ /evil.test",
            "/\t/evil.test",
            "/%2e%2e/%2e%2e//evil.test",
            "/../evil",
            "/a/%2E%2E/b",
            "/a#//evil.test",
            "@evil.test",
            "",
            "javascript:alert(1)",
            "/%ff",
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
