//! Consultancy meetings (R13): free slots, booking (with `Idempotency-Key`), rescheduling,
//! cancelling, an agent's agenda and an organisation's meetings. Another organisation's meeting
//! is a 404 on every route.

use crate::auth::Authenticated;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::preconditions::{content_tag, tagged_read};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use helpdesk_core::CoreError;
use helpdesk_core::meetings::{
    self, Booking, FreeSlot, Meeting, MeetingFilter, MeetingSettings, NewMeeting, Reschedule, SlotQuery,
};
use helpdesk_core::pagination::PageRequest;
use helpdesk_domain::calendar::BusinessCalendar;
use helpdesk_domain::meetings::MeetingRules;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The header a client sends so that a retried booking returns the meeting already made.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

fn settings(state: &AppState) -> MeetingSettings<'_> {
    MeetingSettings {
        rules: MeetingRules::default(),
        url_template: &state.config.meeting_url_template,
        organizer: &state.config.mail_from,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SlotParams {
    /// First local date (calendar's zone); default today.
    pub from: Option<NaiveDate>,
    /// Last local date, inclusive; default the horizon (30 days).
    pub to: Option<NaiveDate>,
    /// Minutes, 15–45; default 45.
    #[param(minimum = 15, maximum = 45)]
    pub duration: Option<i64>,
    /// Only this consultant's free slots.
    pub consultant: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Wall-clock start in the calendar's zone, e.g. `2026-12-04T10:00`.
    #[schema(example = "2026-12-04T10:00")]
    pub local_start: String,
    /// Consultants free for it.
    pub consultants: Vec<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotList {
    #[schema(example = "America/Sao_Paulo")]
    pub time_zone: String,
    pub duration_minutes: i64,
    pub slots: Vec<SlotView>,
}

fn local(calendar: &BusinessCalendar, at: DateTime<Utc>) -> String {
    calendar.local(at).format("%Y-%m-%dT%H:%M").to_string()
}

fn slot_view(calendar: &BusinessCalendar, s: FreeSlot) -> SlotView {
    SlotView {
        local_start: local(calendar, s.starts_at),
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        consultants: s.consultants,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMeeting {
    /// On the 15-minute grid of the calendar's wall clock, at least 2 business hours and at most
    /// 30 days ahead, inside business hours.
    pub starts_at: DateTime<Utc>,
    #[schema(minimum = 15, maximum = 45, example = 45)]
    pub duration_minutes: i64,
    /// A consultant; absent: any free one.
    pub consultant_id: Option<Uuid>,
    /// Staff only: the organisation booked for.
    pub organization_id: Option<Uuid>,
    /// The ticket the meeting is about, if any.
    pub ticket_id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 200, example = "Revisão da configuração do CDN")]
    pub topic: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleMeeting {
    pub starts_at: DateTime<Utc>,
    /// Absent: the same duration.
    #[schema(minimum = 15, maximum = 45)]
    pub duration_minutes: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelMeeting {
    /// Required when an agent cancels for the customer.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsultantRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub consultant: ConsultantRef,
    pub booked_by: Uuid,
    pub ticket_id: Option<Uuid>,
    pub topic: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Wall-clock start in the calendar's zone.
    #[schema(example = "2026-12-04T10:00")]
    pub local_start: String,
    #[schema(example = "America/Sao_Paulo")]
    pub time_zone: String,
    /// `confirmed` or `cancelled`.
    #[schema(example = "confirmed")]
    pub status: String,
    /// The invite's SEQUENCE: increases with every change.
    pub sequence: i32,
    /// The video call; the same across reschedules.
    pub meeting_url: String,
    /// Whether it uses up the organisation's monthly quota.
    pub counts_toward_quota: bool,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(calendar: &BusinessCalendar, m: Meeting) -> MeetingView {
    MeetingView {
        local_start: local(calendar, m.starts_at),
        time_zone: calendar.time_zone().name().to_owned(),
        id: m.id,
        organization_id: m.organization_id,
        consultant: ConsultantRef { id: m.consultant_id, name: m.consultant_name },
        booked_by: m.booked_by,
        ticket_id: m.ticket_id,
        topic: m.topic,
        starts_at: m.starts_at,
        ends_at: m.ends_at,
        status: m.status,
        sequence: m.sequence,
        meeting_url: m.meeting_url,
        counts_toward_quota: m.counts_toward_quota,
        cancelled_at: m.cancelled_at,
        cancel_reason: m.cancel_reason,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingPage {
    pub items: Vec<MeetingView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MeetingQuery {
    /// A consultant's id, or `me` (an agent's agenda).
    pub consultant: Option<String>,
    /// Staff only; customers always see their own organisation's.
    pub organization_id: Option<Uuid>,
    /// Meetings ending after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Meetings starting before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Include cancelled meetings (default false).
    pub include_cancelled: Option<bool>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn db(error: sqlx::Error) -> ApiError {
    CoreError::from(error).into()
}

/// Free slots: starts on the grid where some consultant (or the one asked for) is free, within
/// notice and horizon. Instants in UTC plus the local wall-clock time.
#[utoipa::path(tag = "meetings", path = "/v1/meetings/slots", security(("bearer" = [])), params(SlotParams), responses(
    (status = 200, description = "OK", body = SlotList),
    (status = 403, description = "`plan_not_entitled` (customers whose plan has no meetings)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input; a broken rule is named in `errors[].message` (`duration_too_long: …`)", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/meetings/slots")]
pub async fn list_slots(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<SlotParams>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let now = state.clock.now();
    let mut conn = state.pool.acquire().await.map_err(db)?;
    let calendar = state.sla.snapshot(&mut conn).await?.calendar;
    let duration_minutes = q.duration.unwrap_or(45);
    let query = SlotQuery { from: q.from, to: q.to, duration_minutes, consultant_id: q.consultant };
    let slots = meetings::slots(&mut conn, &calendar, &MeetingRules::default(), &caller.0, query, now).await?;
    Ok(HttpResponse::Ok().json(SlotList {
        time_zone: calendar.time_zone().name().to_owned(),
        duration_minutes,
        slots: slots.into_iter().map(|s| slot_view(&calendar, s)).collect(),
    }))
}

/// Book a meeting, from a ticket or on its own. The plan's entitlement and monthly quota are
/// checked in the same transaction as the insert; the database refuses any overlap. Send an
/// `Idempotency-Key` header to make retries safe: the same key returns the same meeting (200).
#[utoipa::path(tag = "meetings", security(("bearer" = [])), request_body = CreateMeeting,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–200 characters; unique per organisation")),
    responses(
    (status = 201, description = "Booked; confirmation e-mails with an .ics invite are queued", body = MeetingView),
    (status = 200, description = "A retry with the same Idempotency-Key: the meeting booked the first time", body = MeetingView),
    (status = 403, description = "`plan_not_entitled` (with `missing_entitlement`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such organisation", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "`slot_taken` (no consultant left), `organization_busy` or `meeting_quota_exhausted`", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "A broken rule, named in `errors[].message`: `weekend`, `closed_day`, `outside_business_hours`, `too_soon`, `too_far`, `off_grid`, `duration_too_long`, `duration_too_short`, `consultant_unavailable`", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/meetings")]
pub async fn create_meeting(
    state: web::Data<AppState>,
    caller: Authenticated,
    request: HttpRequest,
    body: Json<CreateMeeting>,
) -> Result<HttpResponse, ApiError> {
    let idempotency_key = match request.headers().get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => Some(
            value.to_str().map_err(|_| CoreError::invalid(IDEMPOTENCY_KEY, "must be visible ASCII"))?.trim().to_owned(),
        ),
    };
    let b = body.0;
    let input = NewMeeting {
        starts_at: b.starts_at,
        duration_minutes: b.duration_minutes,
        consultant_id: b.consultant_id,
        organization_id: b.organization_id,
        ticket_id: b.ticket_id,
        topic: b.topic,
        idempotency_key,
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await.map_err(db)?;
    let calendar = state.sla.snapshot(&mut tx).await?.calendar;
    let booking = meetings::book(&mut tx, &calendar, &settings(&state), &caller.0, input, now).await?;
    tx.commit().await.map_err(db)?;
    Ok(match booking {
        Booking::Created(m) => HttpResponse::Created().json(view(&calendar, m)),
        Booking::Replayed(m) => HttpResponse::Ok().json(view(&calendar, m)),
    })
}

/// Meetings in start order: an agent's agenda (`consultant=me`), a customer's organisation's.
#[utoipa::path(tag = "meetings", security(("bearer" = [])), params(MeetingQuery), responses(
    (status = 200, description = "OK", body = MeetingPage),
    (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/meetings")]
pub async fn list_meetings(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<MeetingQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let consultant_id = match q.consultant.as_deref() {
        None => None,
        Some("me") => Some(caller.0.user_id),
        Some(id) => {
            Some(id.parse().map_err(|_| CoreError::invalid("consultant", "must be a consultant's id or `me`"))?)
        }
    };
    let filter = MeetingFilter {
        consultant_id,
        organization_id: q.organization_id,
        from: q.from,
        to: q.to,
        include_cancelled: q.include_cancelled.unwrap_or(false),
    };
    let mut conn = state.pool.acquire().await.map_err(db)?;
    let calendar = state.sla.snapshot(&mut conn).await?.calendar;
    let (items, next_cursor) = meetings::list(&mut conn, &caller.0, filter, page).await?;
    Ok(HttpResponse::Ok()
        .json(MeetingPage { items: items.into_iter().map(|m| view(&calendar, m)).collect(), next_cursor }))
}

/// One meeting.
#[utoipa::path(tag = "meetings", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "OK", body = MeetingView),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/meetings/{id}")]
pub async fn get_meeting(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await.map_err(db)?;
    let calendar = state.sla.snapshot(&mut conn).await?.calendar;
    let meeting = meetings::get(&mut conn, &caller.0, id.into_inner()).await?;
    let body = view(&calendar, meeting);
    Ok(tagged_read(&req, &content_tag(&body), &body))
}

/// Move a meeting (same consultant and link). Atomic: if the new slot is taken the meeting
/// stays where it was. Customers can reschedule until 2 hours before the start.
#[utoipa::path(tag = "meetings", path = "/v1/meetings/{id}/reschedule", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = RescheduleMeeting, responses(
    (status = 200, description = "Moved; change e-mails with an updated .ics are queued", body = MeetingView),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "`slot_taken`, `organization_busy`, `cutoff_passed`, `meeting_started` or `meeting_cancelled`", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "A broken rule, named in `errors[].message`", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/meetings/{id}/reschedule")]
pub async fn reschedule_meeting(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: Json<RescheduleMeeting>,
) -> Result<HttpResponse, ApiError> {
    let change = Reschedule { starts_at: body.0.starts_at, duration_minutes: body.0.duration_minutes };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await.map_err(db)?;
    let calendar = state.sla.snapshot(&mut tx).await?.calendar;
    let meeting =
        meetings::reschedule(&mut tx, &calendar, &settings(&state), &caller.0, id.into_inner(), change, now).await?;
    tx.commit().await.map_err(db)?;
    Ok(HttpResponse::Ok().json(view(&calendar, meeting)))
}

/// Cancel a meeting; its slot is free at once. A customer's cancellation before the 2-hour
/// cut-off does not use up the monthly quota. Agents cancelling for the customer give a reason.
#[utoipa::path(tag = "meetings", path = "/v1/meetings/{id}/cancel", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = CancelMeeting, responses(
    (status = 200, description = "Cancelled; e-mails with a METHOD:CANCEL .ics are queued", body = MeetingView),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "`meeting_cancelled` or `meeting_started`", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input (an agent gave no reason)", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/meetings/{id}/cancel")]
pub async fn cancel_meeting(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: Json<CancelMeeting>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await.map_err(db)?;
    let calendar = state.sla.snapshot(&mut tx).await?.calendar;
    let meeting =
        meetings::cancel(&mut tx, &calendar, &settings(&state), &caller.0, id.into_inner(), body.0.reason, now).await?;
    tx.commit().await.map_err(db)?;
    Ok(HttpResponse::Ok().json(view(&calendar, meeting)))
}
