//! The Redis side of embed sessions, management keys and rate-limit counters: every
//! command roomgate's embed and limit features send to Redis is in this file.
//!
//! Layout (every multi-key script's keys share one hash tag, so it runs on a Redis
//! Cluster too; no KEYS or SCAN, no keyspace notifications):
//! - `roomgate:embed:{es_…}:session`: the session record (JSON), expiring with it;
//! - `roomgate:embed:{es_…}:token|cookie|launch:<digest>`: one credential each, expiring
//!   with it; it admits only while the session record exists, so revoking is deleting
//!   the record;
//! - `roomgate:embed:keys`: a hash of management keys, `d:<digest>` → record,
//!   `i:<id>` → digest, `u:<id>` → last use;
//! - `roomgate:limit:{<caller tag>}:rate` (GCRA arrival time, µs) and
//!   `…:quota:<utc day>` (the day's count, expiring after the day).
//!
//! Values are digests and records; no raw key, token, code or cookie is ever sent.

use std::fmt;

use redis::Script;

use super::session::EmbedSession;
use super::store::{EmbedStore, Grant, KeyRecord, Kind, StoreError, StoreFuture};
use crate::kv::{answer, Connection, Kv};
use crate::ratelimit::{Answer, Ask, ChargeKeys, LimitError, LimitFuture, LimitStore};

const KEYS_HASH: &str = "roomgate:embed:keys";

fn session_key(sid: &str) -> String {
    format!("roomgate:embed:{{{sid}}}:session")
}

fn credential_key(sid: &str, kind: Kind, digest: &str) -> String {
    format!("roomgate:embed:{{{sid}}}:{}:{digest}", kind.as_str())
}

/// KEYS: session, token, launch. ARGV: record, its ms, token ms, launch ms.
const CREATE: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return 1
"#;

/// KEYS: session, new credential. ARGV: its ms. The record, or nil (ended).
const ADD: &str = r#"
local s = redis.call('GET', KEYS[1])
if s then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
end
return s
"#;

/// KEYS: session, launch code, cookie. ARGV: the cookie's ms. Uses up the code.
const LAUNCH: &str = r#"
if redis.call('DEL', KEYS[2]) == 1 then
  local s = redis.call('GET', KEYS[1])
  if s then
    redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
    return s
  end
end
return false
"#;

/// KEYS: session, credential. The record while both exist.
const LOOKUP: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('GET', KEYS[1])
end
return false
"#;

/// KEYS: the keys hash. ARGV: digest, now. The record, its use recorded.
const FIND_KEY: &str = r#"
local r = redis.call('HGET', KEYS[1], 'd:' .. ARGV[1])
if r then
  local ok, rec = pcall(cjson.decode, r)
  if ok and type(rec) == 'table' and rec.id then
    redis.call('HSET', KEYS[1], 'u:' .. rec.id, ARGV[2])
  end
end
return r
"#;

/// KEYS: the keys hash. ARGV: id. 1 when removed.
const REMOVE_KEY: &str = r#"
local d = redis.call('HGET', KEYS[1], 'i:' .. ARGV[1])
if not d then
  return 0
end
redis.call('HDEL', KEYS[1], 'd:' .. d, 'i:' .. ARGV[1], 'u:' .. ARGV[1])
return 1
"#;

/// GCRA and the daily quota in one step: both charged, or neither. KEYS: rate, quota.
/// ARGV: now µs, interval µs (0: no rate limit), tolerance µs, quota (0: none), µs
/// until the quota's day ends. Returns {0, tat} charged, {1, tat} rate limited,
/// {2, 0} quota exceeded.
const CHARGE: &str = r#"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local quota = tonumber(ARGV[4])
local tat_new = 0
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or now)
  if tat < now then tat = now end
  if tat - now > tolerance then
    return {1, string.format('%.0f', tat)}
  end
  tat_new = tat + interval
end
if quota > 0 then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= quota then
    return {2, '0'}
  end
  if redis.call('INCR', KEYS[2]) == 1 then
    redis.call('PEXPIRE', KEYS[2], math.floor(tonumber(ARGV[5]) / 1000) + 3600000)
  end
end
if interval > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat_new), 'PX', math.floor((tat_new - now) / 1000) + 1000)
end
return {0, string.format('%.0f', tat_new)}
"#;

/// KEYS: quota. Gives one unit back (never below zero).
const REFUND: &str = r#"
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then
  redis.call('DECR', KEYS[1])
end
return 1
"#;

/// Embed sessions, keys and limit counters in one Redis.
pub struct RedisStore {
    conn: Connection,
    create: Script,
    add: Script,
    launch: Script,
    lookup: Script,
    find_key: Script,
    remove_key: Script,
    charge: Script,
    refund: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn ms(secs: i64) -> i64 {
    secs.saturating_mul(1000).max(1)
}

fn decode(json: Option<String>, now: i64) -> Option<EmbedSession> {
    json.and_then(|j| serde_json::from_str::<EmbedSession>(&j).ok())
        .filter(|s| s.expires_at > now)
}

impl RedisStore {
    /// A store on the shared Redis (any topology).
    pub fn new(kv: &Kv) -> RedisStore {
        RedisStore {
            conn: kv.connection(),
            create: Script::new(CREATE),
            add: Script::new(ADD),
            launch: Script::new(LAUNCH),
            lookup: Script::new(LOOKUP),
            find_key: Script::new(FIND_KEY),
            remove_key: Script::new(REMOVE_KEY),
            charge: Script::new(CHARGE),
            refund: Script::new(REFUND),
        }
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        answer(inv.invoke_async(&mut conn))
            .await
            .map_err(StoreError)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        answer(cmd.query_async(&mut conn)).await.map_err(StoreError)
    }
}

impl EmbedStore for RedisStore {
    fn find_key<'a>(&'a self, digest: &'a str, now: i64) -> StoreFuture<'a, Option<KeyRecord>> {
        Box::pin(async move {
            let mut inv = self.find_key.prepare_invoke();
            inv.key(KEYS_HASH).arg(digest).arg(now);
            let json: Option<String> = self.run(inv).await?;
            Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
        })
    }

