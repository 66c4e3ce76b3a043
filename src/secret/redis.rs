//! The redis backend: room secrets shared by every instance, encrypted at rest.
//!
//! Owns the layout — hash `roomgate:secrets:{<room>}`, field `<identity>\0<id>`, value a
//! JSON record of AES-256-GCM sealed values (see `docs/secrets.md`) — and the atomic
//! rotation step. Redis only ever sees ciphertext; each value's associated data is
//! `room\0identity\0id`, so a record copied to another field does not decrypt. It must
//! never send a plaintext to Redis nor put the Redis URL in an error.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::sealed::{associated_data, Sealed, SealingKey, NONCE_LEN};
use super::{active_at, ActiveValue, SecretError};
use crate::kv::{answer, eval, Connection, Kv};
use crate::sensitive::Secret;

/// Replace the current value; with a non-empty ARGV[3], keep the old current as `previous`
/// until that instant. KEYS: the room's hash. ARGV: field, new sealed value (JSON), until.
const SET_SCRIPT: &str = r#"
local record = {v = 1, current = cjson.decode(ARGV[2])}
if ARGV[3] ~= '' then
  local old = redis.call('HGET', KEYS[1], ARGV[1])
  if old then
    local ok, decoded = pcall(cjson.decode, old)
    if ok and type(decoded) == 'table' and type(decoded.current) == 'table' then
      decoded.current['until'] = ARGV[3]
      record.previous = decoded.current
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return 1
"#;

/// The hash holding a room's secrets (the braces are a cluster hash tag).
pub fn secrets_key(room: &str) -> String {
    format!("roomgate:secrets:{{{room}}}")
}

/// The hash field of one secret.
pub fn secrets_field(identity: &str, id: &str) -> String {
    format!("{identity}\0{id}")
}

/// What one hash field holds.
#[derive(Debug, Deserialize, Serialize)]
struct Record {
    v: u32,
    current: StoredValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<StoredValue>,
}

/// One sealed value, base64 (standard alphabet).
#[derive(Debug, Deserialize, Serialize)]
struct StoredValue {
    nonce: String,
    ciphertext: String,
    /// RFC 3339: accepted until then (only on a previous value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
}

/// Secrets in Redis, sealed with the configured key.
#[derive(Clone)]
pub struct RedisSecrets {
    conn: Connection,
    key: SealingKey,
}

impl fmt::Debug for RedisSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSecrets").finish_non_exhaustive()
    }
}

impl RedisSecrets {
    /// A store in the shared Redis `kv`, sealing with `key` (exactly 32 bytes).
    pub fn new(kv: &Kv, key: &Secret) -> Result<RedisSecrets, SecretError> {
        let key = SealingKey::new(key).map_err(SecretError::Unavailable)?;
        Ok(RedisSecrets {
            conn: kv.connection(),
            key,
        })
    }

