//! Sending one subscription's webhook deliveries, in order (issue 13, decision 23).
//!
//! A job names a subscription. It claims the subscription's lease (one run at a time per
//! subscription, so deliveries go out one by one in sequence; other subscriptions' runs go on in
//! parallel), POSTs each due delivery with its Standard Webhooks signature through the guarded
//! client, records every attempt, and releases the lease. A failure stops the run: the delivery
//! is retried with backoff and everything behind it waits, which is what "in order" means. A
//! run ends after [`RUN_BUDGET`] and queues its own continuation, so one busy subscription does
//! not hold a concurrency slot for ever.

use apalis::prelude::Data;
use chrono::{DateTime, Utc};
use helpdesk_core::Clock;
use helpdesk_core::jobs::{DeliverWebhooks, Enqueue, JobQueue};
use helpdesk_core::webhooks::deliveries::{self, AfterRun, AttemptRecord, Claim, DueDelivery};
use helpdesk_domain::webhooks::signature::signature_header;
use helpdesk_domain::webhooks::{DisableRule, RetryPolicy, Secret};
use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::egress::{EgressClient, read_capped, refusal_of};
use crate::metrics::{Metrics, increment};

/// How long one run keeps sending before it hands over to a new job.
pub const RUN_BUDGET: Duration = Duration::from_secs(5);

/// What is kept of a response body.
pub const BODY_CAP: usize = 1024;

/// The webhook worker's tuning; defaults for production.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// A run's hold on its subscription, renewed by the heartbeat every third of it.
    pub lease: chrono::TimeDelta,
    /// One POST, connection included.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub disable: DisableRule,
    /// Deliveries read per claim.
    pub batch: i64,
    /// Subscriptions sent to at once by this process.
    pub concurrency: usize,
    /// How often subscriptions with due deliveries and no live run are looked for.
    pub sweep_interval: Duration,
    /// Queue runs as PostgreSQL announces deliveries (the fast path).
    pub notifications: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            lease: chrono::TimeDelta::seconds(30),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            disable: DisableRule::default(),
            batch: 100,
            concurrency: 16,
            sweep_interval: Duration::from_secs(5),
            notifications: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookJobError {
    #[error("database error while sending webhooks of subscription {subscription}: {source}")]
    Database { subscription: Uuid, source: sqlx::Error },
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Another run holds the subscription, or it is disabled or gone.
    Skipped,
    Ran {
        delivered: usize,
        failed: usize,
    },
}

/// Everything a run needs; cloned into each job.
#[derive(Clone)]
pub struct WebhookDelivery {
    pub pool: PgPool,
    pub client: EgressClient,
    pub queue: JobQueue,
    pub clock: Clock,
    pub settings: WebhookSettings,
    pub metrics: Arc<Metrics>,
    /// Lease tokens held by this process, for the heartbeat.
    pub held: Arc<Mutex<HashSet<Uuid>>>,
}

pub async fn deliver_webhooks(job: DeliverWebhooks, delivery: Data<WebhookDelivery>) -> Result<(), WebhookJobError> {
    let result = delivery.run(job.subscription_id).await;
    match &result {
        Ok(_) => increment(&delivery.metrics.webhook_jobs.processed),
        Err(error) => {
            increment(&delivery.metrics.webhook_jobs.failed);
            tracing::warn!(subscription = %job.subscription_id, %error, "webhook run failed; the sweep will resume it");
        }
    }
    result.map(|_| ())
}

/// Removes a token from the held set when the run ends, however it ends.
struct Holding {
    token: Uuid,
    held: Arc<Mutex<HashSet<Uuid>>>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.token);
    }
}

impl WebhookDelivery {
    pub async fn run(&self, subscription: Uuid) -> Result<RunOutcome, WebhookJobError> {
        let db = |source| WebhookJobError::Database { subscription, source };
        let started = Instant::now();
        let (mut delivered, mut failed) = (0, 0);
        loop {
            let claim = {
                let mut conn = self.pool.acquire().await.map_err(db)?;
                deliveries::claim(&mut conn, subscription, self.clock.now(), self.settings.lease, self.settings.batch)
                    .await
                    .map_err(db)?
            };
            let Some(claim) = claim else {
                return Ok(if delivered + failed == 0 {
                    RunOutcome::Skipped
                } else {
                    RunOutcome::Ran { delivered, failed }
                });
            };
            self.held.lock().unwrap_or_else(PoisonError::into_inner).insert(claim.token);
            let holding = Holding { token: claim.token, held: self.held.clone() };
            let mut failures = claim.consecutive_failures;
            for due in &claim.deliveries {
                let (ok, record) = self.send(&claim, due).await;
                let mut conn = self.pool.acquire().await.map_err(db)?;
                if ok {
                    let claim_now = Claim { consecutive_failures: failures, ..claim.clone() };
                    deliveries::record_success(&mut conn, &claim_now, due, &record).await.map_err(db)?;
                    failures = 0;
                    delivered += 1;
                    increment(&self.metrics.webhooks_delivered);
                    continue;
                }
                failed += 1;
                failures += 1;
                increment(&self.metrics.webhook_attempts_failed);
                let first = due.first_attempt_at.unwrap_or(record.at);
                let retry_at =
                    self.settings.retry.next_attempt(due.attempts + 1, first, record.at, rand::rng().random::<f64>());
                let outcome =
                    deliveries::record_failure(&mut conn, &claim, due, &record, retry_at, self.settings.disable)
                        .await
                        .map_err(db)?;
                tracing::warn!(
                    subscription = %subscription, delivery = %due.id, event = %due.event_id, attempt = due.attempts + 1,
                    status = ?record.response_status, error = ?record.error, retry_at = ?retry_at,
                    disabled = outcome.disabled, "webhook delivery failed"
                );
                // A given-up delivery no longer holds the queue; a retry waiting does.
                if retry_at.is_some() || outcome.disabled {
                    break;
                }
            }
            let after = {
                let mut conn = self.pool.acquire().await.map_err(db)?;
                deliveries::release(&mut conn, &claim, self.clock.now()).await.map_err(db)?
            };
            drop(holding);
            match after {
                AfterRun::DueNow if started.elapsed() < RUN_BUDGET => continue,
                AfterRun::DueNow => self.schedule(subscription, None).await,
                AfterRun::DueAt(at) => self.schedule(subscription, Some(at)).await,
                AfterRun::Idle => {}
            }
            return Ok(RunOutcome::Ran { delivered, failed });
        }
    }

