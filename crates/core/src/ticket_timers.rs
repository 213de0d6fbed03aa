//! Ticket timers (DESIGN R5–R8, §3): SLA at-risk and breach alerts, the R8 reminder to a customer
//! who has not answered, and the auto-close after it.
//!
//! Every timer is data: the SLA instants are projected onto `tickets` (`*_at_risk_at`,
//! `*_due_at`), the reminder is due `reminder_after` past `waiting_since`, and the auto-close
//! `auto_close_after` past the reminder's `fired_at`. A timer that acted leaves a row in
//! `ticket_alerts` (ticket, kind, instant; for both SLA alerts the instant is the metric's due
//! instant, so each fires once per target), written in the transaction that acts, so a duplicate,
//! replayed or stale job is a no-op. The worker finds due timers with [`due_timers`] (its
//! reconciler), schedules future ones with [`pending_timers`] (its NOTIFY listener), and runs
//! [`handle`] for each job.
//!
//! A job's identity is its kind and instant, not the ticket's `version`: the version moves on every
//! change (an internal note, say) without moving the timer, and such a job must still act. The
//! handler therefore re-derives the instant from the locked row and acts only if it is the job's.

use crate::Config;
use crate::CoreError;
use crate::jobs::{TicketTimer, TicketTimerKind};
use crate::outbox::{self, NewEmail, templates};
use crate::sla_store::SlaStore;
use crate::tickets;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use helpdesk_domain::tickets::CloseReason;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// R8's durations (`HELPDESK_REMINDER_HOURS`, `HELPDESK_AUTO_CLOSE_HOURS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerPolicy {
    /// Waiting for the customer this long earns one reminder.
    pub reminder_after: TimeDelta,
    /// Still waiting this long after the reminder, the ticket is closed as `auto_closed`.
    pub auto_close_after: TimeDelta,
}

impl Default for TimerPolicy {
    fn default() -> Self {
        Self { reminder_after: TimeDelta::hours(72), auto_close_after: TimeDelta::hours(48) }
    }
}

impl TimerPolicy {
    pub fn from_config(config: &Config) -> Self {
        Self { reminder_after: config.reminder_after, auto_close_after: config.auto_close_after }
    }
}

/// What handling one timer job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOutcome {
    /// The timer acted. `follow_up` is a timer the action armed (the auto-close after a reminder),
    /// for the caller to schedule.
    Acted { follow_up: Option<TicketTimer> },
    /// Not due yet, moved, already handled, or no longer applicable: nothing was done.
    Stale,
}

/// The columns the timers depend on.
#[derive(Debug, Clone)]
struct TimerRow {
    id: Uuid,
    number: i64,
    subject: String,
    severity: String,
    emergency: bool,
    status: String,
    requester_id: Uuid,
    assignee_id: Option<Uuid>,
    waiting_since: Option<DateTime<Utc>>,
    first_response_at_risk_at: Option<DateTime<Utc>>,
    first_response_due_at: Option<DateTime<Utc>>,
    first_response_met_at: Option<DateTime<Utc>>,
    first_response_breached: bool,
    resolution_at_risk_at: Option<DateTime<Utc>>,
    resolution_due_at: Option<DateTime<Utc>>,
    resolution_met_at: Option<DateTime<Utc>>,
    resolution_breached: bool,
    version: i32,
}

/// The SLA metric an alert kind is about, and whether it is the at-risk (vs the breach) alert.
fn sla_kind(kind: TicketTimerKind) -> Option<(Metric, bool)> {
    match kind {
        TicketTimerKind::FirstResponseAtRisk => Some((Metric::FirstResponse, true)),
        TicketTimerKind::FirstResponseBreached => Some((Metric::FirstResponse, false)),
        TicketTimerKind::ResolutionAtRisk => Some((Metric::Resolution, true)),
        TicketTimerKind::ResolutionBreached => Some((Metric::Resolution, false)),
        TicketTimerKind::CustomerReminder | TicketTimerKind::AutoClose => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    FirstResponse,
    Resolution,
}

impl Metric {
    fn as_str(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first_response",
            Metric::Resolution => "resolution",
        }
    }

    fn label(self, locale: &str) -> &'static str {
        match (self, is_english(locale)) {
            (Metric::FirstResponse, true) => "first response",
            (Metric::FirstResponse, false) => "primeira resposta",
            (Metric::Resolution, true) => "resolution",
            (Metric::Resolution, false) => "resolução",
        }
    }
}