    fn open(&self, aad: &[u8], stored: &StoredValue, place: &str) -> Result<Secret, SecretError> {
        let broken = || {
            SecretError::Unavailable(format!(
                "secret {place} cannot be decrypted (wrong secrets.key, or the value was moved)"
            ))
        };
        let nonce: [u8; NONCE_LEN] = B64
            .decode(&stored.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(broken)?;
        let ciphertext = B64.decode(&stored.ciphertext).map_err(|_| broken())?;
        self.key
            .open(aad, &Sealed { nonce, ciphertext })
            .map_err(|_| broken())
    }

    /// The values active at `now`: the current one, then the previous one in its window.
    pub async fn get(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<ActiveValue>, SecretError> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = answer(
            redis::cmd("HGET")
                .arg(secrets_key(room))
                .arg(secrets_field(identity, id))
                .query_async(&mut conn),
        )
        .await
        .map_err(SecretError::Unavailable)?;
        let raw = raw.ok_or_else(|| SecretError::not_found(room, identity, id))?;
        let place = format!("{room}/{identity}/{id}");
        let record: Record = serde_json::from_slice(&raw).map_err(|_| {
            SecretError::Unavailable(format!("secret {place} is not a valid record"))
        })?;
        let aad = associated_data(room, identity, id);
        let mut active = vec![ActiveValue {
            secret: self.open(&aad, &record.current, &place)?,
            until: None,
        }];
        if let Some(previous) = &record.previous {
            let until = previous
                .until
                .as_deref()
                .and_then(|u| OffsetDateTime::parse(u, &Rfc3339).ok());
            // A previous value without a readable end is not accepted.
            if let Some(until) = until.filter(|&u| active_at(Some(u), now)) {
                active.push(ActiveValue {
                    secret: self.open(&aad, previous, &place)?,
                    until: Some(until),
                });
            }
        }
        Ok(active)
    }

    /// Seal and store `value` as current; keep the old current until `previous_until`.
    pub async fn set(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        value: &Secret,
        previous_until: Option<OffsetDateTime>,
    ) -> Result<(), SecretError> {
        let sealed = self
            .key
            .seal(&associated_data(room, identity, id), value)
            .map_err(SecretError::Unavailable)?;
        let stored = StoredValue {
            nonce: B64.encode(sealed.nonce),
            ciphertext: B64.encode(&sealed.ciphertext),
            until: None,
        };
        let stored = serde_json::to_string(&stored)
            .map_err(|_| SecretError::Unavailable("cannot encode the sealed value".into()))?;
        let until = previous_until
            .map(|u| u.format(&Rfc3339))
            .transpose()
            .map_err(|_| SecretError::Invalid("the rotation window is out of range".into()))?
            .unwrap_or_default();
        let mut set = eval(SET_SCRIPT, &[&secrets_key(room)], (0, 0));
        set.arg(secrets_field(identity, id)).arg(stored).arg(until);
        let mut conn = self.conn.clone();
        let _: i64 = answer(set.query_async(&mut conn))
            .await
            .map_err(SecretError::Unavailable)?;
        Ok(())
    }

    /// Seal and store `value` unless the field exists (`HSETNX`); `true` when stored.
    pub async fn set_if_absent(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        value: &Secret,
    ) -> Result<bool, SecretError> {
        let sealed = self
            .key
            .seal(&associated_data(room, identity, id), value)
            .map_err(SecretError::Unavailable)?;
        let record = Record {
            v: 1,
            current: StoredValue {
                nonce: B64.encode(sealed.nonce),
                ciphertext: B64.encode(&sealed.ciphertext),
                until: None,
            },
            previous: None,
        };
        let record = serde_json::to_string(&record)
            .map_err(|_| SecretError::Unavailable("cannot encode the sealed value".into()))?;
        let mut conn = self.conn.clone();
        let stored: i64 = answer(
            redis::cmd("HSETNX")
                .arg(secrets_key(room))
                .arg(secrets_field(identity, id))
                .arg(record)
                .query_async(&mut conn),
        )
        .await
        .map_err(SecretError::Unavailable)?;
        Ok(stored == 1)
    }

    /// Every (identity, id) of a room.
    pub async fn list(&self, room: &str) -> Result<Vec<(String, String)>, SecretError> {
        let mut conn = self.conn.clone();
        let fields: Vec<String> = answer(
            redis::cmd("HKEYS")
                .arg(secrets_key(room))
                .query_async(&mut conn),
        )
        .await
        .map_err(SecretError::Unavailable)?;
        Ok(fields
            .into_iter()
            .filter_map(|f| {
                let (identity, id) = f.split_once('\0')?;
                Some((identity.to_owned(), id.to_owned()))
            })
            .collect())
    }

    /// Delete a secret; false when there was none.
    pub async fn rm(&self, room: &str, identity: &str, id: &str) -> Result<bool, SecretError> {
        let mut conn = self.conn.clone();
        let removed: i64 = answer(
            redis::cmd("HDEL")
                .arg(secrets_key(room))
                .arg(secrets_field(identity, id))
                .query_async(&mut conn),
        )
        .await
        .map_err(SecretError::Unavailable)?;
        Ok(removed > 0)
    }
}
