//! Ticket timers (DESIGN R5–R8, §3): SLA alerts, the R8 reminder and auto-close. The rules are
//! `helpdesk_domain::timers`, the SQL `helpdesk_core::ticket_timers`; this module runs them as jobs
//! and schedules them.
//!
//! A job only says "look at this ticket's timers now". The handler locks the ticket, asks what is
//! due at the clock's reading, acts and records it in the same transaction, so an early, late,
//! duplicate or stale job is harmless.

use apalis::prelude::{Data, TaskId};
use chrono::Utc;
use helpdesk_core::jobs::{Enqueue, EnqueueError, JobQueue, TicketTimer};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::ticket_timers::{self, TimerOutcome};
use helpdesk_core::{Clock, CoreError};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{Metrics, increment};

/// Everything a timer job needs; cloned into each job.
#[derive(Clone)]
pub struct TicketTimers {
    pub pool: PgPool,
    pub store: SlaStore,
    pub queue: JobQueue,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
#[error("timers of ticket {ticket}: {source}")]
pub struct TicketTimerJobError {
    ticket: uuid::Uuid,
    #[source]
    source: CoreError,
}

/// How long a scheduled timer's idempotency key outlives its run time.
const SCHEDULE_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The apalis handler for the `{prefix}:ticket-timers` queue. Logs every job's outcome with the
/// job's id.
pub async fn run_ticket_timer(
    timer: TicketTimer,
    task: TaskId,
    timers: Data<TicketTimers>,
) -> Result<(), TicketTimerJobError> {
    let metrics = &timers.metrics;
    match timers.handle(timer).await {
        Ok(TimerOutcome::Acted { kinds, next_at }) => {
            increment(&metrics.timer_jobs.processed);
            metrics.timers_acted.fetch_add(kinds.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            tracing::info!(job = %task, ticket = %timer.ticket_id, timers = ?kinds, next_at = ?next_at, "ticket timers acted");
            Ok(())
        }
        Ok(TimerOutcome::NothingDue { next_at }) => {
            increment(&metrics.timer_jobs.processed);
            increment(&metrics.timer_jobs_idle);
            tracing::info!(job = %task, ticket = %timer.ticket_id, next_at = ?next_at, "ticket timers: nothing due");
            Ok(())
        }
        Err(error) => {
            increment(&metrics.timer_jobs.failed);
            tracing::warn!(job = %task, ticket = %timer.ticket_id, error = %error, "ticket timer job failed; the reconciler will run it again");
            Err(error)
        }
    }
}

impl TicketTimers {
    /// Runs the ticket's due timers at the clock's reading.
    pub async fn handle(&self, timer: TicketTimer) -> Result<TimerOutcome, TicketTimerJobError> {
        let failed = |source| TicketTimerJobError { ticket: timer.ticket_id, source };
        let mut tx = self.pool.begin().await.map_err(|e| failed(e.into()))?;
        let outcome =
            ticket_timers::run_due(&mut tx, &self.store, timer.ticket_id, self.clock.now()).await.map_err(failed)?;
        tx.commit().await.map_err(|e| failed(e.into()))?;
        Ok(outcome)
    }
}

/// Schedules timer jobs as delayed jobs, once per ticket and instant. Redis counts on the wall
/// clock, so the wait is converted rather than the instant (they differ only under a test's
/// manual clock); a timer already due runs now.
pub async fn schedule(queue: &JobQueue, clock: &Clock, timers: Vec<TicketTimer>) -> Result<(), EnqueueError> {
    let now = clock.now();
    let wall = Utc::now();
    let jobs = timers
        .into_iter()
        .map(|timer| {
            let wait = (timer.due_at - now).max(chrono::TimeDelta::zero());
            let key = timer.idempotency_key();
            Enqueue::at(timer, wall + wait).once(key, SCHEDULE_DEDUPE_WINDOW)
        })
        .collect();
    queue.push_all(jobs).await
}
