//! Rate limits kept in Redis, so a limit holds across every API instance. A fixed window per key:
//! INCR, and EXPIRE on the first hit. Simple, one round trip, and good enough against guessing.
//!
//! The per-caller quota on every authenticated request ([`RateLimiter::hit_reserving`]) would
//! double the round trips of a request that otherwise makes one to PostgreSQL, so it reserves
//! tokens in batches instead: one `INCRBY n` takes `n` of the window's budget for this process,
//! which then spends them locally. A reservation is counted in Redis before any of it is used, so
//! the limit is never exceeded across instances; `n` shrinks to 1 as the budget runs low
//! (an eighth of what is left, at most 32), so a single instance refuses exactly the request past
//! the limit, and several instances at most refuse a little early.

use crate::CoreError;
use crate::config::RateLimit;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The most tokens one reservation takes.
const MAX_RESERVATION: u64 = 32;
/// Local reservations kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    prefix: String,
    reservations: Arc<Mutex<HashMap<String, Reservation>>>,
}

/// Tokens this process reserved in a subject's current window and has not spent yet.
#[derive(Debug, Clone, Copy)]
struct Reservation {
    /// Unspent tokens.
    left: u64,
    /// The window's count in Redis right after the reservation.
    counted: u64,
    window_ends: Instant,
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self { redis, prefix: format!("{prefix}:ratelimit"), reservations: Arc::default() }
    }

    /// Counts one request like [`Self::hit`], from a batch reserved in Redis when one is at hand
    /// (see the module's documentation): at most one Redis round trip per reservation.
    pub async fn hit_reserving(&self, scope: &str, subject: &str, limit: &RateLimit) -> Result<Quota, CoreError> {
        let key = format!("{}:{scope}:{subject}", self.prefix);
        let now = Instant::now();
        let size = {
            let mut reservations = self.reservations.lock().unwrap_or_else(PoisonError::into_inner);
            match reservations.get_mut(&key) {
                Some(held) if held.left > 0 && now < held.window_ends => {
                    held.left -= 1;
                    return Ok(quota_of(limit, held.counted, held.left, held.window_ends, now));
                }
                Some(held) if now < held.window_ends => {
                    reservation_size(u64::from(limit.max).saturating_sub(held.counted))
                }
                _ => 1,
            }
        };
        let (count, ttl) = self.incr_by(&key, size, limit.window_seconds).await?;
        let window_ends = now + Duration::from_secs(u64::try_from(ttl).unwrap_or(0).max(1));
        let mut reservations = self.reservations.lock().unwrap_or_else(PoisonError::into_inner);
        if reservations.len() >= SWEEP_AT {
            reservations.retain(|_, held| held.window_ends > now);
        }
        if count > u64::from(limit.max) {
            reservations.remove(&key);
            return Err(CoreError::RateLimited { retry_after_seconds: u64::try_from(ttl).unwrap_or(1).max(1) });
        }
        // A concurrent request of the same subject may have reserved meanwhile: keep its tokens.
        let (carried, counted) = match reservations.get(&key) {
            Some(held) if held.window_ends > now => (held.left, held.counted.max(count)),
            _ => (0, count),
        };
        let left = size - 1 + carried;
        reservations.insert(key, Reservation { left, counted, window_ends });
        Ok(quota_of(limit, counted, left, window_ends, now))
    }

    /// `INCRBY size` on `key`, starting its window on the first hit; the new count and the
    /// seconds left in the window.
    async fn incr_by(&self, key: &str, size: u64, window_seconds: u32) -> Result<(u64, i64), CoreError> {
        let mut redis = self.redis.clone();
        let (count, ttl): (u64, i64) = redis::pipe()
            .atomic()
            .cmd("INCRBY")
            .arg(key)
            .arg(size)
            .cmd("EXPIRE")
            .arg(key)
            .arg(window_seconds)
            .arg("NX")
            .ignore()
            .cmd("TTL")
            .arg(key)
            .query_async(&mut redis)
            .await?;
        Ok((count, ttl))
    }

    /// Counts one attempt under `scope` (e.g. "login") and `subject` (an IP or an account); over
    /// the limit, `RateLimited` with the seconds until the window ends.
    pub async fn hit(&self, scope: &str, subject: &str, limit: &RateLimit) -> Result<Quota, CoreError> {
        let key = format!("{}:{scope}:{subject}", self.prefix);
        let (count, ttl) = self.incr_by(&key, 1, limit.window_seconds).await?;
        if count > u64::from(limit.max) {
            let retry_after_seconds = u64::try_from(ttl).unwrap_or(1).max(1);
            return Err(CoreError::RateLimited { retry_after_seconds });
        }
        Ok(Quota {
            limit: limit.max,
            remaining: limit.max.saturating_sub(u32::try_from(count).unwrap_or(u32::MAX)),
            reset_seconds: u64::try_from(ttl).unwrap_or(0),
        })
    }
}

