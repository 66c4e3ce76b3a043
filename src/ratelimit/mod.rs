//! Rate limits (`roomgate.rate_limit`) and daily quotas (`roomgate.quota.daily`) per
//! caller, shared by every instance through the [`LimitStore`].
//!
//! The rate limit is GCRA (the generic cell rate algorithm): a caller may send `count`
//! requests at once, then one every `period / count`; there is no window edge where two
//! bursts meet. The quota counts requests per caller per UTC calendar day; its counter
//! expires after the day. A request is charged once, after it was authorized and before
//! it is forwarded, by one atomic step that checks both and charges neither when either
//! refuses; a request the service answers with a 5xx (or that fails with 502/504) gets
//! its quota unit back ([`LimitStore::refund`]). The arithmetic here is pure, over an
//! injected clock in microseconds; the memory store is the embedded mode, the Redis one
//! lives in `embed/store_redis.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::policy::{Policy, Rate};

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

const DAY: i64 = 86_400;

/// The counters could not be reached; the request is let through (and logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit store unavailable: {0}")]
pub struct LimitError(pub String);

pub type LimitFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LimitError>> + Send + 'a>>;

/// GCRA's two numbers for a rate, in microseconds: the interval between requests at the
/// sustained rate, and how far ahead of now the theoretical arrival time may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub interval: u64,
    pub tolerance: u64,
}

impl Cell {
    pub fn of(rate: Rate) -> Cell {
        let period = u64::try_from(rate.period.as_micros()).unwrap_or(u64::MAX);
        let interval = (period / u64::from(rate.count)).max(1);
        Cell {
            interval,
            tolerance: interval * (u64::from(rate.count) - 1),
        }
    }
}

/// GCRA for one request at `now`, given the stored theoretical arrival time: `Ok(new
/// tat)` to admit and store, `Err(tat)` to refuse (nothing changes).
pub fn gcra(now: u64, stored: Option<u64>, cell: Cell) -> Result<u64, u64> {
    let tat = stored.unwrap_or(now).max(now);
    if tat - now > cell.tolerance {
        return Err(tat);
    }
    Ok(tat + cell.interval)
}

/// The keys one caller's charge touches (they share one hash tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeKeys {
    pub rate: String,
    pub quota: String,
}

/// What one charge asks.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub cell: Option<Cell>,
    /// The quota and the microseconds until its day ends.
    pub quota: Option<(u64, u64)>,
    pub now: u64,
}

/// The store's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Charged; the new theoretical arrival time (0 without a rate limit).
    Charged {
        tat: u64,
    },
    RateLimited {
        tat: u64,
    },
    QuotaExceeded,
}

/// Shared counters: one atomic step per request, and the refund.
pub trait LimitStore: Send + Sync {
    fn charge<'a>(&'a self, keys: &'a ChargeKeys, ask: Ask) -> LimitFuture<'a, Answer>;
    fn refund<'a>(&'a self, quota_key: &'a str) -> LimitFuture<'a, ()>;
}

/// The embedded mode's counters.
#[derive(Default)]
pub struct MemoryLimits {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    /// key → (theoretical arrival time, µs)
    tat: HashMap<String, u64>,
    /// key → (count, end µs)
    quota: HashMap<String, (u64, u64)>,
}

/// Entries kept before expired ones are dropped.
const MEMORY_SWEEP: usize = 100_000;

impl LimitStore for MemoryLimits {
    fn charge<'a>(&'a self, keys: &'a ChargeKeys, ask: Ask) -> LimitFuture<'a, Answer> {
        let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = ask.now;
        if m.tat.len() + m.quota.len() > MEMORY_SWEEP {
            m.tat.retain(|_, tat| *tat > now);
            m.quota.retain(|_, (_, end)| *end > now);
        }
        let tat = match ask.cell {
            None => None,
            Some(cell) => match gcra(now, m.tat.get(&keys.rate).copied(), cell) {
                Ok(tat) => Some(tat),
                Err(tat) => return ready(Answer::RateLimited { tat }),
            },
        };
        if let Some((limit, left)) = ask.quota {
            let entry = m.quota.entry(keys.quota.clone()).or_insert((0, now + left));
            if entry.1 <= now {
                *entry = (0, now + left);
            }
            if entry.0 >= limit {
                return ready(Answer::QuotaExceeded);
            }
            entry.0 += 1;
        }
        if let Some(tat) = tat {
            m.tat.insert(keys.rate.clone(), tat);
        }
        ready(Answer::Charged {
            tat: tat.unwrap_or(0),
        })
    }