/// (at-risk instant, due instant, met, breached as of the last save) of one metric.
struct MetricColumns {
    at_risk_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    met: bool,
    breached: bool,
}

impl TimerRow {
    fn metric(&self, metric: Metric) -> MetricColumns {
        match metric {
            Metric::FirstResponse => MetricColumns {
                at_risk_at: self.first_response_at_risk_at,
                due_at: self.first_response_due_at,
                met: self.first_response_met_at.is_some(),
                breached: self.first_response_breached,
            },
            Metric::Resolution => MetricColumns {
                at_risk_at: self.resolution_at_risk_at,
                due_at: self.resolution_due_at,
                met: self.resolution_met_at.is_some(),
                breached: self.resolution_breached,
            },
        }
    }

    fn waiting(&self) -> Option<DateTime<Utc>> {
        self.waiting_since.filter(|_| self.status == "waiting_customer")
    }

    /// The instant `kind` is (or was) due on this row, whether or not it already acted; `None`
    /// when the timer does not apply (closed, met, paused, not waiting). `reminder` is when the
    /// reminder of the current wait went out, if it did.
    fn instant(
        &self,
        kind: TicketTimerKind,
        reminder: Option<DateTime<Utc>>,
        policy: &TimerPolicy,
    ) -> Option<DateTime<Utc>> {
        if self.status == "closed" {
            return None;
        }
        if let Some((metric, at_risk)) = sla_kind(kind) {
            let m = self.metric(metric);
            if m.met {
                return None;
            }
            return if at_risk { m.at_risk_at.filter(|_| !m.breached && m.due_at.is_some()) } else { m.due_at };
        }
        let waiting_since = self.waiting()?;
        match kind {
            TicketTimerKind::CustomerReminder => Some(waiting_since + policy.reminder_after),
            TicketTimerKind::AutoClose => reminder.map(|at| at + policy.auto_close_after),
            _ => None,
        }
    }

    /// Whether `kind`, due at `instant`, should act at `now`. An at-risk alert whose target has
    /// already run out gives way to the breach alert.
    fn fires(&self, kind: TicketTimerKind, instant: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        if instant > now {
            return false;
        }
        match sla_kind(kind) {
            Some((metric, true)) => {
                let m = self.metric(metric);
                !m.breached && m.due_at.is_some_and(|due| due > now)
            }
            _ => true,
        }
    }

    /// The instant a firing is recorded under (`ticket_alerts.due_at`): the metric's due instant
    /// for both SLA alerts, so an at-risk alert fires once per target even though a ticket saved
    /// past its threshold stores the save's instant as `*_at_risk_at`; the timer's own instant
    /// for the others.
    fn firing_key(&self, kind: TicketTimerKind, instant: DateTime<Utc>) -> DateTime<Utc> {
        match sla_kind(kind) {
            Some((metric, true)) => self.metric(metric).due_at.unwrap_or(instant),
            _ => instant,
        }
    }

    fn timer(&self, kind: TicketTimerKind, due_at: DateTime<Utc>) -> TicketTimer {
        TicketTimer { ticket_id: self.id, kind, due_at, version: i64::from(self.version) }
    }
}

const ALL_KINDS: [TicketTimerKind; 6] = [
    TicketTimerKind::FirstResponseAtRisk,
    TicketTimerKind::FirstResponseBreached,
    TicketTimerKind::ResolutionAtRisk,
    TicketTimerKind::ResolutionBreached,
    TicketTimerKind::CustomerReminder,
    TicketTimerKind::AutoClose,
];

fn kind_from_str(kind: &str) -> Option<TicketTimerKind> {
    ALL_KINDS.into_iter().find(|k| k.as_str() == kind)
}

/// PostgreSQL keeps microseconds; compare instants at that precision.
fn same_instant(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    a.timestamp_micros() == b.timestamp_micros()
}

