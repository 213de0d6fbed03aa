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
use crate::tickets::{self, Change};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use helpdesk_domain::sla::{Metric, Severity};
use helpdesk_domain::tickets::CloseReason;
use helpdesk_domain::timers::{self, AlertAudience, AlertStage, TimerKind, TimerState};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
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

/// Runs whatever timers of `ticket` are due at `now`, in one transaction that also records them
/// and stores the ticket's next instant: what a timer job does.
pub async fn run_due(
    pool: &PgPool,
    store: &SlaStore,
    ticket: Uuid,
    now: DateTime<Utc>,
) -> Result<TimerOutcome, CoreError> {
    let mut tx = pool.begin().await?;
    let snapshot = store.snapshot(&mut tx).await?;
    let change = match tickets::lock(&mut tx, None, ticket, &snapshot, now).await {
        Ok(change) => change,
        Err(CoreError::NotFound(_)) => return Ok(TimerOutcome::NothingDue { next_at: None }),
        Err(error) => return Err(error),
    };
    let outcome = run_due_in(&mut tx, &snapshot, change, now).await?;
    tx.commit().await?;
    Ok(outcome)
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
    /// The ticket whose timers failed, when one did: the whole batch was rolled back.
    pub failed: Vec<(Uuid, CoreError)>,
}

/// Runs the timers of up to `limit` due tickets in one transaction: the reconciler's way through a
/// backlog. The tickets are locked with `SKIP LOCKED`, so several workers drain the same backlog
/// side by side without waiting for each other or doing a ticket twice, and one commit covers the
/// batch, which matters because every such commit announces rows to the worker (NOTIFY) and
/// PostgreSQL serialises the commits of all transactions that notify. A ticket whose timers fail
/// rolls the batch back; it is returned in `failed`, and the caller runs the batch again without
/// it (in `skip`). A savepoint per ticket would avoid the rerun but cost every ticket two more
/// round trips and a multixact for its row locks (measured slower).
pub async fn run_due_batch(
    pool: &PgPool,
    store: &SlaStore,
    now: DateTime<Utc>,
    limit: i64,
    skip: &[Uuid],
) -> Result<Batch, CoreError> {
    let mut tx = pool.begin().await?;
    let due = tickets::lock_due(&mut tx, now, limit, skip).await?;
    let mut batch = Batch { tickets: due.len(), ..Batch::default() };
    if due.is_empty() {
        return Ok(batch);
    }
    let snapshot = store.snapshot(&mut tx).await?;
    for ticket in due {
        let id = ticket.id;
        let outcome = match tickets::change_of(ticket, &snapshot, now) {
            Ok(change) => run_due_in(&mut tx, &snapshot, change, now).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(TimerOutcome::Acted { kinds, .. }) => {
                batch.acted += 1;
                batch.timers += kinds.len();
            }
            Ok(TimerOutcome::NothingDue { .. }) => {}
            Err(error) => {
                tx.rollback().await?;
                batch.acted = 0;
                batch.timers = 0;
                batch.failed.push((id, error));
                return Ok(batch);
            }
        }
    }
    tx.commit().await?;
    Ok(batch)
}

/// Runs the due timers of a ticket the caller has locked, inside the caller's transaction.
async fn run_due_in(
    tx: &mut PgConnection,
    snapshot: &SlaSnapshot,
    mut change: Change,
    now: DateTime<Utc>,
) -> Result<TimerOutcome, CoreError> {
    let ticket = change.ticket.id;
    let policy = snapshot.policy.waiting;
    let projection = tickets::projection(&change, snapshot, now)?;
    let mut state = tickets::timer_state(&change.ticket, &projection);
    let due = state.due(&policy, now);
    if due.is_empty() {
        // Early, duplicate or stale. If the stored instant is out of date (the policy or calendar
        // changed, or the row predates this code), store the true one so the sweep stops
        // finding the ticket; it is later than now, since nothing is due.
        let next_at = state.next_at(&policy);
        if !same_instant(next_at, change.ticket.next_timer_at) {
            sqlx::query!("UPDATE tickets SET next_timer_at = $2 WHERE id = $1", ticket, next_at)
                .execute(&mut *tx)
                .await?;
        }
        return Ok(TimerOutcome::NothingDue { next_at });
    }
    let mut closed = None;
    for kind in &due {
        match kind.alert() {
            Some((metric, stage)) => alert(&mut *tx, &mut change, snapshot, &state, metric, stage, now).await?,
            None if *kind == TimerKind::CustomerReminder => remind(&mut *tx, &mut change, &state, &policy, now).await?,
            None => {
                let reminder_sent_at = state.reminder_of_wait();
                let waiting_since = state.waiting_since;
                tickets::close_change(&mut change, snapshot, None, CloseReason::AutoClosed, now)?;
                change.log(
                    None,
                    "auto_closed",
                    json!({ "reminder_sent_at": reminder_sent_at, "waiting_since": waiting_since, "reason": CloseReason::AutoClosed }),
                    false,
                );
                closed = Some(CloseReason::AutoClosed);
            }
        }
        state.record(*kind, now);
    }
    change.ticket.sla_alerts = state.alerts;
    change.ticket.reminder_sent_at = state.reminder_sent_at;
    let saved = tickets::save(&mut *tx, change, snapshot, now).await?;
    if let Some(reason) = closed {
        tickets::notify_closed(&mut *tx, &saved, reason, now).await?;
    }
    Ok(TimerOutcome::Acted { kinds: due, next_at: saved.next_timer_at })
}

