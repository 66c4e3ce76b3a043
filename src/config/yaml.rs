//! The one module that calls the YAML library.
//!
//! `serde_yaml` is archived; keeping every YAML call here means a maintained fork can
//! replace it in one place. Nothing else in roomgate names the YAML crate. Documents are
//! bounded before the parser sees them ([`check_bounds`]): the parser's time grows
//! steeply with flow nesting (`{a: {a: …}}` 100 000 deep took minutes).

use serde::de::DeserializeOwned;

pub use serde_yaml_ng::{Mapping, Value};

/// The deepest flow nesting (`[`, `{`) a document may have; block nesting is bounded by
/// the parser's own recursion limit.
pub const MAX_FLOW_DEPTH: usize = 64;

/// `Ok` when `src` is at most `max_bytes` long and nests flow collections at most
/// [`MAX_FLOW_DEPTH`] deep. One pass over the bytes, before any parsing.
pub fn check_bounds(src: &str, max_bytes: usize) -> Result<(), String> {
    if src.len() > max_bytes {
        return Err(format!(
            "the document is {} bytes, over the limit of {max_bytes} bytes",
            src.len()
        ));
    }
    if flow_depth(src.as_bytes()) > MAX_FLOW_DEPTH {
        return Err(format!(
            "collections are nested more than {MAX_FLOW_DEPTH} levels deep"
        ));
    }
    Ok(())
}

/// The deepest flow nesting in a document, approximately: brackets count where a flow
/// collection can begin (after a line start, `:`, `,`, `-`, `?` or another bracket),
/// quoted scalars and comments are skipped. Brackets inside plain scalars (`/a[1]`) do not
/// count.
fn flow_depth(src: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    // The last byte that was not a space or tab, on this line (`\n` at a line start).
    let mut before = b'\n';
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        let at_value_start = matches!(before, b'\n' | b':' | b',' | b'-' | b'?' | b'[' | b'{');
        match b {
            b'\n' => before = b'\n',
            b' ' | b'\t' | b'\r' => {}
            b'#' if matches!(
                src.get(i.wrapping_sub(1)),
                None | Some(b' ' | b'\t' | b'\n')
            ) =>
            {
                while i < src.len() && src[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' if at_value_start => {
                i += 1;
                while i < src.len() && src[i] != b'"' {
                    i += if src[i] == b'\\' { 2 } else { 1 };
                }
                before = b'"';
            }
            b'\'' if at_value_start => {
                i += 1;
                // `''` is an escaped quote inside the scalar.
                while i < src.len() && !(src[i] == b'\'' && src.get(i + 1) != Some(&b'\'')) {
                    i += if src[i] == b'\'' { 2 } else { 1 };
                }
                before = b'\'';
            }
            b'[' | b'{' if at_value_start => {
                depth += 1;
                deepest = deepest.max(depth);
                before = b;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                before = b;
            }
            other => before = other,
        }
        i += 1;
    }
    deepest
}

/// Parse a YAML document into a generic value. A syntax error is reported with the YAML
/// path nearest to where the parser stopped ([`path_at`]; empty at the top) and the
/// parser's message, which gives the line and column.
pub fn parse_document(src: &str) -> Result<Value, (String, String)> {
    serde_yaml_ng::from_str(src).map_err(|e| {
        let path = e
            .location()
            .map(|at| path_at(src, at.line()))
            .unwrap_or_default();
        (path, e.to_string())
    })
}

/// One step of a YAML path.
enum Step<'a> {
    /// A mapping key at this column; `open` when its value is on the lines below.
    Key {
        column: usize,
        name: &'a str,
        open: bool,
    },
    /// An item of a block sequence whose dashes are at this column.
    Item { column: usize, index: usize },
}

impl Step<'_> {
    fn column(&self) -> usize {
        match self {
            Step::Key { column, .. } | Step::Item { column, .. } => *column,
        }
    }
}

