//! The reconciler (DESIGN §3.3): the slow path that makes a lost job cost a minute, not an
//! action. On start-up and then every interval it finds due outbox rows (never attempted, backing
//! off past their retry time, or leased by an attempt that died) and tickets whose next timer is
//! due, and pushes jobs for them, page after page until none is left (a backlog of 100,000 is
//! queued in one round). It runs in every replica; an idempotency key per due attempt keeps
//! replicas, and later rounds, from queueing the same work twice while a job for it is still
//! queued, and the handlers' claims and row locks make any duplicate a no-op.

use apalis::prelude::Data;
use apalis_core::backend::Vacuum;
use apalis_cron::{Schedule, Tick};
use chrono::{DateTime, Utc};
use helpdesk_core::Clock;
use helpdesk_core::jobs::{DeliverEmail, Enqueue, EnqueueError, Job, JobQueue, TicketTimer};
use helpdesk_core::outbox::{self, DueEmail};
use helpdesk_core::ticket_timers::{self, DueTicket};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::sync::atomic::Ordering;
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
    /// Rows read, and jobs pushed, per page.
    pub batch: i64,
    /// Most jobs of one kind a round pushes; the rest wait for the next round.
    pub max_per_round: usize,
    pub metrics: Arc<Metrics>,
}

/// A kind of due row the reconciler sweeps, and the job it queues for one.
trait Due: Copy + Send + Sync + 'static {
    type Job: Job;

    /// Due rows at `now`, oldest first, after `after`.
    fn page(
        conn: &mut PgConnection,
        now: DateTime<Utc>,
        after: Option<Self>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Self>, sqlx::Error>> + Send;

    /// The job for this row, deduplicated for `window`.
    fn job(&self, window: Duration) -> Enqueue<Self::Job>;
}

/// One job per due *attempt* (the row's due instant), not per round: replicas dedupe on the same
/// key, and a consumer that falls behind is not buried under a copy of every due e-mail each
/// round. A job lost with Redis loses its key too and is queued again next round; a claim or a
/// retry moves the due instant, which names a new attempt.
impl Due for DueEmail {
    type Job = DeliverEmail;

    async fn page(
        conn: &mut PgConnection,
        now: DateTime<Utc>,
        after: Option<Self>,
        limit: i64,
    ) -> Result<Vec<Self>, sqlx::Error> {
        outbox::due_for_delivery(conn, now, after, limit).await
    }

    fn job(&self, window: Duration) -> Enqueue<DeliverEmail> {
        let key = format!("outbox:{}:due:{}", self.id, self.next_attempt_at.timestamp_micros());
        Enqueue::now(DeliverEmail { outbox_id: self.id }).once(key, window)
    }
}

/// Keyed by ticket and instant, like the e-mails' attempts.
impl Due for DueTicket {
    type Job = TicketTimer;

    async fn page(
        conn: &mut PgConnection,
        now: DateTime<Utc>,
        after: Option<Self>,
        limit: i64,
    ) -> Result<Vec<Self>, sqlx::Error> {
        ticket_timers::due_tickets(conn, now, after, limit).await
    }

    fn job(&self, window: Duration) -> Enqueue<TicketTimer> {
        let timer = TicketTimer { ticket_id: self.id, due_at: self.next_timer_at };
        Enqueue::now(timer).once(format!("reconcile:{}", timer.idempotency_key()), window)
    }
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

/// What one round queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub emails: usize,
    pub timers: usize,
}

impl Reconciler {
    /// One round: queues a job for every due e-mail and every ticket whose timer is due (up to
    /// `max_per_round` of each), then vacuums finished jobs.
    pub async fn run(&self) -> Result<Round, ReconcileError> {
        let emails = self.run_outbox().await?;
        if emails > 0 {
            tracing::info!(count = emails, "reconciler queued due e-mails");
        }
        let timers = self.run_ticket_timers().await?;
        if timers > 0 {
            tracing::info!(count = timers, "reconciler queued due ticket timers");
        }
        self.vacuum().await;
        Ok(Round { emails, timers })
    }

    /// Pushes a delivery job for each due outbox row; returns how many.
    pub async fn run_outbox(&self) -> Result<usize, ReconcileError> {
        let pushed = self.sweep::<DueEmail>().await?;
        self.metrics.reconciler_enqueued.fetch_add(pushed as u64, Ordering::Relaxed);
        Ok(pushed)
    }

    /// Pushes a job for each ticket whose next timer is due (DESIGN §3.3); returns how many.
    pub async fn run_ticket_timers(&self) -> Result<usize, ReconcileError> {
        let pushed = self.sweep::<DueTicket>().await?;
        self.metrics.reconciler_timers_enqueued.fetch_add(pushed as u64, Ordering::Relaxed);
        Ok(pushed)
    }

    /// Reads due rows a page at a time (each page keyed after the last row of the one before) and
    /// pushes a job for each, until a page comes back short or `max_per_round` jobs are pushed.
    async fn sweep<Row: Due>(&self) -> Result<usize, ReconcileError> {
        let now = self.clock.now();
        let page_len = usize::try_from(self.batch.max(1)).unwrap_or(usize::MAX);
        let mut pushed = 0;
        let mut after = None;
        while pushed < self.max_per_round {
            let rows = {
                let mut conn = self.pool.acquire().await?;
                Row::page(&mut conn, now, after, self.batch).await?
            };
            pushed += rows.len();
            self.queue.push_all(rows.iter().map(|row| row.job(self.dedupe_window())).collect()).await?;
            if rows.len() < page_len {
                break;
            }
            after = rows.last().copied();
        }
        Ok(pushed)
    }

    /// How long a queued job's key keeps the reconciler from queueing the same work again: long
    /// enough for a busy queue to drain, short enough that a job lost without its key (a worker
    /// killed mid-job before apalis re-queues it, a job that failed) is run again within minutes.
    fn dedupe_window(&self) -> Duration {
        self.interval.max(Duration::from_secs(1)) * 15
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
