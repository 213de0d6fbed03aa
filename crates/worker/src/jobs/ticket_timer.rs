//! Ticket timers (DESIGN R5–R8, §3): SLA alerts, the R8 reminder and auto-close. The rules and
//! the SQL are `helpdesk_core::ticket_timers`; this module runs them as jobs and schedules them.
//!
//! A job only says "look at this ticket's timer now". The handler locks the ticket, re-derives the
//! timer's instant at the clock's reading and acts only if it is still the job's, is due and has
//! not acted (recorded in `ticket_alerts` in the same transaction), so stale and duplicate jobs
//! are no-ops.

use apalis::prelude::Data;
use chrono::Utc;
use helpdesk_core::jobs::{Enqueue, EnqueueError, JobQueue, TicketTimer};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::ticket_timers::{self, TimerOutcome, TimerPolicy};
use helpdesk_core::{Clock, CoreError};
use sqlx::PgPool;
use std::time::Duration;

/// Everything a timer job needs; cloned into each job.
#[derive(Clone)]
pub struct TicketTimers {
    pub pool: PgPool,
    pub store: SlaStore,
    pub queue: JobQueue,
    pub clock: Clock,
    pub policy: TimerPolicy,
}

#[derive(Debug, thiserror::Error)]
#[error("ticket timer {kind} of ticket {ticket}: {source}")]
pub struct TicketTimerJobError {
    ticket: uuid::Uuid,
    kind: &'static str,
    #[source]
    source: CoreError,
}

/// How long a scheduled timer's idempotency key outlives its run time.
const SCHEDULE_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The apalis handler for the `{prefix}:ticket-timers` queue.
pub async fn run_ticket_timer(timer: TicketTimer, timers: Data<TicketTimers>) -> Result<(), TicketTimerJobError> {
    match timers.handle(timer).await {
        Ok(outcome) => {
            tracing::debug!(ticket = %timer.ticket_id, kind = timer.kind.as_str(), ?outcome, "ticket timer handled");
            Ok(())
        }
        Err(error) => {
            tracing::warn!(ticket = %timer.ticket_id, kind = timer.kind.as_str(), error = %error, "ticket timer failed; the reconciler will retry it");
            Err(error)
        }
    }
}

impl TicketTimers {
    /// Runs one timer at the clock's reading and schedules what it armed (the auto-close).
    pub async fn handle(&self, timer: TicketTimer) -> Result<TimerOutcome, TicketTimerJobError> {
        let outcome = ticket_timers::handle(&self.pool, &self.store, &self.policy, timer, self.clock.now())
            .await
            .map_err(|source| TicketTimerJobError { ticket: timer.ticket_id, kind: timer.kind.as_str(), source })?;
        if let TimerOutcome::Acted { follow_up: Some(next) } = &outcome
            && let Err(error) = self.schedule(vec![*next]).await
        {
            tracing::warn!(ticket = %next.ticket_id, error = %error, "cannot schedule the follow-up timer; the reconciler will run it");
        }
        Ok(outcome)
    }

    /// Schedules timers as delayed jobs, once per ticket, kind and instant. Redis counts on the
    /// wall clock, so the wait is converted rather than the instant (they differ only under a
    /// test's manual clock); a timer already due runs now.
    pub async fn schedule(&self, timers: Vec<TicketTimer>) -> Result<(), EnqueueError> {
        schedule(&self.queue, &self.clock, timers).await
    }
}

/// See [`TicketTimers::schedule`]. The key leaves the ticket's version out on purpose: a change
/// that does not move a timer (a note, an assignment) must not schedule it again.
pub async fn schedule(queue: &JobQueue, clock: &Clock, timers: Vec<TicketTimer>) -> Result<(), EnqueueError> {
    let now = clock.now();
    let wall = Utc::now();
    let jobs = timers
        .into_iter()
        .map(|timer| {
            let wait = (timer.due_at - now).max(chrono::TimeDelta::zero());
            let key = format!("ticket-timer:{}:{}:{}", timer.ticket_id, timer.kind.as_str(), timer.due_at.timestamp());
            Enqueue::at(timer, wall + wait).once(key, SCHEDULE_DEDUPE_WINDOW)
        })
        .collect();
    queue.push_all(jobs).await
}
