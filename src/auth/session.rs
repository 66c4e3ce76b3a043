//! IAP sessions and the short-lived records of the sign-in flow.
//!
//! Owns where sessions live and how long: in Redis when the config has `redis` (shared by
//! every instance), else in memory (the embedded single-instance mode). A session is
//! stored under the SHA-256 digest of its random id, so the store (or a dump of it) never
//! holds a value that works as a cookie. Sessions end at their absolute expiry, after
//! `idle_ttl` without use, or when signed out or revoked by user (`roomgate sessions
//! revoke`). Each sign-in host session keeps the set of route domain sessions handed off
//! from it (its children, until its absolute expiry), so signing out anywhere ends the
//! sign-in host session and every domain session that came from it. Each instance caches a looked-up session for at most
//! [`CACHE_TTL`], which bounds how long a revocation takes to reach every instance.
//!
//! It also keeps single-use records (handoff codes, sign-in flows, spent return states)
//! and the counters behind login rate limits. It never logs ids, codes or the Redis URL.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Script;
use serde::{Deserialize, Serialize};

use super::signing::{digest, random_id};
use crate::config::Config;
use crate::queue::redis::{bounded, connection, ManagedConnection};
use crate::sensitive::Secret;

/// How long one instance trusts a session it read from Redis before reading it again.
/// Revocation reaches every instance within this.
pub const CACHE_TTL: Duration = Duration::from_millis(500);
/// Sessions cached per instance; the cache is emptied when it would grow past this.
const CACHE_CAPACITY: usize = 10_000;
/// Deadline for any one Redis round trip.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// A signed-in user, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The provider's subject (`sub`), or the email for the static provider.
    pub subject: String,
    /// Lowercased email: the identity membership rules and `X-MESHAGENT-USER` use.
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Unix seconds.
    pub issued: i64,
    /// Absolute end, unix seconds; never extended.
    pub expires: i64,
    /// `oidc` or `static`.
    pub provider: String,
    /// Digest of the sign-in host session this one was handed off from; sign-out ends both.
    /// `None` for the sign-in host's own session.
    #[serde(default)]
    pub parent: Option<String>,
    /// The canonical host the session was issued for: the route domain it was handed off
    /// to, or the sign-in host for its own session. A session is valid on that host only;
    /// one stored without a host is valid nowhere.
    #[serde(default)]
    pub host: Option<String>,
}

impl Session {
    /// True when this is a route domain's session issued for `host` (canonical).
    pub fn is_domain_session_for(&self, host: &str) -> bool {
        self.parent.is_some() && self.host.as_deref() == Some(host)
    }

    /// True when this is the sign-in host's own session and `host` is that sign-in host.
    pub fn is_sign_in_session_for(&self, host: &str) -> bool {
        self.parent.is_none() && self.host.as_deref() == Some(host)
    }
}

/// The session store could not answer; requests fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

/// Sessions, single-use records and counters, in Redis or in memory.
pub struct SessionStore {
    backend: Backend,
    /// Shared, not copied, with each request that reads them.
    cache: Mutex<HashMap<String, (Arc<Session>, Instant)>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis { .. } => "redis",
        };
        f.debug_struct("SessionStore")
            .field("backend", &kind)
            .finish()
    }
}

enum Backend {
    Memory(Mutex<Memory>),
    Redis {
        conn: ManagedConnection,
        revoke: Script,
        create: Script,
        sign_out: Script,
    },
}

#[derive(Default)]
struct Memory {
    /// digest → (session, last use)
    sessions: HashMap<String, (Arc<Session>, i64)>,
    /// email → digests
    users: HashMap<String, HashSet<String>>,
    /// sign-in host session digest → (digests of the sessions handed off from it, expiry)
    children: HashMap<String, (HashSet<String>, i64)>,
    /// key → (value, expiry)
    once: HashMap<String, (String, i64)>,
    /// key → (count, window end)
    counters: HashMap<String, (u64, i64)>,
}

