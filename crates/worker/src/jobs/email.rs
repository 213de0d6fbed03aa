//! Delivering one outbox row (DESIGN §3.5).
//!
//! At-least-once, with duplicates confined to one window: the row is claimed (leased, committed)
//! before SMTP is contacted and marked sent right after the server accepts, so a second copy goes
//! out only if the process dies between the server's "250 OK" and that update, and then it
//! carries the same `Message-ID`. Claims and marks go through [`Claims`], which batches them
//! across concurrent sends and keeps the leases of sends in flight alive.

use apalis::prelude::{Data, TaskId};
use chrono::{DateTime, Utc};
use helpdesk_core::Clock;
use helpdesk_core::jobs::{DeliverEmail, Enqueue, JobQueue};
use helpdesk_core::outbox::{self, ClaimedEmail};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tracing::Instrument;
use uuid::Uuid;

use crate::claims::Claims;
use crate::invite;
use crate::metrics::{Metrics, increment};
use crate::settings::DeliveryPolicy;
use crate::smtp::{Mailer, SendFailure, message_id_for};
use crate::templates::{self, Locale};

/// What one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Transient failure; the row is due again at this instant.
    RetryAt(DateTime<Utc>),
    /// Given up; the reason is in `last_error`.
    Failed(String),
    /// The row was sent, failed, not due or leased by another attempt: nothing to do.
    Skipped,
}

/// Infrastructure trouble: the job fails and apalis retries it; the reconciler is the backstop.
#[derive(Debug, thiserror::Error)]
pub enum EmailJobError {
    #[error("database error while delivering outbox row {id}: {source}")]
    Database { id: Uuid, source: Arc<sqlx::Error> },
    /// The worker is stopping: the row was not started, and the job's retry (on this worker's
    /// successor or a replica) delivers it.
    #[error("outbox row {id} left for the job's retry: the worker is stopping")]
    Stopping { id: Uuid },
}

/// Everything a delivery needs; cloned into each job.
#[derive(Clone)]
pub struct EmailDelivery {
    pub pool: PgPool,
    pub mailer: Arc<Mailer>,
    pub queue: JobQueue,
    pub clock: Clock,
    pub policy: DeliveryPolicy,
    pub metrics: Arc<Metrics>,
    pub claims: Claims,
    /// One permit per SMTP conversation this process may hold at once (`email_concurrency`):
    /// a job carries up to [`helpdesk_core::jobs::EMAIL_BATCH`] rows, and several jobs run at once.
    pub sends: Arc<Semaphore>,
    /// Set when the process begins to shut down: rows of a job not yet started are then left
    /// for the job's retry (see [`deliver_email`]), so a stopping worker finishes only the sends
    /// already in flight, as it did with one row per job.
    pub stopping: Arc<AtomicBool>,
}

/// The apalis handler for the e-mail queue: the job's rows are delivered side by side, within
/// the process's limit of concurrent sends. Every outcome is logged with the job's id (and the
/// outbox row's); the lines for a sent, retried or failed e-mail come from [`EmailDelivery`]. The
/// job fails (and apalis retries it) when any of its rows met a database error; its rows already
/// sent are then skipped at their claim.
pub async fn deliver_email(
    job: DeliverEmail,
    task: TaskId,
    delivery: Data<EmailDelivery>,
) -> Result<(), EmailJobError> {
    let rows = job.outbox_ids().iter().map(|&id| delivery.deliver_counted(id, &task));
    let mut failure = None;
    for result in futures_util::future::join_all(rows).await {
        if let Err(error) = result {
            failure.get_or_insert(error);
        }
    }
    let metrics = &delivery.metrics;
    match failure {
        None => {
            increment(&metrics.email_jobs.processed);
            Ok(())
        }
        Some(error) => {
            increment(&metrics.email_jobs.failed);
            Err(error)
        }
    }
}

impl EmailDelivery {
    /// Delivers one row of a job, counting its outcome.
    async fn deliver_counted(&self, id: Uuid, task: &TaskId) -> Result<Delivery, EmailJobError> {
        let span = tracing::info_span!("email_job", job = %task, outbox_id = %id);
        let result = self.deliver(id).instrument(span).await;
        let metrics = &self.metrics;
        match &result {
            Ok(outcome) => increment(match outcome {
                Delivery::Sent => &metrics.emails_sent,
                Delivery::RetryAt(_) => &metrics.emails_retried,
                Delivery::Failed(_) => &metrics.emails_failed,
                Delivery::Skipped => &metrics.email_jobs_skipped,
            }),
            Err(error) => {
                tracing::warn!(job = %task, outbox_id = %id, error = %error, "e-mail job failed; it will be retried")
            }
        }
        result
    }

