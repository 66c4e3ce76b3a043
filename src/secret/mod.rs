//! Room secrets: the values webhook signatures are checked with, keyed by
//! (room, identity, id).
//!
//! Owns the two places secrets live — a YAML file of `{env}`/`{file}`/`{value}` references
//! (the default) and Redis, encrypted at rest (shared by every instance) — plus rotation
//! windows and a short read cache, so a change is picked up within seconds without a
//! restart. It must never log, display or return in an error a secret value, and `list`
//! never returns values.

mod file;
mod redis;
pub mod sealed;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::config::{Config, SecretsBackend};
use crate::kv::Kv;
use crate::sensitive::Secret;

pub use file::FileSecrets;
pub use redis::{secrets_field, secrets_key, RedisSecrets};

/// Why secrets could not be read or written. `NotFound` and `Unavailable` both map to 503
/// `secret_unavailable` on the request path. No variant ever carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No such secret (or every value of it is past its rotation window).
    #[error("no secret {id:?} for identity {identity:?} in room {room:?}")]
    NotFound {
        room: String,
        identity: String,
        id: String,
    },
    /// The store cannot be read: file unreadable or malformed, a reference unresolvable,
    /// a value undecryptable, Redis down or slow.
    #[error("secrets unavailable: {0}")]
    Unavailable(String),
    /// A `set`/`rm` request that cannot be stored (an empty name, a NUL in a name, a
    /// value the file backend cannot hold). Only the CLI meets this.
    #[error("invalid secret request: {0}")]
    Invalid(String),
}

impl SecretError {
    fn not_found(room: &str, identity: &str, id: &str) -> SecretError {
        SecretError::NotFound {
            room: room.to_owned(),
            identity: identity.to_owned(),
            id: id.to_owned(),
        }
    }
}

/// One stored value and the end of its rotation window (`None`: current, no end).
#[derive(Clone, Debug)]
pub struct ActiveValue {
    pub secret: Secret,
    pub until: Option<OffsetDateTime>,
}

/// Whether a value whose rotation window ends at `until` is accepted at `now`.
fn active_at(until: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    until.is_none_or(|until| now < until)
}

/// Where the values live.
#[derive(Debug)]
enum Backend {
    File(FileSecrets),
    /// Boxed: the cipher's key schedule is large.
    Redis(Box<RedisSecrets>),
}

/// The cache key of (room, identity, id): each name but the last prefixed with its
/// length, so that no two triples share a key. One allocation, one hash, no formatting.
fn cache_key(room: &str, identity: &str, id: &str) -> Box<[u8]> {
    let mut key = Vec::with_capacity(room.len() + identity.len() + id.len() + 16);
    for name in [room, identity] {
        key.extend_from_slice(&name.len().to_le_bytes());
        key.extend_from_slice(name.as_bytes());
    }
    key.extend_from_slice(id.as_bytes());
    key.into_boxed_slice()
}

/// One secret as read from the store: every value, current first, and the end of each
/// value's rotation window.
#[derive(Debug)]
struct Found {
    secrets: Arc<[Secret]>,
    until: Box<[Option<OffsetDateTime>]>,
}

impl Found {
    fn new(values: Vec<ActiveValue>) -> Found {
        let until = values.iter().map(|v| v.until).collect();
        let secrets = values.into_iter().map(|v| v.secret).collect();
        Found { secrets, until }
    }

    /// The values active at `now`. Outside a rotation window that is all of them, and
    /// they are shared, not copied.
    fn active(&self, now: OffsetDateTime) -> Arc<[Secret]> {
        if self.until.iter().all(|&until| active_at(until, now)) {
            return Arc::clone(&self.secrets);
        }
        self.secrets
            .iter()
            .zip(self.until.iter())
            .filter(|(_, &until)| active_at(until, now))
            .map(|(secret, _)| secret.clone())
            .collect()
    }
}

#[derive(Debug)]
struct Cached {
    fetched: Instant,
    /// `None`: the secret did not exist when read (cached too, briefly).
    found: Option<Found>,
}

/// Cached values by [`cache_key`]. The keys come from the config, not from requests, so a
/// fast hash without flooding resistance is enough.
type CacheMap = HashMap<Box<[u8]>, Cached, foldhash::fast::RandomState>;

/// Room secrets with a short per-key read cache.
#[derive(Debug)]
pub struct SecretStore {
    backend: Backend,
    cache_ttl: Duration,
    cache: Mutex<CacheMap>,
}

/// Reject names that cannot be stored unambiguously.
fn check_names(room: &str, identity: &str, id: &str) -> Result<(), SecretError> {
    for (what, name) in [("room", room), ("identity", identity), ("id", id)] {
        if name.is_empty() {
            return Err(SecretError::Invalid(format!("the {what} is empty")));
        }
        if name.contains('\0') {
            return Err(SecretError::Invalid(format!("the {what} contains a NUL")));
        }
    }
    Ok(())
}

