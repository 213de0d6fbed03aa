//! Ticket timers (DESIGN R5–R8, §3): SLA at-risk and breach alerts, the R8 reminder to a customer
//! who has not answered, and the auto-close after it.
//!
//! The rules are `helpdesk_domain::timers`; this module runs them against PostgreSQL. Every ticket
//! stores the instant its next timer acts (`tickets.next_timer_at`, written by every change
//! through `tickets::save`) and what has already acted (`reminder_sent_at`, `sla_alerts`). The
//! worker schedules a delayed job at each instant PostgreSQL announces and runs [`run_due`] for
//! each: lock the ticket, ask the domain what is due *now*, act, record it, save, all in one
//! transaction. A duplicate, early or stale job therefore finds nothing due and does nothing,
//! beyond correcting a stored instant that has gone out of date. Its reconciler drains whatever
//! is due that no job covered (a flushed Redis, a backlog after an outage) with
//! [`run_due_batch`], straight from the partial index on `next_timer_at`.

use crate::CoreError;
use crate::outbox::{self, NewEmail, templates};
use crate::sla_store::{SlaSnapshot, SlaStore};
use crate::tickets::notify::{self, Recipient};
use crate::tickets::store::{self, command_error};
use crate::webhook_events::ReceiversSeen;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use helpdesk_domain::sla::{Metric, Severity};
use helpdesk_domain::tickets::aggregate::timer_state;
use helpdesk_domain::tickets::{Ticket, TicketChange};
use helpdesk_domain::timers::{self, AlertAudience, AlertStage, TimerKind, TimerState};
use serde_json::json;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// What running one ticket's timers did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOutcome {
    /// These timers acted, in this order; the ticket's next timer is at `next_at`.
    Acted { kinds: Vec<TimerKind>, next_at: Option<DateTime<Utc>> },
    /// Nothing was due (a duplicate, early or stale job, or a ticket that no longer exists).
    NothingDue { next_at: Option<DateTime<Utc>> },
}

