//! The one module that calls the YAML libraries.
//!
//! Every YAML text roomgate reads (the config, the secrets file) is parsed by
//! `saphyr-parser`, whose events become generic [`Value`]s node by node ([`load`]), never
//! a list of the whole document's events. Typed config comes from those values by
//! [`from_value`], which refuses a number where a string is expected and names the path
//! of what does not fit. The config's long top-level lists are read one item at a time
//! ([`stream`]). `Value` and the writer of the secrets file are `serde_yaml_ng`'s.
//! Documents are bounded in size before the parser sees them ([`check_size`]).

mod load;
mod path;

use serde::de::DeserializeOwned;

pub use load::Entry;
pub use path::path_at;
pub use serde_yaml_ng::{Mapping, Value};

/// `Ok` when `src` is at most `max_bytes` long. Nesting is bounded by the loader
/// ([`load::MAX_DEPTH`]), which refuses a document nested too deep at its first
/// collection past the bound.
pub fn check_size(src: &str, max_bytes: usize) -> Result<(), String> {
    if src.len() > max_bytes {
        return Err(format!(
            "the document is {} bytes, over the limit of {max_bytes} bytes",
            src.len()
        ));
    }
    Ok(())
}

/// Parse a YAML document into a generic value (`Null` when empty). An error is reported
/// with the YAML path nearest to where the parser stopped ([`path_at`]; empty at the top)
/// and a message that ends with the line and column.
pub fn parse_document(src: &str) -> Result<Value, (String, String)> {
    load::load(src).map_err(|e| located(src, e))
}

/// Read `src`, a mapping at the top, handing each entry to `entry` in document order as
/// it completes; the sequences under the keys in `streamed` come item by item and are
/// never held whole (any other value under those keys comes whole). `Ok(false)` when the
/// document is not a mapping; errors as [`parse_document`].
pub fn stream(
    src: &str,
    streamed: &[&str],
    entry: &mut dyn FnMut(Entry<'_>),
) -> Result<bool, (String, String)> {
    load::load_streaming(src, streamed, entry).map_err(|e| located(src, e))
}

fn located(src: &str, e: load::LoadError) -> (String, String) {
    (
        path_at(src, e.line),
        format!("{} at line {} column {}", e.message, e.line, e.column),
    )
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

/// Parse a YAML document into `T` through a generic value (small files such as the
/// secrets file); the error is the parser's, or the path and reason of what does not fit.
pub fn from_str<T: DeserializeOwned>(src: &str) -> Result<T, String> {
    let value = parse_document(src).map_err(|(_, message)| message)?;
    from_value(value).map_err(|(path, message)| match path.as_str() {
        "" => message,
        path => format!("{path}: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use load::load_streaming;

    fn read(src: &str) -> (bool, Vec<String>) {
        let mut seen = Vec::new();
        let mapping = load_streaming(src, &["rooms"], &mut |e| {
            seen.push(match e {
                Entry::Field(k, v) => format!("{}={v:?}", k.as_str().unwrap_or("?")),
                Entry::Item { key, index, value } => format!("{key}[{index}]={value:?}"),
            })
        })
        .unwrap();
        (mapping, seen)
    }

    #[test]
    fn entries_come_in_document_order_and_streamed_lists_item_by_item() {
        let (mapping, seen) =
            read("version: v1\nrooms:\n  - name: a\n  - [1]\nroutes: [x]\nlimits: {}\n");
        assert!(mapping);
        assert_eq!(
            seen,
            [
                r#"version=String("v1")"#,
                r#"rooms[0]=Mapping {"name": String("a")}"#,
                "rooms[1]=Sequence [Number(1)]",
                r#"routes=Sequence [String("x")]"#,
                "limits=Mapping {}",
            ]
        );
    }

    #[test]
    fn a_streamed_key_that_is_not_a_sequence_comes_whole() {
        let (_, seen) = read("rooms: {a: 1}\n");
        assert_eq!(seen, [r#"rooms=Mapping {"a": Number(1)}"#]);
        let (_, seen) = read("rooms: text\n");
        assert_eq!(seen, [r#"rooms=String("text")"#]);
        let (_, seen) = read("rooms:\n");
        assert_eq!(seen, ["rooms=Null"]);
    }

    #[test]
    fn a_document_that_is_not_a_mapping_says_so() {
        for src in ["", "- a\n- b\n", "text\n", "42\n"] {
            assert_eq!(read(src), (false, vec![]), "{src:?}");
        }
    }

    #[test]
    fn a_repeated_streamed_key_is_an_error() {
        let (path, message) =
            stream("rooms:\n  - a\nrooms:\n  - b\n", &["rooms"], &mut |_| {}).unwrap_err();
        assert_eq!(
            (path.as_str(), message.as_str()),
            ("rooms", "repeated key rooms at line 3 column 1")
        );
    }

    #[test]
    fn a_repeated_key_inside_an_item_is_a_syntax_error_at_its_path() {
        let (path, message) = crate::config::yaml::stream(
            "rooms:\n  - name: a\n    name: b\n",
            &["rooms"],
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(path, "rooms[0].name");
        assert_eq!(message, "repeated key name at line 3 column 5");
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
        let e = check_size("version: v1\n", 5).unwrap_err();
        assert_eq!(e, "the document is 12 bytes, over the limit of 5 bytes");
    }
}