impl SecretStore {
    /// The configured store: `secrets.backend` decides. The file backend resolves `{env}`
    /// through `ctx.vars`; the redis backend needs the shared Redis `kv` and `secrets.key`.
    pub fn from_config(config: &Config, kv: Option<&Kv>) -> Result<SecretStore, SecretError> {
        let ctx = config.load_context();
        let secrets = &config.file.secrets;
        let ttl = secrets.cache_ttl.0;
        match secrets.backend {
            SecretsBackend::File => {
                let path = if secrets.file.is_absolute() {
                    secrets.file.clone()
                } else {
                    config.base_dir.join(&secrets.file)
                };
                Ok(SecretStore::file(path, ctx.vars.clone(), ttl))
            }
            SecretsBackend::Redis => {
                let kv = kv.ok_or_else(|| {
                    SecretError::Unavailable("the redis backend needs a redis block".into())
                })?;
                let key = config.secrets_key.as_ref().ok_or_else(|| {
                    SecretError::Unavailable("the redis backend needs secrets.key".into())
                })?;
                SecretStore::redis(kv, key, ttl)
            }
        }
    }

    /// Check what the configured store reads from files, as requests will read it: the
    /// secrets file of the file backend (see [`FileSecrets::check`]). Nothing for Redis.
    pub fn check_files(config: &Config) -> Result<(), SecretError> {
        match config.file.secrets.backend {
            SecretsBackend::File => {
                let path = config
                    .load_context()
                    .resolve_path(&config.file.secrets.file);
                FileSecrets::new(path, config.vars.0.clone()).check()
            }
            SecretsBackend::Redis => Ok(()),
        }
    }

    /// The file backend at `path`; `{env}` references read `vars`, relative `{file}`
    /// references are relative to the secrets file's directory.
    pub fn file(path: PathBuf, vars: HashMap<String, String>, cache_ttl: Duration) -> SecretStore {
        SecretStore::with_backend(Backend::File(FileSecrets::new(path, vars)), cache_ttl)
    }

    /// The redis backend in the shared Redis `kv`: values sealed with `key` (exactly 32
    /// bytes).
    pub fn redis(kv: &Kv, key: &Secret, cache_ttl: Duration) -> Result<SecretStore, SecretError> {
        let backend = RedisSecrets::new(kv, key)?;
        Ok(SecretStore::with_backend(
            Backend::Redis(Box::new(backend)),
            cache_ttl,
        ))
    }

    fn with_backend(backend: Backend, cache_ttl: Duration) -> SecretStore {
        SecretStore {
            backend,
            cache_ttl,
            cache: Mutex::default(),
        }
    }

    /// Every active value of a secret, current first: see [`SecretStore::get_at`].
    pub async fn get(
        &self,
        room: &str,
        identity: &str,
        id: &str,
    ) -> Result<Arc<[Secret]>, SecretError> {
        self.get_at(room, identity, id, OffsetDateTime::now_utc())
            .await
    }