async fn load(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<TimerRow>, sqlx::Error> {
    if lock {
        sqlx::query_as!(
            TimerRow,
            r#"SELECT id, number, subject, severity, emergency, status, requester_id, assignee_id, waiting_since,
                      first_response_at_risk_at, first_response_due_at, first_response_met_at, first_response_breached,
                      resolution_at_risk_at, resolution_due_at, resolution_met_at, resolution_breached, version
               FROM tickets WHERE id = $1 FOR UPDATE"#,
            id
        )
        .fetch_optional(conn)
        .await
    } else {
        sqlx::query_as!(
            TimerRow,
            r#"SELECT id, number, subject, severity, emergency, status, requester_id, assignee_id, waiting_since,
                      first_response_at_risk_at, first_response_due_at, first_response_met_at, first_response_breached,
                      resolution_at_risk_at, resolution_due_at, resolution_met_at, resolution_breached, version
               FROM tickets WHERE id = $1"#,
            id
        )
        .fetch_optional(conn)
        .await
    }
}

/// When the reminder of the wait that began at `waiting_since` went out, if it did.
async fn reminder_of_wait(
    conn: &mut PgConnection,
    ticket: Uuid,
    waiting_since: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let Some(waiting_since) = waiting_since else { return Ok(None) };
    sqlx::query_scalar!(
        "SELECT max(fired_at) FROM ticket_alerts WHERE ticket_id = $1 AND kind = 'customer_reminder' AND fired_at >= $2",
        ticket,
        waiting_since
    )
    .fetch_one(conn)
    .await
}

async fn already_fired(
    conn: &mut PgConnection,
    ticket: Uuid,
    kind: TicketTimerKind,
    instant: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let fired = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM ticket_alerts WHERE ticket_id = $1 AND kind = $2 AND due_at = $3) AS "fired!""#,
        ticket,
        kind.as_str(),
        instant
    )
    .fetch_one(conn)
    .await?;
    Ok(fired)
}

/// Records that `kind` acted for `instant`; `None` when it already had (a duplicate job), else the
/// stored firing time.
async fn record_firing(
    conn: &mut PgConnection,
    ticket: Uuid,
    kind: TicketTimerKind,
    instant: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO ticket_alerts (ticket_id, kind, due_at, fired_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING fired_at",
        ticket,
        kind.as_str(),
        instant,
        now
    )
    .fetch_optional(conn)
    .await
}

/// The timers of one ticket that have not acted yet, due or not, at their instants: what the
/// worker schedules when the ticket changes. A handler re-checks each, so scheduling one that is
/// moved or cancelled later costs only a no-op job.
pub async fn pending_timers(
    conn: &mut PgConnection,
    ticket: Uuid,
    policy: &TimerPolicy,
) -> Result<Vec<TicketTimer>, sqlx::Error> {
    let Some(row) = load(conn, ticket, false).await? else { return Ok(Vec::new()) };
    let reminder = reminder_of_wait(conn, ticket, row.waiting()).await?;
    let mut timers = Vec::new();
    for kind in ALL_KINDS {
        if kind == TicketTimerKind::CustomerReminder && reminder.is_some() {
            continue;
        }
        let Some(instant) = row.instant(kind, reminder, policy) else { continue };
        if !already_fired(conn, ticket, kind, row.firing_key(kind, instant)).await? {
            timers.push(row.timer(kind, instant));
        }
    }
    Ok(timers)
}

