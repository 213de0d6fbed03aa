//! Retention limits (DESIGN R14): what is kept only for a configured period. Each prune deletes
//! at most `batch` rows older than its cut-off on the caller's connection, so the worker runs
//! them in short transactions until one comes back short and a backlog never holds long locks;
//! running one twice, or on two workers at once, deletes nothing twice.
//!
//! Contact requests get their own prune here when they land (same shape as the others).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Audit entries that occurred before `cutoff`, oldest first.
pub async fn prune_audit_events(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "DELETE FROM audit_events WHERE id IN (
             SELECT id FROM audit_events WHERE occurred_at < $1 ORDER BY occurred_at, id LIMIT $2)",
        cutoff,
        batch
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Refresh tokens whose session ended before `cutoff`: expired, revoked or spent by rotation,
/// whichever came first. (A spent token is kept until then because presenting it again is how a
/// theft is detected; past its expiry it proves nothing.)
pub async fn prune_ended_sessions(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "DELETE FROM refresh_tokens WHERE id IN (
             SELECT id FROM refresh_tokens WHERE LEAST(expires_at, revoked_at, used_at) < $1 LIMIT $2)",
        cutoff,
        batch
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Password-reset links that expired before `cutoff`.
pub async fn prune_password_resets(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "DELETE FROM password_reset_tokens WHERE id IN (
             SELECT id FROM password_reset_tokens WHERE expires_at < $1 LIMIT $2)",
        cutoff,
        batch
    )
    .execute(conn)
    .await?
    .rows_affected())
}
