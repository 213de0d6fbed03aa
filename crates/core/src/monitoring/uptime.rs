//! Uptime of a monitor over 24 h, 7 d and 30 d: the facts from the database (confirmed
//! downtimes, maintenance windows that concern it, "no data" gaps), the arithmetic from
//! `helpdesk_domain::monitoring::uptime`.

use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::monitoring::maintenance::covered_spans;
use helpdesk_domain::monitoring::span::Span;
use helpdesk_domain::monitoring::uptime::{PERIODS, Uptime, UptimeInputs, uptime};
use sqlx::PgConnection;

use super::monitors::Monitor;
use super::windows;
use crate::CoreError;

/// The longest period reported; inputs are loaded for it once.
const LONGEST: TimeDelta = TimeDelta::days(30);

/// Confirmed downtimes, maintenance and gaps of `monitor` overlapping `[from, now)`. An open
/// downtime lasts until now.
pub async fn inputs(
    conn: &mut PgConnection,
    monitor: &Monitor,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<UptimeInputs, CoreError> {
    let range = Span::new(from, now);
    let down = sqlx::query!(
        r#"SELECT started_at, COALESCE(resolved_at, $3) AS "until!" FROM incidents
           WHERE monitor_id = $1 AND kind = 'down' AND confirmed_at IS NOT NULL
             AND started_at < $3 AND (resolved_at IS NULL OR resolved_at > $2)"#,
        monitor.id,
        from,
        now
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| Span::new(r.started_at, r.until))
    .collect();
    let no_data = sqlx::query!(
        "SELECT from_at, to_at FROM monitor_gaps WHERE monitor_id = $1 AND to_at > $2 AND from_at < $3",
        monitor.id,
        from,
        now
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| Span::new(r.from_at, r.to_at))
    .collect();
    let windows = windows::for_monitor(conn, monitor.id, monitor.organization_id).await?;
    Ok(UptimeInputs { down, maintenance: covered_spans(&windows, range), no_data })
}

/// Uptime over each reported period (`24h`, `7d`, `30d`), ending now.
pub async fn for_monitor(
    conn: &mut PgConnection,
    monitor: &Monitor,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, Uptime)>, CoreError> {
    let facts = inputs(conn, monitor, now - LONGEST, now).await?;
    Ok(PERIODS
        .iter()
        .map(|(name, length)| (*name, uptime(Span::new(now - *length, now), monitor.created_at, &facts)))
        .collect())
}
