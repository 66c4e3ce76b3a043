//! Values from the parser's events (`saphyr-parser`), one node at a time, so that a
//! caller can take the items of a long top-level list as they complete instead of the
//! whole document.
//!
//! Plain scalars are resolved by the YAML 1.2 core schema (`null`, `true`/`false` in
//! three spellings, decimal, `0x` and `0o` integers, floats with `.inf` and `.nan`);
//! quoted and block scalars are strings. Of the tags, only the core schema's are
//! accepted. A repeated key, collections nested deeper than [`MAX_DEPTH`] and aliases
//! that would copy more than [`MAX_ALIAS_NODES`] nodes are errors.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};

use super::{Mapping, Value};

/// The deepest nesting of collections accepted, block or flow.
pub const MAX_DEPTH: usize = 64;
/// The most nodes aliases may copy in one document (an alias of an alias of … is the
/// "billion laughs" attack).
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Why a document could not be read, and where (1-based line and column).
#[derive(Debug)]
pub struct LoadError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl LoadError {
    fn at(marker: Marker, message: impl Into<String>) -> LoadError {
        LoadError {
            message: message.into(),
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// A completed node handed to the caller by [`load_streaming`].
pub enum Entry<'k> {
    /// A `key: value` of the top-level mapping, whole.
    Field(Value, Value),
    /// One item of a top-level sequence whose key was asked for.
    Item {
        key: &'k str,
        index: usize,
        value: Value,
    },
}

/// The whole document as one value (`Null` when it is empty).
pub fn load(src: &str) -> Result<Value, LoadError> {
    let mut loader = Loader::new(None);
    loader.run(src)?;
    Ok(loader.root.unwrap_or(Value::Null))
}

/// The document's top-level entries handed to `entry` as each completes, the sequences
/// under the keys in `streamed` item by item. `Ok(false)` (after reading the document)
/// when the top level is not a mapping.
pub fn load_streaming(
    src: &str,
    streamed: &[&str],
    entry: &mut dyn FnMut(Entry<'_>),
) -> Result<bool, LoadError> {
    let mut loader = Loader::new(Some(Streaming { streamed, entry }));
    loader.run(src)?;
    Ok(loader.top_was_mapping)
}

struct Streaming<'s, 'f> {
    streamed: &'s [&'s str],
    entry: &'f mut dyn FnMut(Entry<'_>),
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        /// The top-level key whose items are handed over, and the next item's index.
        streamed: Option<(String, usize)>,
    },
    Map {
        map: Mapping,
        anchor: usize,
        /// A key read, its value not yet.
        key: Option<Value>,
        /// The top-level mapping of a streaming load: entries are handed over, and only
        /// the keys are kept (to find repeats).
        top: bool,
    },
}

struct Loader<'s, 'f> {
    streaming: Option<Streaming<'s, 'f>>,
    stack: Vec<Frame>,
    root: Option<Value>,
    documents: usize,
    top_was_mapping: bool,
    anchors: HashMap<usize, Value>,
    alias_nodes: usize,
}

impl<'s, 'f> Loader<'s, 'f> {
    fn new(streaming: Option<Streaming<'s, 'f>>) -> Self {
        Loader {
            streaming,
            stack: Vec::new(),
            root: None,
            documents: 0,
            top_was_mapping: false,
            anchors: HashMap::new(),
            alias_nodes: 0,
        }
    }

