//! The reconciler (DESIGN §3.3): the slow path that makes a lost job cost a minute, not an
//! action. On start-up and then every interval it finds due outbox rows (never attempted, backing
//! off past their retry time, or leased by an attempt that died) and pushes delivery jobs for
//! them. It runs in every replica; idempotency keys per row and per interval keep replicas from
//! queueing the same row twice in one round, and the handler's claim makes any duplicate a no-op.

use apalis::prelude::Data;
use apalis_core::backend::Vacuum;
use apalis_cron::{Schedule, Tick};
use chrono::Utc;
use helpdesk_core::Clock;
use helpdesk_core::jobs::{DeliverEmail, Enqueue, EnqueueError, JobQueue};
use helpdesk_core::outbox;
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
    #[error("cannot list due outbox rows: {0}")]
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
}

/// The apalis-cron handler.
pub async fn reconcile(tick: Tick<Utc>, reconciler: Data<Reconciler>) -> Result<(), ReconcileError> {
    let result = reconciler.run(tick.get_timestamp()).await;
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
    pub async fn run(&self, tick_secs: u64) -> Result<usize, ReconcileError> {
        let due = {
            let mut conn = self.pool.acquire().await?;
            outbox::due_for_delivery(&mut conn, self.clock.now(), self.batch).await?
        };
        let round = tick_secs / self.interval.as_secs().max(1);
        let jobs: Vec<_> = due
            .iter()
            .map(|row| {
                Enqueue::now(DeliverEmail { outbox_id: row.id })
                    .once(format!("outbox:{}:round:{round}", row.id), self.interval.max(Duration::from_secs(1)) * 2)
            })
            .collect();
        let pushed = jobs.len();
        self.queue.push_all(jobs).await?;
        self.metrics.reconciler_enqueued.fetch_add(pushed as u64, std::sync::atomic::Ordering::Relaxed);
        if pushed > 0 {
            tracing::info!(count = pushed, "reconciler queued due e-mails");
        }
        self.vacuum().await;
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