/// Timers due at `now` that have not acted, oldest first, at most `limit`: the reconciler's sweep.
/// Each branch reads a partial index (`tickets_*_timer_idx`, `tickets_waiting_idx`).
pub async fn due_timers(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    policy: &TimerPolicy,
    limit: i64,
) -> Result<Vec<TicketTimer>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT ticket_id AS "ticket_id!", kind AS "kind!", base_at AS "base_at!", version AS "version!" FROM (
             SELECT t.id AS ticket_id, 'first_response_at_risk' AS kind, t.first_response_at_risk_at AS base_at, t.version
             FROM tickets t
             WHERE t.status <> 'closed' AND t.first_response_met_at IS NULL AND t.first_response_at_risk_at <= $1
               AND NOT t.first_response_breached AND t.first_response_due_at > $1
               AND NOT EXISTS (SELECT 1 FROM ticket_alerts a WHERE a.ticket_id = t.id AND a.kind = 'first_response_at_risk' AND a.due_at = t.first_response_due_at)
             UNION ALL
             SELECT t.id, 'first_response_breached', t.first_response_due_at, t.version
             FROM tickets t
             WHERE t.status <> 'closed' AND t.first_response_met_at IS NULL AND t.first_response_at_risk_at <= $1
               AND t.first_response_due_at <= $1
               AND NOT EXISTS (SELECT 1 FROM ticket_alerts a WHERE a.ticket_id = t.id AND a.kind = 'first_response_breached' AND a.due_at = t.first_response_due_at)
             UNION ALL
             SELECT t.id, 'resolution_at_risk', t.resolution_at_risk_at, t.version
             FROM tickets t
             WHERE t.status <> 'closed' AND t.resolution_met_at IS NULL AND t.resolution_at_risk_at <= $1
               AND NOT t.resolution_breached AND t.resolution_due_at > $1
               AND NOT EXISTS (SELECT 1 FROM ticket_alerts a WHERE a.ticket_id = t.id AND a.kind = 'resolution_at_risk' AND a.due_at = t.resolution_due_at)
             UNION ALL
             SELECT t.id, 'resolution_breached', t.resolution_due_at, t.version
             FROM tickets t
             WHERE t.status <> 'closed' AND t.resolution_met_at IS NULL AND t.resolution_at_risk_at <= $1
               AND t.resolution_due_at <= $1
               AND NOT EXISTS (SELECT 1 FROM ticket_alerts a WHERE a.ticket_id = t.id AND a.kind = 'resolution_breached' AND a.due_at = t.resolution_due_at)
             UNION ALL
             SELECT t.id, 'customer_reminder', t.waiting_since, t.version
             FROM tickets t
             WHERE t.status = 'waiting_customer' AND t.waiting_since <= $2
               AND NOT EXISTS (SELECT 1 FROM ticket_alerts a WHERE a.ticket_id = t.id AND a.kind = 'customer_reminder' AND a.fired_at >= t.waiting_since)
             UNION ALL
             SELECT t.id, 'auto_close', r.fired_at, t.version
             FROM tickets t
             CROSS JOIN LATERAL (SELECT max(a.fired_at) AS fired_at FROM ticket_alerts a
                                 WHERE a.ticket_id = t.id AND a.kind = 'customer_reminder' AND a.fired_at >= t.waiting_since) r
             WHERE t.status = 'waiting_customer' AND t.waiting_since <= $2 AND r.fired_at <= $3
           ) due
           ORDER BY base_at
           LIMIT $4"#,
        now,
        now - policy.reminder_after,
        now - policy.auto_close_after,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let kind = kind_from_str(&row.kind)?;
            let due_at = match kind {
                TicketTimerKind::CustomerReminder => row.base_at + policy.reminder_after,
                TicketTimerKind::AutoClose => row.base_at + policy.auto_close_after,
                _ => row.base_at,
            };
            Some(TicketTimer { ticket_id: row.ticket_id, kind, due_at, version: i64::from(row.version) })
        })
        .collect())
}

/// Runs one timer job at `now`: locks the ticket, re-derives the timer's instant, and acts only if
/// it is still the job's, is due, and has not acted; records the firing in the same transaction.
pub async fn handle(
    pool: &PgPool,
    store: &SlaStore,
    policy: &TimerPolicy,
    timer: TicketTimer,
    now: DateTime<Utc>,
) -> Result<TimerOutcome, CoreError> {
    match timer.kind {
        TicketTimerKind::CustomerReminder => remind(pool, policy, timer, now).await,
        TicketTimerKind::AutoClose => auto_close(pool, store, policy, timer, now).await,
        _ => alert(pool, store, policy, timer, now).await,
    }
}

