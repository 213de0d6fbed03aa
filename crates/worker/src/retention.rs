//! Retention (DESIGN R14): on start-up and then every `retention_interval`, deletes audit events,
//! ended sessions and the webhook log (events with their deliveries and attempts) older than their
//! configured periods, and idempotency keys older than 24 h, in short batches. Deleting what is past
//! a cut-off is idempotent, so replicas running it side by side, or a round repeated after a crash,
//! do no harm; nothing needs recording.

use apalis::prelude::Data;
use apalis_cron::Tick;
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_core::Clock;
use helpdesk_core::webhooks::retention as webhook_retention;
use helpdesk_core::{idempotency, retention};
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use std::pin::Pin;

/// How long each kind of record is kept.
#[derive(Debug, Clone, Copy)]
pub struct RetentionPeriods {
    pub audit_events: TimeDelta,
    /// Counted from the end of the session (expiry, revocation or rotation of its refresh
    /// token); also bounds expired password-reset links.
    pub ended_sessions: TimeDelta,
    /// Webhook events with their deliveries and attempts, once nothing is left to deliver.
    pub webhook_events: TimeDelta,
}

impl Default for RetentionPeriods {
    fn default() -> Self {
        Self {
            audit_events: TimeDelta::days(730),
            ended_sessions: TimeDelta::days(90),
            webhook_events: TimeDelta::days(30),
        }
    }
}

#[derive(Clone)]
pub struct Retention {
    pub pool: PgPool,
    pub clock: Clock,
    pub periods: RetentionPeriods,
    /// Rows deleted per statement (and transaction).
    pub batch: i64,
}

/// Rows one round deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub audit_events: u64,
    pub sessions: u64,
    pub password_resets: u64,
    /// Idempotency keys past `helpdesk_core::idempotency::KEEP` (24 h), which the API no longer
    /// replays.
    pub idempotency_keys: u64,
    pub webhook_events: u64,
}

type Prune = for<'c> fn(
    &'c mut PgConnection,
    DateTime<Utc>,
    i64,
) -> Pin<Box<dyn Future<Output = Result<u64, sqlx::Error>> + Send + 'c>>;

impl Retention {
    /// One round: every kind, batch after batch until one comes back short.
    pub async fn run(&self) -> Result<Pruned, sqlx::Error> {
        let now = self.clock.now();
        let audit_cutoff = now - self.periods.audit_events;
        let session_cutoff = now - self.periods.ended_sessions;
        Ok(Pruned {
            audit_events: self
                .drain(|c, cutoff, batch| Box::pin(retention::prune_audit_events(c, cutoff, batch)), audit_cutoff)
                .await?,
            sessions: self
                .drain(|c, cutoff, batch| Box::pin(retention::prune_ended_sessions(c, cutoff, batch)), session_cutoff)
                .await?,
            password_resets: self
                .drain(|c, cutoff, batch| Box::pin(retention::prune_password_resets(c, cutoff, batch)), session_cutoff)
                .await?,
            idempotency_keys: self
                .drain(|c, cutoff, batch| Box::pin(idempotency::prune(c, cutoff, batch)), now - idempotency::KEEP)
                .await?,
            webhook_events: self
                .drain(
                    |c, cutoff, batch| Box::pin(webhook_retention::prune_events(c, cutoff, batch)),
                    now - self.periods.webhook_events,
                )
                .await?,
        })
    }

    async fn drain(&self, prune: Prune, cutoff: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        let batch = self.batch.max(1);
        let mut total = 0;
        loop {
            let mut tx = self.pool.begin().await?;
            let deleted = prune(&mut tx, cutoff, batch).await?;
            tx.commit().await?;
            total += deleted;
            if deleted < u64::try_from(batch).unwrap_or(u64::MAX) {
                return Ok(total);
            }
        }
    }
}

/// The apalis-cron handler.
pub async fn prune(_tick: Tick<Utc>, retention: Data<Retention>) -> Result<(), sqlx::Error> {
    match retention.run().await {
        Ok(pruned) => {
            if pruned != Pruned::default() {
                tracing::info!(?pruned, "retention pruned expired records");
            }
            Ok(())
        }
        Err(error) => {
            tracing::warn!(error = %error, "retention failed; the next round will try again");
            Err(error)
        }
    }
}
