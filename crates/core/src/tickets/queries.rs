//! Reading tickets: lists with the agents' queue, the timeline, the SLA explanation.
//!
//! The `breached` and `at_risk` filters are the SQL form of `helpdesk_domain::tickets::verdict`:
//! - breached ⇔ `first_response_breached OR resolution_breached OR next_due_at <= now`
//!   (`next_due_at` is the earlier of the running due instants, or a far-future sentinel, so
//!   `next_due_at <= now` ⇔ some `due_at <= now`);
//! - at risk ⇔ NOT breached AND (`first_response_at_risk_at <= now OR resolution_at_risk_at <= now`).
//!
//! A closed ticket keeps the verdict it closed with. `tests/api/ticket_verdicts.rs` holds the two
//! definitions together over generated tickets.

use super::store::{self, TicketRow, select_tickets};
use crate::CoreError;
use crate::accounts::Caller;
use crate::pagination::PageRequest;
use crate::sla_store::SlaStore;
use chrono::{DateTime, Utc};
use helpdesk_domain::attainment::Outcome;
use helpdesk_domain::plans::Category;
use helpdesk_domain::sla::{Severity, SlaClock, SlaExplanation};
use helpdesk_domain::tickets::{CloseReason, Source, Status, Ticket};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest first.
    Created,
    /// The agents' queue: unresolved tickets, soonest due first.
    Due,
}

#[derive(Debug, Default, PartialEq)]
pub struct TicketFilter {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub organization_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub unassigned: bool,
    pub plan: Option<String>,
    pub source: Option<Source>,
    pub breached: Option<bool>,
    pub at_risk: Option<bool>,
    /// Report tracing (R10): the SLA report's figures as lists. Opened in `[from, to)`.
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// The metric's verdict at `now`, by the database's `sla_outcome` (the report's definition).
    pub first_response: Option<Outcome>,
    pub resolution: Option<Outcome>,
    pub close_reason: Option<CloseReason>,
}

impl TicketFilter {
    /// No filter but (possibly) the organisation. Compared with the default rather than field by
    /// field, so a filter added later counts without being listed here.
    fn is_scope_only(&self) -> bool {
        *self == TicketFilter { organization_id: self.organization_id, ..TicketFilter::default() }
    }
}

