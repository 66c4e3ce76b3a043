//! Secret references (`{env: NAME}`, `{file: PATH}`, `{value: TEXT}`) and how errors
//! about secret-bearing values are worded.
//!
//! Owns the rule that a config error never repeats a secret: a reference that has the
//! wrong shape is reported by the kind of value found ("a bare string (not shown)"), and an
//! unknown key inside a secret-bearing section is not named. It must not resolve
//! references (that is `LoadContext::resolve`) or quote what it refuses.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use super::ConfigError;

/// Where a secret-bearing value comes from, written `{env: NAME}`, `{file: PATH}` or
/// `{value: TEXT}`. Values never appear in logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// Read from this environment variable at load.
    Env(String),
    /// Read from this file at load (relative paths are relative to the config file).
    File(PathBuf),
    /// Inline value: for local development only.
    Value(String),
}

/// What a secret reference must look like, for errors.
const SECRET_REF_SHAPE: &str =
    "a mapping with exactly one of env, file or value ({env: NAME}, {file: PATH}, {value: TEXT})";

impl<'de> Deserialize<'de> for SecretRef {
    /// Errors name the expected shape and the kind of what was found, never its text: a
    /// bare string here is most often the secret itself.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(redacted::RefVisitor)
    }
}

/// Visitors for secret-bearing values whose errors never quote the input.
mod redacted {
    use std::fmt;
    use std::path::PathBuf;

    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

    use super::{SecretRef, SECRET_REF_SHAPE};

    /// Implements every `visit_*` but those named, as an error naming only the kind of
    /// value found.
    macro_rules! refuse_scalars {
        ($what:expr) => {
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Err(E::custom(format!("found a boolean; expected {}", $what)))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(E::custom(format!("found a number; expected {}", $what)))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!("found a number; expected {}", $what)))
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<Self::Value, E> {
                Err(E::custom(format!("found a number; expected {}", $what)))
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
                Err(E::custom(format!("found a number; expected {}", $what)))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!("found a number; expected {}", $what)))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Err(E::custom(format!("found bytes; expected {}", $what)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "found nothing (null); expected {}",
                    $what
                )))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "found nothing (null); expected {}",
                    $what
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::custom(format!(
                    "found a list; expected {}",
                    $what
                )))
            }
        };
    }

    pub struct RefVisitor;

    impl<'de> Visitor<'de> for RefVisitor {
        type Value = SecretRef;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(SECRET_REF_SHAPE)
        }

        refuse_scalars!(SECRET_REF_SHAPE);

        fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
            Err(E::custom(format!(
                "found a bare string (not shown); expected {SECRET_REF_SHAPE}"
            )))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
            let mut found: Option<SecretRef> = None;
            while let Some(key) = map.next_key::<Key>()? {
                let make: fn(String) -> SecretRef = match key {
                    Key::Env => SecretRef::Env,
                    Key::File => |path| SecretRef::File(PathBuf::from(path)),
                    Key::Value => SecretRef::Value,
                    Key::Unknown => {
                        // Refused here, once the entry is read, so that no error (and no
                        // error path) carries the key.
                        map.next_value::<de::IgnoredAny>()?;
                        return Err(de::Error::custom(format!(
                            "unknown key (not shown); expected {SECRET_REF_SHAPE}"
                        )));
                    }
                };
                let text = map.next_value::<Text>()?.0;
                if found.is_some() {
                    return Err(de::Error::custom(format!(
                        "more than one key; expected {SECRET_REF_SHAPE}"
                    )));
                }
                found = Some(make(text));
            }
            found.ok_or_else(|| de::Error::custom(format!("empty; expected {SECRET_REF_SHAPE}")))
        }
    }

    enum Key {
        Env,
        File,
        Value,
        Unknown,
    }

    impl<'de> de::Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
            d.deserialize_any(KeyVisitor)
        }
    }

    /// A key of a secret reference. An unknown key is not quoted, nor kept: `{sk_live_…}`
    /// (a flow mapping holding the secret as its only key) is an easy mistake.
    struct KeyVisitor;

    const KEYS: &str = "env, file or value";

    impl<'de> Visitor<'de> for KeyVisitor {
        type Value = Key;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(KEYS)
        }

        refuse_scalars!(KEYS);

        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Key, A::Error> {
            Err(de::Error::custom(format!(
                "found a mapping as a key; expected {KEYS}"
            )))
        }

        fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
            match key {
                "env" => Ok(Key::Env),
                "file" => Ok(Key::File),
                "value" => Ok(Key::Value),
                _ => Ok(Key::Unknown),
            }
        }
    }

    /// The text of `env`, `file` or `value`.
    struct Text(String);

    impl<'de> de::Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
            d.deserialize_any(TextVisitor)
        }
    }

    struct TextVisitor;

    const TEXT: &str = "text (quote a number: value: \"0123\")";

    impl<'de> Visitor<'de> for TextVisitor {
        type Value = Text;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(TEXT)
        }

        refuse_scalars!(TEXT);

        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Text, A::Error> {
            Err(de::Error::custom(format!(
                "found a mapping; expected {TEXT}"
            )))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Text, E> {
            Ok(Text(text.to_owned()))
        }
    }
}