    fn run(&mut self, src: &str) -> Result<(), LoadError> {
        for next in Parser::new_from_str(src) {
            let (event, span) = next.map_err(scan_error)?;
            let at = span.start;
            match event {
                Event::DocumentStart(_) => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(LoadError::at(at, "more than one document"));
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    let value =
                        scalar(text, style, tag.as_deref()).map_err(|m| LoadError::at(at, m))?;
                    self.complete(value, anchor, at)?;
                }
                Event::Alias(id) => {
                    let value = self
                        .anchors
                        .get(&id)
                        .ok_or_else(|| LoadError::at(at, "an alias of an unknown anchor"))?;
                    self.alias_nodes += nodes(value);
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        return Err(LoadError::at(
                            at,
                            format!("aliases copy more than {MAX_ALIAS_NODES} nodes"),
                        ));
                    }
                    let value = value.clone();
                    self.complete(value, 0, at)?;
                }
                Event::SequenceStart(anchor, tag) => {
                    collection_tag(tag.as_deref(), "seq").map_err(|m| LoadError::at(at, m))?;
                    let streamed = self.streamed_key(anchor).map(|k| (k, 0));
                    self.open(
                        Frame::Seq {
                            items: Vec::new(),
                            anchor,
                            streamed,
                        },
                        at,
                    )?;
                }
                Event::MappingStart(anchor, tag) => {
                    collection_tag(tag.as_deref(), "map").map_err(|m| LoadError::at(at, m))?;
                    let top = self.streaming.is_some() && self.stack.is_empty();
                    self.top_was_mapping |= top;
                    self.open(
                        Frame::Map {
                            map: Mapping::new(),
                            anchor,
                            key: None,
                            top,
                        },
                        at,
                    )?;
                }
                Event::SequenceEnd | Event::MappingEnd => self.close(at)?,
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            }
        }
        Ok(())
    }

    /// The key whose sequence, starting now, is handed over item by item: a key of the
    /// streaming load's top-level mapping that was asked for (an anchored sequence is
    /// kept whole, for its aliases).
    fn streamed_key(&self, anchor: usize) -> Option<String> {
        let streaming = self.streaming.as_ref()?;
        match self.stack.as_slice() {
            [Frame::Map {
                key: Some(key),
                top: true,
                ..
            }] if anchor == 0 => key
                .as_str()
                .filter(|k| streaming.streamed.contains(k))
                .map(str::to_owned),
            _ => None,
        }
    }

    fn open(&mut self, frame: Frame, at: Marker) -> Result<(), LoadError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(at));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self, at: Marker) -> Result<(), LoadError> {
        match self.stack.pop() {
            Some(Frame::Seq {
                streamed: Some(_), ..
            }) => {
                // Handed over already; the top-level mapping's pending key is done, and
                // kept to find a repeat.
                if let Some(Frame::Map { map, key, .. }) = self.stack.last_mut() {
                    if let Some(key) = key.take() {
                        map.insert(key, Value::Null);
                    }
                }
                Ok(())
            }
            Some(Frame::Seq { items, anchor, .. }) => {
                self.complete(Value::Sequence(items), anchor, at)
            }
            Some(Frame::Map { top: true, .. }) => Ok(()),
            Some(Frame::Map { map, anchor, .. }) => self.complete(Value::Mapping(map), anchor, at),
            None => Ok(()),
        }
    }

    /// Put a completed node where it belongs: the root, an item of its sequence (or the
    /// caller's, when streamed), a mapping's key, or the value of the pending key.
    fn complete(&mut self, value: Value, anchor: usize, at: Marker) -> Result<(), LoadError> {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq {
                streamed: Some((key, index)),
                ..
            }) => {
                if let Some(s) = self.streaming.as_mut() {
                    (s.entry)(Entry::Item {
                        key,
                        index: *index,
                        value,
                    });
                }
                *index += 1;
            }
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, top, .. }) => match key.take() {
                None => {
                    if map.contains_key(&value) {
                        return Err(LoadError::at(at, format!("repeated key {}", name(&value))));
                    }
                    *key = Some(value);
                }
                Some(k) if *top => {
                    map.insert(k.clone(), Value::Null);
                    if let Some(s) = self.streaming.as_mut() {
                        (s.entry)(Entry::Field(k, value));
                    }
                }
                Some(k) => {
                    map.insert(k, value);
                }
            },
        }
        Ok(())
    }
}

/// A key as an error names it: a string or number as written, anything else by kind.
fn name(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        _ => "(a collection)".into(),
    }
}

/// The nodes in a value, itself included.
fn nodes(value: &Value) -> usize {
    1 + match value {
        Value::Sequence(items) => items.iter().map(nodes).sum(),
        Value::Mapping(map) => map.iter().map(|(k, v)| nodes(k) + nodes(v)).sum(),
        Value::Tagged(t) => nodes(&t.value),
        _ => 0,
    }
}

/// The core schema's name of a tag (`str` for `!!str`), or an error for any other tag.
fn core(tag: &Tag) -> Result<&str, String> {
    if tag.is_yaml_core_schema() {
        Ok(tag.suffix.as_str())
    } else {
        Err(format!("the tag {tag} is not supported"))
    }
}

fn collection_tag(tag: Option<&Tag>, kind: &str) -> Result<(), String> {
    match tag.map(core).transpose()? {
        None => Ok(()),
        Some(name) if name == kind => Ok(()),
        Some(name) => Err(format!("the tag !!{name} cannot be given to a collection")),
    }
}

