//! The e-mail outbox (DESIGN §3.5): operations write the e-mails they cause here, inside their own
//! transaction; the worker delivers them. A unique idempotency key per cause means a retried
//! operation or a duplicate job can never queue a second copy.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// One e-mail to queue. `template` names the template files the worker renders.
#[derive(Debug, Clone)]
pub struct NewEmail<'a> {
    pub idempotency_key: String,
    pub to_address: &'a str,
    pub to_name: Option<&'a str>,
    pub locale: &'a str,
    pub template: &'static str,
    pub payload: Value,
}

/// Queues an e-mail; returns false when one with the same idempotency key was already queued.
pub async fn enqueue(conn: &mut PgConnection, email: NewEmail<'_>, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        r#"INSERT INTO email_outbox (id, idempotency_key, to_address, to_name, locale, template, payload, next_attempt_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
           ON CONFLICT (idempotency_key) DO NOTHING"#,
        Uuid::now_v7(),
        email.idempotency_key,
        email.to_address,
        email.to_name,
        email.locale,
        email.template,
        email.payload,
        now,
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
