//! Tickets (DESIGN R2–R6, R9): intake checked against the contract, the SLA clock on every
//! ticket, conversation and lifecycle. Another organisation's ticket is a 404 on every route.

use super::dto::double_option;
use crate::auth::Authenticated;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::idempotency::Reply;
use crate::preconditions::{IfMatch, tagged, tagged_read, version_tag};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use helpdesk_core::pagination::PageRequest;
use helpdesk_core::tickets::{
    self, Message, NewMessage, NewTicket, Sort, Ticket, TicketFilter, TicketUpdate, TimelineEvent,
};
use helpdesk_domain::attainment::Outcome;
use helpdesk_domain::plans::Category;
use helpdesk_domain::sla::{ClockMode, ClockPhase, MetricExplanation, Severity, SlaExplanation};
use helpdesk_domain::tickets::{CloseReason, Source, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    #[schema(min_length = 1, max_length = 200, example = "Site fora do ar")]
    pub subject: String,
    #[schema(min_length = 1, max_length = 20000)]
    pub description: String,
    /// `service` (billing, commercial, account: every plan) or `technical` (Pro and Premium).
    pub category: Category,
    /// Impact on availability: `critical` (down), `high` (degraded), `normal`, `low` (question).
    pub severity: Severity,
    /// Premium only: "Atendimento Prioritário", counted 24×7.
    #[serde(default)]
    pub emergency: bool,
    /// An earlier ticket this one follows up (e.g. one closed more than 7 days ago).
    pub references_ticket_id: Option<Uuid>,
    /// Agents only, and required of them: the customer (user id) the ticket is opened for, for
    /// example after a phone call. That customer's contract decides the entitlement.
    pub on_behalf_of: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicket {
    /// Re-targets the SLA; time already consumed stays consumed.
    pub severity: Option<Severity>,
    /// `null` unassigns.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    /// `open` or `waiting_customer` (which pauses the resolution clock).
    pub status: Option<Status>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMessage {
    #[schema(min_length = 1, max_length = 20000)]
    pub body: String,
    /// Agents only: a note customers never see.
    #[serde(default)]
    pub internal: bool,
    /// Agents only: set the status with the reply (e.g. `waiting_customer`).
    pub status: Option<Status>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseTicket {
    /// `resolved` (default), `not_needed` or `duplicate`.
    pub reason: Option<RequestedCloseReason>,
}

/// The reasons a person may give when closing a ticket. Responses use [`CloseReason`], which
/// adds `auto_closed`: only the system closes a ticket for that reason (R8), so a client
/// generated from the spec cannot send it.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestedCloseReason {
    Resolved,
    NotNeeded,
    Duplicate,
}

impl From<RequestedCloseReason> for CloseReason {
    fn from(reason: RequestedCloseReason) -> Self {
        match reason {
            RequestedCloseReason::Resolved => CloseReason::Resolved,
            RequestedCloseReason::NotNeeded => CloseReason::NotNeeded,
            RequestedCloseReason::Duplicate => CloseReason::Duplicate,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricSummary {
    /// When the target is reached if the clock keeps running; absent while paused or met.
    pub due_at: Option<DateTime<Utc>>,
    /// When 80 % (configurable) of the target is consumed.
    pub at_risk_at: Option<DateTime<Utc>>,
    pub met_at: Option<DateTime<Utc>>,
    pub breached: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlaSummary {
    pub first_response: MetricSummary,
    pub resolution: MetricSummary,
    /// A target is missed (now); a closed ticket keeps the verdict it closed with.
    pub breached: bool,
    /// A running target is past its at-risk instant but not yet missed (now).
    pub at_risk: bool,
    pub calendar_version: i32,
    pub policy_version: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub id: Uuid,
    /// Human-friendly sequential number.
    pub number: i64,
    pub organization_id: Uuid,
    /// The customer the ticket is for; absent when the system opened it for the organisation.
    pub requester_id: Option<Uuid>,
    /// Who opened it: the requester, an agent on their behalf, or absent for the system.
    pub opened_by: Option<Uuid>,
    /// How it came in: `portal` (a customer), `agent` (on a customer's behalf), `monitoring`.
    pub source: Source,
    pub assignee_id: Option<Uuid>,
    pub subject: String,
    pub description: String,
    pub category: Category,
    pub severity: Severity,
    pub emergency: bool,
    /// The plan in force when the ticket was opened.
    pub plan: String,
    pub status: Status,
    pub close_reason: Option<CloseReason>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Until when the customer may reopen it.
    pub reopenable_until: Option<DateTime<Utc>>,
    pub waiting_since: Option<DateTime<Utc>>,
    /// When the reminder of the current wait for the customer went out (R8); the ticket closes
    /// by itself after the policy's `auto_close_after_hours` unless the customer answers.
    pub reminder_sent_at: Option<DateTime<Utc>>,
    pub references_ticket_id: Option<Uuid>,
    pub sla: SlaSummary,
    /// Increases with every change.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TicketView {
    pub fn new(t: Ticket, now: DateTime<Utc>) -> Self {
        let breached = t.breached_at(now);
        let at_risk = t.at_risk_at(now);
        TicketView {
            sla: SlaSummary {
                first_response: MetricSummary {
                    due_at: t.first_response_due_at,
                    at_risk_at: t.first_response_at_risk_at,
                    met_at: t.first_response_met_at,
                    breached: t.first_response_breached_at(now),
                },
                resolution: MetricSummary {
                    due_at: t.resolution_due_at,
                    at_risk_at: t.resolution_at_risk_at,
                    met_at: t.resolution_met_at,
                    breached: t.resolution_breached_at(now),
                },
                breached,
                at_risk,
                calendar_version: t.calendar_version,
                policy_version: t.policy_version,
            },
            reopenable_until: t.closed_at.map(|c| c + helpdesk_domain::tickets::REOPEN_WINDOW),
            id: t.id,
            number: t.number,
            organization_id: t.organization_id,
            requester_id: t.requester_id,
            opened_by: t.opened_by,
            source: t.source,
            assignee_id: t.assignee_id,
            subject: t.subject,
            description: t.description,
            category: t.category,
            severity: t.severity,
            emergency: t.emergency,
            plan: t.plan_code,
            status: t.status,
            close_reason: t.close_reason,
            closed_at: t.closed_at,
            waiting_since: t.waiting_since,
            reminder_sent_at: t.reminder_sent_at,
            references_ticket_id: t.references_ticket_id,
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketPage {
    pub items: Vec<TicketView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        MessageView {
            id: m.id,
            ticket_id: m.ticket_id,
            author_id: m.author_id,
            body: m.body,
            internal: m.internal,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageCreated {
    pub message: MessageView,
    pub ticket: TicketView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEventView {
    pub id: Uuid,
    /// Who did it; absent for the system (timers, SLA events).
    pub actor_id: Option<Uuid>,
    /// `created`, `reply_added`, `note_added`, `status_changed`, `assigned`, `severity_changed`,
    /// `closed`, `reopened`, `sla` (an SLA clock event: started, paused, resumed, met, …),
    /// `reminder_sent`, `auto_closed`, and for agents `sla_alert`.
    pub kind: String,
    pub data: Value,
    pub internal: bool,
    pub occurred_at: DateTime<Utc>,
}

impl From<TimelineEvent> for TimelineEventView {
    fn from(e: TimelineEvent) -> Self {
        TimelineEventView {
            id: e.id,
            actor_id: e.actor_id,
            kind: e.kind,
            data: e.data,
            internal: e.internal,
            occurred_at: e.occurred_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountedSpan {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Seconds that counted inside the span (business time for business targets).
    pub counted_seconds: i64,
    pub mode: ClockMode,
    pub calendar_version: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PausedSpan {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedDayView {
    pub date: NaiveDate,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricExplanationView {
    pub target_seconds: i64,
    pub mode: ClockMode,
    pub phase: ClockPhase,
    pub consumed_seconds: i64,
    pub remaining_seconds: i64,
    pub due_at: Option<DateTime<Utc>>,
    pub met_at: Option<DateTime<Utc>>,
    pub breached: bool,
    pub breached_at: Option<DateTime<Utc>>,
    pub at_risk: bool,
    pub counted: Vec<CountedSpan>,
    pub paused: Vec<PausedSpan>,
    pub closed_days_skipped: Vec<SkippedDayView>,
    /// Closed days still ahead, between now and the due instant, that the running clock will
    /// skip: why the due instant is further away than the target suggests.
    pub closed_days_ahead: Vec<SkippedDayView>,
    pub calendar_versions: Vec<u32>,
    pub policy_versions: Vec<u32>,
}

fn seconds(d: TimeDelta) -> i64 {
    d.num_seconds()
}

impl From<MetricExplanation> for MetricExplanationView {
    fn from(m: MetricExplanation) -> Self {
        let s = m.state;
        MetricExplanationView {
            target_seconds: seconds(s.target.duration),
            mode: s.target.mode,
            phase: s.phase,
            consumed_seconds: seconds(s.consumed),
            remaining_seconds: seconds(s.remaining),
            due_at: s.due_at,
            met_at: s.met_at,
            breached: s.breached,
            breached_at: s.breached_at,
            at_risk: s.at_risk,
            counted: m
                .counted
                .into_iter()
                .map(|c| CountedSpan {
                    from: c.from,
                    to: c.to,
                    counted_seconds: seconds(c.counted),
                    mode: c.mode,
                    calendar_version: c.calendar_version,
                })
                .collect(),
            paused: m.paused.into_iter().map(|p| PausedSpan { from: p.from, to: p.to }).collect(),
            closed_days_skipped: m
                .closed_days_skipped
                .into_iter()
                .map(|d| SkippedDayView { date: d.date, name: d.name })
                .collect(),
            closed_days_ahead: m
                .closed_days_ahead
                .into_iter()
                .map(|d| SkippedDayView { date: d.date, name: d.name })
                .collect(),
            calendar_versions: m.calendar_versions,
            policy_versions: m.policy_versions,
        }
    }
}

/// Why the ticket's SLA stands where it does.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaExplanationView {
    pub first_response: MetricExplanationView,
    pub resolution: MetricExplanationView,
}

impl From<SlaExplanation> for SlaExplanationView {
    fn from(e: SlaExplanation) -> Self {
        SlaExplanationView { first_response: e.first_response.into(), resolution: e.resolution.into() }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    #[param(example = "open")]
    pub status: Option<Status>,
    #[param(example = "critical")]
    pub severity: Option<Severity>,
    #[param(example = "technical")]
    pub category: Option<Category>,
    /// Staff only; customers always see their own organisation.
    pub organization_id: Option<Uuid>,
    /// An agent's id, `me`, or `none` for unassigned tickets (staff).
    pub assignee: Option<String>,
    /// Plan code at opening (staff).
    pub plan: Option<String>,
    /// How tickets came in: `portal`, `agent` or `monitoring`.
    #[param(inline, example = "monitoring")]
    pub source: Option<Source>,
    pub breached: Option<bool>,
    pub at_risk: Option<bool>,
    /// Opened at or after this instant (the SLA report's period start).
    pub created_from: Option<DateTime<Utc>>,
    /// Opened before this instant (exclusive; the SLA report's period end).
    pub created_to: Option<DateTime<Utc>>,
    /// The first-response verdict now, as the SLA report counts it: `met`, `breached`, `abandoned`, `pending`.
    #[param(inline, example = "breached")]
    pub first_response: Option<Outcome>,
    /// The resolution verdict now, as the SLA report counts it: `met`, `breached`, `abandoned`, `pending`.
    #[param(inline, example = "met")]
    pub resolution: Option<Outcome>,
    #[param(inline, example = "auto_closed")]
    pub close_reason: Option<CloseReason>,
    /// `created` (newest first, default) or `due` (unresolved tickets, soonest due first).
    #[param(pattern = "^(created|due)$")]
    pub sort: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn view(ticket: Ticket, state: &AppState) -> TicketView {
    TicketView::new(ticket, state.clock.now())
}

/// Open a ticket. A customer opens one for their organisation; an agent opens one on behalf of a
/// customer (`on_behalf_of`). The organisation's contract must cover it (R2): Essencial opens
/// `service` tickets only; only Premium flags emergencies.
#[utoipa::path(tag = "tickets", security(("bearer" = [])), request_body = CreateTicket, responses(
    (status = 201, description = "Created", body = TicketView),
    (status = 403, description = "`plan_not_entitled` (with `missing_entitlement`) or `customers_only`", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/tickets")]
pub async fn create_ticket(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    body: Json<CreateTicket>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let input = NewTicket {
        subject: b.subject,
        description: b.description,
        category: b.category,
        severity: b.severity,
        emergency: b.emergency,
        references_ticket_id: b.references_ticket_id,
        on_behalf_of: b.on_behalf_of,
    };
    crate::idempotency::once(&req, &state, &caller.0, async |c| {
        let ticket = tickets::open(c, &state.sla, &caller.0, input, state.clock.now()).await?;
        let location = format!("/v1/tickets/{}", ticket.id);
        let tag = version_tag(ticket.version);
        Ok(Reply::created(&view(ticket, &state))?.header(&header::LOCATION, location).header(&header::ETAG, tag))
    })
    .await
}

/// Tickets the caller may see, filtered; `sort=due` is the agents' queue.
#[utoipa::path(tag = "tickets", security(("bearer" = [])), params(TicketQuery), responses(
    (status = 200, description = "OK", body = TicketPage),
    (status = 400, description = "Malformed request", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/tickets")]
pub async fn list_tickets(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<TicketQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let (assignee_id, unassigned) = match q.assignee.as_deref() {
        None => (None, false),
        Some("me") => (Some(caller.0.user_id), false),
        Some("none") => (None, true),
        Some(id) => (
            Some(
                id.parse::<Uuid>()
                    .map_err(|_| helpdesk_core::CoreError::invalid("assignee", "must be an agent id, me or none"))?,
            ),
            false,
        ),
    };
    let sort = match q.sort.as_deref() {
        None | Some("created") => Sort::Created,
        Some("due") => Sort::Due,
        Some(_) => return Err(helpdesk_core::CoreError::invalid("sort", "must be created or due").into()),
    };
    let filter = TicketFilter {
        status: q.status,
        severity: q.severity,
        category: q.category,
        organization_id: q.organization_id,
        assignee_id,
        unassigned,
        plan: q.plan,
        source: q.source,
        breached: q.breached,
        at_risk: q.at_risk,
        created_from: q.created_from,
        created_to: q.created_to,
        first_response: q.first_response,
        resolution: q.resolution,
        close_reason: q.close_reason,
    };
    let now = state.clock.now();
    let (items, next_cursor) =
        crate::tx::read(&state.pool, async |c| tickets::list(c, &caller.0, filter, sort, page, now).await).await?;
    Ok(HttpResponse::Ok()
        .json(TicketPage { items: items.into_iter().map(|t| TicketView::new(t, now)).collect(), next_cursor }))
}

/// One ticket.
#[utoipa::path(tag = "tickets", security(("bearer" = [])), responses((status = 200, description = "OK", body = TicketView), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/tickets/{id}")]
pub async fn get_ticket(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let ticket = crate::tx::read(&state.pool, async |c| tickets::get(c, Some(&caller.0), *id).await).await?;
    let tag = version_tag(ticket.version);
    Ok(tagged_read(&req, &tag, &view(ticket, &state)))
}

/// Change severity, assignee or status (agents).
#[utoipa::path(tag = "tickets", security(("bearer" = [])), request_body = UpdateTicket, responses(
    (status = 200, description = "OK", body = TicketView),
    (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
#[patch("/v1/tickets/{id}")]
pub async fn update_ticket(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<UpdateTicket>,
) -> Result<HttpResponse, ApiError> {
    let condition = IfMatch::from_request(&req)?;
    let b = body.0;
    let update = TicketUpdate { severity: b.severity, assignee_id: b.assignee_id, status: b.status };
    let ticket = crate::tx::in_tx(&state.pool, async |c| {
        check_version(c, &caller, *id, condition.as_ref()).await?;
        tickets::update(c, &state.sla, &caller.0, *id, update, state.clock.now()).await
    })
    .await?;
    Ok(changed(ticket, &state))
}

/// The conversation, oldest first. Customers never see internal notes.
#[utoipa::path(tag = "tickets", path = "/v1/tickets/{id}/messages", security(("bearer" = [])), responses((status = 200, description = "OK", body = Vec<MessageView>), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/tickets/{id}/messages")]
pub async fn list_messages(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let messages = crate::tx::read(&state.pool, async |c| tickets::messages(c, &caller.0, *id).await).await?;
    Ok(HttpResponse::Ok().json(messages.into_iter().map(MessageView::from).collect::<Vec<_>>()))
}

/// Reply, or (agents) add an internal note. An agent's first public reply meets the
/// first-response target; a customer's reply to a waiting ticket resumes its clock.
#[utoipa::path(tag = "tickets", path = "/v1/tickets/{id}/messages", security(("bearer" = [])), request_body = CreateMessage, responses(
    (status = 201, description = "Created", body = MessageCreated),
    (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The ticket is closed (`ticket_closed`)", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/tickets/{id}/messages")]
pub async fn create_message(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<CreateMessage>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    crate::idempotency::once(&req, &state, &caller.0, async |c| {
        let (message, ticket) = tickets::post_message(
            c,
            &state.sla,
            &caller.0,
            *id,
            NewMessage { body: b.body, internal: b.internal, then_status: b.status },
            state.clock.now(),
        )
        .await?;
        Reply::created(&MessageCreated { message: message.into(), ticket: view(ticket, &state) })
    })
    .await
}

/// The audit timeline: status changes, assignment, SLA events, who and when.
#[utoipa::path(tag = "tickets", path = "/v1/tickets/{id}/events", security(("bearer" = [])), responses((status = 200, description = "OK", body = Vec<TimelineEventView>), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/tickets/{id}/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let events = crate::tx::read(&state.pool, async |c| tickets::events(c, &caller.0, *id).await).await?;
    Ok(HttpResponse::Ok().json(events.into_iter().map(TimelineEventView::from).collect::<Vec<_>>()))
}

/// The SLA clock explained: spans counted and paused, closed days skipped, versions used.
#[utoipa::path(tag = "tickets", path = "/v1/tickets/{id}/sla", security(("bearer" = [])), responses((status = 200, description = "OK", body = SlaExplanationView), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/tickets/{id}/sla")]
pub async fn explain_sla(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let explanation = crate::tx::read(&state.pool, async |c| {
        tickets::explain_sla(c, &state.sla, &caller.0, *id, state.clock.now()).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(SlaExplanationView::from(explanation)))
}

/// Close the ticket (agent or customer); the resolution target is met.
#[utoipa::path(tag = "tickets", path = "/v1/tickets/{id}/close", security(("bearer" = [])), request_body = CloseTicket, responses(
    (status = 200, description = "OK", body = TicketView),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/tickets/{id}/close")]
pub async fn close_ticket(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<CloseTicket>,
) -> Result<HttpResponse, ApiError> {
    let condition = IfMatch::from_request(&req)?;
    let reason = body.0.reason.map_or(CloseReason::Resolved, CloseReason::from);
    let ticket = crate::tx::in_tx(&state.pool, async |c| {
        check_version(c, &caller, *id, condition.as_ref()).await?;
        tickets::close(c, &state.sla, &caller.0, *id, reason, state.clock.now()).await
    })
    .await?;
    Ok(changed(ticket, &state))
}

/// Reopen a closed ticket: customers within 7 days of closing, agents any time. The resolution
/// clock resumes with the time already consumed.
#[utoipa::path(tag = "tickets", path = "/v1/tickets/{id}/reopen", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = TicketView),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "`reopen_window_expired`: open a new ticket referencing this one", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/tickets/{id}/reopen")]
pub async fn reopen_ticket(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let condition = IfMatch::from_request(&req)?;
    let ticket = crate::tx::in_tx(&state.pool, async |c| {
        check_version(c, &caller, *id, condition.as_ref()).await?;
        tickets::reopen(c, &state.sla, &caller.0, *id, state.clock.now()).await
    })
    .await?;
    Ok(changed(ticket, &state))
}

/// With `If-Match`, locks the ticket and refuses the change (412) unless it is still at the
/// version the client named.
async fn check_version(
    c: &mut sqlx::PgConnection,
    caller: &Authenticated,
    id: Uuid,
    condition: Option<&IfMatch>,
) -> Result<(), helpdesk_core::CoreError> {
    let Some(condition) = condition else { return Ok(()) };
    let version = tickets::locked_version(c, &caller.0, id).await?;
    if condition.allows(&version_tag(version)) {
        Ok(())
    } else {
        Err(helpdesk_core::CoreError::PreconditionFailed("ticket"))
    }
}

/// A changed ticket, with its new tag.
fn changed(ticket: Ticket, state: &AppState) -> HttpResponse {
    let tag = version_tag(ticket.version);
    tagged(HttpResponse::Ok(), &tag, &view(ticket, state))
}