/// A scalar's value: by its tag when it has one, a string when quoted or a block, else
/// by the core schema.
fn scalar(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    // The parser's strings keep the capacity they grew to; a config's 100 000 routes
    // keep these strings, so they are stored at their length.
    let string = |text: Cow<'_, str>| {
        let mut s = text.into_owned();
        s.shrink_to_fit();
        Value::String(s)
    };
    let invalid = |kind: &str| format!("the value is not a valid !!{kind}");
    match tag.map(core).transpose()? {
        Some("str") => Ok(string(text)),
        Some("null") => null(&text).ok_or_else(|| invalid("null")),
        Some("bool") => boolean(&text).ok_or_else(|| invalid("bool")),
        Some("int") => integer(&text).ok_or_else(|| invalid("int")),
        Some("float") => integer(&text)
            .or_else(|| float(&text))
            .ok_or_else(|| invalid("float")),
        Some(other) => Err(format!("the tag !!{other} cannot be given to a scalar")),
        None if style != ScalarStyle::Plain => Ok(string(text)),
        None => Ok(null(&text)
            .or_else(|| boolean(&text))
            .or_else(|| integer(&text))
            .or_else(|| float(&text))
            .unwrap_or_else(|| string(text))),
    }
}

fn null(text: &str) -> Option<Value> {
    matches!(text, "" | "~" | "null" | "Null" | "NULL").then_some(Value::Null)
}

