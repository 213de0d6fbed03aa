//! Tickets under the policy (DESIGN R2–R6, R9). Every operation runs in one transaction: lock the
//! ticket, bring its SLA clock up to the calendar and policy in force, apply the domain's rules,
//! append clock events, re-project the due instants, and write the timeline and the e-mails the
//! change causes. Timer jobs are the worker's business; they find tickets by the stored instants.

use crate::accounts::Caller;
use crate::organizations::{self, brazil_today};
use crate::outbox::{self, NewEmail, templates};
use crate::pagination::PageRequest;
use crate::sla_store::{SlaSnapshot, SlaStore};
use crate::{CoreError, FieldError};
use chrono::{DateTime, Utc};
use helpdesk_domain::accounts::Role;
use helpdesk_domain::attainment::Outcome;
use helpdesk_domain::plans::{Category, MissingEntitlement};
use helpdesk_domain::sla::{ClockEvent, ClockEventKind, ClockPhase, Metric, Severity, SlaClock, SlaExplanation};
use helpdesk_domain::sla_projection::{self, MetricProjection, Projection};
use helpdesk_domain::tickets::{self as rules, Actor, CloseReason, Status, TicketRuleError};
use helpdesk_domain::timers::{AlertMarks, MetricTimer, TimerState};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: Uuid,
    pub number: i64,
    pub organization_id: Uuid,
    pub requester_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub subject: String,
    pub description: String,
    pub category: Category,
    pub severity: Severity,
    pub emergency: bool,
    pub plan_code: String,
    pub status: Status,
    pub close_reason: Option<CloseReason>,
    pub closed_at: Option<DateTime<Utc>>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub references_ticket_id: Option<Uuid>,
    pub first_response_due_at: Option<DateTime<Utc>>,
    pub first_response_at_risk_at: Option<DateTime<Utc>>,
    pub first_response_met_at: Option<DateTime<Utc>>,
    pub first_response_breached: bool,
    pub resolution_due_at: Option<DateTime<Utc>>,
    pub resolution_at_risk_at: Option<DateTime<Utc>>,
    pub resolution_met_at: Option<DateTime<Utc>>,
    pub resolution_breached: bool,
    pub next_due_at: DateTime<Utc>,
    /// When a timer of this ticket acts next (an SLA alert, the R8 reminder or auto-close); the
    /// worker's sweep reads it (DESIGN §3.1).
    pub next_timer_at: Option<DateTime<Utc>>,
    /// When the reminder of the current wait for the customer went out (R8).
    pub reminder_sent_at: Option<DateTime<Utc>>,
    /// The SLA alerts already sent, per metric and target revision.
    pub sla_alerts: AlertMarks,
    pub calendar_version: i32,
    pub policy_version: i32,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The clock's events; loaded by single-ticket reads only (lists leave it empty: replaying
    /// is never needed to show a page, and decoding it for every row would cost the most).
    sla_events: Vec<ClockEvent>,
}

impl Ticket {
    /// Breached at `now`: a target was missed, or a running one has run out since the last save.
    /// A closed ticket keeps the verdict it closed with.
    pub fn breached_at(&self, now: DateTime<Utc>) -> bool {
        self.first_response_breached_at(now) || self.resolution_breached_at(now)
    }

    pub fn first_response_breached_at(&self, now: DateTime<Utc>) -> bool {
        self.first_response_breached || self.first_response_due_at.is_some_and(|due| due <= now)
    }

    pub fn resolution_breached_at(&self, now: DateTime<Utc>) -> bool {
        self.resolution_breached || self.resolution_due_at.is_some_and(|due| due <= now)
    }

    /// At risk at `now`: a running target is past its at-risk instant but not yet missed.
    pub fn at_risk_at(&self, now: DateTime<Utc>) -> bool {
        self.status != Status::Closed
            && !self.breached_at(now)
            && [self.first_response_at_risk_at, self.resolution_at_risk_at].into_iter().flatten().any(|at| at <= now)
    }

    pub fn sla_events(&self) -> &[ClockEvent] {
        &self.sla_events
    }
}

