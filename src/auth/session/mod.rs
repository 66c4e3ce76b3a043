//! IAP sessions and the short-lived records of the sign-in flow.
//!
//! Owns what a session is and the rules around it; where sessions live is a
//! [`SessionBackend`]: Redis when the config has a `redis` block (shared by every
//! instance, on any topology), else memory (the embedded single-instance mode). A session
//! is stored under the SHA-256 digest of its random id, so the store (or a dump of it)
//! never holds a value that works as a cookie. Sessions end at their absolute expiry,
//! after `idle_ttl` without use, or when signed out or revoked by user (`roomgate sessions
//! revoke`). Each sign-in host session keeps the set of route domain sessions handed off
//! from it (its children, until its absolute expiry), so signing out anywhere ends the
//! sign-in host session and every domain session that came from it. An instance trusts a
//! session it read from Redis for at most [`CACHE_TTL`], which bounds how long a
//! revocation takes to reach every instance.
//!
//! It also keeps single-use records (handoff codes, sign-in flows, spent return states)
//! and the counters behind login rate limits. It never logs ids, codes or the Redis URL.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::signing::{digest, random_id};
use crate::kv::Kv;

pub use self::redis::CACHE_TTL;

/// Longest cookie value or record id looked up at all.
const MAX_ID_LEN: usize = 128;

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

    /// Seconds a new session lives without use at `now`: until its idle deadline, never
    /// past its absolute end; `None` when it has already ended.
    fn first_ttl(&self, idle: Duration, now: i64) -> Option<i64> {
        let remaining = self.expires - now;
        (remaining > 0).then(|| remaining.min(idle_secs(idle)).max(1))
    }
}

fn idle_secs(idle: Duration) -> i64 {
    i64::try_from(idle.as_secs()).unwrap_or(i64::MAX)
}

/// The session store could not answer; requests fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where sessions, single-use records and counters live. Sessions are named by the
/// digest of their id; records and counters by their full key.
pub trait SessionBackend: Send + Sync {
    /// Store `session` (not yet expired at `now`) under `digest`, to end after `idle`
    /// without use or at `session.expires`; a domain session is recorded as a child of
    /// its parent, and only while that parent lives: `false` when it has ended.
    fn create<'a>(
        &'a self,
        digest: &'a str,
        session: &'a Session,
        idle: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The live session under `digest`, its idle deadline pushed back to `idle` from now.
    fn get<'a>(
        &'a self,
        digest: &'a str,
        idle: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Arc<Session>>, StoreError>>;

    /// End the session under `digest`, the sign-in host session it came from (or itself,
    /// if it is one), and every session handed off from that one.
    fn sign_out<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// End every session of `email` (lowercased); how many there were.
    fn revoke_user<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Keep `value` under `key` for `ttl`; `false` when the key is taken.
    fn put_once<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Remove and return the record under `key`.
    fn take_once<'a>(
        &'a self,
        key: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// The record under `key`, left in place.
    fn peek_once<'a>(
        &'a self,
        key: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// Count one event under `key` in a fixed `window`; the count so far.
    fn hit<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
}

fn once_key(kind: &str, digest: &str) -> String {
    format!("roomgate:once:{kind}:{digest}")
}

fn counter_key(scope: &str, key: &str) -> String {
    format!("roomgate:ratelimit:{scope}:{}", digest(key))
}

/// Sessions, single-use records and counters, in the shared Redis or in memory.
pub struct SessionStore {
    backend: Box<dyn SessionBackend>,
    kind: &'static str,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("backend", &self.kind)
            .finish()
    }
}

impl SessionStore {
    /// In the shared Redis when there is one, else in memory.
    pub fn new(kv: Option<&Kv>) -> SessionStore {
        match kv {
            Some(kv) => SessionStore {
                backend: Box::new(redis::RedisSessions::new(kv)),
                kind: "redis",
            },
            None => SessionStore::memory(),
        }
    }

    pub fn memory() -> SessionStore {
        SessionStore {
            backend: Box::new(memory::MemorySessions::default()),
            kind: "memory",
        }
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
        if session.first_ttl(idle, now).is_none() {
            return Err(StoreError("the session would already be expired".into()));
        }
        let id = random_id();
        let stored = self
            .backend
            .create(&digest(&id), session, idle, now)
            .await?;
        Ok(stored.then_some(id))
    }

    /// The live session for a cookie value, refreshing its idle deadline. `Ok(None)` when
    /// it does not exist, has expired, or was revoked.
    pub async fn get(
        &self,
        id: &str,
        idle: Duration,
        now: i64,
    ) -> Result<Option<(String, Arc<Session>)>, StoreError> {
        if id.len() > MAX_ID_LEN {
            return Ok(None);
        }
        let d = digest(id);
        let found = self.backend.get(&d, idle, now).await?;
        Ok(found.map(|s| (d, s)))
    }

    /// Sign-out by the digest of a session id: end that session, the sign-in host session
    /// it was handed off from (or itself, if it is one), and every other session handed off
    /// from that sign-in host session.
    pub async fn sign_out(&self, d: &str) -> Result<(), StoreError> {
        self.backend.sign_out(d).await
    }

    /// End every session of a user; returns how many there were.
    pub async fn revoke_user(&self, email: &str) -> Result<u64, StoreError> {
        let email = email.trim().to_ascii_lowercase();
        self.backend.revoke_user(&email).await
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
        self.backend.put_once(&key, value, ttl, now).await
    }

    /// Remove and return the record (single use): a second take finds nothing.
    pub async fn take_once(
        &self,
        kind: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        match record_key(kind, id) {
            Some(key) => self.backend.take_once(&key, now).await,
            None => Ok(None),
        }
    }

    /// Read the record without using it up.
    pub async fn peek_once(
        &self,
        kind: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        match record_key(kind, id) {
            Some(key) => self.backend.peek_once(&key, now).await,
            None => Ok(None),
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
        self.backend
            .hit(&counter_key(scope, key), window, now)
            .await
    }
}

/// The key of the single-use record `id` of `kind`; `None` for an id no record has
/// (empty, or longer than any id roomgate issues).
fn record_key(kind: &str, id: &str) -> Option<String> {
    let valid = !id.is_empty() && id.len() <= MAX_ID_LEN;
    valid.then(|| once_key(kind, &digest(id)))
}
#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn session(now: i64) -> Session {
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

    #[test]
    fn a_new_session_lives_until_its_idle_deadline_but_never_past_its_end() {
        let idle = Duration::from_secs(30);
        assert_eq!(session(0).first_ttl(idle, 0), Some(30));
        assert_eq!(session(0).first_ttl(idle, 90), Some(10));
        assert_eq!(session(0).first_ttl(idle, 100), None);
    }

    #[tokio::test]
    async fn a_session_that_would_already_be_expired_is_not_created() {
        let store = SessionStore::memory();
        let err = store
            .create(&session(0), Duration::from_secs(50), 100)
            .await
            .unwrap_err();
        assert!(err.0.contains("expired"), "{err}");
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