/// Locks the ticket and checks that `timer` is current and due; the row, the reminder of the
/// current wait and the instant under which the firing is recorded, when it is.
///
/// A job acts only for the instant it was scheduled for, except an at-risk alert: a ticket saved
/// past its threshold stores the save's instant as `*_at_risk_at`, so the instant moves while the
/// alert it stands for (one per due instant) does not.
async fn lock_if_due(
    conn: &mut PgConnection,
    policy: &TimerPolicy,
    timer: &TicketTimer,
    now: DateTime<Utc>,
) -> Result<Option<(TimerRow, Option<DateTime<Utc>>, DateTime<Utc>)>, sqlx::Error> {
    let Some(row) = load(conn, timer.ticket_id, true).await? else { return Ok(None) };
    let reminder = reminder_of_wait(conn, row.id, row.waiting()).await?;
    if timer.kind == TicketTimerKind::CustomerReminder && reminder.is_some() {
        return Ok(None);
    }
    let Some(current) = row.instant(timer.kind, reminder, policy) else { return Ok(None) };
    let at_risk = matches!(sla_kind(timer.kind), Some((_, true)));
    if !(at_risk || same_instant(current, timer.due_at)) || !row.fires(timer.kind, current, now) {
        return Ok(None);
    }
    let key = row.firing_key(timer.kind, current);
    Ok(Some((row, reminder, key)))
}

