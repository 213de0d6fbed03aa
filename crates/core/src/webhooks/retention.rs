//! Retention of the webhook log: events older than the period are deleted with their deliveries
//! and attempts (`ON DELETE CASCADE`), in batches, except an event some subscription still has to
//! deliver (pending or in flight, a retry included): nothing is dropped before it is sent or
//! given up. Replay (`replay_since`) reaches back as far as the log does.
//!
//! Event payloads carry what integrations were told (ticket subjects, public message bodies), so
//! the period is also how long that copy of personal data lives (R14).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Deletes up to `batch` events that occurred before `cutoff` and have nothing left to deliver;
/// returns how many.
pub async fn prune_events(conn: &mut PgConnection, cutoff: DateTime<Utc>, batch: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!(
        "DELETE FROM webhook_events WHERE id IN (
             SELECT e.id FROM webhook_events e
             WHERE e.occurred_at < $1
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                               WHERE d.event_id = e.id AND d.state IN ('pending', 'in_flight'))
             ORDER BY e.occurred_at, e.id
             LIMIT $2)",
        cutoff,
        batch
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}
