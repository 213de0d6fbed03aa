//! Moving open tickets onto a new calendar or policy version (R5). An edit writes the version;
//! the tickets whose clocks still cite an older one are the record of the work left, found through
//! `tickets_projection_idx`. The API moves a first batch inside the edit's request; the
//! worker's reconciler moves the rest in batches, so a restart resumes where it stopped, and it
//! also picks up any ticket left behind for any reason.

use super::store::{self};
use crate::CoreError;
use crate::sla_store::SlaStore;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Tickets moved per batch: one short transaction each.
pub const BATCH: i64 = 200;

/// Moves up to one batch of open tickets that run on an older calendar or policy onto the ones in
/// force, in the caller's transaction; returns how many it moved (0 when none is left). Tickets
/// another transaction holds are skipped (`SKIP LOCKED`): several workers share the work.
pub async fn reproject_batch(
    conn: &mut PgConnection,
    store: &SlaStore,
    now: DateTime<Utc>,
) -> Result<usize, CoreError> {
    // Compared with the versions in SQL, so a steady state (nothing behind) costs one index read.
    let ids = sqlx::query_scalar!(
        r#"SELECT id FROM tickets
           WHERE status <> 'closed'
             AND (calendar_version < (SELECT max(version) FROM calendar_versions)
                  OR policy_version < (SELECT max(version) FROM sla_policy_versions))
           LIMIT $1 FOR UPDATE SKIP LOCKED"#,
        BATCH
    )
    .fetch_all(&mut *conn)
    .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let rules = store.snapshot(&mut *conn).await?;
    let mut changes = Vec::with_capacity(ids.len());
    for id in &ids {
        changes.push(store::lock(&mut *conn, None, *id, &rules, now).await?);
    }
    store::save_all(&mut *conn, changes, &rules, now).await?;
    Ok(ids.len())
}

/// How many open tickets still run on an older version.
pub async fn behind(conn: &mut PgConnection, store: &SlaStore) -> Result<i64, CoreError> {
    let rules = store.snapshot(&mut *conn).await?;
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM tickets WHERE status <> 'closed' AND (calendar_version < $1 OR policy_version < $2)"#,
        rules.calendar.version() as i32,
        rules.policy.version as i32
    )
    .fetch_one(conn)
    .await?)
}
