//! The reconciler (DESIGN §3.3): the slow path that makes a lost job cost a minute, not an
//! action. On start-up and then every interval it finds due outbox rows (never attempted, backing
//! off past their retry time, or leased by an attempt that died) and tickets whose next timer is
//! due, and pushes jobs for them, page after page until none is left (a backlog of 100,000 is
//! queued in one round). It runs in every replica; an idempotency key per due attempt keeps
//! replicas, and later rounds, from queueing the same work twice while a job for it is still
//! queued, and the handlers' claims and row locks make any duplicate a no-op.

use apalis::prelude::Data;
use apalis_cron::{Schedule, Tick};
use chrono::Utc;
use helpdesk_core::Clock;
use helpdesk_core::jobs::{DeliverEmail, EMAIL_BATCH, Enqueue, EnqueueError, JobQueue};
use helpdesk_core::meeting_reminders;
use helpdesk_core::outbox;
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::ticket_timers;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

use crate::metrics::{Metrics, increment};
use crate::polling::Nudge;

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
    #[error("cannot list due outbox rows: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot run due ticket timers: {0}")]
    Timers(#[from] helpdesk_core::CoreError),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

/// Lets one round run at a time. apalis-cron fires on schedule whatever the previous round is
/// doing (it computes the next tick as one fires and polls again at once, so a long round never
/// leaves it a tick in the past); a tick that comes while a round still runs is skipped rather
/// than started beside it, so a slow round (a large backlog) is not made slower by copies of
/// itself. Tested in `tests/worker/schedule.rs`.
#[derive(Debug, Clone, Default)]
pub struct OneAtATime(Arc<std::sync::atomic::AtomicBool>);

/// Held while a round runs; dropping it lets the next one start.
pub struct RoundGuard(Arc<std::sync::atomic::AtomicBool>);

impl OneAtATime {
    /// `None` while another round runs.
    pub fn try_start(&self) -> Option<RoundGuard> {
        (!self.0.swap(true, Ordering::AcqRel)).then(|| RoundGuard(self.0.clone()))
    }
}

impl Drop for RoundGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[derive(Clone)]
pub struct Reconciler {
    pub pool: PgPool,
    pub queue: JobQueue,
    pub clock: Clock,
    pub interval: Duration,
    /// Rows read, and jobs pushed, per page.
    pub batch: i64,
    /// Most e-mail jobs a round pushes; the rest wait for the next round.
    pub max_per_round: usize,
    /// Due tickets drained at once, each batch in a transaction of its own.
    pub drain_concurrency: usize,
    /// Tickets per drain transaction.
    pub drain_batch: i64,
    pub store: SlaStore,
    pub metrics: Arc<Metrics>,
    /// Wakes this process's e-mail consumer after a page is queued.
    pub email_nudge: Nudge,
    /// Shared by the clones the cron worker hands each round.
    pub rounds: OneAtATime,
}

/// The apalis-cron handler.
pub async fn reconcile(_tick: Tick<Utc>, reconciler: Data<Reconciler>) -> Result<(), ReconcileError> {
    let Some(_round) = reconciler.rounds.try_start() else {
        tracing::info!("the previous reconciler round is still running; skipping this tick");
        return Ok(());
    };
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
    /// Meeting reminders written.
    pub reminders: usize,
}

impl Reconciler {
    /// One round: queues a job for every due e-mail and every ticket whose timer is due (up to
    /// `max_per_round` of each). (Vacuuming finished jobs is the queue registry's housekeeping.)
    pub async fn run(&self) -> Result<Round, ReconcileError> {
        let emails = self.run_outbox().await?;
        if emails > 0 {
            tracing::info!(count = emails, "reconciler queued due e-mails");
        }
        let moved = self.run_reprojection().await?;
        if moved > 0 {
            tracing::info!(count = moved, "reconciler moved tickets onto the calendar and policy in force");
        }
        let timers = self.run_ticket_timers().await?;
        if timers > 0 {
            tracing::info!(count = timers, "reconciler ran due ticket timers");
        }
        let reminders = self.run_meeting_reminders().await?;
        if reminders > 0 {
            tracing::info!(count = reminders, "reconciler wrote due meeting reminders");
        }
        Ok(Round { emails, timers, reminders })
    }

    /// Pushes a delivery job for each due outbox row, reading them a page at a time (each page
    /// keyed after the last row of the one before) until a page comes back short or
    /// `max_per_round` jobs are pushed; returns how many.
    ///
    /// One job per [`EMAIL_BATCH`] due rows, keyed by their due *attempts* (each row's due
    /// instant), not by the round: replicas reading the same page dedupe on the same key, and a
    /// consumer that falls behind is not buried under a copy of every due e-mail each round. A job
    /// lost with Redis loses its key too and is queued again next round; a claim or a retry moves
    /// the due instant, which names a new attempt. A row that a later round finds in another
    /// page's company is queued again, and its claim makes that copy a no-op.
    pub async fn run_outbox(&self) -> Result<usize, ReconcileError> {
        self.queue_outbox(OutboxRows::AllDue).await
    }

    /// The outbox sweep between rounds: like [`Self::run_outbox`] for rows attempted before only
    /// (expired claims, retries whose job was lost; see `outbox::due_retries`).
    pub async fn run_outbox_retries(&self) -> Result<usize, ReconcileError> {
        self.queue_outbox(OutboxRows::Retries).await
    }

    async fn queue_outbox(&self, which: OutboxRows) -> Result<usize, ReconcileError> {
        let now = self.clock.now();
        let page_len = usize::try_from(self.batch.max(1)).unwrap_or(usize::MAX);
        let mut pushed = 0;
        let mut after = None;
        while pushed < self.max_per_round {
            let rows = {
                let mut conn = self.pool.acquire().await?;
                match which {
                    OutboxRows::AllDue => outbox::due_for_delivery(&mut conn, now, after, self.batch).await?,
                    OutboxRows::Retries => outbox::due_retries(&mut conn, now, after, self.batch).await?,
                }
            };
            let jobs = rows
                .chunks(EMAIL_BATCH)
                .map(|chunk| {
                    let (job, key) = DeliverEmail::for_due(chunk);
                    Enqueue::now(job).once(key, self.dedupe_window())
                })
                .collect();
            pushed += rows.len();
            self.queue.push_all(jobs).await?;
            if !rows.is_empty() {
                self.email_nudge.signal();
            }
            if rows.len() < page_len {
                break;
            }
            after = rows.last().copied();
        }
        self.metrics.reconciler_enqueued.fetch_add(pushed as u64, Ordering::Relaxed);
        Ok(pushed)
    }

    /// Runs the timers of every ticket that is due (DESIGN §3.3), in batches straight from
    /// PostgreSQL, `drain_concurrency` at a time, until none is left or the round has used 90 % of
    /// its interval (the next round carries on); returns how many timers acted.
    ///
    /// Draining rather than queueing a job per ticket: a backlog (100,000 reminders after an
    /// outage) then costs one transaction per batch instead of one per ticket, and nothing is left
    /// in Redis to duplicate or lose. Replicas drain side by side (`SKIP LOCKED`). A ticket whose
    /// timers fail is skipped for the rest of the round and retried in the next one.
    pub async fn run_ticket_timers(&self) -> Result<usize, ReconcileError> {
        let deadline = tokio::time::Instant::now() + self.interval.mul_f64(0.9).max(Duration::from_millis(500));
        let skip = Arc::new(std::sync::Mutex::new(Vec::<Uuid>::new()));
        let drains = (0..self.drain_concurrency.max(1)).map(|_| self.drain(deadline, skip.clone()));
        let mut acted = 0;
        for result in futures_util::future::join_all(drains).await {
            acted += result?;
        }
        self.metrics.reconciler_timers_acted.fetch_add(acted as u64, Ordering::Relaxed);
        Ok(acted)
    }

    /// Writes every due meeting reminder (R13), a batch per transaction, straight from the
    /// partial index on `meetings.next_reminder_at` (DESIGN §3: no job involved, so nothing in
    /// Redis to lose; replicas share the backlog through `SKIP LOCKED`). Reminders are few (two
    /// per meeting), so the per-minute round is their only path: at most one interval late.
    pub async fn run_meeting_reminders(&self) -> Result<usize, ReconcileError> {
        let mut sent = 0;
        loop {
            let mut tx = self.pool.begin().await?;
            let batch =
                meeting_reminders::run_due_batch(&mut tx, &self.store, self.clock.now(), self.drain_batch).await?;
            tx.commit().await?;
            sent += batch.sent;
            if i64::try_from(batch.meetings).unwrap_or(i64::MAX) < self.drain_batch.max(1) {
                return Ok(sent);
            }
        }
    }

    async fn drain(
        &self,
        deadline: tokio::time::Instant,
        skip: Arc<std::sync::Mutex<Vec<Uuid>>>,
    ) -> Result<usize, ReconcileError> {
        let mut acted = 0;
        while tokio::time::Instant::now() < deadline {
            let skipped = skip.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            let mut tx = self.pool.begin().await.map_err(helpdesk_core::CoreError::from)?;
            let batch =
                ticket_timers::run_due_batch(&mut tx, &self.store, self.clock.now(), self.drain_batch, &skipped)
                    .await?;
            if batch.failed.is_empty() {
                tx.commit().await.map_err(helpdesk_core::CoreError::from)?;
            } else {
                tx.rollback().await.map_err(helpdesk_core::CoreError::from)?;
            }
            acted += batch.timers;
            for (ticket, error) in batch.failed {
                tracing::warn!(%ticket, error = %error, "ticket timers failed; skipped until the next round");
                skip.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(ticket);
            }
            if batch.tickets == 0 {
                break;
            }
        }
        Ok(acted)
    }

    /// Moves open tickets still on an older calendar or policy version onto the ones in force
    /// (issue 14: re-projection is worker work), a batch per transaction, until none is left or
    /// the round has used 90 % of its interval; returns how many moved. The tickets' own versions
    /// are the record of what is left, so a restart resumes where the last batch committed.
    pub async fn run_reprojection(&self) -> Result<usize, ReconcileError> {
        let deadline = tokio::time::Instant::now() + self.interval.mul_f64(0.9).max(Duration::from_millis(500));
        let mut moved = 0;
        while tokio::time::Instant::now() < deadline {
            let mut tx = self.pool.begin().await.map_err(helpdesk_core::CoreError::from)?;
            let batch = helpdesk_core::tickets::reproject_batch(&mut tx, &self.store, self.clock.now()).await?;
            tx.commit().await.map_err(helpdesk_core::CoreError::from)?;
            if batch == 0 {
                break;
            }
            moved += batch;
        }
        Ok(moved)
    }

    /// How long a queued job's key keeps the reconciler from queueing the same work again: long
    /// enough for a busy queue to drain, short enough that a job lost without its key (a worker
    /// killed mid-job before apalis re-queues it, a job that failed) is run again within minutes.
    fn dedupe_window(&self) -> Duration {
        self.interval.max(Duration::from_secs(1)) * 15
    }
}

/// Which due outbox rows a pass queues.
#[derive(Debug, Clone, Copy)]
enum OutboxRows {
    AllDue,
    Retries,
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
