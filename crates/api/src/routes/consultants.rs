//! Consultants (R13): admins flag agents as consultants and set their weekly hours; admins or the
//! consultant record time off. Everyone signed in may list the active consultants, so customers
//! can book with one of them.

use super::calendar::WeeklyHoursView;
use crate::auth::Authenticated;
use crate::error::{ApiError, Problem};
use crate::extract::Json;
use crate::preconditions::{content_tag, tagged_read};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use helpdesk_core::consultants::{self, Consultant, ConsultantUpdate, TimeOff};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetConsultant {
    /// `false` stops new bookings with this consultant (booked meetings stay).
    #[serde(default = "yes")]
    pub active: bool,
    /// Local wall-clock hours inside the business calendar's; absent or `null`: all of them.
    pub weekly_hours: Option<WeeklyHoursView>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTimeOff {
    pub starts_at: DateTime<Utc>,
    /// Exclusive; at most a year after `starts_at`.
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    #[schema(max_length = 200, example = "Férias")]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimeOffView {
    pub id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
}

impl From<TimeOff> for TimeOffView {
    fn from(t: TimeOff) -> Self {
        TimeOffView { id: t.id, starts_at: t.starts_at, ends_at: t.ends_at, reason: t.reason }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsultantView {
    pub user_id: Uuid,
    pub name: String,
    pub active: bool,
    /// `null`: all of the business calendar's opening hours.
    pub weekly_hours: Option<WeeklyHoursView>,
    /// Current and future time off (staff only; empty in lists).
    pub time_off: Vec<TimeOffView>,
}

impl From<Consultant> for ConsultantView {
    fn from(c: Consultant) -> Self {
        ConsultantView {
            user_id: c.user_id,
            name: c.name,
            active: c.active,
            weekly_hours: c.weekly_hours.as_ref().map(WeeklyHoursView::from),
            time_off: c.time_off.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsultantList {
    pub items: Vec<ConsultantView>,
}

/// Active consultants, by name.
#[utoipa::path(tag = "meetings", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = ConsultantList),
    (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/consultants")]
pub async fn list_consultants(state: web::Data<AppState>, _caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await.map_err(helpdesk_core::CoreError::from)?;
    let items = consultants::list_active(&mut conn).await?;
    Ok(HttpResponse::Ok().json(ConsultantList { items: items.into_iter().map(Into::into).collect() }))
}

/// One consultant with their weekly hours and time off (staff).
#[utoipa::path(tag = "meetings", security(("bearer" = [])), params(("user_id" = Uuid, Path)), responses(
    (status = 200, description = "OK", body = ConsultantView),
    (status = 403, description = "`staff_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not a consultant", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/consultants/{user_id}")]
pub async fn get_consultant(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
    user_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.0.require_staff()?;
    let mut conn = state.pool.acquire().await.map_err(helpdesk_core::CoreError::from)?;
    let consultant = consultants::get(&mut conn, user_id.into_inner(), state.clock.now()).await?;
    let body = ConsultantView::from(consultant);
    Ok(tagged_read(&req, &content_tag(&body), &body))
}

/// Flag an agent or admin as a consultant, set their weekly hours, or unflag them
/// (`active: false`) (admin).
#[utoipa::path(tag = "meetings", security(("bearer" = [])), params(("user_id" = Uuid, Path)), request_body = SetConsultant, responses(
    (status = 200, description = "OK", body = ConsultantView),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Not staff, or invalid hours", body = Problem, content_type = "application/problem+json")))]
#[put("/v1/consultants/{user_id}")]
pub async fn set_consultant(
    state: web::Data<AppState>,
    caller: Authenticated,
    user_id: web::Path<Uuid>,
    body: Json<SetConsultant>,
) -> Result<HttpResponse, ApiError> {
    caller.0.require_admin()?;
    let body = body.0;
    let weekly_hours = body.weekly_hours.as_ref().map(|h| h.to_hours("weekly_hours.")).transpose()?;
    let mut tx = state.pool.begin().await.map_err(helpdesk_core::CoreError::from)?;
    let consultant = consultants::set(
        &mut tx,
        &caller.0,
        user_id.into_inner(),
        ConsultantUpdate { active: body.active, weekly_hours },
        state.clock.now(),
    )
    .await?;
    tx.commit().await.map_err(helpdesk_core::CoreError::from)?;
    Ok(HttpResponse::Ok().json(ConsultantView::from(consultant)))
}

/// Record time off (admin, or the consultant themself). Meetings already booked then stay.
#[utoipa::path(tag = "meetings", security(("bearer" = [])), params(("user_id" = Uuid, Path)), request_body = CreateTimeOff, responses(
    (status = 201, description = "Created", body = TimeOffView),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not a consultant", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/consultants/{user_id}/time-off")]
pub async fn add_time_off(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    user_id: web::Path<Uuid>,
    body: Json<CreateTimeOff>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    crate::idempotency::once(&req, &state, &caller.0, async |c| {
        let time_off = consultants::add_time_off(c, &caller.0, *user_id, b.starts_at, b.ends_at, b.reason).await?;
        crate::idempotency::Reply::created(&TimeOffView::from(time_off))
    })
    .await
}

/// Remove time off (admin, or the consultant themself).
#[utoipa::path(tag = "meetings", security(("bearer" = [])), params(("user_id" = Uuid, Path), ("id" = Uuid, Path)), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such time off", body = Problem, content_type = "application/problem+json")))]
#[delete("/v1/consultants/{user_id}/time-off/{id}")]
pub async fn remove_time_off(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, id) = path.into_inner();
    let mut tx = state.pool.begin().await.map_err(helpdesk_core::CoreError::from)?;
    consultants::remove_time_off(&mut tx, &caller.0, user_id, id).await?;
    tx.commit().await.map_err(helpdesk_core::CoreError::from)?;
    Ok(HttpResponse::NoContent().finish())
}
