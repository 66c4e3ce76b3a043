//! Sessions in the shared Redis, on any topology.
//!
//! Every command names one key (or, for `DEL`, keys the cluster client splits by slot),
//! so nothing here needs keys to share a cluster slot. Where two keys must agree, the
//! order of the steps does it: a domain session is stored and recorded as its parent's
//! child before the parent is checked again, and a sign-out deletes the parent before it
//! reads the children, so a handoff racing a sign-out either sees the parent gone (and
//! removes its session itself) or is among the children the sign-out ends.
//!
//! Each instance caches a session it read for [`CACHE_TTL`]: a revocation or sign-out
//! elsewhere reaches it within that. Redis keys hold digests only, never a cookie value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use redis::{Cmd, FromRedisValue, Pipeline};

use super::{idle_secs, Session, SessionBackend, StoreError};
use crate::kv::{answer, Connection, Kv};

/// How long one instance trusts a session it read from Redis before reading it again.
/// Revocation reaches every instance within this.
pub const CACHE_TTL: Duration = Duration::from_millis(500);
/// Sessions cached per instance; the cache is emptied when it would grow past this.
const CACHE_CAPACITY: usize = 10_000;

fn session_key(digest: &str) -> String {
    format!("roomgate:session:{digest}")
}

fn user_key(email: &str) -> String {
    format!("roomgate:user-sessions:{email}")
}

fn children_key(parent: &str) -> String {
    format!("roomgate:session-children:{parent}")
}

fn ms(secs: i64) -> i64 {
    secs.saturating_mul(1000).max(1)
}

pub(super) struct RedisSessions {
    conn: Connection,
    /// Shared, not copied, with each request that reads them.
    cache: Mutex<HashMap<String, (Arc<Session>, Instant)>>,
}

impl RedisSessions {
    pub(super) fn new(kv: &Kv) -> RedisSessions {
        RedisSessions {
            conn: kv.connection(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, (Arc<Session>, Instant)>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run one command under the store's deadline.
    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        answer(cmd.query_async(&mut conn)).await.map_err(StoreError)
    }

    /// Run a pipeline (its keys all in one slot) under the store's deadline.
    async fn run_pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        answer(pipe.query_async(&mut conn))
            .await
            .map_err(StoreError)
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.run(redis::cmd("EXISTS").arg(key)).await
    }

    /// Add `member` to the set at `key`, which lives at least `ttl_ms` from now.
    async fn add_member(&self, key: &str, member: &str, ttl_ms: i64) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SADD")
            .arg(key)
            .arg(member)
            .ignore()
            .cmd("PEXPIRE")
            .arg(key)
            .arg(ttl_ms)
            .arg("NX")
            .ignore()
            .cmd("PEXPIRE")
            .arg(key)
            .arg(ttl_ms)
            .arg("GT")
            .ignore();
        self.run_pipe(&pipe).await
    }