fn session_key(digest: &str) -> String {
    format!("roomgate:session:{digest}")
}

fn user_key(email: &str) -> String {
    format!("roomgate:user-sessions:{email}")
}

fn children_key(parent: &str) -> String {
    format!("roomgate:session-children:{parent}")
}

fn once_key(kind: &str, digest: &str) -> String {
    format!("roomgate:once:{kind}:{digest}")
}

fn counter_key(scope: &str, key: &str) -> String {
    format!("roomgate:ratelimit:{scope}:{}", digest(key))
}

/// Delete every session of a user. KEYS: the user's set. ARGV: the session key prefix.
const REVOKE_SCRIPT: &str = r#"
local digests = redis.call('SMEMBERS', KEYS[1])
for _, d in ipairs(digests) do
  redis.call('DEL', ARGV[1] .. d)
end
redis.call('DEL', KEYS[1])
return #digests
"#;

/// Store a session, and for a domain session record it as a child of its parent, but only
/// while the parent exists (a handoff redeemed after sign-out creates nothing). KEYS: the
/// session, the user's set, then for a domain session the parent's session and children
/// set. ARGV: the JSON, its TTL (ms), the digest, the sets' TTL (ms). Returns 1 if stored.
const CREATE_SCRIPT: &str = r#"
if #KEYS == 4 and redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local sets = {KEYS[2]}
if #KEYS == 4 then
  sets[2] = KEYS[4]
end
for _, k in ipairs(sets) do
  redis.call('SADD', k, ARGV[3])
  redis.call('PEXPIRE', k, ARGV[4], 'NX')
  redis.call('PEXPIRE', k, ARGV[4], 'GT')
end
return 1
"#;

/// Sign-out: delete a sign-in host session, every session handed off from it, and the
/// session signed out from. KEYS: the root's children set. ARGV: the session key prefix,
/// the root's digest, the signed-out session's digest. Returns the children's digests.
const SIGN_OUT_SCRIPT: &str = r#"
local digests = redis.call('SMEMBERS', KEYS[1])
for _, d in ipairs(digests) do
  redis.call('DEL', ARGV[1] .. d)
end
redis.call('DEL', KEYS[1], ARGV[1] .. ARGV[2], ARGV[1] .. ARGV[3])
return digests
"#;

fn ms(secs: i64) -> i64 {
    secs.saturating_mul(1000).max(1)
}

impl SessionStore {
    /// Redis at `redis.url` when configured, else memory. Connects lazily.
    pub fn from_config(config: &Config) -> Result<SessionStore, StoreError> {
        match &config.redis_url {
            Some(url) => SessionStore::redis(url),
            None => Ok(SessionStore::memory()),
        }
    }