/// How many tokens to reserve when `left` remain in the window: an eighth, between 1 and
/// [`MAX_RESERVATION`], so a reservation never takes more than is left.
fn reservation_size(left: u64) -> u64 {
    (left / 8).clamp(1, MAX_RESERVATION)
}

fn quota_of(limit: &RateLimit, counted: u64, unspent: u64, window_ends: Instant, now: Instant) -> Quota {
    let used = counted.saturating_sub(unspent);
    Quota {
        limit: limit.max,
        remaining: u32::try_from(u64::from(limit.max).saturating_sub(used)).unwrap_or(u32::MAX),
        reset_seconds: window_ends.saturating_duration_since(now).as_secs().max(1),
    }
}

/// Where a subject stands in its current window (the `RateLimit-*` response headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window ends and the count starts again.
    pub reset_seconds: u64,
}

impl Quota {
    /// The quota closer to running out (of an IP's and an account's, say).
    pub fn tighter(self, other: Quota) -> Quota {
        if other.remaining < self.remaining { other } else { self }
    }
}

/// Against the real Redis the tests use (`TEST_REDIS_URL`, `REDIS_URL`, or the local default).
#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    async fn limiter() -> (RateLimiter, ConnectionManager, String) {
        let url = std::env::var("TEST_REDIS_URL")
            .or_else(|_| std::env::var("REDIS_URL"))
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let redis = crate::redis_conn::connect(&url).await.expect("Redis answers");
        let prefix = format!("test:{}", uuid::Uuid::now_v7().simple());
        (RateLimiter::new(redis.clone(), &prefix), redis, prefix)
    }

    async fn counted(redis: &ConnectionManager, key: &str) -> u64 {
        let mut redis = redis.clone();
        redis::cmd("GET").arg(key).query_async::<Option<u64>>(&mut redis).await.expect("GET").unwrap_or(0)
    }

    #[tokio::test]
    async fn one_instance_admits_exactly_the_limit_and_counts_down_by_one() {
        let (limiter, redis, prefix) = limiter().await;
        let limit = RateLimit { max: 300, window_seconds: 60 };
        let key = format!("{prefix}:ratelimit:api:user:a");
        for n in 1..=300u32 {
            let quota = limiter.hit_reserving("api", "user:a", &limit).await.expect("within the limit");
            assert_eq!(quota.remaining, 300 - n, "remaining after {n} requests");
            if n == 2 {
                // The second request reserved a batch (an eighth of the 299 left, at most 32):
                // the next 31 requests make no round trip.
                assert_eq!(counted(&redis, &key).await, 1 + 32);
            }
        }
        assert!(matches!(
            limiter.hit_reserving("api", "user:a", &limit).await,
            Err(CoreError::RateLimited { retry_after_seconds }) if retry_after_seconds <= 60
        ));
        // Reservations shrank to single tokens near the end: the count never ran past the limit by
        // more than the refused request.
        assert_eq!(counted(&redis, &key).await, 301);
    }

    #[tokio::test]
    async fn several_instances_never_admit_more_than_the_limit_together() {
        let (first, redis, prefix) = limiter().await;
        let second = RateLimiter::new(redis.clone(), &prefix);
        let third = RateLimiter::new(redis, &prefix);
        let limit = RateLimit { max: 500, window_seconds: 60 };
        let mut admitted = 0;
        for n in 0..900 {
            let instance = [&first, &second, &third][n % 3];
            if instance.hit_reserving("api", "user:b", &limit).await.is_ok() {
                admitted += 1;
            }
        }
        assert!(admitted <= 500, "{admitted} admitted over a limit of 500");
        assert!(admitted >= 500 - 3 * 8, "{admitted} admitted: reservations refused too early");
    }

    #[tokio::test]
    async fn subjects_and_scopes_have_budgets_of_their_own() {
        let (limiter, _, _) = limiter().await;
        let limit = RateLimit { max: 2, window_seconds: 60 };
        for subject in ["user:c", "user:d"] {
            limiter.hit_reserving("api", subject, &limit).await.expect("first");
            limiter.hit_reserving("api", subject, &limit).await.expect("second");
            assert!(limiter.hit_reserving("api", subject, &limit).await.is_err());
        }
        limiter.hit("login", "user:c", &limit).await.expect("another scope");
    }
}
