//! Loading and saving tickets. The column list is written once, in [`select_tickets!`]; every read
//! goes through it, and [`save_all`] writes what a [`TicketChange`] did.

use crate::CoreError;
use crate::accounts::Caller;
use chrono::{DateTime, Utc};
use helpdesk_domain::sla_versions::SlaSnapshot;
use helpdesk_domain::tickets::aggregate::CommandError;
use helpdesk_domain::tickets::{CloseReason, Ticket, TicketChange, TicketRuleError, TimelineEntry};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// `SELECT <every ticket column> FROM tickets <rest>` into [`TicketRow`]s. `lists` leaves the SLA
/// event list (`'[]'`) and the alert marks (`'{}'`) out: a page never replays clocks nor sends
/// alerts, and decoding every row's JSON would cost the most.
macro_rules! select_tickets {
    (full, $rest:literal $(, $args:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::tickets::store::TicketRow,
            "SELECT id, number, organization_id, requester_id, opened_by, source, assignee_id, subject, description, category, severity, emergency, plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, sla_events, calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at, resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at, sla_alerts, version, created_at, updated_at FROM tickets " + $rest
            $(, $args)*
        )
    };
    (lists, [$($rest:literal),+ $(,)?] $(, $args:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::tickets::store::TicketRow,
            r#"SELECT id, number, organization_id, requester_id, opened_by, source, assignee_id, subject, description, category, severity, emergency, plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, '[]'::jsonb AS "sla_events!", calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at, resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at, '{}'::jsonb AS "sla_alerts!", version, created_at, updated_at FROM tickets "# $(+ $rest)+
            $(, $args)*
        )
    };
}
pub(crate) use select_tickets;

