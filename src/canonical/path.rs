//! Paths: the one canonical form of a request path, and the view of it that routes and
//! endpoint policies are matched against.

use std::borrow::Cow;

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with /")]
    NotAbsolute,
    #[error(
        "the path holds a fragment, NUL, backslash, encoded slash or a dot-segment with parameters"
    )]
    Ambiguous,
    #[error("the path has an invalid percent-encoding")]
    BadEncoding,
}

/// Normalise a request path once (RFC 3986 §6.2.2): reject what different parsers read
/// differently (`#`, `%23`, NUL, `\`, `%2F`, `%5C`, invalid escapes, and `..;` or `.;`,
/// which Tomcat reads as a dot-segment), decode escaped unreserved characters (`%61` is
/// `a`, `%2E` is `.`, `%7E` is `~`) and write every other escape with upper-case hex,
/// collapse repeated slashes and resolve `.` and `..` segments (never above the root).
/// Borrows when the path is already canonical (the common case).
pub fn canonical_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if is_canonical_path(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    canonical_path_slow(raw).map(Cow::Owned)
}

/// True when normalising would not change `raw`: plain bytes, no escape, no empty, `.` or
/// `..` segment, no segment that a parser stripping `;` parameters reads as one.
fn is_canonical_path(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let plain = bytes
        .iter()
        .all(|&b| b > 0x20 && b != 0x7f && !matches!(b, b'%' | b'#' | b'\\'));
    if !plain {
        return false;
    }
    // Segments between slashes (the last may be empty: a trailing slash is kept).
    let mut segments = bytes[1..].split(|&b| b == b'/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if (seg.is_empty() && !last) || is_dot_segment(seg) || has_dot_params(seg) {
            return false;
        }
    }
    true
}

