//! Rate limits kept in Redis, so a limit holds across every API instance. A fixed window per key:
//! INCR, and EXPIRE on the first hit. Simple, one round trip, and good enough against guessing.

use crate::CoreError;
use crate::config::RateLimit;
use redis::aio::ConnectionManager;

#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    prefix: String,
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self { redis, prefix: format!("{prefix}:ratelimit") }
    }

    /// Counts one attempt under `scope` (e.g. "login") and `subject` (an IP or an account) and
    /// refuses it once the window's budget is spent.
    /// Counts one attempt; over the limit, `RateLimited` with the seconds until the window ends.
    pub async fn hit(&self, scope: &str, subject: &str, limit: &RateLimit) -> Result<Quota, CoreError> {
        let key = format!("{}:{scope}:{subject}", self.prefix);
        let mut redis = self.redis.clone();
        let (count, ttl): (u64, i64) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(limit.window_seconds)
            .arg("NX")
            .ignore()
            .cmd("TTL")
            .arg(&key)
            .query_async(&mut redis)
            .await?;
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
