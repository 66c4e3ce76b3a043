//! The config file's JSON Schema, generated from the config types (`model.rs`).
//!
//! Owns the schemas of the values whose Rust types parse text themselves (durations,
//! CIDRs, secret references) and of the annotation maps, and the one function that renders
//! the whole schema (`roomgate schema`, checked in as `docs/roomgate.schema.json`). It
//! describes what `check` accepts for editors; it must not become a second validator: the
//! cross-field rules stay in `validate.rs`.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use super::annotations::{Kind, REGISTRY};
use super::model::{FileConfig, HumanDuration};
use super::secret_ref::SecretRef;
use crate::webhook::Provider;

/// The schema of a whole config file, as pretty-printed JSON with a final newline.
pub fn render() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<FileConfig>();
    schema.insert("title".into(), "roomgate config".into());
    let mut text =
        serde_json::to_string_pretty(&sorted(schema.to_value())).expect("a schema is JSON");
    text.push('\n');
    text
}

/// `value` with every object's keys in sorted order, so the text is the same whether or
/// not serde_json keeps insertion order (a feature another crate may turn on).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `::1/128`).
pub struct Cidr;

impl JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Cidr".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "An address range in CIDR notation, e.g. 10.0.0.0/8 or fd00::/8.",
            "examples": ["10.0.0.0/8"]
        })
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit, e.g. 250ms, 10s, 5m, 2h, 1d.",
            "examples": ["250ms", "10s", "5m", "2h"]
        })
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let one = |key: &str, what: &str| {
            serde_json::json!({
                "type": "object",
                "properties": {key: {"type": "string", "description": what}},
                "required": [key],
                "additionalProperties": false
            })
        };
        json_schema!({
            "description": "A secret-bearing value: exactly one of {env: NAME}, {file: PATH} (relative to the config file) or, for local use only, {value: TEXT}.",
            "oneOf": [
                one("env", "Read from this environment variable at load."),
                one("file", "Read from this file at load; a trailing newline is dropped."),
                one("value", "The value itself: for local use only."),
            ]
        })
    }
}

/// Every annotation roomgate reads (its registry), with the shape of its value.
pub fn known_annotations() -> Vec<(&'static str, serde_json::Value)> {
    let methods: Vec<&str> = ["bearer", "jwt", "cookie"]
        .into_iter()
        .chain(Provider::ALL.iter().map(|p| p.as_str()))
        .collect();
    REGISTRY
        .iter()
        .map(|a| {
            let description = format!("{} Default: {}.", a.description, a.default);
            let mut value = serde_json::json!({"type": "string", "description": description});
            match a.kind {
                Kind::Flag => value["enum"] = serde_json::json!(["true", "false"]),
                Kind::Method => value["examples"] = serde_json::json!(methods),
                _ => {}
            }
            (a.key, value)
        })
        .collect()
}

/// An `annotations` map: the known keys with their values' shapes; other keys are free,
/// outside the `meshagent.` and `roomgate.` namespaces.
pub fn annotations(_: &mut SchemaGenerator) -> Schema {
    let known = known_annotations();
    let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
    let properties: serde_json::Map<String, serde_json::Value> =
        known.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    json_schema!({
        "type": "object",
        "description": "The port's or endpoint's policy. Keys under meshagent. and roomgate. must be known ones; other namespaces are free. Values are strings.",
        "properties": properties,
        "propertyNames": {
            "anyOf": [
                {"enum": names},
                {"not": {"pattern": "^(meshagent|roomgate)\\."}}
            ]
        },
        "additionalProperties": {"type": "string"}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_every_top_level_key() {
        let schema: serde_json::Value = serde_json::from_str(&render()).unwrap();
        let keys: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "version", "listen", "redis", "limits", "iap", "rooms", "routes",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        assert_eq!(schema["additionalProperties"], false);
    }
}
