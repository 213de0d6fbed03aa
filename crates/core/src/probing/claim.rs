//! Claiming due monitors: each claim moves the monitor's `next_check_at` to the claim's lease
//! end and remembers the planned slot (`monitor_probe_states.claimed_slot`), in the statement
//! that locks it, so no other worker claims it for that slot while the probe runs.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A monitor claimed for one planned slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claimed {
    pub monitor_id: Uuid,
    pub slot: DateTime<Utc>,
}

/// Claims up to `limit` monitors due at `now`, oldest plan first. Monitors locked by another
/// worker's claim are skipped, not waited for. A monitor claimed before whose lease ran out (its
/// worker died) keeps its original slot, so the late probe is seen as a catch-up.
pub async fn claim_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
    lease: TimeDelta,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as!(
        Claimed,
        r#"WITH due AS (
               SELECT id, next_check_at FROM monitors
               WHERE NOT paused AND next_check_at <= $1
               ORDER BY next_check_at
               LIMIT $2
               FOR UPDATE SKIP LOCKED),
           moved AS (
               UPDATE monitors m SET next_check_at = $3 FROM due WHERE m.id = due.id
               RETURNING m.id, due.next_check_at AS planned)
           INSERT INTO monitor_probe_states (monitor_id, claimed_slot)
           SELECT id, planned FROM moved
           ON CONFLICT (monitor_id) DO UPDATE
               SET claimed_slot = COALESCE(monitor_probe_states.claimed_slot, EXCLUDED.claimed_slot)
           RETURNING monitor_id, claimed_slot AS "slot!""#,
        now,
        limit,
        now + lease,
    )
    .fetch_all(conn)
    .await
}

/// What the probe needs to know about a monitor.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub id: Uuid,
    pub url: String,
    pub expected_status_codes: Vec<i32>,
    pub keyword: Option<String>,
    pub keyword_mode: Option<String>,
    pub latency_threshold_ms: Option<i32>,
    pub timeout_seconds: i32,
}

/// The probe settings of the monitors among `ids` that are still active.
pub async fn specs(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ProbeSpec>, sqlx::Error> {
    sqlx::query_as!(
        ProbeSpec,
        r#"SELECT id, url, expected_status_codes, keyword, keyword_mode, latency_threshold_ms, timeout_seconds
           FROM monitors WHERE id = ANY($1) AND NOT paused"#,
        ids
    )
    .fetch_all(conn)
    .await
}