    fn put_key<'a>(&'a self, key: &'a KeyRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(key)
                .map_err(|e| StoreError(format!("encoding a key: {e}")))?;
            let mut cmd = redis::cmd("HSET");
            cmd.arg(KEYS_HASH)
                .arg(format!("d:{}", key.sha256))
                .arg(json)
                .arg(format!("i:{}", key.id))
                .arg(&key.sha256);
            self.query::<i64>(&cmd).await.map(|_| ())
        })
    }

    fn list_keys(&self) -> StoreFuture<'_, Vec<KeyRecord>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGETALL");
            cmd.arg(KEYS_HASH);
            let all: Vec<(String, String)> = self.query(&cmd).await?;
            let mut keys: Vec<KeyRecord> = all
                .iter()
                .filter(|(f, _)| f.starts_with("d:"))
                .filter_map(|(_, v)| serde_json::from_str(v).ok())
                .collect();
            for k in &mut keys {
                let field = format!("u:{}", k.id);
                k.last_used = all
                    .iter()
                    .find(|(f, _)| *f == field)
                    .and_then(|(_, v)| v.parse().ok());
            }
            keys.sort_by_key(|k| k.created_at);
            Ok(keys)
        })
    }

    fn remove_key<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut inv = self.remove_key.prepare_invoke();
            inv.key(KEYS_HASH).arg(id);
            self.run::<i64>(inv).await.map(|n| n == 1)
        })
    }

    fn create<'a>(
        &'a self,
        session: &'a EmbedSession,
        token: Grant<'a>,
        launch: Grant<'a>,
        now: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(session)
                .map_err(|e| StoreError(format!("encoding a session: {e}")))?;
            let sid = session.id.as_str();
            let mut inv = self.create.prepare_invoke();
            inv.key(session_key(sid))
                .key(credential_key(sid, Kind::Token, token.digest))
                .key(credential_key(sid, Kind::Launch, launch.digest))
                .arg(json)
                .arg(ms(session.expires_at - now))
                .arg(ms(token.expires_at - now))
                .arg(ms(launch.expires_at - now));
            self.run::<i64>(inv).await.map(|_| ())
        })
    }

    fn add_token<'a>(
        &'a self,
        sid: &'a str,
        token: Grant<'a>,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedSession>> {
        Box::pin(async move {
            let mut inv = self.add.prepare_invoke();
            inv.key(session_key(sid))
                .key(credential_key(sid, Kind::Token, token.digest))
                .arg(ms(token.expires_at - now));
            Ok(decode(self.run(inv).await?, now))
        })
    }

    fn session<'a>(&'a self, sid: &'a str, now: i64) -> StoreFuture<'a, Option<EmbedSession>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(session_key(sid));
            Ok(decode(self.query(&cmd).await?, now))
        })
    }

    fn revoke<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(session_key(sid));
            self.query::<i64>(&cmd).await.map(|n| n == 1)
        })
    }

    fn launch<'a>(
        &'a self,
        sid: &'a str,
        code_digest: &'a str,
        cookie: Grant<'a>,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedSession>> {
        Box::pin(async move {
            let mut inv = self.launch.prepare_invoke();
            inv.key(session_key(sid))
                .key(credential_key(sid, Kind::Launch, code_digest))
                .key(credential_key(sid, Kind::Cookie, cookie.digest))
                .arg(ms(cookie.expires_at - now));
            Ok(decode(self.run(inv).await?, now))
        })
    }

    fn by_credential<'a>(
        &'a self,
        sid: &'a str,
        kind: Kind,
        digest: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedSession>> {
        Box::pin(async move {
            let mut inv = self.lookup.prepare_invoke();
            inv.key(session_key(sid))
                .key(credential_key(sid, kind, digest));
            Ok(decode(self.run(inv).await?, now))
        })
    }
}

impl LimitStore for RedisStore {
    fn charge<'a>(&'a self, keys: &'a ChargeKeys, ask: Ask) -> LimitFuture<'a, Answer> {
        Box::pin(async move {
            let (interval, tolerance) = ask.cell.map_or((0, 0), |c| (c.interval, c.tolerance));
            let (quota, left) = ask.quota.unwrap_or((0, 0));
            let mut inv = self.charge.prepare_invoke();
            inv.key(&keys.rate)
                .key(&keys.quota)
                .arg(ask.now)
                .arg(interval)
                .arg(tolerance)
                .arg(quota)
                .arg(left);
            let (code, tat): (i64, String) = self.run(inv).await.map_err(|e| LimitError(e.0))?;
            let tat = tat.parse::<u64>().unwrap_or(0);
            Ok(match code {
                0 => Answer::Charged { tat },
                1 => Answer::RateLimited { tat },
                _ => Answer::QuotaExceeded,
            })
        })
    }

    fn refund<'a>(&'a self, quota_key: &'a str) -> LimitFuture<'a, ()> {
        Box::pin(async move {
            let mut inv = self.refund.prepare_invoke();
            inv.key(quota_key);
            self.run::<i64>(inv)
                .await
                .map(|_| ())
                .map_err(|e| LimitError(e.0))
        })
    }
}
