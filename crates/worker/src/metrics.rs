//! The worker's counters, served as Prometheus text on `GET /metrics`. Plain atomics: a handful of
//! counters does not justify a metrics framework.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for one queue's jobs.
#[derive(Debug, Default)]
pub struct QueueCounters {
    /// Jobs whose handler returned (whatever the business outcome).
    pub processed: AtomicU64,
    /// Jobs whose handler failed (database unreachable…); apalis retries them.
    pub failed: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub email_jobs: QueueCounters,
    pub timer_jobs: QueueCounters,
    pub reconcile_jobs: QueueCounters,
    pub retention_jobs: QueueCounters,
    pub contact_retention_jobs: QueueCounters,
    pub monitor_tick_jobs: QueueCounters,
    pub probe_jobs: QueueCounters,
    pub monitor_upkeep_jobs: QueueCounters,
    /// Monitor probes run (results, whether recorded or stale).
    pub probes_run: AtomicU64,
    pub webhook_jobs: QueueCounters,
    /// Webhook deliveries the receiver answered with a 2xx.
    pub webhooks_delivered: AtomicU64,
    /// Webhook attempts that failed (non-2xx, timeout, refused, unreachable).
    pub webhook_attempts_failed: AtomicU64,
    pub emails_sent: AtomicU64,
    /// E-mails given up on (5xx, unknown template, attempts exhausted).
    pub emails_failed: AtomicU64,
    /// Transient failures that scheduled another attempt.
    pub emails_retried: AtomicU64,
    /// Jobs that found their row already sent, failed or leased: duplicates and stale jobs.
    pub email_jobs_skipped: AtomicU64,
    /// Delivery jobs pushed by the reconciler (before Redis deduplication).
    pub reconciler_enqueued: AtomicU64,
    /// Ticket timers that acted (alerts, reminders, auto-closes).
    pub timers_acted: AtomicU64,
    /// Timer jobs that found nothing due: early, duplicate or stale.
    pub timer_jobs_idle: AtomicU64,
    /// Ticket timers that acted in the reconciler's drain (not through a job).
    pub reconciler_timers_acted: AtomicU64,
}

fn samples(list: &[(String, u64)]) -> Vec<(&str, u64)> {
    list.iter().map(|(labels, value)| (labels.as_str(), *value)).collect()
}

pub fn increment(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Prometheus text exposition format 0.0.4; `queues` are the job counters of every queue,
    /// labelled (the queue registry's `queues::counters`).
    pub fn render(&self, queues: &[(&str, &QueueCounters)]) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut family = |name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let by_queue = |counter: fn(&QueueCounters) -> &AtomicU64| -> Vec<(String, u64)> {
            queues.iter().map(|(label, counters)| (format!(r#"{{queue="{label}"}}"#), get(counter(counters)))).collect()
        };
        let processed = by_queue(|c| &c.processed);
        let failed = by_queue(|c| &c.failed);
        family("helpdesk_worker_jobs_processed_total", "Jobs handled, by queue.", &samples(&processed));
        family(
            "helpdesk_worker_jobs_failed_total",
            "Jobs whose handler failed and will be retried, by queue.",
            &samples(&failed),
        );
        family(
            "helpdesk_worker_emails_sent_total",
            "E-mails accepted by the SMTP server.",
            &[("", get(&self.emails_sent))],
        );
        family("helpdesk_worker_emails_failed_total", "E-mails given up on.", &[("", get(&self.emails_failed))]);
        family(
            "helpdesk_worker_emails_retried_total",
            "Transient e-mail failures that will be retried.",
            &[("", get(&self.emails_retried))],
        );
        family(
            "helpdesk_worker_email_jobs_skipped_total",
            "E-mail jobs that found nothing to do (duplicate or stale).",
            &[("", get(&self.email_jobs_skipped))],
        );
        family(
            "helpdesk_worker_reconciler_enqueued_total",
            "Delivery jobs pushed by the reconciler.",
            &[("", get(&self.reconciler_enqueued))],
        );
        family(
            "helpdesk_worker_ticket_timers_acted_total",
            "Ticket timers that acted: SLA alerts, reminders, auto-closes.",
            &[("", get(&self.timers_acted))],
        );
        family(
            "helpdesk_worker_timer_jobs_idle_total",
            "Ticket-timer jobs that found nothing due (early, duplicate or stale).",
            &[("", get(&self.timer_jobs_idle))],
        );
        family(
            "helpdesk_worker_reconciler_timers_acted_total",
            "Ticket timers that acted in the reconciler's drain rather than through a job.",
            &[("", get(&self.reconciler_timers_acted))],
        );
        family(
            "helpdesk_worker_webhooks_delivered_total",
            "Webhook deliveries answered with a 2xx.",
            &[("", get(&self.webhooks_delivered))],
        );
        family(
            "helpdesk_worker_webhook_attempts_failed_total",
            "Webhook attempts that failed (non-2xx, timeout, refused, unreachable).",
            &[("", get(&self.webhook_attempts_failed))],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        increment(&metrics.emails_sent);
        increment(&metrics.email_jobs.processed);
        let queues = [
            ("email", &metrics.email_jobs),
            ("ticket-timers", &metrics.timer_jobs),
            ("reconcile", &metrics.reconcile_jobs),
        ];
        let text = metrics.render(&queues);
        assert!(
            text.contains("# TYPE helpdesk_worker_emails_sent_total counter\nhelpdesk_worker_emails_sent_total 1\n")
        );
        assert!(text.contains("helpdesk_worker_jobs_processed_total{queue=\"email\"} 1\n"));
        assert!(text.contains("helpdesk_worker_jobs_failed_total{queue=\"reconcile\"} 0\n"));
    }
}