/// PostgreSQL keeps microseconds; compare instants at that precision.
fn same_instant(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> bool {
    a.map(|t| t.timestamp_micros()) == b.map(|t| t.timestamp_micros())
}

/// Runs whatever timers of `ticket` are due at `now`, in the caller's transaction, which also
/// records them and stores the ticket's next instant: what a timer job does. The decision and the
/// action (an auto-close included) are one transaction, so a ticket that changed meanwhile is
/// never acted on from a stale read.
pub async fn run_due(
    conn: &mut PgConnection,
    store: &SlaStore,
    ticket: Uuid,
    now: DateTime<Utc>,
) -> Result<TimerOutcome, CoreError> {
    let (snapshot, receivers) = store.snapshot_for_change(&mut *conn).await?;
    let change = match store::lock(&mut *conn, None, ticket, &snapshot, now).await {
        Ok(change) => change,
        Err(CoreError::NotFound(_)) => return Ok(TimerOutcome::NothingDue { next_at: None }),
        Err(error) => return Err(error),
    };
    let outcome = run_locked(conn, &snapshot, receivers, vec![change], now).await?.pop();
    Ok(outcome.unwrap_or(TimerOutcome::NothingDue { next_at: None }))
}

/// What one batch of [`run_due_batch`] did.
#[derive(Debug, Default)]
pub struct Batch {
    /// Due tickets locked by the batch; 0 when nothing is due that another worker does not hold.
    pub tickets: usize,
    /// Tickets on which some timer acted.
    pub acted: usize,
    /// Timers that acted, in all.
    pub timers: usize,
    /// The ticket that could not be read, when one could not: the batch wrote nothing, and the
    /// caller should roll back and run it again without that ticket.
    pub failed: Vec<(Uuid, CoreError)>,
}

/// Runs the timers of up to `limit` due tickets in one transaction: the reconciler's way through a
/// backlog. The tickets are locked with `SKIP LOCKED`, so several workers drain the same backlog
/// side by side without waiting for each other or doing a ticket twice; the batch's writes are a
/// handful of statements whatever its size (see [`run_locked`]); and one commit covers it, which
/// matters because every such commit announces rows to the worker (NOTIFY) and PostgreSQL
/// serialises the commits of all transactions that notify. A ticket whose stored clock cannot be
/// read fails the batch, which is rolled back; it is returned in `failed` for the caller to run
/// the batch again without it (in `skip`).
pub async fn run_due_batch(
    tx: &mut PgConnection,
    store: &SlaStore,
    now: DateTime<Utc>,
    limit: i64,
    skip: &[Uuid],
) -> Result<Batch, CoreError> {
    let due = store::lock_due(&mut *tx, now, limit, skip).await?;
    let mut batch = Batch { tickets: due.len(), ..Batch::default() };
    if due.is_empty() {
        return Ok(batch);
    }
    let (snapshot, receivers) = store.snapshot_for_change(&mut *tx).await?;
    let mut changes = Vec::with_capacity(due.len());
    for ticket in due {
        let id = ticket.id;
        match TicketChange::load(ticket, &snapshot, now) {
            Ok(change) => changes.push(change),
            Err(error) => {
                batch.failed.push((id, command_error(id, error)));
                return Ok(batch);
            }
        }
    }
    for outcome in run_locked(tx, &snapshot, receivers, changes, now).await? {
        if let TimerOutcome::Acted { kinds, .. } = outcome {
            batch.acted += 1;
            batch.timers += kinds.len();
        }
    }
    Ok(batch)
}

/// A ticket with timers due, and what acting on them writes.
struct Acting {
    change: TicketChange,
    decided: Decided,
}

/// What the timers of one ticket decided, beyond the ticket's own change.
struct Decided {
    kinds: Vec<TimerKind>,
    /// The state after acting (alerts and reminder recorded).
    state: TimerState,
    alerts: Vec<Alert>,
}

/// One SLA alert to send: to whom, delivered when.
struct Alert {
    kind: TimerKind,
    to: Vec<Uuid>,
    deliver_at: DateTime<Utc>,
}

/// Runs the due timers of tickets the caller has locked, inside the caller's transaction: decides
/// everything in memory, then writes it all in a few statements (recipients read once, the
/// tickets saved together, every e-mail queued in one INSERT, stale instants corrected in one
/// UPDATE). Returns one outcome per ticket, in order.
async fn run_locked(
    tx: &mut PgConnection,
    snapshot: &SlaSnapshot,
    receivers: ReceiversSeen,
    changes: Vec<TicketChange>,
    now: DateTime<Utc>,
) -> Result<Vec<TimerOutcome>, CoreError> {
    let policy = snapshot.policy.waiting;
    // One slot per ticket: filled now when nothing is due, after saving when something acted.
    let mut outcomes: Vec<Option<TimerOutcome>> = Vec::with_capacity(changes.len());
    let mut acting = Vec::new();
    let mut corrections: (Vec<Uuid>, Vec<Option<DateTime<Utc>>>) = (Vec::new(), Vec::new());
    for change in changes {
        let projection = change.projection(snapshot, now).map_err(|e| command_error(change.ticket.id, e))?;
        let state = timer_state(&change.ticket, &projection);
        let kinds = state.due(&policy, now);
        if kinds.is_empty() {
            // Early, duplicate or stale. If the stored instant is out of date (the policy or
            // calendar changed, or the row predates this code), store the true one so the sweep
            // stops finding the ticket; it is later than now, since nothing is due.
            let next_at = state.next_at(&policy);
            if !same_instant(next_at, change.ticket.next_timer_at) {
                corrections.0.push(change.ticket.id);
                corrections.1.push(next_at);
            }
            outcomes.push(Some(TimerOutcome::NothingDue { next_at }));
            continue;
        }
        outcomes.push(None);
        acting.push(Acting { change, decided: Decided { kinds, state, alerts: Vec::new() } });
    }
    if !corrections.0.is_empty() {
        sqlx::query!(
            "UPDATE tickets t SET next_timer_at = v.at FROM UNNEST($1::uuid[], $2::timestamptz[]) AS v (id, at) WHERE t.id = v.id",
            &corrections.0,
            &corrections.1 as &[Option<DateTime<Utc>>]
        )
        .execute(&mut *tx)
        .await?;
    }
    if acting.is_empty() {
        return Ok(outcomes.into_iter().flatten().collect());
    }

    // Who hears of what, read once for the batch.
    let mut wanted: Vec<Uuid> = Vec::new();
    let mut everyone = false;
    for a in &acting {
        let t = &a.change.ticket;
        wanted.extend(t.requester_id);
        if a.decided.kinds.iter().any(|k| k.alert().is_some()) {
            match timers::alert_audience(t.emergency, t.assignee_id) {
                AlertAudience::Assignee(agent) => wanted.push(agent),
                AlertAudience::AllAgents => everyone = true,
            }
        }
    }
    let directory: HashMap<Uuid, Recipient> =
        notify::recipients(&mut *tx, &wanted).await?.into_iter().map(|r| (r.id, r)).collect();
    let mut agents = if everyone { all_agents(&mut *tx).await? } else { Vec::new() };

    // Act, in memory.
    for a in acting.iter_mut() {
        for kind in a.decided.kinds.clone() {
            match kind.alert() {
                Some((metric, _)) => {
                    let t = &a.change.ticket;
                    let mut to: Vec<Uuid> = match timers::alert_audience(t.emergency, t.assignee_id) {
                        AlertAudience::Assignee(agent) if directory.contains_key(&agent) => vec![agent],
                        _ => Vec::new(),
                    };
                    if to.is_empty() {
                        // Nobody assigned, an emergency, or the assignee's account is gone.
                        if agents.is_empty() {
                            agents = all_agents(&mut *tx).await?;
                        }
                        to = agents.iter().map(|r| r.id).collect();
                    }
                    let deliver_at = timers::alert_delivery_at(t.emergency, now, &snapshot.calendar);
                    let timer = a.decided.state.metric(metric);
                    a.change.log(
                        None,
                        "sla_alert",
                        json!({
                            "alert": kind.as_str(), "metric": metric, "due_at": timer.due_at.unwrap_or(now),
                            "target_revision": timer.target_revision, "emergency": t.emergency,
                            "recipients": to, "deliver_at": deliver_at,
                        }),
                        true,
                    );
                    a.decided.alerts.push(Alert { kind, to, deliver_at });
                }
                None if kind == TimerKind::CustomerReminder => {
                    let waiting_since = a.decided.state.waiting_since.unwrap_or(now);
                    a.change.send_reminder(waiting_since, now + policy.auto_close_after(), now);
                }
                None => {
                    let reminder_sent_at = a.decided.state.reminder_of_wait();
                    let waiting_since = a.decided.state.waiting_since;
                    let id = a.change.ticket.id;
                    a.change
                        .auto_close(snapshot, reminder_sent_at, waiting_since, now)
                        .map_err(|e| command_error(id, e))?;
                }
            }
            a.decided.state.record(kind, now);
        }
        a.change.ticket.sla_alerts = a.decided.state.alerts;
        a.change.ticket.reminder_sent_at = a.decided.state.reminder_sent_at;
    }

    // Write: the tickets (with their timelines), then their e-mails.
    let (changes, decided): (Vec<TicketChange>, Vec<Decided>) =
        acting.into_iter().map(|a| (a.change, a.decided)).unzip();
    let timelines: Vec<_> = changes.iter().map(|c| c.timeline.clone()).collect();
    let saved = store::save_all(&mut *tx, changes, snapshot, now).await?;
    let agent_book: HashMap<Uuid, &Recipient> = agents.iter().map(|r| (r.id, r)).collect();
    let mut emails = Vec::new();
    for (change, decided) in saved.iter().zip(&decided) {
        let ticket = &change.ticket;
        // The reminder and the auto-close notice go to the requester, as the commands said.
        for n in &change.notifications {
            let Some(to) = notify::audience_of(ticket, n.to).and_then(|id| directory.get(&id)) else { continue };
            emails.push((notify::notice_email(ticket, to, &n.notice), now));
        }
        for alert in &decided.alerts {
            for id in &alert.to {
                let Some(to) = directory.get(id).or_else(|| agent_book.get(id).copied()) else { continue };
                emails.push((alert_email(ticket, to, snapshot, &decided.state, alert.kind), alert.deliver_at));
            }
        }
    }
    outbox::enqueue_all(&mut *tx, emails, now).await?;
    // SLA at risk / breached and R8's auto-close, for webhooks (issue 13).
    for (change, timeline) in saved.iter().zip(&timelines) {
        crate::webhook_events::ticket_change(&mut *tx, change, timeline, None, receivers, now).await?;
    }
    let mut saved = saved.into_iter().zip(decided);
    Ok(outcomes
        .into_iter()
        .filter_map(|outcome| match outcome {
            Some(outcome) => Some(outcome),
            None => saved.next().map(|(change, decided)| TimerOutcome::Acted {
                kinds: decided.kinds,
                next_at: change.ticket.next_timer_at,
            }),
        })
        .collect())
}

/// R5/R7: an at-risk or breach alert to one agent, once per target revision.
fn alert_email<'a>(
    ticket: &Ticket,
    to: &'a Recipient,
    snapshot: &SlaSnapshot,
    state: &TimerState,
    kind: TimerKind,
) -> NewEmail<'a> {
    let (metric, stage) = kind.alert().unwrap_or((Metric::FirstResponse, AlertStage::Breached));
    let timer = state.metric(metric);
    let due_at = timer.due_at.unwrap_or(ticket.updated_at);
    NewEmail {
        idempotency_key: format!("ticket:{}:{}:r{}:{}", ticket.id, kind.as_str(), timer.target_revision, to.id),
        to_address: &to.email,
        to_name: Some(&to.name),
        locale: &to.locale,
        template: match stage {
            AlertStage::AtRisk => templates::SLA_AT_RISK,
            AlertStage::Breached => templates::SLA_BREACHED,
        },
        payload: json!({
            "name": to.name, "ticket_id": ticket.id, "ticket_number": ticket.number, "subject": ticket.subject,
            "severity": severity_label(ticket.severity, &to.locale), "metric": metric_label(metric, &to.locale),
            "due_at": local_time(due_at, snapshot.calendar.time_zone(), &to.locale), "emergency": ticket.emergency,
        }),
    }
}