/// The canonical path as routes and endpoints are matched against it: every segment
/// without its `;` parameters (RFC 3986 §3.3), and the segments that leaves empty
/// dropped. Tomcat, Jetty and Spring strip parameters before they route, so `/admin;x=1`
/// and `/;x/admin` are `/admin` to them and must meet `/admin`'s policy here too. The
/// service still receives the path as it was. Borrows when there is no `;` (nearly
/// always).
pub fn match_view(path: &str) -> Cow<'_, str> {
    if !path.contains(';') {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/').peekable();
    while let Some(seg) = segments.next() {
        let name = seg.split_once(';').map_or(seg, |(name, _)| name);
        if !name.is_empty() {
            out.push('/');
            out.push_str(name);
        } else if segments.peek().is_none() {
            out.push('/');
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

/// `.` or `..`.
fn is_dot_segment(seg: &[u8]) -> bool {
    matches!(seg, b"." | b"..")
}

/// `.;…` or `..;…`: a dot-segment to a server that strips path parameters (Tomcat, Jetty),
/// a name to everyone else.
fn has_dot_params(seg: &[u8]) -> bool {
    seg.iter()
        .position(|&b| b == b';')
        .is_some_and(|i| is_dot_segment(&seg[..i]))
}

/// RFC 3986 `unreserved`: an escape of one of these means the character itself.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Works on bytes, so UTF-8 (raw or escaped) passes unchanged: only ASCII is decoded,
/// inserted or removed, always between whole characters.
fn canonical_path_slow(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = raw.as_bytes();
    let mut decoded: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' | 0 | b'\\' => return Err(PathError::Ambiguous),
            b'%' => {
                let (hi, lo) = match bytes.get(i + 1..i + 3) {
                    Some(&[hi, lo]) => (hi, lo),
                    _ => return Err(PathError::BadEncoding),
                };
                let v = match (hex_value(hi), hex_value(lo)) {
                    (Some(h), Some(l)) => h << 4 | l,
                    _ => return Err(PathError::BadEncoding),
                };
                match v {
                    b'/' | b'\\' | b'#' | 0 => return Err(PathError::Ambiguous),
                    _ if is_unreserved(v) => decoded.push(v),
                    // Keep every other escape as written, with upper-case hex.
                    _ => decoded.extend_from_slice(&[
                        b'%',
                        hi.to_ascii_uppercase(),
                        lo.to_ascii_uppercase(),
                    ]),
                }
                i += 3;
                continue;
            }
            _ if b < 0x20 || b == 0x7f => return Err(PathError::Ambiguous),
            _ => decoded.push(b),
        }
        i += 1;
    }
    let segments: Vec<&[u8]> = decoded.split(|&b| b == b'/').collect();
    let last = segments.len() - 1;
    let mut out: Vec<&[u8]> = Vec::with_capacity(segments.len());
    let mut trailing_slash = false;
    for (idx, seg) in segments.iter().enumerate().skip(1) {
        match *seg {
            b"" | b"." => trailing_slash = idx == last,
            b".." => {
                out.pop();
                trailing_slash = idx == last;
            }
            s if has_dot_params(s) => return Err(PathError::Ambiguous),
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut path = Vec::with_capacity(decoded.len());
    for s in &out {
        path.push(b'/');
        path.extend_from_slice(s);
    }
    if path.is_empty() || trailing_slash {
        path.push(b'/');
    }
    // Valid UTF-8 in, only ASCII changed: valid UTF-8 out.
    String::from_utf8(path).map_err(|_| PathError::BadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security: path parameters do not hide a segment from matching. Servers that strip
    /// them (Tomcat, Jetty, Spring) read these as the plain path.
    #[test]
    fn path_parameters_are_left_out_of_the_match_view() {
        for (path, view) in [
            ("/admin;x=1", "/admin"),
            ("/admin;x=1/users", "/admin/users"),
            ("/admin;jsessionid=A;b=c/users;p", "/admin/users"),
            ("/;x/admin", "/admin"),
            ("/;x", "/"),
            ("/admin/;x", "/admin/"),
            ("/a;/b", "/a/b"),
        ] {
            assert_eq!(match_view(path), view, "{path}");
        }
        for plain in ["/", "/admin", "/admin/", "/a/b%3Bc"] {
            assert!(
                matches!(match_view(plain), Cow::Borrowed(p) if p == plain),
                "{plain}"
            );
        }
    }

    /// The path-normalisation table: what routing, authorization and the upstream see.
    #[test]
    fn paths_are_normalised_once_and_ambiguous_forms_rejected() {
        let ok = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("//a///b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/%2e%2e/b", "/b"),
            ("/a/%2E/b/", "/a/b/"),
            ("/a/b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a%20b", "/a%20b"),
            ("/a%7eb", "/a~b"),
            // Escaped unreserved characters are the characters (RFC 3986 §6.2.2.2).
            ("/%61dmin", "/admin"),
            ("/webhooks/%73tripe", "/webhooks/stripe"),
            ("/%7Euser", "/~user"),
            ("/%41%5a%30%39%2D%5f%2e%7E", "/AZ09-_.~"),
            // Every other escape keeps its meaning, written with upper-case hex.
            ("/a%3bb%3F%c3%a9", "/a%3Bb%3F%C3%A9"),
            ("/a;b/c;d=1", "/a;b/c;d=1"),
            ("/...;/..x", "/...;/..x"),
            // UTF-8, escaped or raw, passes the slow path unchanged.
            ("/caf%C3%A9//x", "/caf%C3%A9/x"),
            ("/café//x", "/café/x"),
            ("/日本/./語/", "/日本/語/"),
        ];
        for (raw, want) in ok {
            assert_eq!(canonical_path(raw).as_deref(), Ok(want), "{raw}");
            assert_eq!(
                canonical_path_slow(raw).as_deref(),
                Ok(want),
                "{raw} (slow path)"
            );
        }
        let bad = [
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "/a%23b",
            "/a%00b",
            "/a%zz",
            "/a%2",
            "a/b",
            "/a%+1",
            "/a%-1",
            "/a%é",
            // Tomcat and Jetty read `..;` as `..`: refused, not forwarded as a name.
            "/public/..;/admin",
            "/..;x=1/admin",
            "/a/.;/b",
            "/a/%2e%2e;/b",
            "/a/%2E;p",
        ];
        for raw in bad {
            assert!(canonical_path(raw).is_err(), "{raw} should be rejected");
        }
        // The fast path may send a canonical path to the slow one, never the reverse.
        for raw in [
            "/a%20b",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/.",
            "/a/",
            "/",
            "/a/b.c/..d",
        ] {
            if is_canonical_path(raw) {
                assert_eq!(canonical_path_slow(raw).as_deref(), Ok(raw), "{raw}");
            }
        }
        for plain in ["/", "/a/", "/api/v1/items", "/a/b.c/..d"] {
            assert!(is_canonical_path(plain), "{plain}");
        }
    }
}