    fn refund<'a>(&'a self, quota_key: &'a str) -> LimitFuture<'a, ()> {
        let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, _)) = m.quota.get_mut(quota_key) {
            *n = n.saturating_sub(1);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

fn ready<'a>(a: Answer) -> LimitFuture<'a, Answer> {
    Box::pin(std::future::ready(Ok::<_, LimitError>(a)))
}

/// The keys of `caller` on the endpoint `scope` for the UTC day of `now` (unix seconds).
pub fn keys(scope: &str, caller: &str, now: i64) -> ChargeKeys {
    let tag = crate::auth::signing::digest(&format!("{scope}\0{caller}"));
    ChargeKeys {
        rate: format!("roomgate:limit:{{{tag}}}:rate"),
        quota: format!("roomgate:limit:{{{tag}}}:quota:{}", now.div_euclid(DAY)),
    }
}

/// Seconds from `now` (unix seconds) to the next 00:00 UTC.
pub fn until_midnight(now: i64) -> u64 {
    (DAY - now.rem_euclid(DAY)) as u64
}

/// The rate-limit headers of an admitted or refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the caller may send a full burst again.
    pub reset: u64,
}

impl RateHeaders {
    /// After a request at `now` left the theoretical arrival time at `tat`.
    pub fn after(rate: Rate, cell: Cell, now: u64, tat: u64) -> RateHeaders {
        let ahead = tat.saturating_sub(now);
        let room = (cell.tolerance + cell.interval).saturating_sub(ahead);
        RateHeaders {
            limit: rate.count,
            remaining: u32::try_from(room / cell.interval)
                .unwrap_or(u32::MAX)
                .min(rate.count),
            reset: ahead.div_ceil(1_000_000),
        }
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RATELIMIT_RESET, HeaderValue::from(self.reset));
    }
}

/// Why a request was refused by its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    RateLimited {
        headers: RateHeaders,
        retry_after: u64,
    },
    QuotaExceeded {
        retry_after: u64,
    },
}

/// A charged request: the headers its response carries, and the quota key to refund if
/// the service fails it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Charged {
    pub headers: Option<RateHeaders>,
    pub refund: Option<String>,
}

/// Charge one request of `caller` on the endpoint `scope` under `policy`'s limits, at
/// `now` (unix seconds). A store that cannot answer lets the request through, with a
/// warning: the limits protect capacity, they are not an authorization.
pub async fn charge(
    store: &dyn LimitStore,
    policy: &Policy,
    scope: &str,
    caller: &str,
    now: i64,
) -> Result<Charged, Refused> {
    if policy.rate_limit.is_none() && policy.quota_daily.is_none() {
        return Ok(Charged::default());
    }
    let keys = keys(scope, caller, now);
    let now_us = micros(now);
    let cell = policy.rate_limit.map(Cell::of);
    let left = until_midnight(now);
    let ask = Ask {
        cell,
        quota: policy.quota_daily.map(|q| (q, left * 1_000_000)),
        now: now_us,
    };
    let headers = |tat| {
        policy
            .rate_limit
            .zip(cell)
            .map(|(rate, cell)| RateHeaders::after(rate, cell, now_us, tat))
    };
    match store.charge(&keys, ask).await {
        Ok(Answer::Charged { tat }) => Ok(Charged {
            headers: headers(tat),
            refund: policy.quota_daily.map(|_| keys.quota),
        }),
        Ok(Answer::RateLimited { tat }) => {
            let (rate, cell) = policy
                .rate_limit
                .zip(cell)
                .ok_or(Refused::QuotaExceeded { retry_after: left })?;
            Err(Refused::RateLimited {
                headers: RateHeaders {
                    remaining: 0,
                    ..RateHeaders::after(rate, cell, now_us, tat)
                },
                retry_after: retry_after(cell, now_us, tat),
            })
        }
        Ok(Answer::QuotaExceeded) => Err(Refused::QuotaExceeded { retry_after: left }),
        Err(e) => {
            tracing::warn!(error = %e, "rate limits not applied: the counters are unavailable");
            Ok(Charged::default())
        }
    }
}

