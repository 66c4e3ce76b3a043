//! The one module that calls the YAML library.
//!
//! `serde_yaml` is archived; keeping every YAML call here means a maintained fork can
//! replace it in one place. Nothing else in roomgate names the YAML crate.

use serde::de::DeserializeOwned;

pub use serde_yaml_ng::{Mapping, Value};

/// Parse a YAML document into a generic value, reporting the parser's message.
pub fn parse_document(src: &str) -> Result<Value, String> {
    serde_yaml_ng::from_str(src).map_err(|e| e.to_string())
}

/// Deserialize a generic value into `T`, returning the path (relative to `value`) of the
/// first field that does not fit, and the reason.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        (if path == "." { String::new() } else { path }, msg)
    })
}

/// Render a value back to YAML (used by the secrets file backend).
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_yaml_ng::to_string(value).map_err(|e| e.to_string())
}

/// Parse a YAML document straight into `T` (small files such as the secrets file).
pub fn from_str<T: DeserializeOwned>(src: &str) -> Result<T, String> {
    serde_yaml_ng::from_str(src).map_err(|e| e.to_string())
}