    /// Every value active at `now`, current first, then the previous one while its
    /// rotation window lasts. Reads are cached per key for the configured TTL; the window
    /// is checked against `now` on every call, cached or not.
    pub async fn get_at(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<[Secret]>, SecretError> {
        let key = cache_key(room, identity, id);
        let active = match self.cached(&key, now) {
            Some(active) => active,
            None => {
                // Boxed: a cache miss is rare, and the store's round trip would
                // otherwise size every webhook request's future.
                let found = match Box::pin(self.fetch(room, identity, id, now)).await {
                    Ok(values) => Some(Found::new(values)),
                    Err(SecretError::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                let active = found.as_ref().map(|f| f.active(now));
                self.remember(key, found);
                active
            }
        };
        match active {
            Some(active) if !active.is_empty() => Ok(active),
            _ => Err(SecretError::not_found(room, identity, id)),
        }
    }

    async fn fetch(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<ActiveValue>, SecretError> {
        let values = match &self.backend {
            Backend::File(f) => f.get(room, identity, id, now)?,
            Backend::Redis(r) => r.get(room, identity, id, now).await?,
        };
        // An empty secret would verify anything (an empty token, an empty HMAC key):
        // whatever the backend, such a value is never handed out.
        if values.iter().any(|v| v.secret.is_blank()) {
            return Err(SecretError::Unavailable(format!(
                "secret {room}/{identity}/{id} has an empty value"
            )));
        }
        Ok(values)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheMap> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The values active at `now` of a fresh cache entry: `Some(None)` when the secret
    /// was cached as missing, `None` when there is no fresh entry.
    fn cached(&self, key: &[u8], now: OffsetDateTime) -> Option<Option<Arc<[Secret]>>> {
        if self.cache_ttl.is_zero() {
            return None;
        }
        let cache = self.lock();
        cache
            .get(key)
            .filter(|c| c.fetched.elapsed() < self.cache_ttl)
            .map(|c| c.found.as_ref().map(|f| f.active(now)))
    }

    fn remember(&self, key: Box<[u8]>, found: Option<Found>) {
        if self.cache_ttl.is_zero() {
            return;
        }
        let mut cache = self.lock();
        let ttl = self.cache_ttl;
        cache.retain(|_, c| c.fetched.elapsed() < ttl);
        cache.insert(
            key,
            Cached {
                fetched: Instant::now(),
                found,
            },
        );
    }

    fn forget(&self, room: &str, identity: &str, id: &str) {
        self.lock().remove(&cache_key(room, identity, id));
    }

    /// Store `value` as the current value: see [`SecretStore::set_at`].
    pub async fn set(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        value: Secret,
        keep_previous_for: Option<Duration>,
    ) -> Result<(), SecretError> {
        self.set_at(
            room,
            identity,
            id,
            value,
            keep_previous_for,
            OffsetDateTime::now_utc(),
        )
        .await
    }

    /// Store `value` as the current value. With `keep_previous_for`, the value it replaces
    /// stays active until `now + keep_previous_for` (a rotation window); without it, the
    /// old values stop being accepted at once.
    pub async fn set_at(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        value: Secret,
        keep_previous_for: Option<Duration>,
        now: OffsetDateTime,
    ) -> Result<(), SecretError> {
        check_names(room, identity, id)?;
        if value.is_blank() {
            return Err(SecretError::Invalid("the value is empty".into()));
        }
        let until = keep_previous_for.map(|d| now + d);
        match &self.backend {
            Backend::File(f) => f.set(room, identity, id, &value, until)?,
            Backend::Redis(r) => r.set(room, identity, id, &value, until).await?,
        }
        self.forget(room, identity, id);
        Ok(())
    }

    /// Store `value` only if the secret does not exist yet (trust on first use); `true`
    /// when it was stored. Never replaces or rotates an existing value: with redis the
    /// check and the write are one `HSETNX`, with the file one locked read-and-rewrite in
    /// this process.
    pub async fn set_if_absent(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        value: Secret,
    ) -> Result<bool, SecretError> {
        check_names(room, identity, id)?;
        if value.is_blank() {
            return Err(SecretError::Invalid("the value is empty".into()));
        }
        let stored = match &self.backend {
            Backend::File(f) => f.set_if_absent(room, identity, id, &value)?,
            Backend::Redis(r) => r.set_if_absent(room, identity, id, &value).await?,
        };
        if stored {
            self.forget(room, identity, id);
        }
        Ok(stored)
    }

    /// Where the secrets are kept, for an operator's message: `the secrets file PATH`
    /// (with `, which does not exist` when it is absent) or `Redis`.
    pub fn whereabouts(&self) -> String {
        match &self.backend {
            Backend::File(f) if f.path().exists() => {
                format!("the secrets file {}", f.path().display())
            }
            Backend::File(f) => format!(
                "the secrets file {}, which does not exist",
                f.path().display()
            ),
            Backend::Redis(_) => "Redis".to_owned(),
        }
    }

    /// The (identity, id) pairs stored for a room, optionally for one identity; sorted.
    /// Never values.
    pub async fn list(
        &self,
        room: &str,
        identity: Option<&str>,
    ) -> Result<Vec<(String, String)>, SecretError> {
        let mut ids = match &self.backend {
            Backend::File(f) => f.list(room)?,
            Backend::Redis(r) => r.list(room).await?,
        };
        if let Some(identity) = identity {
            ids.retain(|(i, _)| i == identity);
        }
        ids.sort();
        Ok(ids)
    }

    /// Delete a secret (every value of it). `NotFound` when there was none.
    pub async fn rm(&self, room: &str, identity: &str, id: &str) -> Result<(), SecretError> {
        check_names(room, identity, id)?;
        let removed = match &self.backend {
            Backend::File(f) => f.rm(room, identity, id)?,
            Backend::Redis(r) => r.rm(room, identity, id).await?,
        };
        self.forget(room, identity, id);
        if removed {
            Ok(())
        } else {
            Err(SecretError::not_found(room, identity, id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn store(dir: &tempfile::TempDir, ttl: Duration) -> SecretStore {
        SecretStore::file(dir.path().join("secrets.yaml"), HashMap::new(), ttl)
    }

    /// During a rotation window both values verify; after it only the new one does.
    #[tokio::test]
    async fn the_previous_value_is_accepted_only_during_its_rotation_window() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(2));
        let t = datetime!(2025-01-01 00:00 UTC);
        s.set_at("acme", "w", "k", Secret::new("old"), None, t)
            .await
            .unwrap();
        s.set_at(
            "acme",
            "w",
            "k",
            Secret::new("new"),
            Some(Duration::from_secs(3600)),
            t,
        )
        .await
        .unwrap();
        let during = s
            .get_at("acme", "w", "k", t + Duration::from_secs(3599))
            .await
            .unwrap();
        assert_eq!(*during, [Secret::new("new"), Secret::new("old")]);
        // Same cache entry, later clock: the window is checked on every call.
        let after = s
            .get_at("acme", "w", "k", t + Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(*after, [Secret::new("new")]);
    }

    #[tokio::test]
    async fn replacing_without_a_window_drops_the_old_value_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::ZERO);
        let t = datetime!(2025-01-01 00:00 UTC);
        s.set_at("acme", "w", "k", Secret::new("old"), None, t)
            .await
            .unwrap();
        s.set_at("acme", "w", "k", Secret::new("new"), None, t)
            .await
            .unwrap();
        assert_eq!(
            s.get_at("acme", "w", "k", t).await.unwrap().to_vec(),
            vec![Secret::new("new")]
        );
    }

    #[tokio::test]
    async fn a_missing_secret_is_not_found_and_names_no_value() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(2));
        let err = s.get("acme", "w", "nope").await.unwrap_err();
        assert!(matches!(err, SecretError::NotFound { .. }));
    }

    #[tokio::test]
    async fn a_write_through_the_same_store_is_seen_at_once_despite_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(3600));
        assert!(s.get("acme", "w", "k").await.is_err());
        s.set("acme", "w", "k", Secret::new("v1"), None)
            .await
            .unwrap();
        assert_eq!(
            s.get("acme", "w", "k").await.unwrap().to_vec(),
            vec![Secret::new("v1")]
        );
        s.rm("acme", "w", "k").await.unwrap();
        assert!(s.get("acme", "w", "k").await.is_err());
    }

    /// The request path holds the store in shared state and awaits it inside spawned tasks.
    #[test]
    fn the_store_and_its_futures_can_cross_threads() {
        fn shared<T: Send + Sync>(_: &T) {}
        fn sendable<T: Send>(_: T) {}
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::ZERO);
        shared(&s);
        sendable(s.get("acme", "w", "k"));
        sendable(s.set("acme", "w", "k", Secret::new("v"), None));
        sendable(s.list("acme", None));
        sendable(s.rm("acme", "w", "k"));
    }

    // Security property: a secret whose value is empty (a `{file:}` holding only a
    // newline, an empty `{value:}`) is unavailable, never an empty key.
    #[tokio::test]
    async fn an_empty_value_is_unavailable_and_never_returned() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("newline.txt"), "\n").unwrap();
        std::fs::write(
            dir.path().join("secrets.yaml"),
            "rooms: {acme: {w: {f: {file: newline.txt}, v: {value: \"\"}, s: {value: \" \"}}}}\n",
        )
        .unwrap();
        let s = store(&dir, Duration::from_secs(60));
        for id in ["f", "v", "s"] {
            let err = s.get("acme", "w", id).await.unwrap_err();
            assert!(matches!(err, SecretError::Unavailable(_)), "{id}: {err}");
        }
        let err = s
            .set("acme", "w", "k", Secret::new(" \n"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, SecretError::Invalid(_)));
    }

    #[tokio::test]
    async fn names_with_a_nul_or_empty_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::ZERO);
        for (r, i, k) in [("", "w", "k"), ("a", "w\0x", "k"), ("a", "w", "")] {
            let err = s.set(r, i, k, Secret::new("v"), None).await.unwrap_err();
            assert!(matches!(err, SecretError::Invalid(_)));
        }
    }

    /// Trust on first use: the first value is stored, a later one never replaces it.
    #[tokio::test]
    async fn set_if_absent_stores_only_the_first_value() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Duration::from_secs(3600));
        // A cached "missing" does not hide the first write.
        assert!(s.get("acme", "w", "hook").await.is_err());
        assert!(s
            .set_if_absent("acme", "w", "hook", Secret::new("first"))
            .await
            .unwrap());
        assert!(!s
            .set_if_absent("acme", "w", "hook", Secret::new("second"))
            .await
            .unwrap());
        assert_eq!(
            s.get("acme", "w", "hook").await.unwrap().to_vec(),
            vec![Secret::new("first")]
        );
        s.rm("acme", "w", "hook").await.unwrap();
        assert!(s
            .set_if_absent("acme", "w", "hook", Secret::new("again"))
            .await
            .unwrap());
    }
}