    async fn create_stored(
        &self,
        d: &str,
        session: &Session,
        idle: Duration,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(ttl) = session.first_ttl(idle, now) else {
            return Ok(false);
        };
        let json = serde_json::to_string(session)
            .map_err(|e| StoreError(format!("encoding a session: {e}")))?;
        let sets_ttl = ms(session.expires - now + 60);
        if let Some(p) = &session.parent {
            if !self.exists(&session_key(p)).await? {
                return Ok(false);
            }
        }
        let key = session_key(d);
        self.run::<()>(redis::cmd("SET").arg(&key).arg(json).arg("PX").arg(ms(ttl)))
            .await?;
        self.add_member(&user_key(&session.email), d, sets_ttl)
            .await?;
        if let Some(p) = &session.parent {
            self.add_member(&children_key(p), d, sets_ttl).await?;
            // Signed out meanwhile: that sign-out may have read the children before this
            // one joined them, so this session ends here.
            if !self.exists(&session_key(p)).await? {
                self.run::<()>(redis::cmd("DEL").arg(&key)).await?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn get_stored(
        &self,
        d: &str,
        idle: Duration,
        now: i64,
    ) -> Result<Option<Arc<Session>>, StoreError> {
        if let Some((s, at)) = self.cache().get(d) {
            if at.elapsed() < CACHE_TTL && s.expires > now {
                return Ok(Some(Arc::clone(s)));
            }
        }
        let key = session_key(d);
        let json: Option<String> = self.run(redis::cmd("GET").arg(&key)).await?;
        let session = json.and_then(|j| serde_json::from_str::<Session>(&j).ok());
        let Some(session) = session.filter(|s| s.expires > now) else {
            self.cache().remove(d);
            return Ok(None);
        };
        let ttl = (session.expires - now).min(idle_secs(idle)).max(1);
        // Extend the idle deadline; a no-op if the session was deleted meanwhile.
        let _: bool = self
            .run(redis::cmd("PEXPIRE").arg(&key).arg(ms(ttl)))
            .await?;
        let mut cache = self.cache();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        let session = Arc::new(session);
        cache.insert(d.to_owned(), (Arc::clone(&session), Instant::now()));
        Ok(Some(session))
    }

    async fn sign_out_stored(&self, d: &str) -> Result<(), StoreError> {
        let json: Option<String> = self.run(redis::cmd("GET").arg(session_key(d))).await?;
        let root = json
            .and_then(|j| serde_json::from_str::<Session>(&j).ok())
            .and_then(|s| s.parent)
            .unwrap_or_else(|| d.to_owned());
        // The root first: from here on no session is handed off from it.
        let mut ended = vec![session_key(&root)];
        if root != d {
            ended.push(session_key(d));
        }
        self.run::<()>(redis::cmd("DEL").arg(&ended)).await?;
        let children_set = children_key(&root);
        let children: Vec<String> = self.run(redis::cmd("SMEMBERS").arg(&children_set)).await?;
        let mut keys: Vec<String> = children.iter().map(|c| session_key(c)).collect();
        keys.push(children_set);
        self.run::<()>(redis::cmd("DEL").arg(&keys)).await?;
        self.cache().retain(|k, (s, _)| {
            k != d
                && *k != root
                && s.parent.as_deref() != Some(root.as_str())
                && !children.contains(k)
        });
        Ok(())
    }

    async fn revoke_user_stored(&self, email: &str) -> Result<u64, StoreError> {
        self.cache().retain(|_, (s, _)| s.email != email);
        let set = user_key(email);
        let digests: Vec<String> = self.run(redis::cmd("SMEMBERS").arg(&set)).await?;
        if digests.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = digests.iter().map(|d| session_key(d)).collect();
        self.run::<()>(redis::cmd("DEL").arg(&keys)).await?;
        // Only those: a session signed in meanwhile stays revocable by its set.
        self.run::<()>(redis::cmd("SREM").arg(&set).arg(&digests))
            .await?;
        Ok(digests.len() as u64)
    }
}

impl SessionBackend for RedisSessions {
    fn create<'a>(
        &'a self,
        digest: &'a str,
        session: &'a Session,
        idle: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.create_stored(digest, session, idle, now))
    }

    fn get<'a>(
        &'a self,
        digest: &'a str,
        idle: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Arc<Session>>, StoreError>> {
        Box::pin(self.get_stored(digest, idle, now))
    }

    fn sign_out<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.sign_out_stored(digest))
    }

    fn revoke_user<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.revoke_user_stored(email))
    }

    fn put_once<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
        _now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let set: Option<String> = self
                .run(
                    redis::cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("PX")
                        .arg(ttl_ms)
                        .arg("NX"),
                )
                .await?;
            Ok(set.is_some())
        })
    }

    fn take_once<'a>(
        &'a self,
        key: &'a str,
        _now: i64,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move { self.run(redis::cmd("GETDEL").arg(key)).await })
    }

    fn peek_once<'a>(
        &'a self,
        key: &'a str,
        _now: i64,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move { self.run(redis::cmd("GET").arg(key)).await })
    }

    fn hit<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
        _now: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("INCR")
                .arg(key)
                .cmd("PEXPIRE")
                .arg(key)
                .arg(window_ms)
                .arg("NX")
                .ignore();
            let (n,): (u64,) = self.run_pipe(&pipe).await?;
            Ok(n)
        })
    }
}