fn boolean(text: &str) -> Option<Value> {
    match text {
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`, within 64 bits.
fn integer(text: &str) -> Option<Value> {
    let radix = |digits: &str, radix| {
        (!digits.is_empty() && !digits.starts_with(['+', '-']))
            .then(|| u64::from_str_radix(digits, radix).ok())
            .flatten()
            .map(|n| Value::Number(n.into()))
    };
    if let Some(hex) = text.strip_prefix("0x") {
        return radix(hex, 16);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return radix(octal, 8);
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.starts_with('-') {
        text.parse::<i64>().ok().map(|n| Value::Number(n.into()))
    } else {
        digits.parse::<u64>().ok().map(|n| Value::Number(n.into()))
    }
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, `[-+]?.inf` or `.nan`.
fn float(text: &str) -> Option<Value> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let negative = text.starts_with('-');
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        let inf = if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Some(Value::Number(inf.into()));
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(Value::Number(f64::NAN.into()));
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(whole)
        && digits(fraction)
        && (!whole.is_empty() || !fraction.is_empty())
        && (mantissa.contains('.') || exponent.is_some());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    (mantissa_ok && exponent_ok)
        .then(|| text.parse::<f64>().ok())
        .flatten()
        .map(|f| Value::Number(f.into()))
}

fn too_deep(at: Marker) -> LoadError {
    LoadError::at(
        at,
        format!("collections are nested more than {MAX_DEPTH} levels deep"),
    )
}

/// The parser's error, where it stopped. Its scanner reads flow brackets ahead of the
/// events and gives up at 256 levels with "recursion limit exceeded": the same refusal
/// as [`MAX_DEPTH`]'s, said the same way.
fn scan_error(e: saphyr_parser::ScanError) -> LoadError {
    if e.info() == "recursion limit exceeded" {
        too_deep(*e.marker())
    } else {
        LoadError::at(*e.marker(), e.info())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(src: &str) -> Value {
        load(src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"))
    }

    fn error(src: &str) -> String {
        let e = load(src).unwrap_err();
        format!("{} at {}:{}", e.message, e.line, e.column)
    }

    #[test]
    fn plain_scalars_follow_the_core_schema_and_quoted_ones_are_strings() {
        let doc = value(
            "a: ~\nb: null\nc:\nd: true\ne: False\nf: yes\ng: on\nh: 42\ni: -7\nj: 0x1F\nk: 0o17\nl: 1.5\nm: 1e3\nn: .inf\no: '42'\np: \"true\"\nq: 1.2.3\nr: 0x\ns: +12\nt: 99999999999999999999\nu: !!str 12\nv: !!int \"12\"\nw: 1_000\n",
        );
        let get = |k: &str| doc.get(k).unwrap().clone();
        assert_eq!(get("a"), Value::Null);
        assert_eq!(get("b"), Value::Null);
        assert_eq!(get("c"), Value::Null);
        assert_eq!(get("d"), Value::Bool(true));
        assert_eq!(get("e"), Value::Bool(false));
        assert_eq!(get("f"), Value::String("yes".into()));
        assert_eq!(get("g"), Value::String("on".into()));
        assert_eq!(get("h"), Value::Number(42u64.into()));
        assert_eq!(get("i"), Value::Number((-7i64).into()));
        assert_eq!(get("j"), Value::Number(31u64.into()));
        assert_eq!(get("k"), Value::Number(15u64.into()));
        assert_eq!(get("l"), Value::Number(1.5f64.into()));
        assert_eq!(get("m"), Value::Number(1000f64.into()));
        assert_eq!(get("n"), Value::Number(f64::INFINITY.into()));
        assert_eq!(get("o"), Value::String("42".into()));
        assert_eq!(get("p"), Value::String("true".into()));
        assert_eq!(get("q"), Value::String("1.2.3".into()));
        assert_eq!(get("r"), Value::String("0x".into()));
        assert_eq!(get("s"), Value::Number(12u64.into()));
        assert_eq!(get("t"), Value::String("99999999999999999999".into()));
        assert_eq!(get("u"), Value::String("12".into()));
        assert_eq!(get("v"), Value::Number(12u64.into()));
        assert_eq!(get("w"), Value::String("1_000".into()));
    }

    #[test]
    fn aliases_copy_their_anchor_and_a_merge_key_is_an_ordinary_key() {
        let doc = value("a: &x [1, {b: 2}]\nc: *x\nd:\n  <<: *x\n");
        assert_eq!(doc.get("a"), doc.get("c"));
        assert!(doc.get("d").unwrap().get("<<").is_some());
    }

    #[test]
    fn repeated_keys_unknown_tags_and_anchors_and_several_documents_are_errors() {
        assert_eq!(error("a: 1\nb: 2\na: 3\n"), "repeated key a at 3:1");
        assert_eq!(error("a:\n  - {x: 1, x: 2}\n"), "repeated key x at 2:12");
        assert_eq!(
            error("a: !custom 1\n"),
            "the tag !custom is not supported at 1:4"
        );
        assert_eq!(
            error("a: !!int x\n"),
            "the value is not a valid !!int at 1:4"
        );
        assert_eq!(
            error("a: !!map [1]\n"),
            "the tag !!map cannot be given to a collection at 1:4"
        );
        assert_eq!(
            error("a: *nope\n"),
            "while parsing node, found unknown anchor at 1:4"
        );
        assert_eq!(error("a: 1\n---\nb: 2\n"), "more than one document at 2:1");
        assert!(
            error("a: [1, 2\n").ends_with(" at 2:1"),
            "{}",
            error("a: [1, 2\n")
        );
    }

    // Security property: neither an alias bomb nor nesting beyond the limit (block
    // nesting fits many levels on one line) gets past the loader.
    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{p}"); 10].join(", ")
            ));
        }
        assert!(error(&bomb).contains("aliases copy more than 100000 nodes"));
        let deep = format!("{}x\n", "- ".repeat(MAX_DEPTH + 1));
        assert!(error(&deep).contains("nested more than 64 levels deep"));
        let fits = format!("{}x\n", "- ".repeat(MAX_DEPTH));
        assert!(load(&fits).is_ok());
        // The document's own mapping is one of the 64.
        let flow = |n: usize| format!("a: {}1{}\n", "[".repeat(n), "]".repeat(n));
        assert!(error(&flow(MAX_DEPTH)).contains("nested more than 64 levels deep"));
        assert!(load(&flow(MAX_DEPTH - 1)).is_ok());
    }

    // Security property: a document nested a million levels deep (the parser's scanner
    // reads flow brackets ahead of its events) is refused at once, in every form of
    // nesting, with the loader's own message.
    #[test]
    fn a_million_levels_of_nesting_are_refused_at_once() {
        let n = 1 << 20;
        for deep in [
            format!("rooms: {}1{}", "{a: ".repeat(n), "}".repeat(n)),
            format!("rooms: {}", "[".repeat(n)),
            format!("{}x\n", "- ".repeat(n)),
        ] {
            let started = std::time::Instant::now();
            let e = error(&deep);
            assert!(
                e.starts_with("collections are nested more than 64 levels deep at 1:"),
                "{e}"
            );
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }
    }

    #[test]
    fn an_empty_document_is_null() {
        assert_eq!(value(""), Value::Null);
        assert_eq!(value("# only a comment\n"), Value::Null);
    }
}
