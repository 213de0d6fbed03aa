//! Whether alerts are held for a monitor at an instant: a maintenance window covering it (R12).

use chrono::{DateTime, Utc};
use helpdesk_domain::monitoring::maintenance;
use helpdesk_domain::monitoring::probe_state::{Hold, HoldReason};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::CoreError;
use crate::monitoring::windows;

/// The maintenance hold at `at`, until the end of the coverage containing it; `None` when no
/// window covers the monitor then.
pub async fn maintenance_hold(
    conn: &mut PgConnection,
    monitor_id: Uuid,
    organization_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<Hold>, CoreError> {
    let windows = windows::for_monitor(conn, monitor_id, organization_id).await?;
    Ok(maintenance::coverage_end(&windows, at).map(|until| Hold { reason: HoldReason::Maintenance, until }))
}