/// Tickets the caller may see, a page at a time. Customers see their organisation's only,
/// whatever filter they pass.
pub async fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    mut filter: TicketFilter,
    sort: Sort,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<(Vec<Ticket>, Option<String>), CoreError> {
    if !caller.role.is_staff() {
        filter.organization_id = Some(caller.organization_id.unwrap_or_else(Uuid::nil));
    }
    if page.after.is_none() && filter.is_scope_only() {
        let rows = first_page(conn, filter.organization_id, sort, page.fetch_limit()).await?;
        return finish(rows, &page, sort);
    }
    let (after_at, after_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let status = filter.status.map(Status::as_str);
    let severity = filter.severity.map(Severity::as_str);
    let category = filter.category.map(Category::as_str);
    let source = filter.source.map(Source::as_str);
    // The filters both orders share, written once; each order adds its scope and keyset.
    macro_rules! list_in_order {
        ($scope:literal, $keyset_and_order:literal) => {
            select_tickets!(
                lists,
                [
                    $scope,
                    r#"
                 AND ($1::uuid IS NULL OR organization_id = $1)
                 AND ($2::text IS NULL OR status = $2)
                 AND ($3::text IS NULL OR severity = $3)
                 AND ($4::text IS NULL OR category = $4)
                 AND ($5::uuid IS NULL OR assignee_id = $5)
                 AND (NOT $6 OR assignee_id IS NULL)
                 AND ($7::text IS NULL OR plan_code = $7)
                 AND ($8::bool IS NULL OR $8 = (first_response_breached OR resolution_breached OR next_due_at <= $10))
                 AND ($9::bool IS NULL OR $9 = (NOT (first_response_breached OR resolution_breached OR next_due_at <= $10)
                                                AND (first_response_at_risk_at <= $10 OR resolution_at_risk_at <= $10) IS TRUE))
                 AND ($14::text IS NULL OR source = $14)
                 AND ($15::timestamptz IS NULL OR created_at >= $15)
                 AND ($16::timestamptz IS NULL OR created_at < $16)
                 AND ($17::text IS NULL OR sla_outcome(first_response_breached, first_response_due_at, first_response_met_at, close_reason, $10) = $17)
                 AND ($18::text IS NULL OR sla_outcome(resolution_breached, resolution_due_at, resolution_met_at, close_reason, $10) = $18)
                 AND ($19::text IS NULL OR close_reason = $19)
                 "#,
                    $keyset_and_order
                ],
                filter.organization_id,
                status,
                severity,
                category,
                filter.assignee_id,
                filter.unassigned,
                filter.plan,
                filter.breached,
                filter.at_risk,
                now,
                after_at,
                after_id,
                page.fetch_limit(),
                source,
                filter.created_from,
                filter.created_to,
                filter.first_response.map(Outcome::as_str),
                filter.resolution.map(Outcome::as_str),
                filter.close_reason.map(CloseReason::as_str)
            )
            .fetch_all(&mut *conn)
            .await?
        };
    }
    let rows: Vec<TicketRow> = match sort {
        Sort::Created => list_in_order!(
            "WHERE TRUE",
            r#"AND ($11::timestamptz IS NULL OR (created_at, id) < ($11, $12))
               ORDER BY created_at DESC, id DESC
               LIMIT $13"#
        ),
        // Closed tickets have no due instant: the queue is the open ones, soonest first.
        Sort::Due => list_in_order!(
            "WHERE status <> 'closed'",
            r#"AND ($11::timestamptz IS NULL OR (next_due_at, id) > ($11, $12))
               ORDER BY next_due_at, id
               LIMIT $13"#
        ),
    };
    finish(rows, &page, sort)
}

/// The first page of a list with no filter but its organisation: a customer's tickets, the
/// agents' queue. The API plans every statement per execution (`db::Plans::PerExecution`, since
/// the filtered statement's reusable plan is a sequential scan), and planning the filtered
/// statement, with its nineteen optional predicates and the inlined `sla_outcome`, costs more
/// than running it. The hottest reads get statements without the optional filters: they plan in
/// a fraction of the time (PostgreSQL's CPU per customer page fell ~15 %, scripts/bench-tickets).
async fn first_page(
    conn: &mut PgConnection,
    organization_id: Option<Uuid>,
    sort: Sort,
    limit: i64,
) -> Result<Vec<TicketRow>, sqlx::Error> {
    match (sort, organization_id) {
        (Sort::Created, Some(org)) => {
            select_tickets!(
                lists,
                ["WHERE organization_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"],
                org,
                limit
            )
            .fetch_all(conn)
            .await
        }
        (Sort::Created, None) => {
            select_tickets!(lists, ["ORDER BY created_at DESC, id DESC LIMIT $1"], limit).fetch_all(conn).await
        }
        (Sort::Due, Some(org)) => {
            select_tickets!(
                lists,
                ["WHERE status <> 'closed' AND organization_id = $1 ORDER BY next_due_at, id LIMIT $2"],
                org,
                limit
            )
            .fetch_all(conn)
            .await
        }
        (Sort::Due, None) => {
            select_tickets!(lists, ["WHERE status <> 'closed' ORDER BY next_due_at, id LIMIT $1"], limit)
                .fetch_all(conn)
                .await
        }
    }
}

fn finish(rows: Vec<TicketRow>, page: &PageRequest, sort: Sort) -> Result<(Vec<Ticket>, Option<String>), CoreError> {
    let tickets = rows.into_iter().map(Ticket::try_from).collect::<Result<Vec<_>, _>>()?;
    Ok(crate::pagination::finish(tickets, page, |t| match sort {
        Sort::Created => (t.created_at, t.id),
        Sort::Due => (t.next_due_at, t.id),
    }))
}

#[derive(Debug, Clone)]
pub struct TimelineEvent {
    pub id: Uuid,
    pub actor_id: Option<Uuid>,
    pub kind: String,
    pub data: Value,
    pub internal: bool,
    pub occurred_at: DateTime<Utc>,
}

/// The audit timeline of a ticket; customers see only the public part.
pub async fn events(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Vec<TimelineEvent>, CoreError> {
    store::get(&mut *conn, Some(caller), id).await?;
    let rows = sqlx::query_as!(
        TimelineEvent,
        "SELECT id, actor_id, kind, data, internal, occurred_at FROM ticket_events WHERE ticket_id = $1 AND (internal = false OR $2) ORDER BY occurred_at, id LIMIT 2000",
        id,
        caller.role.is_staff()
    )
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Why the ticket's SLA stands where it does: counted and paused spans, closed days skipped so
/// far and those ahead before the due instant, the calendar and policy versions used.
pub async fn explain_sla(
    conn: &mut PgConnection,
    store: &SlaStore,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<SlaExplanation, CoreError> {
    let ticket = store::get(&mut *conn, Some(caller), id).await?;
    let rules = store.snapshot(&mut *conn).await?;
    let sla_error = |e| CoreError::Internal(format!("ticket {id}: SLA clock: {e}"));
    let clock = SlaClock::replay(&ticket.sla_events, &rules.calendars).map_err(sla_error)?;
    clock.explain(now, &rules.calendars, rules.policy.at_risk_fraction).map_err(sla_error)
}
