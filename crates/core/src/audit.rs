//! The audit log (DESIGN R14): who read or changed personal data, and account security events.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub actor_id: Option<Uuid>,
    pub action: &'static str,
    pub subject_type: &'static str,
    pub subject_id: Option<Uuid>,
    pub ip: Option<&'a str>,
    pub details: Value,
}

pub async fn record(conn: &mut PgConnection, entry: AuditEntry<'_>, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO audit_events (id, occurred_at, actor_id, action, subject_type, subject_id, ip, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        Uuid::now_v7(),
        now,
        entry.actor_id,
        entry.action,
        entry.subject_type,
        entry.subject_id,
        entry.ip,
        entry.details,
    )
    .execute(conn)
    .await?;
    Ok(())
}
