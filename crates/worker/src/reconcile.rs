//! The reconciler (DESIGN §3.3): the slow path that makes a lost job cost a minute, not an
//! action. On start-up and then every interval it finds due outbox rows (never attempted, backing
//! off past their retry time, or leased by an attempt that died) and pushes delivery jobs for
//! them. It runs in every replica; an idempotency key per due attempt keeps replicas, and later
//! rounds, from queueing the same work twice while a job for it is still queued, and the
//! handler's claim makes any duplicate a no-op.

use apalis::prelude::Data;
use apalis_core::backend::Vacuum;
use apalis_cron::{Schedule, Tick};
use chrono::Utc;
use helpdesk_core::Clock;
use helpdesk_core::jobs::{DeliverEmail, Enqueue, EnqueueError, JobQueue, TicketTimer};
use helpdesk_core::outbox;
use helpdesk_core::ticket_timers::{self, TimerPolicy};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::{Metrics, increment};

/// Fires once right after start-up, then at every multiple of the interval (wall clock), so all
/// replicas fire in the same rounds and their idempotency keys coincide.
#[derive(Debug, Clone)]
pub struct EveryInterval {
    interval_secs: u64,
    fired_at_start: bool,
}

impl EveryInterval {
    pub fn new(interval: Duration) -> Self {
        Self { interval_secs: interval.as_secs().max(1), fired_at_start: false }
    }

    fn next_after(&mut self, now_secs: u64) -> u64 {
        if !self.fired_at_start {
            self.fired_at_start = true;
            // apalis-cron rejects a tick in the past, so "now" means the next whole second.
            return now_secs + 1;
        }
        (now_secs / self.interval_secs + 1) * self.interval_secs
    }
}

impl Schedule<Utc> for EveryInterval {
    fn next_tick(&mut self, _: &Utc) -> Option<Tick<Utc>> {
        let now_secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Some(Tick::new(self.next_after(now_secs)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot list due outbox rows or ticket timers: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

#[derive(Clone)]
pub struct Reconciler {
    pub pool: PgPool,
    pub queue: JobQueue,
    pub clock: Clock,
    pub interval: Duration,
    pub batch: i64,
    pub metrics: Arc<Metrics>,
    /// R8's durations, for the ticket-timer sweep.
    pub timer_policy: TimerPolicy,
}

/// The apalis-cron handler.
pub async fn reconcile(_tick: Tick<Utc>, reconciler: Data<Reconciler>) -> Result<(), ReconcileError> {
    let result = reconciler.run().await;
    let counters = &reconciler.metrics.reconcile_jobs;
    match &result {
        Ok(_) => increment(&counters.processed),
        Err(error) => {
            increment(&counters.failed);
            tracing::warn!(error = %error, "reconciliation failed; the next round will try again");
        }
    }
    result.map(|_| ())
}

impl Reconciler {
    /// Pushes a delivery job for each due row; returns how many were pushed.
    pub async fn run(&self) -> Result<usize, ReconcileError> {
        let due = {
            let mut conn = self.pool.acquire().await?;
            outbox::due_for_delivery(&mut conn, self.clock.now(), self.batch).await?
        };
        // One job per due *attempt* (the row's due instant), not per round: replicas dedupe on the
        // same key, and a consumer that falls behind is not buried under a copy of every due
        // e-mail each round. A job lost with Redis loses its key too and is queued again next
        // round; a claim or a retry moves the due instant, which names a new attempt.
        let window = self.dedupe_window();
        let jobs: Vec<_> = due
            .iter()
            .map(|row| {
                let key = format!("outbox:{}:due:{}", row.id, row.next_attempt_at.timestamp_micros());
                Enqueue::now(DeliverEmail { outbox_id: row.id }).once(key, window)
            })
            .collect();
        let pushed = jobs.len();
        self.queue.push_all(jobs).await?;
        self.metrics.reconciler_enqueued.fetch_add(pushed as u64, std::sync::atomic::Ordering::Relaxed);
        if pushed > 0 {
            tracing::info!(count = pushed, "reconciler queued due e-mails");
        }
        let timers = self.run_ticket_timers().await?;
        if timers > 0 {
            tracing::info!(count = timers, "reconciler queued due ticket timers");
        }
        self.vacuum().await;
        Ok(pushed)
    }

    /// How long a queued job's key keeps the reconciler from queueing the same work again: long
    /// enough for a busy queue to drain, short enough that a job lost without its key (a worker
    /// killed mid-job before apalis re-queues it) is retried within minutes.
    fn dedupe_window(&self) -> Duration {
        self.interval.max(Duration::from_secs(1)) * 15
    }

    /// Pushes a job for each due ticket timer that has not acted (DESIGN §3.3); returns how many.
    /// Keyed by the timer's own identity (ticket, kind, instant), like the e-mails' attempts.
    pub async fn run_ticket_timers(&self) -> Result<usize, ReconcileError> {
        let due = {
            let mut conn = self.pool.acquire().await?;
            ticket_timers::due_timers(&mut conn, self.clock.now(), &self.timer_policy, self.batch).await?
        };
        let jobs: Vec<_> = due
            .into_iter()
            .map(|timer| {
                let key = format!("reconcile:{}", timer.idempotency_key());
                Enqueue::now(timer).once(key, self.dedupe_window())
            })
            .collect();
        let pushed = jobs.len();
        self.queue.push_all(jobs).await?;
        Ok(pushed)
    }

    /// Finished jobs stay in Redis until vacuumed; without this the queue's hashes only grow.
    async fn vacuum(&self) {
        let mut storage = self.queue.storage::<DeliverEmail>();
        match storage.vacuum().await {
            Ok(removed) if removed > 0 => tracing::debug!(removed, "vacuumed finished e-mail jobs"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "cannot vacuum finished e-mail jobs"),
        }
        let mut timers = self.queue.storage::<TicketTimer>();
        match timers.vacuum().await {
            Ok(removed) if removed > 0 => tracing::debug!(removed, "vacuumed finished ticket-timer jobs"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "cannot vacuum finished ticket-timer jobs"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_at_start_then_on_interval_boundaries() {
        let mut schedule = EveryInterval::new(Duration::from_secs(60));
        assert_eq!(schedule.next_after(1_000_030), 1_000_031);
        assert_eq!(schedule.next_after(1_000_031), 1_000_080);
        assert_eq!(schedule.next_after(1_000_080), 1_000_140);
        let mut sub_second = EveryInterval::new(Duration::from_millis(200));
        assert_eq!(sub_second.next_after(10), 11);
        assert_eq!(sub_second.next_after(11), 12);
    }
}
