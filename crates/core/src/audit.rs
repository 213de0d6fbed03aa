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

/// One audit entry as administrators read it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub subject_type: String,
    pub subject_id: Option<Uuid>,
    pub ip: Option<String>,
    pub details: Value,
}

/// Filters of the audit list; every one optional, all of them combined.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub subject_type: Option<String>,
    pub subject_id: Option<Uuid>,
    /// An exact action (`user.exported`) or a family ending in a dot (`session.`).
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

/// The audit log, newest first, a page at a time (the cursor names the last entry returned).
pub async fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    page: crate::pagination::PageRequest,
) -> Result<(Vec<AuditEvent>, Option<String>), sqlx::Error> {
    let (before_at, before_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let (action_exact, action_prefix) = match filter.action.as_deref() {
        Some(family) if family.ends_with('.') => {
            (None, Some(format!("{}%", family.replace('%', "\\%").replace('_', "\\_"))))
        }
        Some(action) => (Some(action.to_owned()), None),
        None => (None, None),
    };
    let rows = sqlx::query_as!(
        AuditEvent,
        r#"SELECT id, occurred_at, actor_id, action, subject_type, subject_id, ip, details
           FROM audit_events
           WHERE ($1::uuid IS NULL OR actor_id = $1)
             AND ($2::text IS NULL OR subject_type = $2)
             AND ($3::uuid IS NULL OR subject_id = $3)
             AND ($4::text IS NULL OR action = $4)
             AND ($5::text IS NULL OR action LIKE $5)
             AND ($6::timestamptz IS NULL OR occurred_at >= $6)
             AND ($7::timestamptz IS NULL OR occurred_at < $7)
             AND ($8::timestamptz IS NULL OR (occurred_at, id) < ($8, $9))
           ORDER BY occurred_at DESC, id DESC
           LIMIT $10"#,
        filter.actor_id,
        filter.subject_type,
        filter.subject_id,
        action_exact,
        action_prefix,
        filter.from,
        filter.to,
        before_at,
        before_id,
        page.fetch_limit()
    )
    .fetch_all(conn)
    .await?;
    Ok(crate::pagination::finish(rows, &page, |e| (e.occurred_at, e.id)))
}
