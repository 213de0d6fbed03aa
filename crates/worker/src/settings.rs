//! The worker's own tuning, beyond the shared `Config`: defaults for production, every field
//! settable so tests can run the same code fast.

use crate::jobs::webhook::WebhookSettings;
use crate::monitoring::prober::ProbeSettings;
use crate::retention::RetentionPeriods;
use chrono::TimeDelta;
use std::time::Duration;

/// When and how often an e-mail is attempted.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// How long one attempt owns its row before it must renew the claim. A live attempt renews it
    /// every third of a lease while the send runs (`claims`), so a slow send keeps its row however
    /// long it takes; a dead worker's rows are due again within one lease, and the outbox sweep
    /// (every half lease) queues them for another worker.
    pub lease: TimeDelta,
    /// After this many attempts a transient failure becomes final.
    pub max_attempts: i32,
    pub backoff_base: TimeDelta,
    pub backoff_cap: TimeDelta,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            lease: TimeDelta::seconds(30),
            max_attempts: 10,
            backoff_base: TimeDelta::seconds(30),
            backoff_cap: TimeDelta::hours(1),
        }
    }
}

impl DeliveryPolicy {
    /// Wait after the `attempts`-th failure: base × 2^(attempts−1), capped.
    pub fn backoff(&self, attempts: i32) -> TimeDelta {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
        self.backoff_base.checked_mul(1_i32 << doublings).map_or(self.backoff_cap, |wait| wait.min(self.backoff_cap))
    }
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Unique per process (host and pid): apalis-redis recovers a dead worker's jobs by name.
    pub name: String,
    /// How often an idle worker looks for jobs; also the latency of a delayed job.
    pub poll_interval: Duration,
    /// How often the reconciler runs (it also runs at start-up). Whole seconds, at least 1.
    pub reconcile_interval: Duration,
    /// Rows the reconciler reads, and jobs it pushes, per page.
    pub reconcile_batch: i64,
    /// Most e-mail jobs one reconciler round queues.
    pub reconcile_max_per_round: usize,
    /// Transactions the reconciler's drain of due ticket timers runs at once.
    pub drain_concurrency: usize,
    /// Tickets per drain transaction.
    pub drain_batch: i64,
    /// E-mails sent at once by this process.
    pub email_concurrency: usize,
    /// Ticket-timer jobs run at once by this process; each holds a database connection for one
    /// short transaction.
    pub timer_concurrency: usize,
    /// Jobs fetched from Redis per round trip.
    pub fetch_batch: usize,
    pub smtp_timeout: Duration,
    /// apalis heartbeat; a worker missing 10 of them is presumed dead and its jobs re-queued, so
    /// 5 s (rather than apalis's 30 s) returns a dead worker's jobs within about 50 s.
    pub heartbeat_interval: Duration,
    /// After SIGTERM, how long in-flight jobs may take before the process exits anyway.
    pub shutdown_timeout: Duration,
    pub delivery: DeliveryPolicy,
    /// Queue e-mails as PostgreSQL announces them (the fast path); off only in tests that
    /// exercise the reconciler alone.
    pub outbox_notifications: bool,
    /// Schedule ticket timers as PostgreSQL announces ticket changes (the fast path); the
    /// reconciler's sweep runs them within its interval either way.
    pub ticket_notifications: bool,
    /// How long audit events and ended sessions are kept (R14).
    pub retention: RetentionPeriods,
    /// How often expired records are pruned (also once at start-up).
    pub retention_interval: Duration,
    /// Rows deleted per retention transaction.
    pub retention_batch: i64,
    /// Contact requests older than this are deleted (R14).
    pub contact_retention: TimeDelta,
    /// Monitor probing (issue 10).
    pub probes: ProbeSettings,
    /// Webhook delivery (issue 13).
    pub webhooks: WebhookSettings,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            name: default_name(),
            poll_interval: Duration::from_secs(1),
            reconcile_interval: Duration::from_secs(60),
            reconcile_batch: 2000,
            reconcile_max_per_round: 200_000,
            drain_concurrency: 4,
            drain_batch: 100,
            email_concurrency: 32,
            timer_concurrency: 8,
            fetch_batch: 50,
            smtp_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
            delivery: DeliveryPolicy::default(),
            outbox_notifications: true,
            ticket_notifications: true,
            retention: RetentionPeriods::default(),
            retention_interval: Duration::from_secs(60 * 60),
            retention_batch: 5000,
            contact_retention: TimeDelta::days(365),
            probes: ProbeSettings::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{name} is invalid: expected a positive whole number, got '{value}'")]
pub struct SettingsError {
    name: &'static str,
    value: String,
}

impl WorkerSettings {
    /// Defaults, overridden by `HELPDESK_WORKER_NAME`, `HELPDESK_WORKER_POLL_MS`,
    /// `HELPDESK_RECONCILE_SECONDS`, `HELPDESK_EMAIL_CONCURRENCY`, `HELPDESK_TIMER_CONCURRENCY`,
    /// `HELPDESK_EMAIL_LEASE_SECONDS`, `HELPDESK_AUDIT_RETENTION_DAYS`,
    /// `HELPDESK_SESSION_RETENTION_DAYS`, `HELPDESK_WEBHOOK_RETENTION_DAYS`, `HELPDESK_CONTACT_RETENTION_DAYS`, `HELPDESK_RETENTION_INTERVAL_SECONDS`,
    /// `HELPDESK_PROBE_BATCH`, `HELPDESK_PROBE_CONCURRENCY` and `HELPDESK_PROBE_BATCH_CONCURRENCY` when set.
    /// `HELPDESK_WEBHOOK_TIMEOUT_SECONDS`, `HELPDESK_WEBHOOK_LEASE_SECONDS`, `HELPDESK_WEBHOOK_CONCURRENCY`,
    /// `HELPDESK_WEBHOOK_DISABLE_AFTER_FAILURES` and `HELPDESK_WEBHOOK_DISABLE_AFTER_HOURS` when set.
    pub fn from_env() -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        let number = |name: &'static str| -> Result<Option<u64>, SettingsError> {
            match std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(value) => {
                    value.parse::<u64>().ok().filter(|n| *n > 0).map(Some).ok_or(SettingsError { name, value })
                }
            }
        };
        if let Ok(name) = std::env::var("HELPDESK_WORKER_NAME")
            && !name.trim().is_empty()
        {
            settings.name = name.trim().to_owned();
        }
        if let Some(ms) = number("HELPDESK_WORKER_POLL_MS")? {
            settings.poll_interval = Duration::from_millis(ms);
        }
        if let Some(seconds) = number("HELPDESK_RECONCILE_SECONDS")? {
            settings.reconcile_interval = Duration::from_secs(seconds);
        }
        if let Some(count) = number("HELPDESK_EMAIL_CONCURRENCY")? {
            settings.email_concurrency = usize::try_from(count).unwrap_or(settings.email_concurrency);
        }
        if let Some(count) = number("HELPDESK_TIMER_CONCURRENCY")? {
            settings.timer_concurrency = usize::try_from(count).unwrap_or(settings.timer_concurrency);
        }
        if let Some(seconds) = number("HELPDESK_EMAIL_LEASE_SECONDS")? {
            settings.delivery.lease = TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX).min(86_400));
        }
        if let Some(days) = number("HELPDESK_AUDIT_RETENTION_DAYS")? {
            settings.retention.audit_events = days_delta(days);
        }
        if let Some(days) = number("HELPDESK_WEBHOOK_RETENTION_DAYS")? {
            settings.retention.webhook_events = days_delta(days);
        }
        if let Some(days) = number("HELPDESK_SESSION_RETENTION_DAYS")? {
            settings.retention.ended_sessions = days_delta(days);
        }
        if let Some(days) = number("HELPDESK_CONTACT_RETENTION_DAYS")? {
            settings.contact_retention = TimeDelta::days(i64::try_from(days).unwrap_or(i64::MAX).min(100_000));
        }
        if let Some(seconds) = number("HELPDESK_RETENTION_INTERVAL_SECONDS")? {
            settings.retention_interval = Duration::from_secs(seconds);
        }
        if let Some(count) = number("HELPDESK_PROBE_BATCH")? {
            settings.probes.batch = i64::try_from(count).unwrap_or(settings.probes.batch);
        }
        if let Some(count) = number("HELPDESK_PROBE_CONCURRENCY")? {
            settings.probes.concurrency = usize::try_from(count).unwrap_or(settings.probes.concurrency);
        }
        if let Some(count) = number("HELPDESK_PROBE_BATCH_CONCURRENCY")? {
            settings.probes.batch_concurrency = usize::try_from(count).unwrap_or(settings.probes.batch_concurrency);
        }
        if let Some(seconds) = number("HELPDESK_WEBHOOK_TIMEOUT_SECONDS")? {
            settings.webhooks.timeout = Duration::from_secs(seconds.min(300));
        }
        if let Some(seconds) = number("HELPDESK_WEBHOOK_LEASE_SECONDS")? {
            settings.webhooks.lease = TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX).min(3600));
        }
        if let Some(count) = number("HELPDESK_WEBHOOK_CONCURRENCY")? {
            settings.webhooks.concurrency = usize::try_from(count).unwrap_or(settings.webhooks.concurrency);
        }
        if let Some(count) = number("HELPDESK_WEBHOOK_DISABLE_AFTER_FAILURES")? {
            settings.webhooks.disable.min_failures = i32::try_from(count).unwrap_or(i32::MAX);
        }
        if let Some(hours) = number("HELPDESK_WEBHOOK_DISABLE_AFTER_HOURS")? {
            settings.webhooks.disable.min_duration = TimeDelta::hours(i64::try_from(hours).unwrap_or(24).min(24 * 365));
        }
        Ok(settings)
    }
}

fn days_delta(days: u64) -> TimeDelta {
    TimeDelta::try_days(i64::try_from(days).unwrap_or(i64::MAX)).unwrap_or(TimeDelta::MAX)
}

/// `host-pid`: unique among the replicas of a deployment.
pub fn default_name() -> String {
    let host = hostname::get().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_and_stops_at_an_hour() {
        let policy = DeliveryPolicy::default();
        assert_eq!(policy.backoff(1), TimeDelta::seconds(30));
        assert_eq!(policy.backoff(2), TimeDelta::seconds(60));
        assert_eq!(policy.backoff(5), TimeDelta::seconds(480));
        assert_eq!(policy.backoff(8), TimeDelta::hours(1));
        assert_eq!(policy.backoff(1000), TimeDelta::hours(1));
        assert_eq!(policy.backoff(0), TimeDelta::seconds(30));
    }

    #[test]
    fn default_name_is_host_and_pid() {
        assert!(default_name().ends_with(&format!("-{}", std::process::id())));
    }
}