pub(crate) struct TicketRow {
    pub(crate) id: Uuid,
    pub(crate) number: i64,
    pub(crate) organization_id: Uuid,
    pub(crate) requester_id: Option<Uuid>,
    pub(crate) opened_by: Option<Uuid>,
    pub(crate) source: String,
    pub(crate) assignee_id: Option<Uuid>,
    pub(crate) subject: String,
    pub(crate) description: String,
    pub(crate) category: String,
    pub(crate) severity: String,
    pub(crate) emergency: bool,
    pub(crate) plan_code: String,
    pub(crate) status: String,
    pub(crate) close_reason: Option<String>,
    pub(crate) closed_at: Option<DateTime<Utc>>,
    pub(crate) waiting_since: Option<DateTime<Utc>>,
    pub(crate) references_ticket_id: Option<Uuid>,
    pub(crate) sla_events: Value,
    pub(crate) calendar_version: i32,
    pub(crate) policy_version: i32,
    pub(crate) first_response_due_at: Option<DateTime<Utc>>,
    pub(crate) first_response_at_risk_at: Option<DateTime<Utc>>,
    pub(crate) first_response_met_at: Option<DateTime<Utc>>,
    pub(crate) first_response_breached: bool,
    pub(crate) resolution_due_at: Option<DateTime<Utc>>,
    pub(crate) resolution_at_risk_at: Option<DateTime<Utc>>,
    pub(crate) resolution_met_at: Option<DateTime<Utc>>,
    pub(crate) resolution_breached: bool,
    pub(crate) next_due_at: DateTime<Utc>,
    pub(crate) next_timer_at: Option<DateTime<Utc>>,
    pub(crate) reminder_sent_at: Option<DateTime<Utc>>,
    pub(crate) sla_alerts: Value,
    pub(crate) version: i32,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

fn parse<T: std::str::FromStr>(id: Uuid, what: &str, raw: &str) -> Result<T, CoreError> {
    raw.parse().map_err(|_| CoreError::Internal(format!("ticket {id}: bad {what} '{raw}'")))
}

fn parse_json<T: serde::de::DeserializeOwned>(id: Uuid, what: &str, raw: &str) -> Result<T, CoreError> {
    serde_json::from_value(Value::String(raw.to_owned()))
        .map_err(|e| CoreError::Internal(format!("ticket {id}: bad {what} '{raw}': {e}")))
}

impl TryFrom<TicketRow> for Ticket {
    type Error = CoreError;
    fn try_from(r: TicketRow) -> Result<Self, CoreError> {
        let id = r.id;
        Ok(Ticket {
            category: parse_json(id, "category", &r.category)?,
            severity: parse_json(id, "severity", &r.severity)?,
            status: parse(id, "status", &r.status)?,
            source: parse(id, "source", &r.source)?,
            close_reason: r.close_reason.as_deref().map(|c| parse::<CloseReason>(id, "close reason", c)).transpose()?,
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
            opened_by: r.opened_by,
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

/// A refused or failed command, as the API answers it.
pub(crate) fn command_error(ticket: Uuid, error: CommandError) -> CoreError {
    match error {
        CommandError::Rule(rule) => rule_error(rule),
        CommandError::NotEntitled(missing) => CoreError::NotEntitled(missing),
        CommandError::NoTargets { .. } => CoreError::conflict("sla_targets_missing", error.to_string()),
        CommandError::Clock(e) => CoreError::Internal(format!("ticket {ticket}: SLA clock: {e}")),
    }
}

fn rule_error(error: TicketRuleError) -> CoreError {
    if error.is_permission() {
        CoreError::forbidden(error.code(), error.to_string())
    } else {
        CoreError::conflict(error.code(), error.to_string())
    }
}

/// One ticket, if the caller may see it (`None`: the system sees all). Another organisation's
/// ticket is "not found", exactly like a missing one.
pub async fn get(conn: &mut PgConnection, caller: Option<&Caller>, id: Uuid) -> Result<Ticket, CoreError> {
    let row =
        select_tickets!(full, "WHERE id = $1", id).fetch_optional(conn).await?.ok_or(CoreError::NotFound("ticket"))?;
    let ticket = Ticket::try_from(row)?;
    if caller.is_some_and(|c| !c.may_see_organization(ticket.organization_id)) {
        return Err(CoreError::NotFound("ticket"));
    }
    Ok(ticket)
}

/// The ticket's stored version, its row locked until the transaction ends, if the caller may see
/// it: what a conditional change (`If-Match`) compares before changing it.
pub async fn locked_version(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<i32, CoreError> {
    let row = sqlx::query!("SELECT organization_id, version FROM tickets WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(conn)
        .await?
        .ok_or(CoreError::NotFound("ticket"))?;
    if !caller.may_see_organization(row.organization_id) {
        return Err(CoreError::NotFound("ticket"));
    }
    Ok(row.version)
}

/// Loads a ticket for change, locked, if the caller may see it; its clock caught up with the
/// versions in force.
pub(crate) async fn lock(
    conn: &mut PgConnection,
    caller: Option<&Caller>,
    id: Uuid,
    rules: &SlaSnapshot,
    now: DateTime<Utc>,
) -> Result<TicketChange, CoreError> {
    let row = select_tickets!(full, "WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(conn)
        .await?
        .ok_or(CoreError::NotFound("ticket"))?;
    let ticket = Ticket::try_from(row)?;
    if caller.is_some_and(|c| !c.may_see_organization(ticket.organization_id)) {
        return Err(CoreError::NotFound("ticket"));
    }
    TicketChange::load(ticket, rules, now).map_err(|e| command_error(id, e))
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
    let rows = select_tickets!(
        full,
        "WHERE next_timer_at <= $1 AND NOT (id = ANY($3)) ORDER BY next_timer_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
        skip
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Ticket::try_from).collect()
}

/// Writes a new ticket (its number comes back from the sequence) and its timeline.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    mut change: TicketChange,
    rules: &SlaSnapshot,
    now: DateTime<Utc>,
) -> Result<TicketChange, CoreError> {
    let id = change.ticket.id;
    change.settle(rules, now).map_err(|e| command_error(id, e))?;
    let t = &change.ticket;
    let number = sqlx::query_scalar!(
        r#"INSERT INTO tickets (id, organization_id, requester_id, opened_by, source, subject, description, category, severity, emergency, plan_code, status, references_ticket_id,
                               sla_events, calendar_version, policy_version, first_response_due_at, first_response_at_risk_at, resolution_due_at, resolution_at_risk_at,
                               next_due_at, next_timer_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $23)
           RETURNING number"#,
        id,
        t.organization_id,
        t.requester_id,
        t.opened_by,
        t.source.as_str(),
        t.subject,
        t.description,
        t.category.as_str(),
        t.severity.as_str(),
        t.emergency,
        t.plan_code,
        t.status.as_str(),
        t.references_ticket_id,
        to_json(&t.sla_events)?,
        t.calendar_version,
        t.policy_version,
        t.first_response_due_at,
        t.first_response_at_risk_at,
        t.resolution_due_at,
        t.resolution_at_risk_at,
        t.next_due_at,
        t.next_timer_at,
        now
    )
    .fetch_one(&mut *conn)
    .await?;
    change.ticket.number = number;
    let mut timeline = TimelineColumns::default();
    for entry in change.timeline.drain(..) {
        timeline.push(id, entry);
    }
    timeline.insert(conn, now).await?;
    Ok(change)
}

/// Writes one changed ticket: see [`save_all`].
pub(crate) async fn save(
    conn: &mut PgConnection,
    change: TicketChange,
    rules: &SlaSnapshot,
    now: DateTime<Utc>,
) -> Result<TicketChange, CoreError> {
    save_all(conn, vec![change], rules, now)
        .await?
        .pop()
        .ok_or_else(|| CoreError::Internal("a saved ticket went missing".into()))
}

/// Writes changed tickets, their new clock events, projections, next timer instants and
/// timelines in two statements (one UPDATE, one INSERT of their timelines), whatever their number:
/// the worker saves a batch of a hundred at once, and a statement per ticket and per timeline row
/// cost it about three times as much database time (measured). Returns the changes in the order
/// given, their tickets as stored and their timelines written; notifications are left for the
/// caller to send.
pub(crate) async fn save_all(
    conn: &mut PgConnection,
    changes: Vec<TicketChange>,
    rules: &SlaSnapshot,
    now: DateTime<Utc>,
) -> Result<Vec<TicketChange>, CoreError> {
    let mut rows = TicketColumns::default();
    let mut timeline = TimelineColumns::default();
    let mut saved = Vec::with_capacity(changes.len());
    for mut change in changes {
        let id = change.ticket.id;
        let new_events = to_json(&change.new_clock_events)?;
        change.settle(rules, now).map_err(|e| command_error(id, e))?;
        rows.push(&change.ticket, new_events, to_json(&change.ticket.sla_alerts)?);
        for entry in change.timeline.drain(..) {
            timeline.push(id, entry);
        }
        saved.push(change);
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
    if versions.len() != saved.len() {
        return Err(CoreError::Internal(format!("saved {} of {} tickets", versions.len(), saved.len())));
    }
    let versions: std::collections::HashMap<Uuid, i32> = versions.into_iter().map(|r| (r.id, r.version)).collect();
    for c in &mut saved {
        c.ticket.version = versions.get(&c.ticket.id).copied().unwrap_or(c.ticket.version + 1);
    }
    timeline.insert(conn, now).await?;
    Ok(saved)
}

/// A value for a JSON column; failing to serialise one of our own types is an internal error.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, CoreError> {
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
    fn push(&mut self, t: &Ticket, new_events: Value, sla_alerts: Value) {
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
        self.fr_due_at.push(t.first_response_due_at);
        self.fr_at_risk_at.push(t.first_response_at_risk_at);
        self.fr_met_at.push(t.first_response_met_at);
        self.fr_breached.push(t.first_response_breached);
        self.res_due_at.push(t.resolution_due_at);
        self.res_at_risk_at.push(t.resolution_at_risk_at);
        self.res_met_at.push(t.resolution_met_at);
        self.res_breached.push(t.resolution_breached);
        self.next_due_at.push(t.next_due_at);
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
    fn push(&mut self, ticket: Uuid, entry: TimelineEntry) {
        self.ticket.push(ticket);
        self.actor.push(entry.actor);
        self.kind.push(entry.kind);
        self.data.push(entry.data);
        self.internal.push(entry.internal);
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
