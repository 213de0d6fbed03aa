//! The helpdesk's background worker: delivers the e-mail outbox, runs ticket timers (SLA alerts,
//! the R8 reminder and auto-close) and reconciles lost jobs (DESIGN §3). `main.rs` only reads
//! configuration and signals; everything else is here so the integration tests run the real
//! worker in-process.

pub mod claims;
pub mod contact_retention;
pub mod egress;
pub mod health;
pub mod invite;
pub mod jobs;
pub mod metrics;
pub mod monitoring;
pub mod outbox_listener;
pub mod polling;
pub mod queues;
pub mod reconcile;
pub mod retention;
pub mod settings;
pub mod smtp;
pub mod smtp_pool;
pub mod templates;
pub mod ticket_listener;
pub mod webhook_listener;

use apalis::prelude::{Monitor, MonitorError};
use helpdesk_core::db::{self, DbError};
use helpdesk_core::jobs::{DeliverEmail, DeliverWebhooks, Job, JobQueue};
use helpdesk_core::redis_conn::{self, RedisUnreachable};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::{Clock, Config};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

use crate::claims::Claims;
use crate::contact_retention::ContactRetention;
use crate::egress::{EgressClient, EgressOptions};
use crate::health::HealthState;
use crate::jobs::email::EmailDelivery;
use crate::jobs::ticket_timer::TicketTimers;
use crate::jobs::webhook::WebhookDelivery;
use crate::metrics::Metrics;
use crate::monitoring::prober::Prober;
use crate::monitoring::upkeep::MonitorUpkeep;
use crate::polling::Nudges;
use crate::queues::{Consumers, QueueSpec};
use crate::reconcile::Reconciler;
use crate::retention::Retention;
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
    #[error("cannot build the outbound HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(transparent)]
    Roots(#[from] egress::RootsError),
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
    queues: Arc<[QueueSpec]>,
    /// The e-mail claims in flight, whose leases the heartbeat extends.
    claims: Claims,
    /// Runs the outbox sweep between reconciler rounds (see `sweep_outbox_forever`).
    reconciler: Reconciler,
    lease: chrono::TimeDelta,
    clock: Clock,
    webhooks: WebhookDelivery,
    /// Wake this process's consumers when it pushes jobs itself.
    nudges: Nudges,
    /// The claims' own connections (see `build`).
    claims_pool: sqlx::PgPool,
    /// Tells e-mail jobs the process is stopping.
    stopping: Arc<std::sync::atomic::AtomicBool>,
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
        if settings.delivery.lease < chrono::TimeDelta::seconds(3) {
            tracing::warn!(
                "the e-mail lease is under 3 s: a database stall longer than a third of it may duplicate e-mails"
            );
        }

        let queue = JobQueue::new(redis.clone(), &config.redis_prefix);
        let metrics = Arc::new(Metrics::default());
        // The e-mail claims, "sent" marks and lease heartbeats get a pool of their own that plans
        // each statement for its arguments. Under the main pool's cached plans, the claim's
        // generic plan (made while the outbox was small) scanned every due row of the partial
        // index for each batch instead of looking its ids up: with a backlog of tens of thousands
        // of reminders, PostgreSQL spent two cores on claims and delivery fell to ~700/s
        // (`bench_a_hundred`). Each of these statements covers a whole batch, so planning is cheap.
        let claims_pool = db::connect_with(&config.database_url, 3, db::Plans::PerExecution).await?;
        let claims = Claims::start(claims_pool.clone(), clock.clone(), settings.delivery.lease);
        let delivery = EmailDelivery {
            pool: pool.clone(),
            mailer,
            queue: queue.clone(),
            clock: clock.clone(),
            policy: settings.delivery.clone(),
            metrics: metrics.clone(),
            claims: claims.clone(),
            sends: Arc::new(tokio::sync::Semaphore::new(settings.email_concurrency.max(1))),
            stopping: Arc::default(),
        };
        let stopping = delivery.stopping.clone();
        let timers = TicketTimers {
            pool: pool.clone(),
            store: SlaStore::default(),
            queue: queue.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
        };
        let retention = Retention {
            pool: pool.clone(),
            clock: clock.clone(),
            periods: settings.retention,
            batch: settings.retention_batch,
        };
        let nudges = Nudges::default();
        let reconciler = Reconciler {
            pool: pool.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            interval: settings.reconcile_interval,
            batch: settings.reconcile_batch,
            max_per_round: settings.reconcile_max_per_round,
            drain_concurrency: settings.drain_concurrency,
            drain_batch: settings.drain_batch,
            store: SlaStore::default(),
            metrics: metrics.clone(),
            email_nudge: nudges.of(DeliverEmail::QUEUE),
            rounds: Default::default(),
        };
        let contact_retention = ContactRetention {
            pool: pool.clone(),
            clock: reconciler.clock.clone(),
            keep_for: settings.contact_retention,
            batch: 1000,
        };
        let extra_roots = match &config.egress_ca_file {
            Some(path) => egress::read_roots(path)?,
            None => Vec::new(),
        };
        let prober = Prober {
            pool: pool.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            client: EgressClient::new(
                config.egress.clone(),
                &EgressOptions { extra_roots: extra_roots.clone(), ..EgressOptions::default() },
            )?,
            store: SlaStore::default(),
            settings: settings.probes.clone(),
            canary_url: config.probe_canary_url.clone(),
            metrics: metrics.clone(),
            recent: Arc::default(),
            ticks: Default::default(),
            prepared_day: Arc::default(),
        };
        let monitor_upkeep = MonitorUpkeep {
            pool: pool.clone(),
            clock: clock.clone(),
            retention_days: config.probe_retention_days,
            metrics: metrics.clone(),
        };
        let egress = egress::EgressClient::new(
            config.egress.clone(),
            &egress::EgressOptions { total_timeout: settings.webhooks.timeout, extra_roots, ..Default::default() },
        )?;
        let webhooks = WebhookDelivery {
            pool: pool.clone(),
            client: egress,
            queue: queue.clone(),
            clock: clock.clone(),
            settings: settings.webhooks.clone(),
            metrics: metrics.clone(),
            held: Arc::default(),
        };
        let ticket_notifications = settings.ticket_notifications.then(|| timers.clone());
        let outbox_notifications = settings.outbox_notifications.then(|| pool.clone());
        let queues: Arc<[QueueSpec]> = queues::registry().into();
        let (lease, promote_interval, shutdown_timeout) = (
            settings.delivery.lease,
            (settings.poll_interval / 2).max(Duration::from_millis(50)),
            settings.shutdown_timeout,
        );
        let consumers = Consumers {
            prefix: config.redis_prefix.clone(),
            redis: redis.clone(),
            settings,
            delivery,
            timers,
            reconciler: reconciler.clone(),
            retention,
            contact_retention,
            prober,
            monitor_upkeep,
            webhooks: webhooks.clone(),
            nudges: nudges.clone(),
        };
        let monitor = queues
            .iter()
            .fold(Monitor::new(), |monitor, spec| (spec.register)(monitor, &consumers))
            // A worker stops when its backend fails (Redis unreachable). Restart it, pausing
            // first (see `queues::pause_before_restart`) so an outage does not become a busy loop.
            .should_restart(|worker, error| {
                tracing::error!(worker = worker.name(), restarts = worker.restarts(), error = %error, "worker stopped; restarting");
                true
            })
            .shutdown_timeout(shutdown_timeout);
        let health_state = HealthState { pool, redis, metrics: metrics.clone(), queues: queues.clone() };
        Ok(Self {
            monitor,
            health_listener,
            health_address,
            health_state,
            queue,
            metrics,
            outbox_notifications,
            ticket_notifications,
            promote_interval,
            queues,
            claims,
            reconciler,
            lease,
            clock,
            webhooks,
            nudges,
            claims_pool,
            stopping,
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
        queues::promote_all(&self.queues, &self.queue).await;
        let promoter = tokio::spawn(promote_forever(self.queues.clone(), self.queue.clone(), self.promote_interval));
        let vacuum = tokio::spawn(vacuum_forever(self.queues.clone(), self.queue.clone()));
        let heartbeat =
            tokio::spawn(self.claims.clone().heartbeat_forever(self.claims_pool, self.clock.clone(), self.lease));
        let sweep = tokio::spawn(sweep_outbox_forever(self.reconciler.clone(), self.lease));
        let listener = self.outbox_notifications.map(|pool| {
            tokio::spawn(outbox_listener::run(pool, self.queue.clone(), self.nudges.of(DeliverEmail::QUEUE)))
        });
        let ticket_listener = self
            .ticket_notifications
            .map(|timers| tokio::spawn(ticket_listener::run(timers.pool, timers.queue, timers.clock)));
        let webhook_heartbeat = tokio::spawn(self.webhooks.clone().heartbeat_forever());
        let webhook_sweep = tokio::spawn(self.webhooks.clone().sweep_forever());
        let webhook_listener = self.webhooks.settings.notifications.then(|| {
            let nudge = self.nudges.of(DeliverWebhooks::QUEUE);
            tokio::spawn(webhook_listener::run(self.webhooks.pool.clone(), self.queue.clone(), nudge))
        });
        tracing::info!(health = %self.health_address, "worker started");
        let stopping = self.stopping.clone();
        let result = self
            .monitor
            .run_with_signal(async move {
                shutdown.await;
                stopping.store(true, std::sync::atomic::Ordering::Release);
                tracing::info!("shutting down: finishing the jobs in flight");
                Ok(())
            })
            .await;
        health.abort();
        promoter.abort();
        vacuum.abort();
        heartbeat.abort();
        sweep.abort();
        webhook_heartbeat.abort();
        webhook_sweep.abort();
        if let Some(listener) = webhook_listener {
            listener.abort();
        }
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

/// Runs [`queues::promote_all`] every `interval`, more often than the consumers poll, so that
/// delayed jobs falling due together never pile up beyond what apalis-redis's fetch can move.
async fn promote_forever(queues: Arc<[QueueSpec]>, queue: JobQueue, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        queues::promote_all(&queues, &queue).await;
    }
}

/// How often finished jobs are vacuumed from Redis: apalis-redis's vacuum reads every job the
/// queue holds, in one Lua call that blocks Redis (some 200 ms with 20,000 jobs queued,
/// measured), so running it often would spend most of Redis's time on it during a backlog.
const VACUUM_EVERY: Duration = Duration::from_secs(5 * 60);

/// Vacuums every queue at start-up, then every [`VACUUM_EVERY`].
async fn vacuum_forever(queues: Arc<[QueueSpec]>, queue: JobQueue) {
    loop {
        queues::vacuum_all(&queues, &queue).await;
        tokio::time::sleep(VACUUM_EVERY).await;
    }
}

/// Queues the due outbox rows attempted before every half lease, between the reconciler's
/// rounds (a minute apart): a dead worker's claims run out one lease after its last heartbeat,
/// and this is what hands them to a live worker within about a minute. Rows never attempted are
/// left to their fast-path jobs and the rounds. Cheap: a scan of the due rows of the partial
/// index (few, unless a backlog is being sent), and the per-attempt idempotency keys stop it
/// queueing what a round already queued.
async fn sweep_outbox_forever(reconciler: Reconciler, lease: chrono::TimeDelta) {
    let every = (lease.to_std().unwrap_or(Duration::from_secs(30)) / 2).max(Duration::from_millis(500));
    loop {
        tokio::time::sleep(every).await;
        match reconciler.run_outbox_retries().await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "outbox sweep queued expired claims and retries"),
            Err(error) => tracing::warn!(%error, "outbox sweep failed; the next one will try again"),
        }
    }
}