    pub fn memory() -> SessionStore {
        SessionStore {
            backend: Backend::Memory(Mutex::new(Memory::default())),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn redis(url: &Secret) -> Result<SessionStore, StoreError> {
        let conn = connection(url, STORE_TIMEOUT)
            .map_err(|_| StoreError("the Redis URL is not valid".into()))?;
        Ok(SessionStore {
            backend: Backend::Redis {
                conn,
                revoke: Script::new(REVOKE_SCRIPT),
                create: Script::new(CREATE_SCRIPT),
                sign_out: Script::new(SIGN_OUT_SCRIPT),
            },
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn mem(m: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<Session>, Instant)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Store a new session and return its id (the cookie value). Only the id's digest is
    /// stored. Lives until `session.expires`, or `idle` without use. A domain session (one
    /// with a `parent`) is recorded as a child of that sign-in host session; `Ok(None)`
    /// when the parent has ended (signed out since the handoff).
    pub async fn create(
        &self,
        session: &Session,
        idle: Duration,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let id = random_id();
        let d = digest(&id);
        let remaining = session.expires - now;
        if remaining <= 0 {
            return Err(StoreError("the session would already be expired".into()));
        }
        let ttl = remaining.min(idle.as_secs() as i64).max(1);
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                if let Some(p) = &session.parent {
                    let live = m.sessions.get(p).is_some_and(|(s, last)| {
                        s.expires > now && now - *last < idle.as_secs() as i64
                    });
                    if !live {
                        return Ok(None);
                    }
                    m.children.retain(|_, (_, exp)| *exp > now);
                    m.children
                        .entry(p.clone())
                        .or_insert_with(|| (HashSet::new(), session.expires + 60))
                        .0
                        .insert(d.clone());
                }
                m.sessions
                    .insert(d.clone(), (Arc::new(session.clone()), now));
                m.users.entry(session.email.clone()).or_default().insert(d);
            }
            Backend::Redis { conn, create, .. } => {
                let json = serde_json::to_string(session)
                    .map_err(|e| StoreError(format!("encoding a session: {e}")))?;
                let mut inv = create.prepare_invoke();
                inv.key(session_key(&d)).key(user_key(&session.email));
                if let Some(p) = &session.parent {
                    inv.key(session_key(p)).key(children_key(p));
                }
                inv.arg(json).arg(ms(ttl)).arg(&d).arg(ms(remaining + 60));
                let mut conn = conn.clone();
                let stored: i64 = bounded(STORE_TIMEOUT, inv.invoke_async(&mut conn))
                    .await
                    .map_err(StoreError)?;
                if stored == 0 {
                    return Ok(None);
                }
            }
        }
        Ok(Some(id))
    }

    /// The live session for a cookie value, refreshing its idle deadline. `Ok(None)` when
    /// it does not exist, has expired, or was revoked.
    pub async fn get(
        &self,
        id: &str,
        idle: Duration,
        now: i64,
    ) -> Result<Option<(String, Arc<Session>)>, StoreError> {
        if id.len() > 128 {
            return Ok(None);
        }
        let d = digest(id);
        self.get_by_digest(&d, idle, now)
            .await
            .map(|s| s.map(|s| (d, s)))
    }

    async fn get_by_digest(
        &self,
        d: &str,
        idle: Duration,
        now: i64,
    ) -> Result<Option<Arc<Session>>, StoreError> {
        let idle_secs = idle.as_secs() as i64;
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let live = match m.sessions.get_mut(d) {
                    Some((s, last)) if s.expires > now && now - *last < idle_secs => {
                        *last = now;
                        Some(Arc::clone(s))
                    }
                    Some(_) => None,
                    None => return Ok(None),
                };
                if live.is_none() {
                    m.sessions.remove(d);
                }
                Ok(live)
            }
            Backend::Redis { conn, .. } => {
                if let Some((s, at)) = self.cache().get(d) {
                    if at.elapsed() < CACHE_TTL && s.expires > now {
                        return Ok(Some(Arc::clone(s)));
                    }
                }
                let key = session_key(d);
                let mut conn = conn.clone();
                let json: Option<String> = bounded(
                    STORE_TIMEOUT,
                    redis::cmd("GET").arg(&key).query_async(&mut conn),
                )
                .await
                .map_err(StoreError)?;
                let Some(session) = json.and_then(|j| serde_json::from_str::<Session>(&j).ok())
                else {
                    self.cache().remove(d);
                    return Ok(None);
                };
                if session.expires <= now {
                    self.cache().remove(d);
                    return Ok(None);
                }
                let ttl = (session.expires - now).min(idle_secs).max(1);
                // Extend the idle deadline; a no-op if the session was deleted meanwhile.
                let _: bool = bounded(
                    STORE_TIMEOUT,
                    redis::cmd("PEXPIRE")
                        .arg(&key)
                        .arg(ms(ttl))
                        .query_async(&mut conn),
                )
                .await
                .map_err(StoreError)?;
                let mut cache = self.cache();
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                let session = Arc::new(session);
                cache.insert(d.to_owned(), (Arc::clone(&session), Instant::now()));
                Ok(Some(session))
            }
        }
    }

    /// Sign-out by the digest of a session id: end that session, the sign-in host session
    /// it was handed off from (or itself, if it is one), and every other session handed off
    /// from that sign-in host session.
    pub async fn sign_out(&self, d: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let root = m
                    .sessions
                    .get(d)
                    .and_then(|(s, _)| s.parent.clone())
                    .unwrap_or_else(|| d.to_owned());
                let mut ended = m.children.remove(&root).map(|c| c.0).unwrap_or_default();
                ended.insert(root);
                ended.insert(d.to_owned());
                for x in &ended {
                    if let Some((s, _)) = m.sessions.remove(x) {
                        if let Some(set) = m.users.get_mut(&s.email) {
                            set.remove(x);
                        }
                    }
                }
                Ok(())
            }
            Backend::Redis { conn, sign_out, .. } => {
                let mut conn = conn.clone();
                let json: Option<String> = bounded(
                    STORE_TIMEOUT,
                    redis::cmd("GET").arg(session_key(d)).query_async(&mut conn),
                )
                .await
                .map_err(StoreError)?;
                let root = json
                    .and_then(|j| serde_json::from_str::<Session>(&j).ok())
                    .and_then(|s| s.parent)
                    .unwrap_or_else(|| d.to_owned());
                let mut inv = sign_out.prepare_invoke();
                inv.key(children_key(&root))
                    .arg(session_key(""))
                    .arg(&root)
                    .arg(d);
                let children: Vec<String> = bounded(STORE_TIMEOUT, inv.invoke_async(&mut conn))
                    .await
                    .map_err(StoreError)?;
                let mut cache = self.cache();
                cache.retain(|k, (s, _)| {
                    k != d
                        && *k != root
                        && s.parent.as_deref() != Some(root.as_str())
                        && !children.contains(k)
                });
                Ok(())
            }
        }
    }

    /// End every session of a user; returns how many there were.
    pub async fn revoke_user(&self, email: &str) -> Result<u64, StoreError> {
        let email = email.trim().to_ascii_lowercase();
        self.cache().retain(|_, (s, _)| s.email != email);
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let digests = m.users.remove(&email).unwrap_or_default();
                for d in &digests {
                    m.sessions.remove(d);
                }
                Ok(digests.len() as u64)
            }
            Backend::Redis { conn, revoke, .. } => {
                let mut conn = conn.clone();
                let mut inv = revoke.prepare_invoke();
                inv.key(user_key(&email)).arg(session_key(""));
                bounded(STORE_TIMEOUT, inv.invoke_async(&mut conn))
                    .await
                    .map_err(StoreError)
            }
        }
    }

    /// Keep `value` under `kind` and the digest of `id` for `ttl`; `false` if one exists.
    pub async fn put_once(
        &self,
        kind: &str,
        id: &str,
        value: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<bool, StoreError> {
        let key = once_key(kind, &digest(id));
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                m.once.retain(|_, (_, exp)| *exp > now);
                if m.once.contains_key(&key) {
                    return Ok(false);
                }
                m.once
                    .insert(key, (value.to_owned(), now + ttl.as_secs().max(1) as i64));
                Ok(true)
            }
            Backend::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let set: Option<String> = bounded(
                    STORE_TIMEOUT,
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(value)
                        .arg("PX")
                        .arg(ttl.as_millis().max(1) as u64)
                        .arg("NX")
                        .query_async(&mut conn),
                )
                .await
                .map_err(StoreError)?;
                Ok(set.is_some())
            }
        }
    }

    /// Remove and return the record (single use): a second take finds nothing.
    pub async fn take_once(
        &self,
        kind: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        if id.is_empty() || id.len() > 128 {
            return Ok(None);
        }
        let key = once_key(kind, &digest(id));
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m)
                .once
                .remove(&key)
                .filter(|(_, exp)| *exp > now)
                .map(|(v, _)| v)),
            Backend::Redis { conn, .. } => {
                let mut conn = conn.clone();
                bounded(
                    STORE_TIMEOUT,
                    redis::cmd("GETDEL").arg(&key).query_async(&mut conn),
                )
                .await
                .map_err(StoreError)
            }
        }
    }

    /// Read the record without using it up.
    pub async fn peek_once(
        &self,
        kind: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        if id.is_empty() || id.len() > 128 {
            return Ok(None);
        }
        let key = once_key(kind, &digest(id));
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m)
                .once
                .get(&key)
                .filter(|(_, exp)| *exp > now)
                .map(|(v, _)| v.clone())),
            Backend::Redis { conn, .. } => {
                let mut conn = conn.clone();
                bounded(
                    STORE_TIMEOUT,
                    redis::cmd("GET").arg(&key).query_async(&mut conn),
                )
                .await
                .map_err(StoreError)
            }
        }
    }

    /// Count one event for `(scope, key)` in a fixed window; returns the count so far.
    pub async fn hit(
        &self,
        scope: &str,
        key: &str,
        window: Duration,
        now: i64,
    ) -> Result<u64, StoreError> {
        let k = counter_key(scope, key);
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                m.counters.retain(|_, (_, end)| *end > now);
                let e = m
                    .counters
                    .entry(k)
                    .or_insert((0, now + window.as_secs().max(1) as i64));
                e.0 += 1;
                Ok(e.0)
            }
            Backend::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("INCR")
                    .arg(&k)
                    .cmd("PEXPIRE")
                    .arg(&k)
                    .arg(window.as_millis().max(1) as u64)
                    .arg("NX")
                    .ignore();
                let (n,): (u64,) = bounded(STORE_TIMEOUT, pipe.query_async(&mut conn))
                    .await
                    .map_err(StoreError)?;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(now: i64) -> Session {
        Session {
            subject: "s".into(),
            email: "alice@acme.test".into(),
            name: None,
            groups: vec![],
            issued: now,
            expires: now + 100,
            provider: "static".into(),
            parent: None,
            host: None,
        }
    }

    #[test]
    fn a_session_is_valid_only_on_the_host_and_in_the_role_it_was_issued_for() {
        let sign_in = Session {
            host: Some("auth.test".into()),
            ..session(0)
        };
        assert!(sign_in.is_sign_in_session_for("auth.test"));
        assert!(!sign_in.is_sign_in_session_for("app.acme.test"));
        assert!(!sign_in.is_domain_session_for("auth.test"));
        let domain = Session {
            host: Some("app.acme.test".into()),
            parent: Some("d".into()),
            ..session(0)
        };
        assert!(domain.is_domain_session_for("app.acme.test"));
        assert!(!domain.is_domain_session_for("docs.acme.test"));
        assert!(!domain.is_sign_in_session_for("app.acme.test"));
        let unbound = Session {
            parent: Some("d".into()),
            ..session(0)
        };
        assert!(!unbound.is_domain_session_for("app.acme.test"));
        assert!(!session(0).is_sign_in_session_for("auth.test"));
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_id_and_stored_under_its_digest() {
        let store = SessionStore::memory();
        let id = store
            .create(&session(0), Duration::from_secs(50), 0)
            .await
            .unwrap()
            .unwrap();
        let (d, s) = store
            .get(&id, Duration::from_secs(50), 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d, digest(&id));
        assert_eq!(s.email, "alice@acme.test");
        let Backend::Memory(m) = &store.backend else {
            unreachable!()
        };
        assert!(!SessionStore::mem(m).sessions.contains_key(&id));
    }

    #[tokio::test]
    async fn a_session_ends_after_its_idle_time_without_use() {
        let store = SessionStore::memory();
        let idle = Duration::from_secs(10);
        let id = store.create(&session(0), idle, 0).await.unwrap().unwrap();
        assert!(store.get(&id, idle, 9).await.unwrap().is_some());
        assert!(store.get(&id, idle, 18).await.unwrap().is_some());
        assert!(store.get(&id, idle, 28).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_session_ends_at_its_absolute_expiry_even_when_used() {
        let store = SessionStore::memory();
        let idle = Duration::from_secs(60);
        let id = store.create(&session(0), idle, 0).await.unwrap().unwrap();
        for t in [30, 60, 90, 99] {
            assert!(store.get(&id, idle, t).await.unwrap().is_some());
        }
        assert!(store.get(&id, idle, 100).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn revoking_a_user_ends_all_their_sessions() {
        let store = SessionStore::memory();
        let idle = Duration::from_secs(60);
        let a = store.create(&session(0), idle, 0).await.unwrap().unwrap();
        let b = store.create(&session(0), idle, 0).await.unwrap().unwrap();
        assert_eq!(store.revoke_user("Alice@acme.test").await.unwrap(), 2);
        assert!(store.get(&a, idle, 1).await.unwrap().is_none());
        assert!(store.get(&b, idle, 1).await.unwrap().is_none());
    }

    fn child(parent: &str, host: &str) -> Session {
        Session {
            parent: Some(parent.into()),
            host: Some(host.into()),
            ..session(0)
        }
    }

    #[tokio::test]
    async fn signing_out_anywhere_ends_the_sign_in_session_and_every_session_handed_off_from_it() {
        let idle = Duration::from_secs(60);
        for out_on in ["app", "sign-in host"] {
            let store = SessionStore::memory();
            let root = store.create(&session(0), idle, 0).await.unwrap().unwrap();
            let other = store.create(&session(0), idle, 0).await.unwrap().unwrap();
            let app = child(&digest(&root), "app.test");
            let app = store.create(&app, idle, 0).await.unwrap().unwrap();
            let docs = child(&digest(&root), "docs.test");
            let docs = store.create(&docs, idle, 0).await.unwrap().unwrap();
            let gone = if out_on == "app" { &app } else { &root };
            store.sign_out(&digest(gone)).await.unwrap();
            for id in [&root, &app, &docs] {
                assert!(store.get(id, idle, 1).await.unwrap().is_none(), "{out_on}");
            }
            assert!(
                store.get(&other, idle, 1).await.unwrap().is_some(),
                "another sign-in of the same user stays"
            );
        }
    }

    #[tokio::test]
    async fn no_session_is_handed_off_from_a_sign_in_session_that_has_ended() {
        let idle = Duration::from_secs(60);
        let store = SessionStore::memory();
        let root = store.create(&session(0), idle, 0).await.unwrap().unwrap();
        store.sign_out(&digest(&root)).await.unwrap();
        let late = child(&digest(&root), "app.test");
        assert_eq!(store.create(&late, idle, 1).await.unwrap(), None);
        let unknown = child(&digest("never issued"), "app.test");
        assert_eq!(store.create(&unknown, idle, 1).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_single_use_record_can_be_taken_once() {
        let store = SessionStore::memory();
        let ttl = Duration::from_secs(60);
        assert!(store.put_once("code", "c1", "v", ttl, 0).await.unwrap());
        assert!(!store.put_once("code", "c1", "w", ttl, 0).await.unwrap());
        assert_eq!(
            store.peek_once("code", "c1", 1).await.unwrap().as_deref(),
            Some("v")
        );
        assert_eq!(
            store.take_once("code", "c1", 1).await.unwrap().as_deref(),
            Some("v")
        );
        assert_eq!(store.take_once("code", "c1", 1).await.unwrap(), None);
        assert!(store.put_once("code", "c2", "v", ttl, 0).await.unwrap());
        assert_eq!(store.take_once("code", "c2", 60).await.unwrap(), None);
    }

    #[tokio::test]
    async fn counters_count_within_their_window() {
        let store = SessionStore::memory();
        let w = Duration::from_secs(10);
        assert_eq!(store.hit("login", "a", w, 0).await.unwrap(), 1);
        assert_eq!(store.hit("login", "a", w, 5).await.unwrap(), 2);
        assert_eq!(store.hit("login", "b", w, 5).await.unwrap(), 1);
        assert_eq!(store.hit("login", "a", w, 10).await.unwrap(), 1);
    }
}