/// The path (`rooms[2].services[0].ports`) of the block-style node that line `line`
/// (1-based) of `src` belongs to, read from indentation, dashes and `key:` alone: the
/// document may be broken at that line, so nothing is parsed. Lines inside block scalars
/// and multi-line flow collections are passed over; the path stops at a flow collection.
pub fn path_at(src: &str, line: usize) -> String {
    let mut steps: Vec<Step<'_>> = Vec::new();
    // Lines deeper than this column belong to a block scalar; lines while `flow > 0`, to a
    // flow collection opened above.
    let mut scalar_above: Option<usize> = None;
    let mut flow = 0usize;
    for text in src.lines().take(line) {
        let body = text.trim_start_matches(' ');
        let mut column = text.len() - body.len();
        if flow > 0 {
            flow = flow
                .saturating_add(brackets(body))
                .saturating_sub(closing(body));
            continue;
        }
        if body.is_empty() || body.starts_with('#') || body.starts_with("---") {
            continue;
        }
        match scalar_above {
            Some(c) if column > c => continue,
            _ => scalar_above = None,
        }
        let mut rest = body;
        while rest == "-" || rest.starts_with("- ") {
            while steps.last().is_some_and(|s| match s {
                Step::Key {
                    column: c, open, ..
                } => *c > column || (*c == column && !open),
                Step::Item { column: c, .. } => *c > column,
            }) {
                steps.pop();
            }
            match steps.last_mut() {
                Some(Step::Item { column: c, index }) if *c == column => *index += 1,
                _ => steps.push(Step::Item { column, index: 0 }),
            }
            let after = rest[1..].trim_start_matches(' ');
            column += rest.len() - after.len();
            rest = after;
        }
        let Some((name, value)) = key(rest) else {
            flow = brackets(rest).saturating_sub(closing(rest));
            if rest.starts_with('|') || rest.starts_with('>') {
                scalar_above = Some(column.saturating_sub(1));
            }
            continue;
        };
        while steps.last().is_some_and(|s| s.column() >= column) {
            steps.pop();
        }
        steps.push(Step::Key {
            column,
            name,
            open: value.is_empty() || value.starts_with('#'),
        });
        if value.starts_with('|') || value.starts_with('>') {
            scalar_above = Some(column);
        }
        flow = brackets(value).saturating_sub(closing(value));
    }
    let mut path = String::new();
    for step in &steps {
        match step {
            Step::Key { name, .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
            }
            Step::Item { index, .. } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// `key: value` (or `key:`) at the start of `rest`: the key without quotes and the value.
fn key(rest: &str) -> Option<(&str, &str)> {
    let (name, after) = match rest.as_bytes().first()? {
        q @ (b'"' | b'\'') => {
            let end = rest[1..].find(*q as char)? + 1;
            (&rest[1..end], &rest[end + 1..])
        }
        b'[' | b'{' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' => return None,
        _ => {
            let at = rest
                .match_indices(':')
                .map(|(i, _)| i)
                .find(|&i| matches!(rest.as_bytes().get(i + 1), None | Some(b' ' | b'\t')))?;
            (rest[..at].trim_end(), &rest[at..])
        }
    };
    let value = after.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with([' ', '\t'])) {
        return None;
    }
    Some((name, value.trim()))
}

/// Flow brackets opened in a value (outside quotes), as [`flow_depth`] counts them.
fn brackets(value: &str) -> usize {
    let (depth, _) = depth_change(value);
    depth
}

/// Flow brackets closed in a value (outside quotes) beyond those it opened.
fn closing(value: &str) -> usize {
    let (_, closed) = depth_change(value);
    closed
}

/// (brackets left open, brackets closed that were opened before) over one line.
fn depth_change(value: &str) -> (usize, usize) {
    let (mut open, mut closed_before) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    for c in value.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '[' | '{') => open += 1,
            (None, ']' | '}') if open > 0 => open -= 1,
            (None, ']' | '}') => closed_before += 1,
            _ => {}
        }
    }
    (open, closed_before)
}

/// Deserialize a generic value into `T`, returning the path (relative to `value`) of the
/// first field that does not fit, and the reason, with the offending value left out
/// ([`without_values`]).
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = without_values(&e.into_inner().to_string());
        (if path == "." { String::new() } else { path }, msg)
    })
}

/// A deserializer message without the value it quotes: `invalid type: string "hunter2",
/// expected u16` becomes `invalid type: a string, expected u16`. A field that received
/// the wrong type may hold a secret, and which field does is not known here, so no value
/// is ever repeated.
pub fn without_values(message: &str) -> String {
    for lead in ["invalid type: ", "invalid value: "] {
        let Some(rest) = message.strip_prefix(lead) else {
            continue;
        };
        let (found, expected) = match rest.rfind(", expected ") {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        let kind = [
            ("string", "a string"),
            ("integer", "a number"),
            ("floating point", "a number"),
            ("boolean", "a boolean"),
            ("character", "a character"),
        ]
        .iter()
        .find(|(prefix, _)| found.starts_with(prefix))
        .map_or(found, |(_, kind)| kind);
        return format!("{lead}{kind}{expected}");
    }
    message.to_owned()
}

/// Render a value back to YAML (used by the secrets file backend).
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_yaml_ng::to_string(value).map_err(|e| e.to_string())
}

