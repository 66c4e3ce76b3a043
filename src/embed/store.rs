//! Where embed sessions, their credentials and management keys live: the
//! [`EmbedStore`] trait, and its in-memory implementation for the embedded
//! single-instance mode (management keys then live in `embed.keys_file`).
//!
//! Every credential is kept under its digest only, next to the id of the session it
//! belongs to; a session's credentials end with it (revocation deletes the session).
//! Expiry is judged against the `now` passed in. The Redis implementation is
//! `store_redis.rs`. Nothing here logs a digest or a record.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::session::EmbedSession;

/// The store could not answer; callers fail closed (503 for the API, 401 never).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("embed store unavailable: {0}")]
pub struct StoreError(pub String);

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A management key as stored: never the key, only its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    /// Rooms the key may mint sessions for.
    pub rooms: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// `base64url(SHA-256(key))`.
    pub sha256: String,
    #[serde(default)]
    pub last_used: Option<i64>,
}

impl KeyRecord {
    pub fn grants(&self, room: &str) -> bool {
        self.rooms.iter().any(|r| r == room)
    }
}

/// Which credential of a session a digest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Token,
    Cookie,
    Launch,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Cookie => "cookie",
            Kind::Launch => "launch",
        }
    }
}

/// A credential to record: its digest and its end (unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub digest: &'a str,
    pub expires_at: i64,
}

/// Embed sessions and management keys, shared by every instance (Redis) or in memory.
pub trait EmbedStore: Send + Sync {
    /// The key stored under `digest`, marking it used at `now`.
    fn find_key<'a>(&'a self, digest: &'a str, now: i64) -> StoreFuture<'a, Option<KeyRecord>>;
    fn put_key<'a>(&'a self, key: &'a KeyRecord) -> StoreFuture<'a, ()>;
    fn list_keys(&self) -> StoreFuture<'_, Vec<KeyRecord>>;
    /// `false` when no key has this id.
    fn remove_key<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;

    /// Store a new session with its first access token and its launch code.
    fn create<'a>(
        &'a self,
        session: &'a EmbedSession,
        token: Grant<'a>,
        launch: Grant<'a>,
        now: i64,
    ) -> StoreFuture<'a, ()>;
    /// Add an access token to a live session; `None` when the session has ended.
    fn add_token<'a>(
        &'a self,
        sid: &'a str,
        token: Grant<'a>,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedSession>>;
    fn session<'a>(&'a self, sid: &'a str, now: i64) -> StoreFuture<'a, Option<EmbedSession>>;
    /// End a session and with it every credential; `false` when there was none.
    fn revoke<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, bool>;
    /// Use up a launch code and record the cookie it is exchanged for; `None` when the
    /// code was used, expired or never issued, or the session has ended.
    fn launch<'a>(
        &'a self,
        sid: &'a str,
        code_digest: &'a str,
        cookie: Grant<'a>,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedSession>>;
    /// The live session a token or cookie digest belongs to.
    fn by_credential<'a>(
        &'a self,
        sid: &'a str,
        kind: Kind,
        digest: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedSession>>;
}

/// The embedded mode's store: sessions in memory, keys in `embed.keys_file`.
pub struct MemoryStore {
    keys: KeysFile,
    state: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    sessions: HashMap<String, EmbedSession>,
    /// (kind, digest) → (session id, end)
    credentials: HashMap<(Kind, String), (String, i64)>,
    /// key id → last use, for `keys list` (written to the keys file's sidecar).
    used: HashMap<String, i64>,
}

