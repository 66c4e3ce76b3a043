//! `roomgate keys create|list|revoke`: management keys in the configured store.
//!
//! A key is printed once, by the caller of [`create`]; only its digest is stored. The
//! CLI stays thin: everything it does with keys is here.

use super::credentials;
use super::store::{EmbedStore, KeyRecord, StoreError};
use crate::config::Config;

/// Why a key command failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store the key commands use: the one `serve` uses with this config.
pub fn store(config: &Config) -> Result<std::sync::Arc<dyn EmbedStore>, StoreError> {
    let kv = config
        .redis
        .as_ref()
        .map(|r| crate::kv::Kv::connect(r, crate::kv::DEFAULT_TIMEOUT))
        .transpose()
        .map_err(|e| StoreError(e.to_string()))?;
    Ok(super::EmbedRuntime::from_config(config, kv.as_ref()).store)
}

/// Create a key for `rooms` (each must be a room of the config). Returns the record and
/// the raw key, which exists nowhere else.
pub async fn create(
    store: &dyn EmbedStore,
    config: &Config,
    name: &str,
    rooms: &[String],
    now: i64,
) -> Result<(KeyRecord, String), KeyError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(KeyError::Invalid(
            "--name: 1 to 128 characters, no control characters".into(),
        ));
    }
    if rooms.is_empty() {
        return Err(KeyError::Invalid("give at least one --room".into()));
    }
    if let Some(unknown) = rooms.iter().find(|r| config.room(r).is_none()) {
        return Err(KeyError::Invalid(format!("unknown room {unknown:?}")));
    }
    let (id, raw) = credentials::new_key();
    let digest = credentials::key_digest(&raw)
        .ok_or_else(|| KeyError::Invalid("a generated key did not parse".into()))?;
    let mut unique: Vec<String> = Vec::new();
    for r in rooms {
        if !unique.contains(r) {
            unique.push(r.clone());
        }
    }
    let record = KeyRecord {
        id,
        name: name.to_owned(),
        rooms: unique,
        created_at: now,
        sha256: digest,
        last_used: None,
    };
    store.put_key(&record).await?;
    Ok((record, raw))
}

/// One line per key: id, name, rooms, created, last used. Never a key or a digest.
pub fn describe(key: &KeyRecord) -> String {
    let when = |t: Option<i64>| {
        t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "{}\t{}\t{}\t{}\t{}",
        key.id,
        key.name,
        key.rooms.join(","),
        when(Some(key.created_at)),
        when(key.last_used)
    )
}
