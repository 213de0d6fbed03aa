//! Monitoring housekeeping: the self-check (a monitor two intervals without a check means probing
//! is stuck somewhere), the daily partitions of raw results (created ahead, dropped whole after
//! the retention period) and the hourly rollups kept 13 months.

use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};
use serde_json::json;
use sqlx::PgConnection;

use super::alerts::tell_agents;
use crate::CoreError;
use crate::outbox::templates;

/// Finds active monitors without a check for two intervals; alerts the agents once per overdue
/// monitor and episode (one e-mail per agent listing them). Returns how many became overdue.
pub async fn self_check(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<usize, CoreError> {
    let overdue = sqlx::query!(
        r#"INSERT INTO monitor_self_check_alerts (monitor_id, overdue_since, created_at)
           SELECT id, COALESCE(last_check_started_at, created_at), $1::timestamptz FROM monitors
           WHERE NOT paused
             AND COALESCE(last_check_started_at, created_at) < $1::timestamptz - make_interval(secs => 2 * interval_seconds)
           ON CONFLICT DO NOTHING
           RETURNING monitor_id, (SELECT name FROM monitors WHERE id = monitor_id) AS "name!""#,
        now
    )
    .fetch_all(&mut *conn)
    .await?;
    if overdue.is_empty() {
        return Ok(0);
    }
    let names: Vec<&str> = overdue.iter().take(20).map(|row| row.name.as_str()).collect();
    let payload = json!({ "count": overdue.len(), "monitors": names.join(", ") });
    let key = format!("monitor-overdue:{}:{}", now.timestamp_micros(), overdue[0].monitor_id);
    tell_agents(conn, &key, templates::MONITOR_OVERDUE, payload, now).await?;
    Ok(overdue.len())
}

/// What one partition round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Partitions {
    pub created: i32,
    pub dropped: i32,
}

/// Creates the raw-result partitions from yesterday to a week ahead and the rollup months up to
/// two ahead, and drops raw partitions older than `retention_days` and rollup months older than
/// 13 months. Idempotent; meant to run daily (hourly is harmless).
pub async fn partitions(
    conn: &mut PgConnection,
    today: NaiveDate,
    retention_days: u32,
) -> Result<Partitions, CoreError> {
    let mut round = Partitions::default();
    round.created += scalar(
        sqlx::query_scalar!("SELECT monitor_checks_ensure_partitions($1, 9)", today - TimeDelta::days(1))
            .fetch_one(&mut *conn)
            .await?,
    );
    round.created += scalar(
        sqlx::query_scalar!("SELECT monitor_rollups_ensure_partitions($1, 3)", today).fetch_one(&mut *conn).await?,
    );
    let keep_from = today - TimeDelta::days(i64::from(retention_days));
    round.dropped += scalar(
        sqlx::query_scalar!("SELECT monitor_checks_drop_partitions_before($1)", keep_from)
            .fetch_one(&mut *conn)
            .await?,
    );
    let rollups_from = today.checked_sub_months(Months::new(13)).unwrap_or(today);
    round.dropped += scalar(
        sqlx::query_scalar!("SELECT monitor_rollups_drop_partitions_before($1)", rollups_from)
            .fetch_one(&mut *conn)
            .await?,
    );
    Ok(round)
}

/// Makes sure the raw-result partitions of `day` and the day after exist (the batch jobs call it
/// once per day and process, so a clock past the daily round's horizon never fails an insert).
pub async fn ensure_day(conn: &mut PgConnection, day: NaiveDate) -> Result<i32, CoreError> {
    Ok(scalar(sqlx::query_scalar!("SELECT monitor_checks_ensure_partitions($1, 2)", day).fetch_one(conn).await?))
}

fn scalar(value: Option<i32>) -> i32 {
    value.unwrap_or(0)
}

/// Recomputes the hourly rollups of the hours in `[from, to)` from the raw results (idempotent:
/// a rerun overwrites). Returns the rows written.
pub async fn roll_up(conn: &mut PgConnection, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64, CoreError> {
    let written = sqlx::query!(
        r#"INSERT INTO monitor_rollups (monitor_id, hour, checks, failures, degraded, latency_sum_ms, latency_max_ms)
           SELECT monitor_id, date_trunc('hour', scheduled_at), count(*)::int,
                  (count(*) FILTER (WHERE error_kind IS NOT NULL))::int, (count(*) FILTER (WHERE degraded))::int,
                  COALESCE(sum(latency_ms), 0)::bigint, max(latency_ms)
           FROM monitor_checks WHERE scheduled_at >= $1 AND scheduled_at < $2
           GROUP BY 1, 2
           ON CONFLICT (monitor_id, hour) DO UPDATE SET
               checks = EXCLUDED.checks, failures = EXCLUDED.failures, degraded = EXCLUDED.degraded,
               latency_sum_ms = EXCLUDED.latency_sum_ms, latency_max_ms = EXCLUDED.latency_max_ms"#,
        from,
        to
    )
    .execute(&mut *conn)
    .await?;
    Ok(written.rows_affected())
}
