//! "Fale Conosco" (DESIGN R1): what non-customers send through the public form, and the
//! commercial team's handling of it. A contact request never creates an account; its personal
//! data is kept for the configured retention only (R14), then pruned by the worker.
//!
//! The form's minimum fill time needs to know when the form was served without trusting the
//! client's word: the API hands out a one-time token kept in Redis with the serving instant.

use crate::accounts::Caller;
use crate::outbox::{self, NewEmail, templates};
use crate::pagination::PageRequest;
use crate::{CoreError, FieldError};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use helpdesk_domain::contact::{ANSWER_MAX, ValidContact};
use rand::RngCore;
use redis::aio::ConnectionManager;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactStatus {
    Open,
    Answered,
    Closed,
}

impl ContactStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactStatus::Open => "open",
            ContactStatus::Answered => "answered",
            ContactStatus::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        match raw {
            "open" => Ok(ContactStatus::Open),
            "answered" => Ok(ContactStatus::Answered),
            "closed" => Ok(ContactStatus::Closed),
            other => Err(CoreError::Internal(format!("unknown contact request status '{other}'"))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ContactRequest {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub company: Option<String>,
    pub message: String,
    pub consented_at: DateTime<Utc>,
    pub status: ContactStatus,
    pub answer: Option<String>,
    pub answered_by: Option<Uuid>,
    pub answered_at: Option<DateTime<Utc>>,
    pub closed_by: Option<Uuid>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

struct Row {
    id: Uuid,
    name: String,
    email: String,
    company: Option<String>,
    message: String,
    consented_at: DateTime<Utc>,
    status: String,
    answer: Option<String>,
    answered_by: Option<Uuid>,
    answered_at: Option<DateTime<Utc>>,
    closed_by: Option<Uuid>,
    closed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for ContactRequest {
    type Error = CoreError;
    fn try_from(r: Row) -> Result<Self, CoreError> {
        Ok(ContactRequest {
            status: ContactStatus::parse(&r.status)?,
            id: r.id,
            name: r.name,
            email: r.email,
            company: r.company,
            message: r.message,
            consented_at: r.consented_at,
            answer: r.answer,
            answered_by: r.answered_by,
            answered_at: r.answered_at,
            closed_by: r.closed_by,
            closed_at: r.closed_at,
            created_at: r.created_at,
        })
    }
}

/// One-time tokens proving when a form was served (Redis, so any API instance can check them).
#[derive(Clone)]
pub struct FormTokens {
    redis: ConnectionManager,
    prefix: String,
}

/// How long a served form stays usable.
const FORM_TOKEN_TTL_SECONDS: u64 = 24 * 3600;

impl FormTokens {
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self { redis, prefix: format!("{prefix}:contact-form") }
    }

    /// A new token for a form served at `now`.
    pub async fn issue(&self, now: DateTime<Utc>) -> Result<String, CoreError> {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let mut redis = self.redis.clone();
        redis::cmd("SET")
            .arg(format!("{}:{token}", self.prefix))
            .arg(now.timestamp_micros())
            .arg("EX")
            .arg(FORM_TOKEN_TTL_SECONDS)
            .query_async::<()>(&mut redis)
            .await?;
        Ok(token)
    }

    /// When the form of `token` was served; `None` for a token never issued, expired or spent.
    pub async fn served_at(&self, token: &str) -> Result<Option<DateTime<Utc>>, CoreError> {
        if token.len() > 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut redis = self.redis.clone();
        let micros: Option<i64> =
            redis::cmd("GET").arg(format!("{}:{token}", self.prefix)).query_async(&mut redis).await?;
        Ok(micros.and_then(DateTime::from_timestamp_micros))
    }

    /// Spends the token; false when another submission spent it first.
    pub async fn spend(&self, token: &str) -> Result<bool, CoreError> {
        let mut redis = self.redis.clone();
        let removed: u64 = redis::cmd("DEL").arg(format!("{}:{token}", self.prefix)).query_async(&mut redis).await?;
        Ok(removed == 1)
    }
}

fn local_time(at: DateTime<Utc>, zone: Tz) -> String {
    format!("{} ({})", at.with_timezone(&zone).format("%d/%m/%Y %H:%M"), zone.name())
}

/// Stores a contact request and, in the same transaction, the e-mail to the commercial team.
pub async fn submit(
    conn: &mut PgConnection,
    contact: ValidContact,
    commercial_address: &str,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<ContactRequest, CoreError> {
    let id = Uuid::now_v7();
    let row = sqlx::query_as!(
        Row,
        r#"INSERT INTO contact_requests (id, name, email, company, message, consented_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6)
           RETURNING id, name, email, company, message, consented_at, status, answer, answered_by, answered_at, closed_by, closed_at, created_at"#,
        id,
        contact.name,
        contact.email.as_str(),
        contact.company,
        contact.message,
        now,
    )
    .fetch_one(&mut *conn)
    .await?;
    let request = ContactRequest::try_from(row)?;
    outbox::enqueue(
        conn,
        NewEmail {
            idempotency_key: format!("contact:{id}:commercial"),
            to_address: commercial_address,
            to_name: Some("Comercial Kadix"),
            locale: "pt-BR",
            template: templates::CONTACT_REQUEST,
            payload: json!({
                "contact_id": id,
                "name": request.name,
                "email": request.email,
                "company": request.company.as_deref().unwrap_or("-"),
                "message": request.message,
                "received_at": local_time(now, zone),
            }),
        },
        now,
    )
    .await?;
    Ok(request)
}

#[derive(Debug, Default)]
pub struct ContactFilter {
    pub status: Option<ContactStatus>,
}

/// Contact requests, newest first (staff).
pub async fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    filter: ContactFilter,
    page: PageRequest,
) -> Result<(Vec<ContactRequest>, Option<String>), CoreError> {
    caller.require_staff()?;
    let (after_at, after_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id, name, email, company, message, consented_at, status, answer, answered_by, answered_at, closed_by, closed_at, created_at
           FROM contact_requests
           WHERE ($1::text IS NULL OR status = $1)
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
           ORDER BY created_at DESC, id DESC
           LIMIT $4"#,
        filter.status.map(ContactStatus::as_str),
        after_at,
        after_id,
        page.fetch_limit(),
    )
    .fetch_all(&mut *conn)
    .await?;
    let requests = rows.into_iter().map(ContactRequest::try_from).collect::<Result<Vec<_>, _>>()?;
    Ok(crate::pagination::finish(requests, &page, |r| (r.created_at, r.id)))
}

async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<ContactRequest, CoreError> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT id, name, email, company, message, consented_at, status, answer, answered_by, answered_at, closed_by, closed_at, created_at
           FROM contact_requests WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound("contact request"))?;
    ContactRequest::try_from(row)
}

/// One contact request (staff).
pub async fn get(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<ContactRequest, CoreError> {
    caller.require_staff()?;
    let row = sqlx::query_as!(
        Row,
        r#"SELECT id, name, email, company, message, consented_at, status, answer, answered_by, answered_at, closed_by, closed_at, created_at
           FROM contact_requests WHERE id = $1"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound("contact request"))?;
    ContactRequest::try_from(row)
}

/// Answers a contact request by e-mail (through the outbox, same transaction). Once only: a
/// second answer is a conflict, so the sender never gets two versions.
pub async fn answer(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    body: &str,
    now: DateTime<Utc>,
) -> Result<ContactRequest, CoreError> {
    caller.require_staff()?;
    let body = body.trim();
    if body.is_empty() || body.chars().count() > ANSWER_MAX {
        return Err(CoreError::Validation(vec![FieldError::new(
            "body",
            format!("must be 1 to {ANSWER_MAX} characters"),
        )]));
    }
    let request = lock(conn, id).await?;
    match request.status {
        ContactStatus::Open => {}
        ContactStatus::Answered => return Err(CoreError::conflict("already_answered", "this request was answered")),
        ContactStatus::Closed => return Err(CoreError::conflict("contact_closed", "this request is closed")),
    }
    let row = sqlx::query_as!(
        Row,
        r#"UPDATE contact_requests SET status = 'answered', answer = $2, answered_by = $3, answered_at = $4
           WHERE id = $1
           RETURNING id, name, email, company, message, consented_at, status, answer, answered_by, answered_at, closed_by, closed_at, created_at"#,
        id,
        body,
        caller.user_id,
        now
    )
    .fetch_one(&mut *conn)
    .await?;
    let request = ContactRequest::try_from(row)?;
    outbox::enqueue(
        conn,
        NewEmail {
            idempotency_key: format!("contact:{id}:answer"),
            to_address: &request.email,
            to_name: Some(&request.name),
            locale: "pt-BR",
            template: templates::CONTACT_ANSWER,
            payload: json!({ "name": request.name, "message": request.message, "answer": body }),
        },
        now,
    )
    .await?;
    Ok(request)
}

/// Closes a contact request, answered or not (spam, handled by phone…).
pub async fn close(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<ContactRequest, CoreError> {
    caller.require_staff()?;
    let request = lock(conn, id).await?;
    if request.status == ContactStatus::Closed {
        return Err(CoreError::conflict("contact_closed", "this request is already closed"));
    }
    let row = sqlx::query_as!(
        Row,
        r#"UPDATE contact_requests SET status = 'closed', closed_by = $2, closed_at = $3
           WHERE id = $1
           RETURNING id, name, email, company, message, consented_at, status, answer, answered_by, answered_at, closed_by, closed_at, created_at"#,
        id,
        caller.user_id,
        now
    )
    .fetch_one(&mut *conn)
    .await?;
    ContactRequest::try_from(row)
}

/// Deletes up to `limit` contact requests received before `cutoff`, oldest first; returns how
/// many. The worker's retention job calls it in rounds until it returns less than `limit`.
pub async fn prune(conn: &mut PgConnection, cutoff: DateTime<Utc>, limit: i64) -> Result<u64, CoreError> {
    let deleted = sqlx::query!(
        r#"DELETE FROM contact_requests WHERE id IN (
               SELECT id FROM contact_requests WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)"#,
        cutoff,
        limit
    )
    .execute(&mut *conn)
    .await?;
    Ok(deleted.rows_affected())
}