/// Seconds until a refused caller may send again.
pub fn retry_after(cell: Cell, now: u64, tat: u64) -> u64 {
    (tat.saturating_sub(cell.tolerance).saturating_sub(now))
        .div_ceil(1_000_000)
        .max(1)
}

/// Microseconds since the epoch for a unix-seconds clock.
pub fn micros(now: i64) -> u64 {
    u64::try_from(now).unwrap_or(0) * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: u64 = 1_000_000;

    fn rate(count: u32, secs: u64) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(secs),
        }
    }

    /// A caller gets a full burst, then one request per interval; no second burst at
    /// a window edge.
    #[test]
    fn gcra_allows_a_burst_then_the_sustained_rate() {
        let cell = Cell::of(rate(3, 3));
        let mut tat = None;
        let t0 = 100 * S;
        for _ in 0..3 {
            tat = Some(gcra(t0, tat, cell).unwrap());
        }
        assert!(
            gcra(t0, tat, cell).is_err(),
            "the fourth at once is refused"
        );
        assert!(gcra(t0 + S - 1, tat, cell).is_err());
        tat = Some(gcra(t0 + S, tat, cell).unwrap());
        assert!(gcra(t0 + S, tat, cell).is_err());
        // Long idle: a full burst again, never more.
        let later = t0 + 60 * S;
        let mut t = tat;
        for _ in 0..3 {
            t = Some(gcra(later, t, cell).unwrap());
        }
        assert!(gcra(later, t, cell).is_err());
    }

    #[test]
    fn rate_headers_count_down_and_say_when_the_burst_is_back() {
        let r = rate(120, 60);
        let cell = Cell::of(r);
        let now = 10 * S;
        let tat = gcra(now, None, cell).unwrap();
        let h = RateHeaders::after(r, cell, now, tat);
        assert_eq!((h.limit, h.remaining, h.reset), (120, 119, 1));
        let mut tat = Some(tat);
        for _ in 0..119 {
            tat = Some(gcra(now, tat, cell).unwrap());
        }
        let h = RateHeaders::after(r, cell, now, tat.unwrap());
        assert_eq!((h.remaining, h.reset), (0, 60));
        let refused = gcra(now, tat, cell).unwrap_err();
        assert_eq!(retry_after(cell, now, refused), 1);
    }

    #[test]
    fn quota_days_are_utc_calendar_days() {
        let midnight = 1_767_225_600; // 2026-01-01T00:00:00Z
        assert_eq!(until_midnight(midnight - 1), 1);
        assert_eq!(until_midnight(midnight), 86_400);
        assert_ne!(
            keys("s", "c", midnight - 1).quota,
            keys("s", "c", midnight).quota
        );
        assert_eq!(
            keys("s", "c", midnight).rate,
            keys("s", "c", midnight - 1).rate
        );
        let k = keys("s", "c", midnight);
        let tag = |s: &str| s[s.find('{').unwrap()..=s.find('}').unwrap()].to_owned();
        assert_eq!(tag(&k.rate), tag(&k.quota), "one hash tag for both keys");
    }

    #[tokio::test]
    async fn memory_charges_both_or_neither_and_refunds_the_quota() {
        let m = MemoryLimits::default();
        let k = keys("scope", "alice", 0);
        let ask = |now| Ask {
            cell: Some(Cell::of(rate(2, 1))),
            quota: Some((3, 86_400 * S)),
            now,
        };
        assert!(matches!(
            m.charge(&k, ask(0)).await.unwrap(),
            Answer::Charged { .. }
        ));
        assert!(matches!(
            m.charge(&k, ask(0)).await.unwrap(),
            Answer::Charged { .. }
        ));
        assert!(matches!(
            m.charge(&k, ask(0)).await.unwrap(),
            Answer::RateLimited { .. }
        ));
        assert!(matches!(
            m.charge(&k, ask(S)).await.unwrap(),
            Answer::Charged { .. }
        ));
        assert_eq!(
            m.charge(&k, ask(3 * S)).await.unwrap(),
            Answer::QuotaExceeded
        );
        m.refund(&k.quota).await.unwrap();
        assert!(matches!(
            m.charge(&k, ask(4 * S)).await.unwrap(),
            Answer::Charged { .. }
        ));
        assert_eq!(
            m.charge(&k, ask(6 * S)).await.unwrap(),
            Answer::QuotaExceeded
        );
    }
}
