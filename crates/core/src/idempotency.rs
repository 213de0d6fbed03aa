//! Idempotency keys for creating requests (docs/architecture.md, decision 24). The first
//! response to a caller's key is stored in the transaction that does the work, and replayed to
//! a retry with the same key and the same request for [`KEEP`].
//!
//! A retry that arrives while the first request is still running is told so (`InFlight`)
//! rather than queued: a transaction-scoped advisory lock on the (caller, key) pair is taken
//! without waiting, and held until the first request commits or rolls back.

use crate::CoreError;
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

/// How long a key is remembered; the worker's retention round deletes older ones.
pub const KEEP: TimeDelta = TimeDelta::hours(24);

/// A response as it is stored and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a caller's key says about a request.
#[derive(Debug)]
pub enum Claim {
    /// Not seen in the last [`KEEP`]: do the work, then [`record`] its response.
    Fresh,
    /// The same request was answered before: answer it again.
    Replay(StoredResponse),
    /// The key was used for a different request (another body, method or path).
    Mismatch,
    /// A request with this key is running now.
    InFlight,
}

/// Claims `key` for the caller in the current transaction.
pub async fn claim(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    fingerprint: &[u8],
    now: DateTime<Utc>,
) -> Result<Claim, CoreError> {
    let locked = sqlx::query_scalar!("SELECT pg_try_advisory_xact_lock($1) AS \"locked!\"", lock_id(user_id, key))
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(Claim::InFlight);
    }
    let row = sqlx::query!(
        r#"SELECT fingerprint, status, headers AS "headers: sqlx::types::Json<Vec<(String, String)>>", body
           FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at > $3"#,
        user_id,
        key,
        now - KEEP
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        None => Claim::Fresh,
        Some(row) if row.fingerprint != fingerprint => Claim::Mismatch,
        Some(row) => Claim::Replay(StoredResponse {
            status: u16::try_from(row.status).unwrap_or(500),
            headers: row.headers.0,
            body: row.body,
        }),
    })
}

/// Stores the response to a [`Claim::Fresh`] key, replacing an expired row of the same key.
pub async fn record(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    fingerprint: &[u8],
    response: &StoredResponse,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    sqlx::query!(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, headers, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
             status = EXCLUDED.status, headers = EXCLUDED.headers, body = EXCLUDED.body,
             created_at = EXCLUDED.created_at",
        user_id,
        key,
        fingerprint,
        i16::try_from(response.status).unwrap_or(i16::MAX),
        sqlx::types::Json(&response.headers) as _,
        &response.body,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Keys recorded before `cutoff`, at most `batch` of them.
pub async fn prune(conn: &mut PgConnection, cutoff: DateTime<Utc>, batch: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "DELETE FROM idempotency_keys WHERE (user_id, key) IN (
             SELECT user_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        cutoff,
        batch
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// The advisory lock id of a (caller, key) pair (`pg_advisory_xact_lock`): 64 bits of its
/// SHA-256. Two pairs sharing an id would only make one of them retry after a 409, never mix
/// their responses.
pub fn lock_id(user_id: Uuid, key: &str) -> i64 {
    let digest = Sha256::new().chain_update(user_id.as_bytes()).chain_update(key.as_bytes()).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_differ_by_caller_and_key() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(lock_id(a, "k"), lock_id(a, "k"));
        assert_ne!(lock_id(a, "k"), lock_id(b, "k"));
        assert_ne!(lock_id(a, "k"), lock_id(a, "l"));
    }
}