/// Sections whose keys may be secrets: an operator who writes `redis: {redis://:pw@h}`
/// (a flow mapping with the URL as its key) must not see it echoed back.
const SECRET_SECTIONS: &[&str] = &[
    "redis",
    "tokens",
    "secrets",
    "iap.cookie_keys",
    "iap.oidc",
    "iap.static",
];

/// A structural error as reported: inside a secret-bearing section an unknown key is not
/// named (in the path or the message); elsewhere the error is kept as the deserializer
/// gave it (values already left out by `yaml::from_value`).
pub(super) fn reported(path: String, message: String) -> ConfigError {
    let secret_section = SECRET_SECTIONS.iter().any(|s| {
        path == *s || path.starts_with(&format!("{s}.")) || path.starts_with(&format!("{s}["))
    });
    let unknown = message.strip_prefix("unknown field `").and_then(|rest| {
        let end = ["`, expected ", "`, there are no fields"]
            .iter()
            .find_map(|tail| rest.rfind(tail))
            .or_else(|| rest.rfind('`'))?;
        Some((&rest[..end], &rest[end + 1..]))
    });
    match unknown {
        Some((key, expected)) if secret_section => {
            let parent = path
                .strip_suffix(key)
                .map(|p| p.trim_end_matches('.'))
                .unwrap_or(&path);
            ConfigError::at(parent, format!("unknown key (not shown){expected}"))
        }
        _ => ConfigError::at(path, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml;

    fn parse(text: &str) -> Result<SecretRef, (String, String)> {
        yaml::from_value(yaml::parse_document(text).expect("yaml"))
    }

    #[test]
    fn the_three_forms_parse() {
        assert_eq!(parse("{env: A}"), Ok(SecretRef::Env("A".into())));
        assert_eq!(parse("{file: a.txt}"), Ok(SecretRef::File("a.txt".into())));
        assert_eq!(
            parse("{value: \"0123\"}"),
            Ok(SecretRef::Value("0123".into()))
        );
    }

    // Security property (issue 17, finding 4): whatever shape is wrong, the error says
    // which and never holds the text.
    #[test]
    fn a_wrong_shape_is_reported_without_its_text() {
        for (text, found) in [
            ("\"sk_live_SECRETX\"", "found a bare string (not shown)"),
            ("918273645501", "found a number"),
            ("[sk_live_SECRETX]", "found a list"),
            ("{sk_live_SECRETX}", "unknown key (not shown)"),
            ("{value: 918273645501}", "found a number"),
            ("{value: [sk_live_SECRETX]}", "found a list"),
            ("{env: A, value: sk_live_SECRETX}", "more than one key"),
        ] {
            let (path, message) = parse(text).unwrap_err();
            assert!(message.starts_with(found), "{text}: {message}");
            for leaked in ["SECRETX", "918273645501"] {
                assert!(
                    !message.contains(leaked) && !path.contains(leaked),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn unknown_keys_in_secret_sections_are_not_named() {
        let e = reported(
            "redis.redis://:pw@h".into(),
            "unknown field `redis://:pw@h`, expected `url`".into(),
        );
        assert_eq!(
            e.to_string(),
            "redis: unknown key (not shown), expected `url`"
        );
        let e = reported(
            "rooms[0].colour".into(),
            "unknown field `colour`, expected `name`".into(),
        );
        assert_eq!(
            e.to_string(),
            "rooms[0].colour: unknown field `colour`, expected `name`"
        );
    }
}