impl MemoryStore {
    pub fn new(keys_file: PathBuf) -> MemoryStore {
        MemoryStore {
            keys: KeysFile { path: keys_file },
            state: Mutex::new(Memory::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live(m: &Memory, sid: &str, now: i64) -> Option<EmbedSession> {
        m.sessions.get(sid).filter(|s| s.expires_at > now).cloned()
    }
}

fn ready<'a, T: Send + 'a>(v: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

impl EmbedStore for MemoryStore {
    fn find_key<'a>(&'a self, digest: &'a str, now: i64) -> StoreFuture<'a, Option<KeyRecord>> {
        let found = self.keys.read().map(|keys| {
            keys.into_iter().find(|k| {
                crate::sensitive::Secret::new(k.sha256.as_bytes()).ct_eq(digest.as_bytes())
            })
        });
        if let Ok(Some(k)) = &found {
            let stale = {
                let mut m = self.lock();
                let last = m.used.insert(k.id.clone(), now);
                last.is_none_or(|t| now - t >= 60)
            };
            if stale {
                let used = self.lock().used.clone();
                self.keys.write_used(&used);
            }
        }
        ready(found)
    }

    fn put_key<'a>(&'a self, key: &'a KeyRecord) -> StoreFuture<'a, ()> {
        ready(self.keys.read().and_then(|mut keys| {
            keys.push(key.clone());
            self.keys.write(&keys)
        }))
    }

    fn list_keys(&self) -> StoreFuture<'_, Vec<KeyRecord>> {
        let used = self.keys.read_used();
        ready(self.keys.read().map(|mut keys| {
            for k in &mut keys {
                k.last_used = used.get(&k.id).copied();
            }
            keys
        }))
    }

    fn remove_key<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        ready(self.keys.read().and_then(|mut keys| {
            let before = keys.len();
            keys.retain(|k| k.id != id);
            if keys.len() == before {
                return Ok(false);
            }
            self.keys.write(&keys).map(|()| true)
        }))
    }

    fn create<'a>(
        &'a self,
        session: &'a EmbedSession,
        token: Grant<'a>,
        launch: Grant<'a>,
        now: i64,
    ) -> StoreFuture<'a, ()> {
        let mut m = self.lock();
        m.sessions.retain(|_, s| s.expires_at > now);
        m.credentials.retain(|_, (_, end)| *end > now);
        m.sessions.insert(session.id.clone(), session.clone());
        for (kind, g) in [(Kind::Token, token), (Kind::Launch, launch)] {
            m.credentials.insert(
                (kind, g.digest.to_owned()),
                (session.id.clone(), g.expires_at),
            );
        }
        ready(Ok(()))
    }

    fn add_token<'a>(
        &'a self,
        sid: &'a str,
        token: Grant<'a>,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedSession>> {
        let mut m = self.lock();
        let live = Self::live(&m, sid, now);
        if live.is_some() {
            m.credentials.insert(
                (Kind::Token, token.digest.to_owned()),
                (sid.to_owned(), token.expires_at),
            );
        }
        ready(Ok(live))
    }

    fn session<'a>(&'a self, sid: &'a str, now: i64) -> StoreFuture<'a, Option<EmbedSession>> {
        ready(Ok(Self::live(&self.lock(), sid, now)))
    }

    fn revoke<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, bool> {
        let mut m = self.lock();
        let existed = m.sessions.remove(sid).is_some();
        m.credentials.retain(|_, (s, _)| s != sid);
        ready(Ok(existed))
    }

    fn launch<'a>(
        &'a self,
        sid: &'a str,
        code_digest: &'a str,
        cookie: Grant<'a>,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedSession>> {
        let mut m = self.lock();
        let code = m
            .credentials
            .remove(&(Kind::Launch, code_digest.to_owned()))
            .filter(|(s, end)| s == sid && *end > now);
        let live = code.and_then(|_| Self::live(&m, sid, now));
        if live.is_some() {
            m.credentials.insert(
                (Kind::Cookie, cookie.digest.to_owned()),
                (sid.to_owned(), cookie.expires_at),
            );
        }
        ready(Ok(live))
    }

    fn by_credential<'a>(
        &'a self,
        sid: &'a str,
        kind: Kind,
        digest: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedSession>> {
        let m = self.lock();
        let ok = m
            .credentials
            .get(&(kind, digest.to_owned()))
            .is_some_and(|(s, end)| s == sid && *end > now);
        ready(Ok(if ok { Self::live(&m, sid, now) } else { None }))
    }
}

/// `embed.keys_file`: the management keys of the embedded mode, as JSON, written whole
/// (to a temporary file, then renamed) with mode 0600. Last uses go to a sidecar file
/// (`<keys_file>.used`) that only the serving process writes.
pub struct KeysFile {
    pub path: PathBuf,
}

#[derive(Serialize, Deserialize, Default)]
struct KeysDoc {
    keys: Vec<KeyRecord>,
}

impl KeysFile {
    pub fn read(&self) -> Result<Vec<KeyRecord>, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<KeysDoc>(&bytes)
                .map(|d| d.keys)
                .map_err(|_| StoreError(format!("{} is not a keys file", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StoreError(format!("reading {}: {e}", self.path.display()))),
        }
    }

