//! Sessions in this process's memory: the embedded single-instance mode.
//!
//! Expiry is checked against the `now` each call is given; nothing runs in the
//! background. Nothing here is shared with another instance or survives a restart.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::{self, BoxFuture};

use super::{idle_secs, Session, SessionBackend, StoreError};

#[derive(Default)]
pub(super) struct MemorySessions {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
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

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1)
}

impl MemorySessions {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn create_now(&self, d: &str, session: &Session, idle: Duration, now: i64) -> bool {
        let mut m = self.state();
        if let Some(p) = &session.parent {
            let live = m
                .sessions
                .get(p)
                .is_some_and(|(s, last)| s.expires > now && now - *last < idle_secs(idle));
            if !live {
                return false;
            }
            m.children.retain(|_, (_, exp)| *exp > now);
            m.children
                .entry(p.clone())
                .or_insert_with(|| (HashSet::new(), session.expires + 60))
                .0
                .insert(d.to_owned());
        }
        m.sessions
            .insert(d.to_owned(), (Arc::new(session.clone()), now));
        m.users
            .entry(session.email.clone())
            .or_default()
            .insert(d.to_owned());
        true
    }

    fn get_now(&self, d: &str, idle: Duration, now: i64) -> Option<Arc<Session>> {
        let mut m = self.state();
        let live = match m.sessions.get_mut(d) {
            Some((s, last)) if s.expires > now && now - *last < idle_secs(idle) => {
                *last = now;
                Some(Arc::clone(s))
            }
            Some(_) => None,
            None => return None,
        };
        if live.is_none() {
            m.sessions.remove(d);
        }
        live
    }

    fn sign_out_now(&self, d: &str) {
        let mut m = self.state();
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
    }

    fn revoke_user_now(&self, email: &str) -> u64 {
        let mut m = self.state();
        let digests = m.users.remove(email).unwrap_or_default();
        for d in &digests {
            m.sessions.remove(d);
        }
        digests.len() as u64
    }

    fn put_once_now(&self, key: &str, value: &str, ttl: Duration, now: i64) -> bool {
        let mut m = self.state();
        m.once.retain(|_, (_, exp)| *exp > now);
        if m.once.contains_key(key) {
            return false;
        }
        m.once
            .insert(key.to_owned(), (value.to_owned(), now + secs(ttl)));
        true
    }

    fn hit_now(&self, key: &str, window: Duration, now: i64) -> u64 {
        let mut m = self.state();
        m.counters.retain(|_, (_, end)| *end > now);
        let e = m
            .counters
            .entry(key.to_owned())
            .or_insert((0, now + secs(window)));
        e.0 += 1;
        e.0
    }
}

impl SessionBackend for MemorySessions {
    fn create<'a>(
        &'a self,
        digest: &'a str,
        session: &'a Session,
        idle: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(future::ready(Ok(
            self.create_now(digest, session, idle, now)
        )))
    }

    fn get<'a>(
        &'a self,
        digest: &'a str,
        idle: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Arc<Session>>, StoreError>> {
        Box::pin(future::ready(Ok(self.get_now(digest, idle, now))))
    }

    fn sign_out<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.sign_out_now(digest);
        Box::pin(future::ready(Ok(())))
    }

    fn revoke_user<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(future::ready(Ok(self.revoke_user_now(email))))
    }

    fn put_once<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(future::ready(Ok(self.put_once_now(key, value, ttl, now))))
    }

    fn take_once<'a>(
        &'a self,
        key: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let taken = self
            .state()
            .once
            .remove(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v);
        Box::pin(future::ready(Ok(taken)))
    }

    fn peek_once<'a>(
        &'a self,
        key: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let seen = self
            .state()
            .once
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone());
        Box::pin(future::ready(Ok(seen)))
    }

    fn hit<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(future::ready(Ok(self.hit_now(key, window, now))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::session::tests::session;

    #[test]
    fn a_session_is_stored_under_its_digest_only() {
        let store = MemorySessions::default();
        let idle = Duration::from_secs(50);
        assert!(store.create_now("digest-of-id", &session(0), idle, 0));
        let m = store.state();
        assert_eq!(m.sessions.keys().collect::<Vec<_>>(), ["digest-of-id"]);
        assert!(m.users["alice@acme.test"].contains("digest-of-id"));
    }
}
