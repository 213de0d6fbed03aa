//! The helpdesk's background worker: delivers the e-mail outbox, runs ticket timers (SLA alerts,
//! the R8 reminder and auto-close) and reconciles lost jobs (DESIGN §3). `main.rs` only reads
//! configuration and signals; everything else is here so the integration tests run the real
//! worker in-process.

pub mod contact_retention;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod outbox_listener;
pub mod polling;
pub mod reconcile;
pub mod settings;
pub mod smtp;
pub mod templates;
pub mod ticket_listener;

use apalis::prelude::{BackendExt, Monitor, MonitorError, WorkerBuilder, WorkerBuilderExt};
use apalis_cron::CronScheduler;
use apalis_redis::RedisStorage;
use helpdesk_core::db::{self, DbError};
use helpdesk_core::jobs::{self as queue_jobs, DeliverEmail, Job, JobQueue, TicketTimer};
use helpdesk_core::redis_conn::{self, RedisUnreachable};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::{Clock, Config};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

use crate::contact_retention::{ContactRetention, prune_contact_requests};
use crate::health::HealthState;
use crate::jobs::email::{EmailDelivery, deliver_email};
use crate::jobs::ticket_timer::{TicketTimers, run_ticket_timer};
use crate::metrics::Metrics;
use crate::polling::Every;
use crate::reconcile::{EveryInterval, Reconciler, reconcile};
use crate::settings::WorkerSettings;
use crate::smtp::{Mailer, SmtpConfigError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Redis(#[from] RedisUnreachable),
    #[error(transparent)]
    Smtp(#[from] SmtpConfigError),
    #[error("cannot listen on HELPDESK_WORKER_LISTEN={address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
}

#[derive(Debug, thiserror::Error)]
#[error("the worker stopped with an error: {0}")]
pub struct RunError(#[from] MonitorError);

/// A built worker: connected, migrated, listening for probes, not yet taking jobs.
pub struct Worker {
    monitor: Monitor,
    health_listener: TcpListener,
    health_address: SocketAddr,
    health_state: HealthState,
    queue: JobQueue,
    metrics: Arc<Metrics>,
    outbox_notifications: Option<sqlx::PgPool>,
    /// The ticket-timer listener's needs, when the fast path is on.
    ticket_notifications: Option<TicketTimers>,
    /// How often due jobs are moved onto the queues (see `promote_forever`).
    promote_interval: Duration,
}

impl Worker {
    /// Connects to PostgreSQL (migrating it) and Redis, binds the health listener and registers
    /// the job workers. Fails with one clear error when a dependency is unreachable.
    pub async fn build(config: &Config, settings: WorkerSettings, clock: Clock) -> Result<Self, StartupError> {
        let pool = db::connect_and_migrate_with(&config.database_url, config.db_pool_size, db::Plans::Cached).await?;
        let redis = redis_conn::connect(&config.redis_url).await?;
        // One idle SMTP connection kept per concurrent send: lettre closes a connection returned
        // to a full pool, so a smaller pool reconnects for every send beyond it.
        let smtp_connections = u32::try_from(settings.email_concurrency).unwrap_or(u32::MAX);
        let mailer =
            Arc::new(Mailer::new(&config.smtp_url, &config.mail_from, settings.smtp_timeout, smtp_connections)?);
        let health_listener = TcpListener::bind(config.worker_listen)
            .await
            .map_err(|source| StartupError::Listen { address: config.worker_listen, source })?;
        let health_address = health_listener
            .local_addr()
            .map_err(|source| StartupError::Listen { address: config.worker_listen, source })?;
        if settings.delivery.lease.to_std().is_ok_and(|lease| lease < settings.smtp_timeout * 2) {
            tracing::warn!("the e-mail lease is shorter than two SMTP timeouts: slow servers may get duplicates");
        }

        let queue = JobQueue::new(redis.clone(), &config.redis_prefix);
        let metrics = Arc::new(Metrics::default());
        let delivery = EmailDelivery {
            pool: pool.clone(),
            mailer,
            queue: queue.clone(),
            clock: clock.clone(),
            policy: settings.delivery.clone(),
            metrics: metrics.clone(),
        };
        let timers = TicketTimers {
            pool: pool.clone(),
            store: SlaStore::default(),
            queue: queue.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
        };
        let reconciler = Reconciler {
            pool: pool.clone(),
            queue: queue.clone(),
            clock,
            interval: settings.reconcile_interval,
            batch: settings.reconcile_batch,
            max_per_round: settings.reconcile_max_per_round,
            drain_concurrency: settings.drain_concurrency,
            drain_batch: settings.drain_batch,
            store: SlaStore::default(),
            metrics: metrics.clone(),
            last_vacuum: Arc::default(),
        };
        let contact_retention = ContactRetention {
            pool: pool.clone(),
            clock: reconciler.clock.clone(),
            keep_for: settings.contact_retention,
            batch: 1000,
        };
        let ticket_notifications = settings.ticket_notifications.then(|| timers.clone());
        let monitor = register_workers(
            &config.redis_prefix,
            redis.clone(),
            &settings,
            Jobs { delivery, timers, reconciler, contact_retention },
        );
        let outbox_notifications = settings.outbox_notifications.then(|| pool.clone());
        let health_state = HealthState { pool, redis, metrics: metrics.clone() };
        Ok(Self {
            monitor,
            health_listener,
            health_address,
            health_state,
            queue,
            metrics,
            outbox_notifications,
            ticket_notifications,
            promote_interval: (settings.poll_interval / 2).max(Duration::from_millis(50)),
        })
    }

    /// Where `/health/*` and `/metrics` are served (useful when configured with port 0).
    pub fn health_address(&self) -> SocketAddr {
        self.health_address
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The queue handle this worker consumes, for pushing jobs in tests and tools.
    pub fn queue(&self) -> JobQueue {
        self.queue.clone()
    }

    /// Runs until `shutdown` completes, then stops taking jobs and waits for the ones in flight
    /// (up to the shutdown timeout).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), RunError> {
        let health = tokio::spawn(health::serve(self.health_listener, self.health_state));
        // Before any consumer fetches: jobs that fell due while no worker ran may be many.
        promote(&self.queue).await;
        let promoter = tokio::spawn(promote_forever(self.queue.clone(), self.promote_interval));
        let listener =
            self.outbox_notifications.map(|pool| tokio::spawn(outbox_listener::run(pool, self.queue.clone())));
        let ticket_listener = self
            .ticket_notifications
            .map(|timers| tokio::spawn(ticket_listener::run(timers.pool, timers.queue, timers.clock)));
        tracing::info!(health = %self.health_address, "worker started");
        let result = self
            .monitor
            .run_with_signal(async move {
                shutdown.await;
                tracing::info!("shutting down: finishing the jobs in flight");
                Ok(())
            })
            .await;
        health.abort();
        promoter.abort();
        if let Some(listener) = listener {
            listener.abort();
        }
        if let Some(listener) = ticket_listener {
            listener.abort();
        }
        tracing::info!("worker stopped");
        Ok(result?)
    }
}

/// What the registered workers run.
struct Jobs {
    delivery: EmailDelivery,
    timers: TicketTimers,
    reconciler: Reconciler,
    contact_retention: ContactRetention,
}

fn register_workers(
    prefix: &str,
    redis: redis::aio::ConnectionManager,
    settings: &WorkerSettings,
    jobs: Jobs,
) -> Monitor {
    let Jobs { delivery, timers, reconciler, contact_retention } = jobs;
    let retention_worker = format!("retention-{}", settings.name);
    let retention_interval = settings.retention_interval;
    // `lock_tasks(false)`: apalis-redis's task lock removes each started task from the queue's
    // ready list with an LREM, which scans the whole list, so a backlog of N jobs costs O(N²):
    // with 100,000 queued, 1.9 ms of Redis time per job, and Redis at 80 % of a core while the
    // worker ran 110 jobs a second (measured). The lock only records the task as running (fetch
    // already moved it to this worker's in-flight set, which is what recovery after a crash
    // uses), and every handler here is safe to run twice anyway.
    let consumer_config = |queue: &str| {
        queue_jobs::storage_config(prefix, queue)
            .batch_size(settings.fetch_batch.max(1))
            .heartbeat_interval(settings.heartbeat_interval)
            .lock_tasks(false)
    };
    let email_storage_config = consumer_config(DeliverEmail::QUEUE);
    let timer_storage_config = consumer_config(TicketTimer::QUEUE);
    let email_worker = format!("email-{}", settings.name);
    let timer_worker = format!("ticket-timers-{}", settings.name);
    let timer_redis = redis.clone();
    let reconcile_worker = format!("reconcile-{}", settings.name);
    let (poll_interval, concurrency, timer_concurrency, reconcile_interval) = (
        settings.poll_interval,
        settings.email_concurrency.max(1),
        settings.timer_concurrency.max(1),
        settings.reconcile_interval,
    );

    Monitor::new()
        .register(move |restarts| {
            let storage = RedisStorage::<DeliverEmail>::new(redis.clone()).with_config(email_storage_config.clone());
            WorkerBuilder::new(email_worker.as_str())
                .backend(storage.before_start(move |_| pause_before_restart(restarts)).poll_with_strategy(Every::new(poll_interval)))
                .concurrency(concurrency)
                .data(delivery.clone())
                .build(deliver_email)
        })
        .register(move |restarts| {
            let storage =
                RedisStorage::<TicketTimer>::new(timer_redis.clone()).with_config(timer_storage_config.clone());
            WorkerBuilder::new(timer_worker.as_str())
                .backend(storage.before_start(move |_| pause_before_restart(restarts)).poll_with_strategy(Every::new(poll_interval)))
                .concurrency(timer_concurrency)
                .data(timers.clone())
                .build(run_ticket_timer)
        })
        .register(move |_| {
            WorkerBuilder::new(reconcile_worker.as_str())
                .backend(CronScheduler::new(EveryInterval::new(reconcile_interval)))
                .data(reconciler.clone())
                .build(reconcile)
        })
        .register(move |_| {
            WorkerBuilder::new(retention_worker.as_str())
                .backend(CronScheduler::new(EveryInterval::new(retention_interval)))
                .data(contact_retention.clone())
                .build(prune_contact_requests)
        })
        // A worker stops when its backend fails (Redis unreachable). Restart it, pausing first
        // (see `pause_before_restart`) so an outage does not become a busy loop.
        .should_restart(|worker, error| {
            tracing::error!(worker = worker.name(), restarts = worker.restarts(), error = %error, "worker stopped; restarting");
            true
        })
        .shutdown_timeout(settings.shutdown_timeout)
}

/// Moves due jobs of both queues onto their ready lists, in chunks (`JobQueue::promote_due` says
/// why apalis-redis cannot be left to do it alone).
async fn promote(queue: &JobQueue) {
    let emails = queue.promote_due::<DeliverEmail>().await;
    let timers = queue.promote_due::<TicketTimer>().await;
    for (queue, result) in [("email", emails), ("ticket-timers", timers)] {
        match result {
            Ok(0) => {}
            Ok(moved) => tracing::debug!(queue, moved, "moved due jobs onto the queue"),
            Err(error) => tracing::warn!(queue, %error, "cannot move due jobs onto the queue"),
        }
    }
}

/// Runs [`promote`] every `interval`, more often than the consumers poll, so that delayed jobs
/// falling due together never pile up beyond what apalis-redis's fetch can move.
async fn promote_forever(queue: JobQueue, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        promote(&queue).await;
    }
}

async fn pause_before_restart(restarts: usize) -> Result<(), apalis_redis::Error> {
    if restarts > 0 {
        let seconds = u64::try_from(restarts.min(30)).unwrap_or(30);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
    Ok(())
}