    /// Queues the next run, now or when the head's retry is due. Redis schedules on the wall
    /// clock, so the wait is converted rather than the instant (they differ under a test clock).
    /// If this push is lost the sweep finds the subscription.
    async fn schedule(&self, subscription: Uuid, at: Option<DateTime<Utc>>) {
        let job = DeliverWebhooks { subscription_id: subscription };
        let enqueue = match at {
            None => Enqueue::now(job),
            Some(at) => {
                let wait = (at - self.clock.now()).max(chrono::TimeDelta::zero());
                Enqueue::at(job, Utc::now() + wait)
                    .once(format!("webhooks:{subscription}:at:{}", at.timestamp_micros()), Duration::from_secs(3600))
            }
        };
        if let Err(error) = self.queue.push(enqueue).await {
            tracing::warn!(%subscription, %error, "cannot queue the next webhook run; the sweep will");
        }
    }

    /// One POST. Never fails: every outcome becomes an attempt record.
    async fn send(&self, claim: &Claim, due: &DueDelivery) -> (bool, AttemptRecord) {
        let started = Instant::now();
        let at = self.clock.now();
        let record = |status: Option<i32>, body: Option<String>, error: Option<String>| AttemptRecord {
            at,
            response_status: status,
            response_body: body,
            latency_ms: i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX),
            error,
        };
        let secrets = Secret::parse(&claim.secret)
            .map(|current| (current, claim.previous_secret.as_deref().and_then(|p| Secret::parse(p).ok())));
        let Ok((current, previous)) = secrets else {
            return (false, record(None, None, Some("the stored secret is malformed; rotate it".to_owned())));
        };
        let url = match self.client.check(&claim.url) {
            Ok(url) => url,
            Err(refusal) => {
                return (false, record(None, None, Some(format!("refused by the egress guard: {refusal}"))));
            }
        };
        let body = json!({
            "id": due.event_id,
            "type": due.event_type,
            "timestamp": due.occurred_at,
            "organization_id": due.organization_id,
            "data": due.payload,
        })
        .to_string();
        let id = due.event_id.to_string();
        // The receiver compares this with its own clock to refuse replays: always the real time.
        let timestamp = Utc::now().timestamp();
        let signature = signature_header(&current, previous.as_ref(), &id, timestamp, body.as_bytes());
        let sent = self
            .client
            .http()
            .post(url)
            .timeout(self.settings.timeout)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                let text = read_capped(response, BODY_CAP)
                    .await
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                let code = Some(i32::from(status.as_u16()));
                if status.is_success() {
                    (true, record(code, Some(text), None))
                } else {
                    (false, record(code, Some(text), Some(format!("HTTP {status}"))))
                }
            }
            Err(error) => {
                let reason = match refusal_of(&error) {
                    Some(refusal) => format!("refused by the egress guard: {refusal}"),
                    None if error.is_timeout() => format!("no answer within {} s", self.settings.timeout.as_secs_f32()),
                    None => error_chain(&error),
                };
                (false, record(None, None, Some(reason)))
            }
        }
    }

    /// Extends the leases of the runs in flight every third of a lease, until aborted.
    pub async fn heartbeat_forever(self) {
        let every = self.settings.lease.to_std().unwrap_or(Duration::from_secs(30)) / 3;
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(100)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let tokens: Vec<Uuid> = self.held.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect();
            if tokens.is_empty() {
                continue;
            }
            let extended = async {
                let mut conn = self.pool.acquire().await?;
                deliveries::extend_leases(&mut conn, &tokens, self.clock.now() + self.settings.lease).await
            };
            if let Err(error) = extended.await {
                tracing::warn!(%error, "cannot extend the leases of webhook runs in flight");
            }
        }
    }

    /// Queues a run for every subscription with something due and no live run, every
    /// `sweep_interval`, until aborted: what a lost wake-up, a lost retry job or a dead worker
    /// left behind.
    pub async fn sweep_forever(self) {
        loop {
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "webhook sweep failed; the next one will try again");
            }
            tokio::time::sleep(self.settings.sweep_interval).await;
        }
    }

    pub async fn sweep(&self) -> Result<usize, sqlx::Error> {
        let due = {
            let mut conn = self.pool.acquire().await?;
            deliveries::due_subscriptions(&mut conn, self.clock.now(), 1000).await?
        };
        let count = due.len();
        let window = self.settings.sweep_interval.max(Duration::from_secs(1));
        let slot = Utc::now().timestamp_millis() / i64::try_from(window.as_millis()).unwrap_or(1000).max(1);
        let jobs = due
            .into_iter()
            .map(|subscription_id| {
                Enqueue::now(DeliverWebhooks { subscription_id })
                    .once(format!("webhooks:{subscription_id}:sweep:{slot}"), window)
            })
            .collect();
        if let Err(error) = self.queue.push_all(jobs).await {
            tracing::warn!(%error, "cannot queue webhook runs now");
        }
        Ok(count)
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
