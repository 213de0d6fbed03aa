//! Operations views for administrators: the e-mail outbox.

use crate::auth::AdminOnly;
use crate::error::{ApiError, Problem};
use crate::extract::Query;
use crate::state::AppState;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use helpdesk_core::email_admin::{self, OutboxEntry};
use helpdesk_core::pagination::PageRequest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxEntryView {
    pub id: Uuid,
    /// What caused the e-mail (e.g. `password-reset:{token id}`); unique, so a cause sends once.
    pub idempotency_key: String,
    pub to_address: String,
    #[schema(example = "ticket_created")]
    pub template: String,
    pub locale: String,
    /// `pending`, `sent` or `failed`.
    #[schema(example = "failed")]
    pub status: String,
    pub attempts: i32,
    /// The last failure, e.g. the SMTP server's answer.
    #[schema(example = "550 5.1.1 mailbox unavailable")]
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<OutboxEntry> for OutboxEntryView {
    fn from(e: OutboxEntry) -> Self {
        OutboxEntryView {
            id: e.id,
            idempotency_key: e.idempotency_key,
            to_address: e.to_address,
            template: e.template,
            locale: e.locale,
            status: e.status,
            attempts: e.attempts,
            last_error: e.last_error,
            message_id: e.message_id,
            next_attempt_at: e.next_attempt_at,
            last_attempt_at: e.last_attempt_at,
            sent_at: e.sent_at,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxPage {
    pub items: Vec<OutboxEntryView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// `pending`, `sent` or `failed`.
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// E-mails in the outbox, newest first (admin). Payloads are never shown.
#[utoipa::path(tag = "admin", path = "/v1/admin/outbox", security(("bearer" = [])), params(OutboxQuery), responses(
    (status = 200, description = "OK", body = OutboxPage),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/admin/outbox")]
pub async fn list_outbox(
    state: web::Data<AppState>,
    caller: AdminOnly,
    query: Query<OutboxQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let (items, next_cursor) =
        crate::tx::read(&state.pool, async |c| email_admin::list(c, &caller.0, q.status.as_deref(), page).await)
            .await?;
    Ok(HttpResponse::Ok().json(OutboxPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Send a failed e-mail again (admin): it becomes pending and due now.
#[utoipa::path(tag = "admin", path = "/v1/admin/outbox/{id}/retry", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = OutboxEntryView),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The e-mail has not failed (`not_failed`)", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/admin/outbox/{id}/retry")]
pub async fn retry_outbox(
    state: web::Data<AppState>,
    caller: AdminOnly,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let entry =
        crate::tx::in_tx(&state.pool, async |c| email_admin::retry(c, &caller.0, *id, state.clock.now()).await).await?;
    Ok(HttpResponse::Ok().json(OutboxEntryView::from(entry)))
}
