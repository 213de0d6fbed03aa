//! Retention of contact requests (R14): what non-customers sent through the contact form is
//! personal data kept for a purpose, so it is deleted once older than the configured retention.
//! A cron job in every replica; deletions take rows with `SKIP LOCKED` in batches, so replicas
//! running at once share the work and none waits on another.

use apalis::prelude::Data;
use apalis_cron::Tick;
use chrono::{TimeDelta, Utc};
use helpdesk_core::{Clock, CoreError, contact};
use sqlx::PgPool;

#[derive(Clone)]
pub struct ContactRetention {
    pub pool: PgPool,
    pub clock: Clock,
    /// Contact requests received longer ago than this are deleted.
    pub keep_for: TimeDelta,
    /// Rows deleted per statement (and transaction).
    pub batch: i64,
}

impl ContactRetention {
    /// Deletes every contact request past the retention; returns how many.
    pub async fn run(&self) -> Result<u64, CoreError> {
        let cutoff = self.clock.now() - self.keep_for;
        let mut total = 0;
        loop {
            let mut conn = self.pool.acquire().await?;
            let deleted = contact::prune(&mut conn, cutoff, self.batch).await?;
            total += deleted;
            if deleted < u64::try_from(self.batch).unwrap_or(0) {
                return Ok(total);
            }
        }
    }
}

/// The apalis-cron handler.
pub async fn prune_contact_requests(_tick: Tick<Utc>, job: Data<ContactRetention>) -> Result<(), CoreError> {
    match job.run().await {
        Ok(0) => Ok(()),
        Ok(deleted) => {
            tracing::info!(deleted, "pruned contact requests past their retention");
            Ok(())
        }
        Err(error) => {
            tracing::warn!(error = %error, "pruning contact requests failed; the next round will try again");
            Err(error)
        }
    }
}