    pub async fn deliver(&self, id: Uuid) -> Result<Delivery, EmailJobError> {
        // Claimed only once a send slot is free, so no lease is held while waiting for one. The
        // semaphore is never closed; were it, sending unthrottled beats not sending.
        let _slot = self.sends.acquire().await.ok();
        if self.stopping.load(Ordering::Acquire) {
            return Err(EmailJobError::Stopping { id });
        }
        let claimed = self.claims.claim(id).await.map_err(|error| EmailJobError::Database { id, source: error.0 })?;
        let Some((email, held)) = claimed else {
            tracing::info!(outbox_id = %id, "e-mail job: nothing to do (already sent, failed, not due or leased)");
            return Ok(Delivery::Skipped);
        };

        let message_id = message_id_for(&email.idempotency_key);
        let message = templates::render(&email.template, Locale::from_tag(&email.locale), &email.payload)
            .map_err(|e| e.to_string())
            .and_then(|rendered| Ok((rendered, invite::from_payload(&email.payload)?)))
            .and_then(|(rendered, invite)| {
                self.mailer
                    .compose(&email.to_address, email.to_name.as_deref(), &message_id, rendered, invite)
                    .map_err(|e| e.to_string())
            });
        let outcome = match message {
            Err(reason) => Err(SendFailure::Permanent(reason)),
            Ok(message) => self.mailer.send(message).await,
        };
        // The conversation is over: what follows records its outcome, which moves the lease itself.
        drop(held);

        match outcome {
            Ok(()) => {
                self.record_sent(&email, &message_id).await?;
                tracing::info!(outbox_id = %id, template = %email.template, attempt = email.attempts, "e-mail sent");
                Ok(Delivery::Sent)
            }
            Err(SendFailure::Transient(reason)) if email.attempts < self.policy.max_attempts => {
                self.retry_later(&email, &reason).await
            }
            Err(SendFailure::Transient(reason)) => {
                let reason = format!("gave up after {} attempts: {reason}", email.attempts);
                self.fail(&email, reason).await
            }
            Err(SendFailure::Permanent(reason)) => self.fail(&email, reason).await,
        }
    }

    /// The message is out: record it even through a brief database hiccup, since every failure
    /// here turns into a duplicate e-mail once the lease ends.
    async fn record_sent(&self, email: &ClaimedEmail, message_id: &str) -> Result<(), EmailJobError> {
        let mut tries = 0;
        loop {
            match self.claims.mark_sent(email.id, message_id).await {
                Ok(_) => return Ok(()),
                Err(error) if tries >= 4 => return Err(EmailJobError::Database { id: email.id, source: error.0 }),
                Err(error) => {
                    tries += 1;
                    tracing::warn!(outbox_id = %email.id, error = %error, "cannot record a sent e-mail yet; trying again");
                    tokio::time::sleep(Duration::from_millis(250 << tries)).await;
                }
            }
        }
    }

    async fn retry_later(&self, email: &ClaimedEmail, reason: &str) -> Result<Delivery, EmailJobError> {
        let now = self.clock.now();
        let wait = self.policy.backoff(email.attempts);
        let next_attempt_at = now + wait;
        let db = |source| EmailJobError::Database { id: email.id, source: Arc::new(source) };
        let mut conn = self.pool.acquire().await.map_err(db)?;
        outbox::schedule_retry(&mut conn, email.id, email.attempts, next_attempt_at, reason).await.map_err(db)?;
        drop(conn);
        tracing::warn!(outbox_id = %email.id, attempt = email.attempts, retry_in_seconds = wait.num_seconds(), error = %reason, "e-mail not delivered; will retry");
        // Fast path for the retry. Redis schedules on the wall clock, so convert the wait rather
        // than the instant (they differ only under a test's manual clock). If this push fails the
        // reconciler still finds the row once it is due.
        let job = Enqueue::at(DeliverEmail::One { outbox_id: email.id }, Utc::now() + wait)
            .once(format!("outbox:{}:attempt:{}", email.id, email.attempts), Duration::from_secs(3600));
        if let Err(error) = self.queue.push(job).await {
            tracing::warn!(outbox_id = %email.id, error = %error, "cannot schedule the retry; the reconciler will pick it up");
        }
        Ok(Delivery::RetryAt(next_attempt_at))
    }

    async fn fail(&self, email: &ClaimedEmail, reason: String) -> Result<Delivery, EmailJobError> {
        let db = |source| EmailJobError::Database { id: email.id, source: Arc::new(source) };
        let mut conn = self.pool.acquire().await.map_err(db)?;
        outbox::mark_failed(&mut conn, email.id, &reason).await.map_err(db)?;
        tracing::error!(outbox_id = %email.id, template = %email.template, attempt = email.attempts, error = %reason, "e-mail failed permanently");
        Ok(Delivery::Failed(reason))
    }
}
