//! What administrators see of the e-mail outbox: failures with the server's answer, and a way to
//! send one again once the cause is fixed. Payloads are not shown: they can carry secrets (a
//! password-reset link).

use crate::CoreError;
use crate::accounts::Caller;
use crate::audit::{self, AuditEntry};
use crate::pagination::{self, PageRequest};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub id: Uuid,
    pub idempotency_key: String,
    pub to_address: String,
    pub template: String,
    pub locale: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Outbox rows, newest first, optionally of one status (`pending`, `sent`, `failed`).
pub async fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    status: Option<&str>,
    page: PageRequest,
) -> Result<(Vec<OutboxEntry>, Option<String>), CoreError> {
    caller.require_admin()?;
    if let Some(status) = status.filter(|s| !matches!(*s, "pending" | "sent" | "failed")) {
        return Err(CoreError::invalid("status", format!("must be pending, sent or failed, not '{status}'")));
    }
    let (after_at, after_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let rows = sqlx::query_as!(
        OutboxEntry,
        r#"SELECT id, idempotency_key, to_address, template, locale, status, attempts, last_error, message_id,
                  next_attempt_at, last_attempt_at, sent_at, created_at
           FROM email_outbox
           WHERE ($1::text IS NULL OR status = $1)
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
           ORDER BY created_at DESC, id DESC
           LIMIT $4"#,
        status,
        after_at,
        after_id,
        page.fetch_limit()
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(pagination::finish(rows, &page, |e| (e.created_at, e.id)))
}

/// Makes a failed e-mail pending and due now, with a fresh attempt budget, and announces it to
/// the worker (the same channel new outbox rows use).
pub async fn retry(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<OutboxEntry, CoreError> {
    caller.require_admin()?;
    let status = sqlx::query_scalar!("SELECT status FROM email_outbox WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CoreError::NotFound("e-mail"))?;
    if status != "failed" {
        return Err(CoreError::conflict(
            "not_failed",
            format!("only failed e-mails are retried; this one is {status}"),
        ));
    }
    let entry = sqlx::query_as!(
        OutboxEntry,
        r#"UPDATE email_outbox SET status = 'pending', attempts = 0, next_attempt_at = $2
           WHERE id = $1
           RETURNING id, idempotency_key, to_address, template, locale, status, attempts, last_error, message_id,
                     next_attempt_at, last_attempt_at, sent_at, created_at"#,
        id,
        now
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!("SELECT pg_notify('email_outbox', $1)", id.to_string()).execute(&mut *conn).await?;
    audit::record(
        &mut *conn,
        AuditEntry {
            actor_id: Some(caller.user_id),
            action: "email.retried",
            subject_type: "email",
            subject_id: Some(id),
            ip: None,
            details: json!({ "template": entry.template }),
        },
        now,
    )
    .await?;
    Ok(entry)
}