/// Every active agent (the admins when the desk has no agent): the on-call list, and who hears of
/// an unassigned ticket.
pub(crate) async fn all_agents(conn: &mut PgConnection) -> Result<Vec<Recipient>, sqlx::Error> {
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

pub(crate) fn is_english(locale: &str) -> bool {
    locale.eq_ignore_ascii_case("en") || locale.to_ascii_lowercase().starts_with("en-")
}

fn severity_label(severity: Severity, locale: &str) -> &'static str {
    match (severity, is_english(locale)) {
        (severity, true) => severity.as_str(),
        (Severity::Critical, false) => "crítica",
        (Severity::High, false) => "alta",
        (Severity::Normal, false) => "normal",
        (Severity::Low, false) => "baixa",
    }
}

fn metric_label(metric: Metric, locale: &str) -> &'static str {
    match (metric, is_english(locale)) {
        (Metric::FirstResponse, true) => "first response",
        (Metric::FirstResponse, false) => "primeira resposta",
        (Metric::Resolution, true) => "resolution",
        (Metric::Resolution, false) => "resolução",
    }
}

pub(crate) fn local_time(at: DateTime<Utc>, zone: Tz, locale: &str) -> String {
    let local = at.with_timezone(&zone);
    let format = if is_english(locale) { "%Y-%m-%d %H:%M" } else { "%d/%m/%Y %H:%M" };
    format!("{} ({})", local.format(format), zone.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    #[test]
    fn alert_payloads_speak_the_recipients_language() {
        let zone = chrono_tz::America::Sao_Paulo;
        assert_eq!(local_time(at("2026-12-04T23:00:00Z"), zone, "pt-BR"), "04/12/2026 20:00 (America/Sao_Paulo)");
        assert_eq!(local_time(at("2026-12-04T23:00:00Z"), zone, "en"), "2026-12-04 20:00 (America/Sao_Paulo)");
        assert_eq!(severity_label(Severity::Critical, "pt-BR"), "crítica");
        assert_eq!(severity_label(Severity::Critical, "en-GB"), "critical");
        assert_eq!(metric_label(Metric::Resolution, "en"), "resolution");
    }

    #[test]
    fn instants_compare_at_the_databases_precision() {
        let a = at("2026-12-01T13:00:00.123456789Z");
        assert!(same_instant(Some(a), Some(at("2026-12-01T13:00:00.123456Z"))));
        assert!(!same_instant(Some(a), None));
        assert!(same_instant(None, None));
    }
}