/// Parse a YAML document straight into `T` (small files such as the secrets file).
pub fn from_str<T: DeserializeOwned>(src: &str) -> Result<T, String> {
    serde_yaml_ng::from_str(src).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_depth_counts_brackets_where_collections_begin() {
        assert_eq!(flow_depth(b"a: {b: [1, {c: 2}]}"), 3);
        assert_eq!(flow_depth(b"- [[[]]]\n- {}"), 3);
        assert_eq!(flow_depth(b"path: /a[1]{2}\nname: it's [not] {a}"), 0);
        assert_eq!(flow_depth(b"a: \"[[[[\"\nb: '{{''{{'\nc: x # [[[[\n"), 0);
        assert_eq!(flow_depth(b"a: \"\\\"[\" \nb: [1]"), 1);
    }

    // Security property (issue 17, finding 3): a document nested 100 000 levels deep is
    // refused by one linear pass, before the parser (which took minutes on it) runs.
    #[test]
    fn a_deeply_nested_document_is_refused_before_parsing() {
        let deep = format!("rooms: {}1{}", "{a: ".repeat(100_000), "}".repeat(100_000));
        let started = std::time::Instant::now();
        let e = check_bounds(&deep, 4 << 20).unwrap_err();
        assert!(e.contains("nested more than 64 levels"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let list = format!("rooms: {}{}", "[".repeat(65), "]".repeat(65));
        assert!(check_bounds(&list, 4 << 20).is_err());
        let ok = format!("rooms: {}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(check_bounds(&ok, 4 << 20), Ok(()));
    }

    #[test]
    fn deserializer_messages_lose_the_values_they_quote() {
        for (message, expected) in [
            (
                "invalid type: string \"sk_live_1, expected x\", expected struct Raw",
                "invalid type: a string, expected struct Raw",
            ),
            (
                "invalid type: integer `9876543210`, expected a string",
                "invalid type: a number, expected a string",
            ),
            (
                "invalid value: floating point `1.5`, expected u16",
                "invalid value: a number, expected u16",
            ),
            (
                "invalid type: sequence, expected a string",
                "invalid type: sequence, expected a string",
            ),
            (
                "unknown field `pasword_hash`",
                "unknown field `pasword_hash`",
            ),
        ] {
            assert_eq!(without_values(message), expected);
        }
    }

    #[test]
    fn the_path_of_a_line_follows_indentation_dashes_and_keys() {
        let doc = "\
version: v1
listen:
  http: 127.0.0.1:0
rooms:
  - name: a
  - name: b
    services: []
  - name: c
    services:
      - name: web
        description: |
          text: [not a key
        ports:
        - num: 80
        - {num: 81,
           published: true}
        - num: 82 # [
routes:
- domain: x
";
        let at = |line| path_at(doc, line);
        assert_eq!(at(1), "version");
        assert_eq!(at(3), "listen.http");
        assert_eq!(at(5), "rooms[0].name");
        assert_eq!(at(7), "rooms[1].services");
        assert_eq!(at(10), "rooms[2].services[0].name");
        assert_eq!(at(12), "rooms[2].services[0].description");
        assert_eq!(at(13), "rooms[2].services[0].ports");
        assert_eq!(at(14), "rooms[2].services[0].ports[0].num");
        assert_eq!(at(16), "rooms[2].services[0].ports[1]");
        assert_eq!(at(17), "rooms[2].services[0].ports[2].num");
        assert_eq!(at(19), "routes[0].domain");
        assert_eq!(at(40), "routes[0].domain");
    }

    #[test]
    fn a_syntax_error_names_the_nearest_path_line_and_column() {
        let doc = "version: v1\nrooms:\n  - name: a\n  - name: b\n  - name: c\n    services:\n      - name: web\n        ports: [80\n";
        let (path, message) = parse_document(doc).unwrap_err();
        assert_eq!(path, "rooms[2].services[0].ports");
        assert!(message.contains("line 9 column 1"), "{message}");
        let (path, message) =
            parse_document("version: v1\nrooms:\n  - name: a\n   bad: x\n").unwrap_err();
        assert_eq!(path, "rooms[0].bad", "{message}");
        assert!(message.contains("line 4"), "{message}");
    }

    #[test]
    fn a_document_over_the_size_limit_is_refused() {
        let e = check_bounds("version: v1\n", 5).unwrap_err();
        assert_eq!(e, "the document is 12 bytes, over the limit of 5 bytes");
    }
}
