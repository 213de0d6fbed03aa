//! The audit log (DESIGN R14), for administrators: who read or changed personal data, sign-ins,
//! and every privileged action.

use crate::auth::Authenticated;
use crate::error::{ApiError, Problem};
use crate::extract::Query;
use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use helpdesk_core::CoreError;
use helpdesk_core::audit::{self, AuditEvent, AuditFilter};
use helpdesk_core::pagination::PageRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// Who acted; absent for the system (a timer, a password-reset request).
    pub actor_id: Option<Uuid>,
    #[schema(example = "user.exported")]
    pub action: String,
    #[schema(example = "user")]
    pub subject_type: String,
    pub subject_id: Option<Uuid>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        AuditEventView {
            id: e.id,
            occurred_at: e.occurred_at,
            actor_id: e.actor_id,
            action: e.action,
            subject_type: e.subject_type,
            subject_id: e.subject_id,
            ip: e.ip,
            details: e.details,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventPage {
    pub items: Vec<AuditEventView>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub actor_id: Option<Uuid>,
    /// `user`, `organization`, `ticket`, …
    #[param(max_length = 50)]
    pub subject_type: Option<String>,
    pub subject_id: Option<Uuid>,
    /// An action (`user.exported`) or a family of them ending in a dot (`session.`).
    #[param(max_length = 100)]
    pub action: Option<String>,
    /// From this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Up to this instant (exclusive).
    pub to: Option<DateTime<Utc>>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The audit log, newest first (admin), filtered by actor, subject, action and time.
#[utoipa::path(tag = "audit", path = "/v1/audit-events", security(("bearer" = [])), params(AuditQuery), responses(
    (status = 200, description = "OK", body = AuditEventPage),
    (status = 400, description = "A filter does not parse", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not allowed (`admin_only`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid filter, limit or cursor", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/audit-events")]
pub async fn list_audit_events(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.0.require_admin()?;
    let q = query.0;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let mut errors = Vec::new();
    if q.subject_type.as_deref().is_some_and(|s| s.is_empty() || s.len() > 50) {
        errors.push(helpdesk_core::FieldError::new("subject_type", "must have between 1 and 50 characters"));
    }
    if q.action.as_deref().is_some_and(|s| s.is_empty() || s.len() > 100) {
        errors.push(helpdesk_core::FieldError::new("action", "must have between 1 and 100 characters"));
    }
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        errors.push(helpdesk_core::FieldError::new("to", "must be after from"));
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors).into());
    }
    let filter = AuditFilter {
        actor_id: q.actor_id,
        subject_type: q.subject_type,
        subject_id: q.subject_id,
        action: q.action,
        from: q.from,
        to: q.to,
    };
    let mut conn = state.pool.acquire().await.map_err(CoreError::from)?;
    let (items, next_cursor) = audit::list(&mut conn, &filter, page).await.map_err(CoreError::from)?;
    Ok(HttpResponse::Ok().json(AuditEventPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}