/// R8: one reminder per wait to the requester, announcing when the ticket will close.
async fn remind(
    conn: &mut PgConnection,
    change: &mut Change,
    state: &TimerState,
    policy: &timers::WaitingPolicy,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let t = &change.ticket;
    let auto_close_at = now + policy.auto_close_after();
    let waiting_since = state.waiting_since.unwrap_or(now);
    let requester =
        sqlx::query!("SELECT email, name, locale FROM users WHERE id = $1 AND disabled_at IS NULL", t.requester_id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(to) = requester {
        outbox::enqueue(
            conn,
            NewEmail {
                idempotency_key: format!(
                    "ticket:{}:reminder:{}:{}",
                    t.id,
                    waiting_since.timestamp_micros(),
                    t.requester_id
                ),
                to_address: &to.email,
                to_name: Some(&to.name),
                locale: &to.locale,
                template: templates::TICKET_REMINDER,
                payload: json!({
                    "name": to.name, "ticket_id": t.id, "ticket_number": t.number, "subject": t.subject,
                    "status": t.status, "severity": t.severity,
                    "waiting_since": waiting_since, "auto_close_at": auto_close_at,
                }),
            },
            now,
        )
        .await?;
    }
    change.log(None, "reminder_sent", json!({ "waiting_since": waiting_since, "auto_close_at": auto_close_at }), false);
    Ok(())
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

/// R5/R7: an at-risk or breach alert to the assignee or every agent, held for the next opening
/// unless the ticket is an emergency.
async fn alert(
    conn: &mut PgConnection,
    change: &mut Change,
    snapshot: &SlaSnapshot,
    state: &TimerState,
    metric: Metric,
    stage: AlertStage,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let t = &change.ticket;
    let kind = TimerKind::of_alert(metric, stage);
    let timer = state.metric(metric);
    let deliver_at = timers::alert_delivery_at(t.emergency, now, &snapshot.calendar);
    let mut recipients = match timers::alert_audience(t.emergency, t.assignee_id) {
        AlertAudience::Assignee(agent) => {
            sqlx::query_as!(
                Recipient,
                "SELECT id, email, name, locale FROM users WHERE id = $1 AND disabled_at IS NULL",
                agent
            )
            .fetch_all(&mut *conn)
            .await?
        }
        AlertAudience::AllAgents => Vec::new(),
    };
    if recipients.is_empty() {
        // Nobody assigned, an emergency, or the assignee's account is gone: everyone hears of it.
        recipients = all_agents(conn).await?;
    }
    let due_at = timer.due_at.unwrap_or(now);
    let template = match stage {
        AlertStage::AtRisk => templates::SLA_AT_RISK,
        AlertStage::Breached => templates::SLA_BREACHED,
    };
    for to in &recipients {
        outbox::enqueue_at(
            conn,
            NewEmail {
                idempotency_key: format!("ticket:{}:{}:r{}:{}", t.id, kind.as_str(), timer.target_revision, to.id),
                to_address: &to.email,
                to_name: Some(&to.name),
                locale: &to.locale,
                template,
                payload: json!({
                    "name": to.name, "ticket_id": t.id, "ticket_number": t.number, "subject": t.subject,
                    "severity": severity_label(t.severity, &to.locale), "metric": metric_label(metric, &to.locale),
                    "due_at": local_time(due_at, snapshot.calendar.time_zone(), &to.locale), "emergency": t.emergency,
                }),
            },
            deliver_at,
            now,
        )
        .await?;
    }
    let recipients: Vec<Uuid> = recipients.iter().map(|r| r.id).collect();
    change.log(
        None,
        "sla_alert",
        json!({
            "alert": kind.as_str(), "metric": metric, "due_at": due_at, "target_revision": timer.target_revision,
            "emergency": t.emergency, "recipients": recipients, "deliver_at": deliver_at,
        }),
        true,
    );
    Ok(())
}

fn is_english(locale: &str) -> bool {
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

fn local_time(at: DateTime<Utc>, zone: Tz, locale: &str) -> String {
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