    pub fn write(&self, keys: &[KeyRecord]) -> Result<(), StoreError> {
        let doc = KeysDoc {
            keys: keys
                .iter()
                .map(|k| KeyRecord {
                    last_used: None,
                    ..k.clone()
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&doc)
            .map_err(|e| StoreError(format!("encoding the keys file: {e}")))?;
        write_private(&self.path, &json)
    }

    fn used_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".used");
        PathBuf::from(p)
    }

    fn read_used(&self) -> HashMap<String, i64> {
        std::fs::read(self.used_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_used(&self, used: &HashMap<String, i64>) {
        if let Ok(json) = serde_json::to_vec(used) {
            if let Err(e) = write_private(&self.used_path(), &json) {
                tracing::warn!(error = %e, "could not record a management key's last use");
            }
        }
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory (mode 0600),
/// renamed over it: a reader sees the old file or the new one, never half of one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |e: std::io::Error| StoreError(format!("writing {}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("keys"),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, expires_at: i64) -> EmbedSession {
        EmbedSession {
            id: id.into(),
            room: "acme".into(),
            domain: "app.acme.test".into(),
            path: "/".into(),
            user: "u".into(),
            api: serde_json::json!({}),
            allowed_origins: vec!["https://host.test".into()],
            created_at: 0,
            expires_at,
        }
    }

    fn grant(digest: &str, expires_at: i64) -> Grant<'_> {
        Grant { digest, expires_at }
    }

    /// Whether a store call found (or made) what it was asked for.
    async fn found<T>(call: StoreFuture<'_, Option<T>>) -> bool {
        call.await.unwrap().is_some()
    }

    #[tokio::test]
    async fn a_launch_code_is_used_once_and_gives_a_cookie() {
        let dir = tempfile::tempdir().unwrap();
        let s = MemoryStore::new(dir.path().join("keys.json"));
        s.create(&session("es_a", 100), grant("t", 50), grant("l", 10), 0)
            .await
            .unwrap();
        assert!(found(s.by_credential("es_a", Kind::Token, "t", 1)).await);
        assert!(!found(s.by_credential("es_a", Kind::Token, "l", 1)).await);
        assert!(found(s.launch("es_a", "l", grant("c", 100), 1)).await);
        assert!(!found(s.launch("es_a", "l", grant("c2", 100), 1)).await);
        assert!(found(s.by_credential("es_a", Kind::Cookie, "c", 2)).await);
        assert!(!found(s.by_credential("es_b", Kind::Cookie, "c", 2)).await);
    }

    #[tokio::test]
    async fn credentials_end_at_their_expiry_and_with_their_session() {
        let dir = tempfile::tempdir().unwrap();
        let s = MemoryStore::new(dir.path().join("keys.json"));
        s.create(&session("es_a", 100), grant("t", 50), grant("l", 10), 0)
            .await
            .unwrap();
        assert!(!found(s.launch("es_a", "l", grant("c", 100), 10)).await);
        assert!(!found(s.by_credential("es_a", Kind::Token, "t", 50)).await);
        assert!(found(s.add_token("es_a", grant("t2", 100), 60)).await);
        assert!(found(s.by_credential("es_a", Kind::Token, "t2", 99)).await);
        assert!(!found(s.by_credential("es_a", Kind::Token, "t2", 100)).await);
        assert!(s.revoke("es_a").await.unwrap());
        assert!(!found(s.add_token("es_a", grant("t3", 100), 61)).await);
        assert!(!s.revoke("es_a").await.unwrap());
    }

    #[tokio::test]
    async fn keys_live_in_the_keys_file_as_digests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let s = MemoryStore::new(path.clone());
        let key = KeyRecord {
            id: "k1".into(),
            name: "backend".into(),
            rooms: vec!["acme".into()],
            created_at: 5,
            sha256: "digest-of-key".into(),
            last_used: None,
        };
        s.put_key(&key).await.unwrap();
        assert_eq!(
            s.find_key("digest-of-key", 9).await.unwrap().map(|k| k.id),
            Some("k1".into())
        );
        assert_eq!(s.find_key("other", 9).await.unwrap(), None);
        assert_eq!(s.list_keys().await.unwrap()[0].last_used, Some(9));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(s.remove_key("k1").await.unwrap());
        assert!(!s.remove_key("k1").await.unwrap());
        assert_eq!(s.find_key("digest-of-key", 10).await.unwrap(), None);
    }
}
