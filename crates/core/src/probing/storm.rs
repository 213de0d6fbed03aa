//! The storm guard: when most probes fail in the same minute and the operator's canary fails
//! too, the fault is our network. One "probe connectivity problem" alert goes to the agents per
//! episode, and while the episode lasts the monitors' alerts are held (no per-site alerts, no
//! tickets). An episode is a `probe_network_alerts` row until it is resolved.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::alerts::tell_agents;
use crate::CoreError;
use crate::outbox::templates;

/// Whether an episode is open.
pub async fn active(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let open = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM probe_network_alerts WHERE resolved_at IS NULL) AS "open!""#
    )
    .fetch_one(conn)
    .await?;
    Ok(open)
}

/// Opens an episode unless one is open, alerting the agents once; true when this call opened it.
/// Serialised by an advisory lock so two workers seeing the same storm open one episode.
pub async fn begin(
    conn: &mut PgConnection,
    failing: usize,
    probed: usize,
    canary_url: &str,
    now: DateTime<Utc>,
) -> Result<bool, CoreError> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('helpdesk:probe-storm'))").execute(&mut *conn).await?;
    if active(&mut *conn).await? {
        return Ok(false);
    }
    let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let id = sqlx::query_scalar!(
        r#"INSERT INTO probe_network_alerts (id, minute, failing, probed, canary_url, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (minute) DO NOTHING RETURNING id"#,
        Uuid::now_v7(),
        minute,
        i32::try_from(failing).unwrap_or(i32::MAX),
        i32::try_from(probed).unwrap_or(i32::MAX),
        canary_url,
        now,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else { return Ok(false) };
    let payload = json!({ "failing": failing, "probed": probed, "canary_url": canary_url, "episode_id": id });
    tell_agents(conn, &format!("probe-storm:{id}"), templates::PROBE_NETWORK_PROBLEM, payload, now).await?;
    Ok(true)
}

/// Ends the open episode, if any; true when one was open.
pub async fn end(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query!("UPDATE probe_network_alerts SET resolved_at = $1 WHERE resolved_at IS NULL", now)
        .execute(conn)
        .await?;
    Ok(ended.rows_affected() > 0)
}
