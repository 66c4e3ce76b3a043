//! Tests of reading a document entry by entry ([`super::stream`]).

#[cfg(test)]
mod tests {
    use super::super::load::{load_streaming, Entry};

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
}