async fn record_event(
    conn: &mut PgConnection,
    ticket: Uuid,
    kind: &str,
    data: Value,
    internal: bool,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO ticket_events (id, ticket_id, actor_id, kind, data, internal, occurred_at) VALUES ($1, $2, NULL, $3, $4, $5, $6)",
        Uuid::now_v7(),
        ticket,
        kind,
        data,
        internal,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// R8: one reminder to the requester of a ticket waiting `reminder_after` for them.
async fn remind(
    pool: &PgPool,
    policy: &TimerPolicy,
    timer: TicketTimer,
    now: DateTime<Utc>,
) -> Result<TimerOutcome, CoreError> {
    let mut tx = pool.begin().await?;
    let Some((row, _, instant)) = lock_if_due(&mut tx, policy, &timer, now).await? else {
        return Ok(TimerOutcome::Stale);
    };
    let Some(fired_at) = record_firing(&mut tx, row.id, timer.kind, instant, now).await? else {
        return Ok(TimerOutcome::Stale);
    };
    let auto_close_at = fired_at + policy.auto_close_after;
    let requester =
        sqlx::query!("SELECT email, name, locale FROM users WHERE id = $1 AND disabled_at IS NULL", row.requester_id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(to) = requester {
        outbox::enqueue(
            &mut tx,
            NewEmail {
                idempotency_key: format!("ticket:{}:reminder:{}:{}", row.id, instant.timestamp(), row.requester_id),
                to_address: &to.email,
                to_name: Some(&to.name),
                locale: &to.locale,
                template: templates::TICKET_REMINDER,
                payload: json!({
                    "name": to.name, "ticket_id": row.id, "ticket_number": row.number, "subject": row.subject,
                    "status": row.status, "severity": row.severity,
                    "waiting_since": row.waiting_since, "auto_close_at": auto_close_at,
                }),
            },
            now,
        )
        .await?;
    }
    record_event(
        &mut tx,
        row.id,
        "reminder_sent",
        json!({ "waiting_since": row.waiting_since, "auto_close_at": auto_close_at }),
        false,
        now,
    )
    .await?;
    tx.commit().await?;
    let follow_up = row.timer(TicketTimerKind::AutoClose, auto_close_at);
    Ok(TimerOutcome::Acted { follow_up: Some(follow_up) })
}

/// R8: closes a ticket still waiting `auto_close_after` past its reminder, as the system.
///
/// `tickets::close` runs its own transaction, so the check and the close are two transactions: a
/// customer reply landing between them (milliseconds) is recorded and the ticket still closes, as
/// if the reply had come just after; the customer can reopen it for 7 days (R9).
async fn auto_close(
    pool: &PgPool,
    store: &SlaStore,
    policy: &TimerPolicy,
    timer: TicketTimer,
    now: DateTime<Utc>,
) -> Result<TimerOutcome, CoreError> {
    let (row, reminder, instant) = {
        let mut tx = pool.begin().await?;
        let Some(found) = lock_if_due(&mut tx, policy, &timer, now).await? else { return Ok(TimerOutcome::Stale) };
        tx.commit().await?;
        found
    };
    match tickets::close(pool, store, None, row.id, CloseReason::AutoClosed, now).await {
        Ok(_) => {}
        // Closed meanwhile (a duplicate job, or someone closed it): nothing left to do.
        Err(CoreError::Conflict { .. } | CoreError::NotFound(_)) => return Ok(TimerOutcome::Stale),
        Err(error) => return Err(error),
    }
    let mut tx = pool.begin().await?;
    if record_firing(&mut tx, row.id, timer.kind, instant, now).await?.is_some() {
        record_event(
            &mut tx,
            row.id,
            "auto_closed",
            json!({ "reminder_sent_at": reminder, "waiting_since": row.waiting_since, "reason": CloseReason::AutoClosed.as_str() }),
            false,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(TimerOutcome::Acted { follow_up: None })
}

struct Recipient {
    id: Uuid,
    email: String,
    name: String,
    locale: String,
}

/// Every active agent (the admins when the desk has no agent): the on-call list, and who hears of
/// an unassigned ticket.
async fn all_agents(conn: &mut PgConnection) -> Result<Vec<Recipient>, sqlx::Error> {
    sqlx::query_as!(
        Recipient,
        r#"SELECT id, email, name, locale FROM users
           WHERE disabled_at IS NULL
             AND role = CASE WHEN EXISTS (SELECT 1 FROM users WHERE role = 'agent' AND disabled_at IS NULL) THEN 'agent' ELSE 'admin' END
           ORDER BY id"#
    )
    .fetch_all(conn)
    .await
}

fn is_english(locale: &str) -> bool {
    locale.eq_ignore_ascii_case("en") || locale.to_ascii_lowercase().starts_with("en-")
}

fn severity_label(severity: &str, locale: &str) -> String {
    let pt = match severity {
        "critical" => "crítica",
        "high" => "alta",
        "normal" => "normal",
        "low" => "baixa",
        other => other,
    };
    if is_english(locale) { severity.to_owned() } else { pt.to_owned() }
}

fn local_time(at: DateTime<Utc>, zone: Tz, locale: &str) -> String {
    let local = at.with_timezone(&zone);
    let format = if is_english(locale) { "%Y-%m-%d %H:%M" } else { "%d/%m/%Y %H:%M" };
    format!("{} ({})", local.format(format), zone.name())
}

/// R5/R7: an at-risk or breach alert, once per instant, to the assignee or else every agent. An
/// emergency ticket's alerts page every agent at once, any hour; any other alert raised out of
/// business hours waits in the outbox for the calendar's next business instant.
async fn alert(
    pool: &PgPool,
    store: &SlaStore,
    policy: &TimerPolicy,
    timer: TicketTimer,
    now: DateTime<Utc>,
) -> Result<TimerOutcome, CoreError> {
    let Some((metric, at_risk)) = sla_kind(timer.kind) else { return Ok(TimerOutcome::Stale) };
    let mut tx = pool.begin().await?;
    let Some((row, _, key)) = lock_if_due(&mut tx, policy, &timer, now).await? else {
        return Ok(TimerOutcome::Stale);
    };
    if record_firing(&mut tx, row.id, timer.kind, key, now).await?.is_none() {
        return Ok(TimerOutcome::Stale);
    }
    let snapshot = store.snapshot(&mut tx).await?;
    let deliver_at = if row.emergency { now } else { snapshot.calendar.next_business_instant(now).max(now) };
    let mut recipients = Vec::new();
    if !row.emergency
        && let Some(assignee) = row.assignee_id
    {
        recipients = sqlx::query_as!(
            Recipient,
            "SELECT id, email, name, locale FROM users WHERE id = $1 AND disabled_at IS NULL",
            assignee
        )
        .fetch_all(&mut *tx)
        .await?;
    }
    if recipients.is_empty() {
        recipients = all_agents(&mut tx).await?;
    }
    let due_at = row.metric(metric).due_at.unwrap_or(key);
    let template = if at_risk { templates::SLA_AT_RISK } else { templates::SLA_BREACHED };
    for to in &recipients {
        outbox::enqueue_at(
            &mut tx,
            NewEmail {
                idempotency_key: format!("ticket:{}:{}:{}:{}", row.id, timer.kind.as_str(), key.timestamp(), to.id),
                to_address: &to.email,
                to_name: Some(&to.name),
                locale: &to.locale,
                template,
                payload: json!({
                    "name": to.name, "ticket_id": row.id, "ticket_number": row.number, "subject": row.subject,
                    "severity": severity_label(&row.severity, &to.locale), "metric": metric.label(&to.locale),
                    "due_at": local_time(due_at, snapshot.calendar.time_zone(), &to.locale), "emergency": row.emergency,
                }),
            },
            deliver_at,
            now,
        )
        .await?;
    }
    record_event(
        &mut tx,
        row.id,
        "sla_alert",
        json!({
            "alert": timer.kind.as_str(), "metric": metric.as_str(), "due_at": due_at, "emergency": row.emergency,
            "recipients": recipients.iter().map(|r| r.id).collect::<Vec<_>>(), "deliver_at": deliver_at,
        }),
        true,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(TimerOutcome::Acted { follow_up: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    fn row() -> TimerRow {
        TimerRow {
            id: Uuid::nil(),
            number: 1,
            subject: "s".into(),
            severity: "critical".into(),
            emergency: false,
            status: "open".into(),
            requester_id: Uuid::nil(),
            assignee_id: None,
            waiting_since: None,
            first_response_at_risk_at: Some(at("2026-12-01T13:48:00Z")),
            first_response_due_at: Some(at("2026-12-01T14:00:00Z")),
            first_response_met_at: None,
            first_response_breached: false,
            resolution_at_risk_at: None,
            resolution_due_at: None,
            resolution_met_at: None,
            resolution_breached: false,
            version: 1,
        }
    }

    #[test]
    fn an_at_risk_alert_gives_way_to_the_breach() {
        let row = row();
        let policy = TimerPolicy::default();
        let risk = row.instant(TicketTimerKind::FirstResponseAtRisk, None, &policy);
        assert_eq!(risk, Some(at("2026-12-01T13:48:00Z")));
        let Some(risk) = risk else { return };
        assert!(!row.fires(TicketTimerKind::FirstResponseAtRisk, risk, at("2026-12-01T13:47:00Z")));
        assert!(row.fires(TicketTimerKind::FirstResponseAtRisk, risk, at("2026-12-01T13:50:00Z")));
        assert!(!row.fires(TicketTimerKind::FirstResponseAtRisk, risk, at("2026-12-01T14:00:00Z")));
        assert_eq!(row.instant(TicketTimerKind::ResolutionAtRisk, None, &policy), None, "paused: nothing due");
    }

    #[test]
    fn reminder_and_auto_close_follow_the_wait() {
        let mut row = row();
        let policy = TimerPolicy::default();
        assert_eq!(row.instant(TicketTimerKind::CustomerReminder, None, &policy), None);
        row.status = "waiting_customer".into();
        row.waiting_since = Some(at("2026-12-01T13:00:00Z"));
        assert_eq!(row.instant(TicketTimerKind::CustomerReminder, None, &policy), Some(at("2026-12-04T13:00:00Z")));
        assert_eq!(row.instant(TicketTimerKind::AutoClose, None, &policy), None, "no reminder yet");
        assert_eq!(
            row.instant(TicketTimerKind::AutoClose, Some(at("2026-12-04T13:01:00Z")), &policy),
            Some(at("2026-12-06T13:01:00Z"))
        );
        row.status = "closed".into();
        assert_eq!(row.instant(TicketTimerKind::CustomerReminder, None, &policy), None);
    }

    #[test]
    fn alert_payloads_speak_the_recipients_language() {
        let zone = chrono_tz::America::Sao_Paulo;
        assert_eq!(local_time(at("2026-12-04T23:00:00Z"), zone, "pt-BR"), "04/12/2026 20:00 (America/Sao_Paulo)");
        assert_eq!(local_time(at("2026-12-04T23:00:00Z"), zone, "en"), "2026-12-04 20:00 (America/Sao_Paulo)");
        assert_eq!(severity_label("critical", "pt-BR"), "crítica");
        assert_eq!(Metric::Resolution.label("en"), "resolution");
    }
}