struct TicketRow {
    id: Uuid,
    number: i64,
    organization_id: Uuid,
    requester_id: Uuid,
    assignee_id: Option<Uuid>,
    subject: String,
    description: String,
    category: String,
    severity: String,
    emergency: bool,
    plan_code: String,
    status: String,
    close_reason: Option<String>,
    closed_at: Option<DateTime<Utc>>,
    waiting_since: Option<DateTime<Utc>>,
    references_ticket_id: Option<Uuid>,
    sla_events: Value,
    calendar_version: i32,
    policy_version: i32,
    first_response_due_at: Option<DateTime<Utc>>,
    first_response_at_risk_at: Option<DateTime<Utc>>,
    first_response_met_at: Option<DateTime<Utc>>,
    first_response_breached: bool,
    resolution_due_at: Option<DateTime<Utc>>,
    resolution_at_risk_at: Option<DateTime<Utc>>,
    resolution_met_at: Option<DateTime<Utc>>,
    resolution_breached: bool,
    next_due_at: DateTime<Utc>,
    next_timer_at: Option<DateTime<Utc>>,
    reminder_sent_at: Option<DateTime<Utc>>,
    sla_alerts: Value,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn parse<T: serde::de::DeserializeOwned>(id: Uuid, what: &str, raw: &str) -> Result<T, CoreError> {
    serde_json::from_value(Value::String(raw.to_owned()))
        .map_err(|e| CoreError::Internal(format!("ticket {id}: bad {what} '{raw}': {e}")))
}

impl TryFrom<TicketRow> for Ticket {
    type Error = CoreError;
    fn try_from(r: TicketRow) -> Result<Self, CoreError> {
        let id = r.id;
        Ok(Ticket {
            category: parse(id, "category", &r.category)?,
            severity: parse(id, "severity", &r.severity)?,
            status: parse(id, "status", &r.status)?,
            close_reason: r.close_reason.as_deref().map(|c| parse(id, "close reason", c)).transpose()?,
            sla_events: serde_json::from_value(r.sla_events)
                .map_err(|e| CoreError::Internal(format!("ticket {id}: bad SLA events: {e}")))?,
            sla_alerts: serde_json::from_value(r.sla_alerts)
                .map_err(|e| CoreError::Internal(format!("ticket {id}: bad SLA alert marks: {e}")))?,
            next_timer_at: r.next_timer_at,
            reminder_sent_at: r.reminder_sent_at,
            id,
            number: r.number,
            organization_id: r.organization_id,
            requester_id: r.requester_id,
            assignee_id: r.assignee_id,
            subject: r.subject,
            description: r.description,
            emergency: r.emergency,
            plan_code: r.plan_code,
            closed_at: r.closed_at,
            waiting_since: r.waiting_since,
            references_ticket_id: r.references_ticket_id,
            first_response_due_at: r.first_response_due_at,
            first_response_at_risk_at: r.first_response_at_risk_at,
            first_response_met_at: r.first_response_met_at,
            first_response_breached: r.first_response_breached,
            resolution_due_at: r.resolution_due_at,
            resolution_at_risk_at: r.resolution_at_risk_at,
            resolution_met_at: r.resolution_met_at,
            resolution_breached: r.resolution_breached,
            next_due_at: r.next_due_at,
            calendar_version: r.calendar_version,
            policy_version: r.policy_version,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn rule_error(error: TicketRuleError) -> CoreError {
    if error.is_permission() {
        CoreError::forbidden(error.code(), error.to_string())
    } else {
        CoreError::conflict(error.code(), error.to_string())
    }
}

fn sla_error(ticket: Uuid, error: helpdesk_domain::sla::SlaError) -> CoreError {
    CoreError::Internal(format!("ticket {ticket}: SLA clock: {error}"))
}

fn actor_of(caller: &Caller) -> Actor {
    Actor::Person(caller.role)
}

/// A ticket locked for change, with what the change will write.
pub(crate) struct Change {
    pub(crate) ticket: Ticket,
    clock: SlaClock,
    new_clock_events: Vec<ClockEvent>,
    timeline: Vec<(Option<Uuid>, &'static str, Value, bool)>,
}

impl Change {
    fn clock_event(&mut self, snapshot: &SlaSnapshot, event: ClockEvent) -> Result<(), CoreError> {
        self.clock.apply(&event, &snapshot.calendars).map_err(|e| sla_error(self.ticket.id, e))?;
        self.timeline.push((None, "sla", serde_json::to_value(&event).unwrap_or_default(), false));
        self.new_clock_events.push(event);
        Ok(())
    }

    fn phase(&self, snapshot: &SlaSnapshot, metric: Metric, now: DateTime<Utc>) -> Result<ClockPhase, CoreError> {
        let state = self
            .clock
            .state(now, &snapshot.calendars, snapshot.policy.at_risk_fraction)
            .map_err(|e| sla_error(self.ticket.id, e))?;
        Ok(state.get(metric).phase)
    }

    /// The pause/resume events a move to `status` implies under the policy in force.
    fn status_events(&mut self, snapshot: &SlaSnapshot, status: Status, now: DateTime<Utc>) -> Result<(), CoreError> {
        for event in self.clock.status_change_events(&snapshot.policy, status.as_str(), now) {
            self.clock_event(snapshot, event)?;
        }
        Ok(())
    }

    pub(crate) fn log(&mut self, actor: Option<Uuid>, kind: &'static str, data: Value, internal: bool) {
        self.timeline.push((actor, kind, data, internal));
    }
}

/// Loads a ticket for change, locked, if the caller may see it. Another organisation's ticket is
/// "not found", exactly like a missing one.
pub(crate) async fn lock(
    conn: &mut PgConnection,
    caller: Option<&Caller>,
    id: Uuid,
    snapshot: &SlaSnapshot,
    now: DateTime<Utc>,
) -> Result<Change, CoreError> {
    let row = sqlx::query_as!(TicketRow, r#"SELECT id, number, organization_id, requester_id, assignee_id, subject, description, category, severity, emergency, plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, sla_events, calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at, resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at, sla_alerts, version, created_at, updated_at FROM tickets WHERE id = $1 FOR UPDATE"#, id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CoreError::NotFound("ticket"))?;
    let ticket = Ticket::try_from(row)?;
    if caller.is_some_and(|c| !c.may_see_organization(ticket.organization_id)) {
        return Err(CoreError::NotFound("ticket"));
    }
    change_of(ticket, snapshot, now)
}

/// A ticket the caller has locked, ready for change: its clock replayed and caught up.
pub(crate) fn change_of(ticket: Ticket, snapshot: &SlaSnapshot, now: DateTime<Utc>) -> Result<Change, CoreError> {
    let clock = SlaClock::replay(&ticket.sla_events, &snapshot.calendars).map_err(|e| sla_error(ticket.id, e))?;
    let mut change = Change { ticket, clock, new_clock_events: Vec::new(), timeline: Vec::new() };
    catch_up(&mut change, snapshot, now)?;
    Ok(change)
}

/// Locks up to `limit` tickets whose next timer is due at `now`, oldest first, skipping those
/// another transaction holds and those in `skip`: one batch of the worker's drain, read whole so
/// each ticket costs no further read.
pub(crate) async fn lock_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
    skip: &[Uuid],
) -> Result<Vec<Ticket>, CoreError> {
    let rows = sqlx::query_as!(TicketRow, r#"SELECT id, number, organization_id, requester_id, assignee_id, subject, description, category, severity, emergency, plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, sla_events, calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at, resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at, sla_alerts, version, created_at, updated_at
        FROM tickets WHERE next_timer_at <= $1 AND NOT (id = ANY($3))
        ORDER BY next_timer_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"#, now, limit, skip)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(Ticket::try_from).collect()
}

/// Brings a clock that still runs on an older calendar or policy onto the ones in force: the
/// time consumed so far stays consumed; only what remains is projected on the new versions.
fn catch_up(change: &mut Change, snapshot: &SlaSnapshot, now: DateTime<Utc>) -> Result<(), CoreError> {
    let last = change.ticket.sla_events.last().map_or(now, |e| e.at);
    let calendar_version = snapshot.calendar.version() as i32;
    if change.ticket.calendar_version < calendar_version {
        let at = snapshot.calendar_created_at.clamp(last, now.max(last));
        change.clock_event(
            snapshot,
            ClockEvent { at, kind: ClockEventKind::CalendarChanged { calendar_version: calendar_version as u32 } },
        )?;
        change.ticket.calendar_version = calendar_version;
    }
    let policy_version = snapshot.policy.version as i32;
    if change.ticket.policy_version < policy_version {
        if let Some(targets) =
            snapshot.policy.targets(&change.ticket.plan_code, change.ticket.severity, change.ticket.emergency)
        {
            let at = snapshot.policy_created_at.clamp(last, now.max(last));
            change.clock_event(
                snapshot,
                ClockEvent {
                    at,
                    kind: ClockEventKind::PolicyChanged { targets, policy_version: snapshot.policy.version },
                },
            )?;
        }
        change.ticket.policy_version = policy_version;
    }
    Ok(())
}

pub(crate) fn projection(change: &Change, snapshot: &SlaSnapshot, now: DateTime<Utc>) -> Result<Projection, CoreError> {
    let state = change
        .clock
        .state(now, &snapshot.calendars, snapshot.policy.at_risk_fraction)
        .map_err(|e| sla_error(change.ticket.id, e))?;
    Ok(sla_projection::project(&state, now, &snapshot.calendars, snapshot.policy.at_risk_fraction))
}

fn metric_timer(m: &MetricProjection) -> MetricTimer {
    MetricTimer { due_at: m.due_at, at_risk_at: m.at_risk_at, target_revision: m.target_revision }
}

/// What the timers of a ticket depend on, as of the projection `p` (DESIGN R5–R8).
pub(crate) fn timer_state(t: &Ticket, p: &Projection) -> TimerState {
    TimerState {
        closed: t.status == Status::Closed,
        first_response: metric_timer(&p.first_response),
        resolution: metric_timer(&p.resolution),
        alerts: t.sla_alerts,
        waiting_since: t.waiting_since.filter(|_| t.status == Status::WaitingCustomer),
        reminder_sent_at: t.reminder_sent_at,
    }
}

/// Writes the changed ticket, its new clock events, projection, next timer instant and timeline.
pub(crate) async fn save(
    conn: &mut PgConnection,
    change: Change,
    snapshot: &SlaSnapshot,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    save_all(conn, vec![change], snapshot, now)
        .await?
        .pop()
        .ok_or_else(|| CoreError::Internal("a saved ticket went missing".into()))
}

/// [`save`] for several tickets in two statements (one UPDATE, one INSERT of their timelines),
/// whatever their number: the worker saves a batch of a hundred at once, and a statement per
/// ticket and per timeline row cost it about three times as much database time (measured).
/// Returns the tickets in the order given.
pub(crate) async fn save_all(
    conn: &mut PgConnection,
    changes: Vec<Change>,
    snapshot: &SlaSnapshot,
    now: DateTime<Utc>,
) -> Result<Vec<Ticket>, CoreError> {
    let mut rows = TicketColumns::default();
    let mut timeline = TimelineColumns::default();
    let mut tickets = Vec::with_capacity(changes.len());
    for mut change in changes {
        let p = projection(&change, snapshot, now)?;
        let t = &mut change.ticket;
        t.next_timer_at = timer_state(t, &p).next_at(&snapshot.policy.waiting);
        t.sla_events.extend(change.new_clock_events.iter().cloned());
        rows.push(t, &p, to_json(&change.new_clock_events)?, to_json(&t.sla_alerts)?);
        for (actor, kind, data, internal) in change.timeline.drain(..) {
            timeline.push(t.id, actor, kind, data, internal);
        }
        apply_projection(t, &p);
        t.updated_at = now;
        tickets.push(change.ticket);
    }
    let versions = sqlx::query!(
        r#"UPDATE tickets t SET
             assignee_id = v.assignee_id, severity = v.severity, status = v.status, close_reason = v.close_reason,
             closed_at = v.closed_at, waiting_since = v.waiting_since, sla_events = t.sla_events || v.new_events,
             calendar_version = v.calendar_version, policy_version = v.policy_version,
             first_response_due_at = v.fr_due_at, first_response_at_risk_at = v.fr_at_risk_at,
             first_response_met_at = v.fr_met_at, first_response_breached = v.fr_breached,
             resolution_due_at = v.res_due_at, resolution_at_risk_at = v.res_at_risk_at,
             resolution_met_at = v.res_met_at, resolution_breached = v.res_breached,
             next_due_at = v.next_due_at, version = t.version + 1, updated_at = $20,
             next_timer_at = v.next_timer_at, reminder_sent_at = v.reminder_sent_at, sla_alerts = v.sla_alerts
           FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
                       $8::jsonb[], $9::int4[], $10::int4[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[],
                       $14::bool[], $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], $18::bool[],
                       $19::timestamptz[], $21::timestamptz[], $22::timestamptz[], $23::jsonb[])
                AS v (id, assignee_id, severity, status, close_reason, closed_at, waiting_since, new_events,
                      calendar_version, policy_version, fr_due_at, fr_at_risk_at, fr_met_at, fr_breached,
                      res_due_at, res_at_risk_at, res_met_at, res_breached, next_due_at, next_timer_at,
                      reminder_sent_at, sla_alerts)
           WHERE t.id = v.id
           RETURNING t.id, t.version"#,
        &rows.id,
        &rows.assignee_id as &[Option<Uuid>],
        &rows.severity as &[&str],
        &rows.status as &[&str],
        &rows.close_reason as &[Option<&str>],
        &rows.closed_at as &[Option<DateTime<Utc>>],
        &rows.waiting_since as &[Option<DateTime<Utc>>],
        &rows.new_events,
        &rows.calendar_version,
        &rows.policy_version,
        &rows.fr_due_at as &[Option<DateTime<Utc>>],
        &rows.fr_at_risk_at as &[Option<DateTime<Utc>>],
        &rows.fr_met_at as &[Option<DateTime<Utc>>],
        &rows.fr_breached,
        &rows.res_due_at as &[Option<DateTime<Utc>>],
        &rows.res_at_risk_at as &[Option<DateTime<Utc>>],
        &rows.res_met_at as &[Option<DateTime<Utc>>],
        &rows.res_breached,
        &rows.next_due_at,
        now,
        &rows.next_timer_at as &[Option<DateTime<Utc>>],
        &rows.reminder_sent_at as &[Option<DateTime<Utc>>],
        &rows.sla_alerts
    )
    .fetch_all(&mut *conn)
    .await?;
    if versions.len() != tickets.len() {
        return Err(CoreError::Internal(format!("saved {} of {} tickets", versions.len(), tickets.len())));
    }
    let versions: std::collections::HashMap<Uuid, i32> = versions.into_iter().map(|r| (r.id, r.version)).collect();
    for t in &mut tickets {
        t.version = versions.get(&t.id).copied().unwrap_or(t.version + 1);
    }
    timeline.insert(conn, now).await?;
    Ok(tickets)
}

/// A value for a JSON column; failing to serialise one of our own types is an internal error.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, CoreError> {
    serde_json::to_value(value).map_err(|e| CoreError::Internal(e.to_string()))
}

/// The columns [`save_all`] writes, one array per column.
#[derive(Default)]
struct TicketColumns {
    id: Vec<Uuid>,
    assignee_id: Vec<Option<Uuid>>,
    severity: Vec<&'static str>,
    status: Vec<&'static str>,
    close_reason: Vec<Option<&'static str>>,
    closed_at: Vec<Option<DateTime<Utc>>>,
    waiting_since: Vec<Option<DateTime<Utc>>>,
    new_events: Vec<Value>,
    calendar_version: Vec<i32>,
    policy_version: Vec<i32>,
    fr_due_at: Vec<Option<DateTime<Utc>>>,
    fr_at_risk_at: Vec<Option<DateTime<Utc>>>,
    fr_met_at: Vec<Option<DateTime<Utc>>>,
    fr_breached: Vec<bool>,
    res_due_at: Vec<Option<DateTime<Utc>>>,
    res_at_risk_at: Vec<Option<DateTime<Utc>>>,
    res_met_at: Vec<Option<DateTime<Utc>>>,
    res_breached: Vec<bool>,
    next_due_at: Vec<DateTime<Utc>>,
    next_timer_at: Vec<Option<DateTime<Utc>>>,
    reminder_sent_at: Vec<Option<DateTime<Utc>>>,
    sla_alerts: Vec<Value>,
}

impl TicketColumns {
    fn push(&mut self, t: &Ticket, p: &Projection, new_events: Value, sla_alerts: Value) {
        self.id.push(t.id);
        self.assignee_id.push(t.assignee_id);
        self.severity.push(t.severity.as_str());
        self.status.push(t.status.as_str());
        self.close_reason.push(t.close_reason.map(CloseReason::as_str));
        self.closed_at.push(t.closed_at);
        self.waiting_since.push(t.waiting_since);
        self.new_events.push(new_events);
        self.calendar_version.push(t.calendar_version);
        self.policy_version.push(t.policy_version);
        self.fr_due_at.push(p.first_response.due_at);
        self.fr_at_risk_at.push(p.first_response.at_risk_at);
        self.fr_met_at.push(p.first_response.met_at);
        self.fr_breached.push(p.first_response.breached);
        self.res_due_at.push(p.resolution.due_at);
        self.res_at_risk_at.push(p.resolution.at_risk_at);
        self.res_met_at.push(p.resolution.met_at);
        self.res_breached.push(p.resolution.breached);
        self.next_due_at.push(p.next_due_at);
        self.next_timer_at.push(t.next_timer_at);
        self.reminder_sent_at.push(t.reminder_sent_at);
        self.sla_alerts.push(sla_alerts);
    }
}

/// Timeline rows to insert, one array per column.
#[derive(Default)]
struct TimelineColumns {
    ticket: Vec<Uuid>,
    actor: Vec<Option<Uuid>>,
    kind: Vec<&'static str>,
    data: Vec<Value>,
    internal: Vec<bool>,
}

impl TimelineColumns {
    fn push(&mut self, ticket: Uuid, actor: Option<Uuid>, kind: &'static str, data: Value, internal: bool) {
        self.ticket.push(ticket);
        self.actor.push(actor);
        self.kind.push(kind);
        self.data.push(data);
        self.internal.push(internal);
    }

    /// One INSERT for every row; ids are UUIDv7 made here, so rows written together keep their
    /// order.
    async fn insert(self, conn: &mut PgConnection, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        if self.ticket.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = self.ticket.iter().map(|_| Uuid::now_v7()).collect();
        sqlx::query!(
            r#"INSERT INTO ticket_events (id, ticket_id, actor_id, kind, data, internal, occurred_at)
               SELECT id, ticket_id, actor_id, kind, data, internal, $7
               FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], $6::bool[])
                    AS v (id, ticket_id, actor_id, kind, data, internal)"#,
            &ids,
            &self.ticket,
            &self.actor as &[Option<Uuid>],
            &self.kind as &[&str],
            &self.data,
            &self.internal,
            now
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}

fn apply_projection(t: &mut Ticket, p: &Projection) {
    t.first_response_due_at = p.first_response.due_at;
    t.first_response_at_risk_at = p.first_response.at_risk_at;
    t.first_response_met_at = p.first_response.met_at;
    t.first_response_breached = p.first_response.breached;
    t.resolution_due_at = p.resolution.due_at;
    t.resolution_at_risk_at = p.resolution.at_risk_at;
    t.resolution_met_at = p.resolution.met_at;
    t.resolution_breached = p.resolution.breached;
    t.next_due_at = p.next_due_at;
}

/// Someone an e-mail goes to.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) locale: String,
}

/// The active users among `ids`.
pub(crate) async fn recipients(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Recipient>, sqlx::Error> {
    sqlx::query_as!(
        Recipient,
        "SELECT id, email, name, locale FROM users WHERE id = ANY($1) AND disabled_at IS NULL",
        ids
    )
    .fetch_all(conn)
    .await
}

/// An e-mail about a ticket to one user, in the user's language, once per `cause`.
pub(crate) fn ticket_email<'a>(
    ticket: &Ticket,
    to: &'a Recipient,
    template: &'static str,
    cause: &str,
    extra: Value,
) -> NewEmail<'a> {
    let mut payload = json!({ "name": to.name, "ticket_id": ticket.id, "ticket_number": ticket.number, "subject": ticket.subject, "status": ticket.status, "severity": ticket.severity });
    if let (Value::Object(payload), Value::Object(extra)) = (&mut payload, extra) {
        payload.extend(extra);
    }
    NewEmail {
        idempotency_key: format!("ticket:{}:{cause}:{}", ticket.id, to.id),
        to_address: &to.email,
        to_name: Some(&to.name),
        locale: &to.locale,
        template,
        payload,
    }
}

/// Queues an e-mail about a ticket to one user, if the account is active.
async fn notify(
    conn: &mut PgConnection,
    ticket: &Ticket,
    user: Uuid,
    template: &'static str,
    cause: &str,
    extra: Value,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    if let Some(to) = recipients(&mut *conn, &[user]).await?.first() {
        outbox::enqueue(conn, ticket_email(ticket, to, template, cause, extra), now).await?;
    }
    Ok(())
}

/// The requester's "your ticket was closed" e-mail, once per close.
pub(crate) fn closed_email<'a>(ticket: &Ticket, to: &'a Recipient, reason: CloseReason) -> NewEmail<'a> {
    ticket_email(
        ticket,
        to,
        templates::TICKET_CLOSED,
        &format!("closed:{}", ticket.version),
        json!({ "reason": reason }),
    )
}

pub struct NewTicket {
    pub subject: String,
    pub description: String,
    pub category: Category,
    pub severity: Severity,
    pub emergency: bool,
    pub references_ticket_id: Option<Uuid>,
}

fn check_text(field: &str, raw: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let text = raw.trim().to_owned();
    if text.is_empty() || text.chars().count() > max {
        errors.push(FieldError::new(field, format!("must have between 1 and {max} characters")));
    }
    text
}

/// Opens a ticket for the caller's organisation, if its contract covers the request (R2), with
/// its SLA clock started on the targets for the plan and severity (R5).
pub async fn open(
    pool: &PgPool,
    store: &SlaStore,
    caller: &Caller,
    input: NewTicket,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    let Some(organization_id) = caller.organization_id.filter(|_| caller.role == Role::Customer) else {
        return Err(CoreError::forbidden("customers_only", "tickets are opened by customers for their organisation"));
    };
    let mut errors = Vec::new();
    let subject = check_text("subject", &input.subject, 200, &mut errors);
    let description = check_text("description", &input.description, 20_000, &mut errors);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let plan = organizations::active_plan(&mut *pool.acquire().await?, organization_id, brazil_today(now))
        .await?
        .ok_or(CoreError::NotEntitled(MissingEntitlement::NoActiveContract))?;
    plan.entitlements.check_ticket(input.category, input.emergency).map_err(CoreError::NotEntitled)?;

    let mut tx = pool.begin().await?;
    if let Some(referenced) = input.references_ticket_id {
        let same_org = sqlx::query_scalar!("SELECT organization_id FROM tickets WHERE id = $1", referenced)
            .fetch_optional(&mut *tx)
            .await?;
        if same_org != Some(organization_id) {
            return Err(CoreError::invalid("references_ticket_id", "is not a ticket of your organisation"));
        }
    }
    let snapshot = store.snapshot(&mut tx).await?;
    let targets = snapshot.policy.targets(&plan.code, input.severity, input.emergency).ok_or_else(|| {
        CoreError::Internal(format!("SLA policy {} has no targets for plan {}", snapshot.policy.version, plan.code))
    })?;
    let started = ClockEvent {
        at: now,
        kind: ClockEventKind::Started {
            targets,
            calendar_version: snapshot.calendar.version(),
            policy_version: snapshot.policy.version,
        },
    };
    let clock = SlaClock::replay(std::slice::from_ref(&started), &snapshot.calendars)
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    let state = clock
        .state(now, &snapshot.calendars, snapshot.policy.at_risk_fraction)
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    let p = sla_projection::project(&state, now, &snapshot.calendars, snapshot.policy.at_risk_fraction);
    let next_timer_at = TimerState {
        closed: false,
        first_response: metric_timer(&p.first_response),
        resolution: metric_timer(&p.resolution),
        alerts: AlertMarks::default(),
        waiting_since: None,
        reminder_sent_at: None,
    }
    .next_at(&snapshot.policy.waiting);
    let id = Uuid::now_v7();
    let events = serde_json::to_value([&started]).map_err(|e| CoreError::Internal(e.to_string()))?;
    let row = sqlx::query_as!(
        TicketRow,
        r#"INSERT INTO tickets (id, organization_id, requester_id, subject, description, category, severity, emergency, plan_code, status, references_ticket_id,
                               sla_events, calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, resolution_due_at, resolution_at_risk_at,
                               next_due_at, next_timer_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20)
           RETURNING id, number, organization_id, requester_id, assignee_id, subject, description, category, severity, emergency, plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, sla_events, calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at, resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at, sla_alerts, version, created_at, updated_at"#,
        id,
        organization_id,
        caller.user_id,
        subject,
        description,
        input.category.as_str(),
        input.severity.as_str(),
        input.emergency,
        plan.code,
        input.references_ticket_id,
        events,
        snapshot.calendar.version() as i32,
        snapshot.policy.version as i32,
        p.first_response.due_at,
        p.first_response.at_risk_at,
        p.resolution.due_at,
        p.resolution.at_risk_at,
        p.next_due_at,
        next_timer_at,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    let ticket = Ticket::try_from(row)?;
    let mut timeline = TimelineColumns::default();
    timeline.push(id, Some(caller.user_id), "created", json!({ "category": input.category, "severity": input.severity, "emergency": input.emergency, "plan": plan.code }), false);
    timeline.push(id, None, "sla", to_json(&started)?, false);
    timeline.insert(&mut tx, now).await?;
    notify(
        &mut tx,
        &ticket,
        caller.user_id,
        templates::TICKET_CREATED,
        "created",
        json!({ "first_response_due_at": ticket.first_response_due_at, "resolution_due_at": ticket.resolution_due_at }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(ticket)
}

/// One ticket, if the caller may see it.
pub async fn get(pool: &PgPool, caller: &Caller, id: Uuid) -> Result<Ticket, CoreError> {
    let row = sqlx::query_as!(TicketRow, r#"SELECT id, number, organization_id, requester_id, assignee_id, subject, description, category, severity, emergency, plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, sla_events, calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at, resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at, sla_alerts, version, created_at, updated_at FROM tickets WHERE id = $1"#, id)
        .fetch_optional(pool)
        .await?
        .ok_or(CoreError::NotFound("ticket"))?;
    let ticket = Ticket::try_from(row)?;
    if !caller.may_see_organization(ticket.organization_id) {
        return Err(CoreError::NotFound("ticket"));
    }
    Ok(ticket)
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

pub struct NewMessage {
    pub body: String,
    pub internal: bool,
    /// Staff may hand the ticket to the customer (or back) with the same reply.
    pub then_status: Option<Status>,
}

/// Adds a reply or an internal note. A public agent reply meets first response; a customer's
/// reply to a ticket waiting for them reopens it and resumes the resolution clock (R6).
pub async fn post_message(
    pool: &PgPool,
    store: &SlaStore,
    caller: &Caller,
    id: Uuid,
    input: NewMessage,
    now: DateTime<Utc>,
) -> Result<(Message, Ticket), CoreError> {
    let mut errors = Vec::new();
    let body = check_text("body", &input.body, 20_000, &mut errors);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let mut tx = pool.begin().await?;
    let snapshot = store.snapshot(&mut tx).await?;
    let mut change = lock(&mut tx, Some(caller), id, &snapshot, now).await?;
    let effect =
        rules::reply(change.ticket.status, caller.role, input.internal, input.then_status).map_err(rule_error)?;

    let message = Message {
        id: Uuid::now_v7(),
        ticket_id: id,
        author_id: caller.user_id,
        body,
        internal: input.internal,
        created_at: now,
    };
    sqlx::query!(
        "INSERT INTO ticket_messages (id, ticket_id, author_id, body, internal, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        message.id,
        id,
        caller.user_id,
        message.body,
        message.internal,
        now
    )
    .execute(&mut *tx)
    .await?;
    change.log(
        Some(caller.user_id),
        if input.internal { "note_added" } else { "reply_added" },
        json!({ "message_id": message.id, "author_role": caller.role }),
        input.internal,
    );
    if effect.counts_as_first_response && change.phase(&snapshot, Metric::FirstResponse, now)? != ClockPhase::Met {
        change.clock_event(
            &snapshot,
            ClockEvent { at: now, kind: ClockEventKind::Met { metric: Metric::FirstResponse } },
        )?;
    }
    if let Some(status) = effect.new_status {
        move_to(&mut change, &snapshot, status, Some(caller.user_id), now)?;
    }
    let ticket = save(&mut tx, change, &snapshot, now).await?;
    if !input.internal {
        let cause = format!("message:{}", message.id);
        if caller.role.is_staff() {
            notify(
                &mut tx,
                &ticket,
                ticket.requester_id,
                templates::TICKET_REPLIED,
                &cause,
                json!({ "body": message.body }),
                now,
            )
            .await?;
        } else if let Some(assignee) = ticket.assignee_id {
            notify(
                &mut tx,
                &ticket,
                assignee,
                templates::TICKET_CUSTOMER_REPLIED,
                &cause,
                json!({ "body": message.body }),
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok((message, ticket))
}

fn move_to(
    change: &mut Change,
    snapshot: &SlaSnapshot,
    status: Status,
    actor: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let from = change.ticket.status;
    change.ticket.status = status;
    change.ticket.waiting_since = (status == Status::WaitingCustomer).then_some(now);
    // A reminder belongs to one wait: a reply, or any other move, ends it (R8).
    change.ticket.reminder_sent_at = None;
    change.log(actor, "status_changed", json!({ "from": from, "to": status }), false);
    change.status_events(snapshot, status, now)
}

/// The messages of a ticket, oldest first; customers never see internal notes.
pub async fn messages(pool: &PgPool, caller: &Caller, id: Uuid) -> Result<Vec<Message>, CoreError> {
    get(pool, caller, id).await?;
    let rows = sqlx::query_as!(
        Message,
        "SELECT id, ticket_id, author_id, body, internal, created_at FROM ticket_messages WHERE ticket_id = $1 AND (internal = false OR $2) ORDER BY created_at, id LIMIT 1000",
        id,
        caller.role.is_staff()
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
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
pub async fn events(pool: &PgPool, caller: &Caller, id: Uuid) -> Result<Vec<TimelineEvent>, CoreError> {
    get(pool, caller, id).await?;
    let rows = sqlx::query_as!(
        TimelineEvent,
        "SELECT id, actor_id, kind, data, internal, occurred_at FROM ticket_events WHERE ticket_id = $1 AND (internal = false OR $2) ORDER BY occurred_at, id LIMIT 2000",
        id,
        caller.role.is_staff()
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Why the ticket's SLA stands where it does: counted and paused spans, closed days skipped,
/// the calendar and policy versions used.
pub async fn explain_sla(
    pool: &PgPool,
    store: &SlaStore,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<SlaExplanation, CoreError> {
    let ticket = get(pool, caller, id).await?;
    let mut conn = pool.acquire().await?;
    let snapshot = store.snapshot(&mut conn).await?;
    let clock = SlaClock::replay(&ticket.sla_events, &snapshot.calendars).map_err(|e| sla_error(id, e))?;
    clock.explain(now, &snapshot.calendars, snapshot.policy.at_risk_fraction).map_err(|e| sla_error(id, e))
}

/// Changes staff may make to a ticket.
#[derive(Debug, Default)]
pub struct TicketUpdate {
    pub severity: Option<Severity>,
    pub assignee_id: Option<Option<Uuid>>,
    pub status: Option<Status>,
}

pub async fn update(
    pool: &PgPool,
    store: &SlaStore,
    caller: &Caller,
    id: Uuid,
    update: TicketUpdate,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    caller.require_staff()?;
    let mut tx = pool.begin().await?;
    let snapshot = store.snapshot(&mut tx).await?;
    let mut change = lock(&mut tx, Some(caller), id, &snapshot, now).await?;
    let mut newly_assigned = None;
    if let Some(assignee) = update.assignee_id {
        if let Some(assignee) = assignee {
            let role = sqlx::query_scalar!("SELECT role FROM users WHERE id = $1 AND disabled_at IS NULL", assignee)
                .fetch_optional(&mut *tx)
                .await?;
            if !matches!(role.as_deref(), Some("agent" | "admin")) {
                return Err(CoreError::invalid("assignee_id", "is not an active agent"));
            }
        }
        if change.ticket.assignee_id != assignee {
            change.log(
                Some(caller.user_id),
                "assigned",
                json!({ "from": change.ticket.assignee_id, "to": assignee }),
                false,
            );
            change.ticket.assignee_id = assignee;
            newly_assigned = assignee;
        }
    }
    if let Some(severity) = update.severity.filter(|s| *s != change.ticket.severity) {
        // Re-target both metrics; time already consumed stays consumed.
        let targets = snapshot
            .policy
            .targets(&change.ticket.plan_code, severity, change.ticket.emergency)
            .ok_or_else(|| CoreError::Internal(format!("no SLA targets for plan {}", change.ticket.plan_code)))?;
        change.log(
            Some(caller.user_id),
            "severity_changed",
            json!({ "from": change.ticket.severity, "to": severity }),
            false,
        );
        change.ticket.severity = severity;
        for metric in Metric::ALL {
            change.clock_event(
                &snapshot,
                ClockEvent {
                    at: now,
                    kind: ClockEventKind::TargetChanged {
                        metric,
                        target: targets.get(metric),
                        policy_version: snapshot.policy.version,
                    },
                },
            )?;
        }
    }
    if let Some(status) = update.status {
        rules::set_status(change.ticket.status, status, actor_of(caller)).map_err(rule_error)?;
        move_to(&mut change, &snapshot, status, Some(caller.user_id), now)?;
    }
    let ticket = save(&mut tx, change, &snapshot, now).await?;
    if let Some(assignee) = newly_assigned {
        notify(
            &mut tx,
            &ticket,
            assignee,
            templates::TICKET_ASSIGNED,
            &format!("assigned:{}", ticket.version),
            json!({}),
            now,
        )
        .await?;
    }
    if update.status == Some(Status::WaitingCustomer) {
        notify(
            &mut tx,
            &ticket,
            ticket.requester_id,
            templates::TICKET_WAITING,
            &format!("waiting:{}", ticket.version),
            json!({}),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ticket)
}

/// Closes a ticket (R9). Closing ends both clocks: resolution is met, and a first response that
/// never came is closed with it. `caller = None` is the system (auto-close).
pub async fn close(
    pool: &PgPool,
    store: &SlaStore,
    caller: Option<&Caller>,
    id: Uuid,
    reason: CloseReason,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    let mut tx = pool.begin().await?;
    let snapshot = store.snapshot(&mut tx).await?;
    let mut change = lock(&mut tx, caller, id, &snapshot, now).await?;
    close_change(&mut change, &snapshot, caller, reason, now)?;
    let ticket = save(&mut tx, change, &snapshot, now).await?;
    if let Some(to) = recipients(&mut tx, &[ticket.requester_id]).await?.first() {
        outbox::enqueue(&mut tx, closed_email(&ticket, to, reason), now).await?;
    }
    tx.commit().await?;
    Ok(ticket)
}

/// Closes a locked ticket in memory: both clocks end (a first response that never came is closed
/// with the ticket). `caller = None` is the system.
pub(crate) fn close_change(
    change: &mut Change,
    snapshot: &SlaSnapshot,
    caller: Option<&Caller>,
    reason: CloseReason,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let actor = caller.map_or(Actor::System, actor_of);
    rules::close(change.ticket.status, reason, actor).map_err(rule_error)?;
    for metric in Metric::ALL {
        if change.phase(snapshot, metric, now)? != ClockPhase::Met {
            change.clock_event(snapshot, ClockEvent { at: now, kind: ClockEventKind::Met { metric } })?;
        }
    }
    let from = change.ticket.status;
    change.ticket.status = Status::Closed;
    change.ticket.close_reason = Some(reason);
    change.ticket.closed_at = Some(now);
    change.ticket.waiting_since = None;
    change.log(caller.map(|c| c.user_id), "closed", json!({ "from": from, "reason": reason }), false);
    Ok(())
}

/// Reopens a closed ticket (R9): the resolution clock resumes with the time already consumed.
pub async fn reopen(
    pool: &PgPool,
    store: &SlaStore,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    let mut tx = pool.begin().await?;
    let snapshot = store.snapshot(&mut tx).await?;
    let mut change = lock(&mut tx, Some(caller), id, &snapshot, now).await?;
    rules::reopen(change.ticket.status, change.ticket.closed_at, actor_of(caller), now).map_err(rule_error)?;
    change.clock_event(&snapshot, ClockEvent { at: now, kind: ClockEventKind::Reopened })?;
    change.ticket.status = Status::Open;
    change.ticket.close_reason = None;
    change.ticket.closed_at = None;
    change.log(Some(caller.user_id), "reopened", json!({}), false);
    let ticket = save(&mut tx, change, &snapshot, now).await?;
    tx.commit().await?;
    Ok(ticket)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest first.
    Created,
    /// The agents' queue: unresolved tickets, soonest due first.
    Due,
}

#[derive(Debug, Default)]
pub struct TicketFilter {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub organization_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub unassigned: bool,
    pub plan: Option<String>,
    pub breached: Option<bool>,
    pub at_risk: Option<bool>,
    // Report tracing (issue 12): the SLA report's figures as lists. Opened in [from, to).
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// The metric's verdict at `now`, by the database's `sla_outcome` (the report's definition).
    pub first_response: Option<helpdesk_domain::attainment::Outcome>,
    pub resolution: Option<helpdesk_domain::attainment::Outcome>,
    pub close_reason: Option<CloseReason>,
}

/// Tickets the caller may see, a page at a time. Customers see their organisation's only,
/// whatever filter they pass.
pub async fn list(
    pool: &PgPool,
    caller: &Caller,
    mut filter: TicketFilter,
    sort: Sort,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<(Vec<Ticket>, Option<String>), CoreError> {
    if !caller.role.is_staff() {
        filter.organization_id = Some(caller.organization_id.unwrap_or_else(Uuid::nil));
    }
    let (after_at, after_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let status = filter.status.map(Status::as_str);
    let severity = filter.severity.map(Severity::as_str);
    let category = filter.category.map(Category::as_str);
    let rows = match sort {
        Sort::Created => sqlx::query_as!(
            TicketRow,
            r#"SELECT id, number, organization_id, requester_id, assignee_id, subject, description, category, severity, emergency, plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, '[]'::jsonb AS "sla_events!", calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at, resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at, sla_alerts, version, created_at, updated_at
               FROM tickets
               WHERE ($1::uuid IS NULL OR organization_id = $1)
                 AND ($2::text IS NULL OR status = $2)
                 AND ($3::text IS NULL OR severity = $3)
                 AND ($4::text IS NULL OR category = $4)
                 AND ($5::uuid IS NULL OR assignee_id = $5)
                 AND (NOT $6 OR assignee_id IS NULL)
                 AND ($7::text IS NULL OR plan_code = $7)
                 AND ($8::bool IS NULL OR $8 = (status <> 'closed' AND (first_response_breached OR resolution_breached OR next_due_at <= $10)))
                 AND ($9::bool IS NULL OR $9 = (status <> 'closed' AND next_due_at > $10 AND (first_response_at_risk_at <= $10 OR resolution_at_risk_at <= $10)))
                 AND ($14::timestamptz IS NULL OR created_at >= $14)
                 AND ($15::timestamptz IS NULL OR created_at < $15)
                 AND ($16::text IS NULL OR sla_outcome(first_response_breached, first_response_due_at, first_response_met_at, close_reason, $10) = $16)
                 AND ($17::text IS NULL OR sla_outcome(resolution_breached, resolution_due_at, resolution_met_at, close_reason, $10) = $17)
                 AND ($18::text IS NULL OR close_reason = $18)
                 AND ($11::timestamptz IS NULL OR (created_at, id) < ($11, $12))
               ORDER BY created_at DESC, id DESC
               LIMIT $13"#,
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
            filter.created_from,
            filter.created_to,
            filter.first_response.map(Outcome::as_str),
            filter.resolution.map(Outcome::as_str),
            filter.close_reason.map(CloseReason::as_str)
        )
        .fetch_all(pool)
        .await?,
        Sort::Due => sqlx::query_as!(
            TicketRow,
            r#"SELECT id, number, organization_id, requester_id, assignee_id, subject, description, category, severity, emergency, plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, '[]'::jsonb AS "sla_events!", calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at, resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at, sla_alerts, version, created_at, updated_at
               FROM tickets
               WHERE status <> 'closed'
                 AND ($1::uuid IS NULL OR organization_id = $1)
                 AND ($2::text IS NULL OR status = $2)
                 AND ($3::text IS NULL OR severity = $3)
                 AND ($4::text IS NULL OR category = $4)
                 AND ($5::uuid IS NULL OR assignee_id = $5)
                 AND (NOT $6 OR assignee_id IS NULL)
                 AND ($7::text IS NULL OR plan_code = $7)
                 AND ($8::bool IS NULL OR $8 = (first_response_breached OR resolution_breached OR next_due_at <= $10))
                 AND ($9::bool IS NULL OR $9 = (next_due_at > $10 AND (first_response_at_risk_at <= $10 OR resolution_at_risk_at <= $10)))
                 AND ($14::timestamptz IS NULL OR created_at >= $14)
                 AND ($15::timestamptz IS NULL OR created_at < $15)
                 AND ($16::text IS NULL OR sla_outcome(first_response_breached, first_response_due_at, first_response_met_at, close_reason, $10) = $16)
                 AND ($17::text IS NULL OR sla_outcome(resolution_breached, resolution_due_at, resolution_met_at, close_reason, $10) = $17)
                 AND ($18::text IS NULL OR close_reason = $18)
                 AND ($11::timestamptz IS NULL OR (next_due_at, id) > ($11, $12))
               ORDER BY next_due_at, id
               LIMIT $13"#,
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
            filter.created_from,
            filter.created_to,
            filter.first_response.map(Outcome::as_str),
            filter.resolution.map(Outcome::as_str),
            filter.close_reason.map(CloseReason::as_str)
        )
        .fetch_all(pool)
        .await?,
    };
    let tickets = rows.into_iter().map(Ticket::try_from).collect::<Result<Vec<_>, _>>()?;
    Ok(crate::pagination::finish(tickets, &page, |t| match sort {
        Sort::Created => (t.created_at, t.id),
        Sort::Due => (t.next_due_at, t.id),
    }))
}

/// Brings open tickets whose clocks run on an older calendar or policy onto the ones in force, a
/// batch per transaction; returns how many were re-projected. Tickets also catch up on their
/// own the next time they change, so an interrupted run loses nothing.
pub async fn reproject(pool: &PgPool, store: &SlaStore, limit: usize, now: DateTime<Utc>) -> Result<usize, CoreError> {
    let mut done = 0;
    while done < limit {
        let mut tx = pool.begin().await?;
        let snapshot = store.snapshot(&mut tx).await?;
        let ids = sqlx::query_scalar!(
            "SELECT id FROM tickets WHERE status <> 'closed' AND (calendar_version < $1 OR policy_version < $2) ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED",
            snapshot.calendar.version() as i32,
            snapshot.policy.version as i32
        )
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            break;
        }
        for id in &ids {
            let change = lock(&mut tx, None, *id, &snapshot, now).await?;
            save(&mut tx, change, &snapshot, now).await?;
        }
        tx.commit().await?;
        done += ids.len();
    }
    Ok(done)
}
