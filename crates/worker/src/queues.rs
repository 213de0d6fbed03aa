//! The registry of the worker's queues: one [`QueueSpec`] per queue, and everything done for every
//! queue (registering its consumer on the monitor, moving its due delayed jobs onto the ready list,
//! vacuuming its finished jobs, its job counters on `/metrics`) iterates over [`registry`].
//! Adding a queue (meetings reminders, monitor probes, webhooks…) is one entry there, plus its
//! handler's module and its counters field in `Metrics`.

use apalis::prelude::{BackendExt, Monitor, WorkerBuilder, WorkerBuilderExt};
use apalis_core::backend::Vacuum;
use apalis_cron::CronScheduler;
use apalis_redis::RedisStorage;
use futures_util::future::BoxFuture;
use helpdesk_core::jobs::{self as queue_jobs, DeliverEmail, DeliverWebhooks, Job, JobQueue, ProbeBatch, TicketTimer};
use std::time::Duration;

use crate::contact_retention::{ContactRetention, prune_contact_requests};
use crate::jobs::email::{EmailDelivery, deliver_email};
use crate::jobs::ticket_timer::{TicketTimers, run_ticket_timer};
use crate::jobs::webhook::{WebhookDelivery, deliver_webhooks};
use crate::metrics::{Metrics, QueueCounters};
use crate::monitoring::prober::{Prober, run_probe_batch, tick};
use crate::monitoring::upkeep::{MonitorUpkeep, run_upkeep};
use crate::polling::{Every, Nudges};
use crate::reconcile::{EveryInterval, Reconciler, reconcile};
use crate::retention::{self, Retention};
use crate::settings::WorkerSettings;

/// What the consumers need: each queue's handler context and the shared settings.
pub struct Consumers {
    pub prefix: String,
    pub redis: redis::aio::ConnectionManager,
    pub settings: WorkerSettings,
    pub delivery: EmailDelivery,
    pub timers: TicketTimers,
    pub reconciler: Reconciler,
    pub retention: Retention,
    pub contact_retention: ContactRetention,
    pub prober: Prober,
    pub monitor_upkeep: MonitorUpkeep,
    pub webhooks: WebhookDelivery,
    /// Wake each Redis queue's consumer when this process pushes to it.
    pub nudges: Nudges,
}

/// One queue the worker consumes.
#[derive(Clone, Copy)]
pub struct QueueSpec {
    /// Its name in logs, in `/metrics` (`queue="…"`) and in the apalis worker's name.
    pub label: &'static str,
    /// Its job counters.
    pub counters: fn(&Metrics) -> &QueueCounters,
    /// For a Redis-backed queue: how to move its due jobs and vacuum its finished ones.
    pub storage: Option<RedisQueueOps>,
    /// Registers its consumer on the monitor.
    pub register: fn(Monitor, &Consumers) -> Monitor,
}

/// The housekeeping of a Redis-backed queue of job type `J`, as plain functions.
#[derive(Clone, Copy)]
pub struct RedisQueueOps {
    promote: fn(JobQueue) -> BoxFuture<'static, Result<usize, String>>,
    vacuum: fn(JobQueue) -> BoxFuture<'static, Result<usize, String>>,
}

impl RedisQueueOps {
    pub fn of<J: Job>() -> Self {
        Self {
            promote: |queue| Box::pin(async move { queue.promote_due::<J>().await.map_err(|e| e.to_string()) }),
            vacuum: |queue| {
                Box::pin(async move {
                    let mut storage = queue.storage::<J>();
                    storage.vacuum().await.map_err(|e| e.to_string())
                })
            },
        }
    }
}

/// Registers a Redis consumer of job type `$job` named `{label}-{worker name}`, running
/// `$concurrency` jobs at a time with `$handler` and its `$data`. A macro rather than a generic
/// function: apalis's builder types are long and would only repeat what the calls already say.
///
/// `lock_tasks(false)`: apalis-redis's task lock removes each started task from the queue's
/// ready list with an LREM, which scans the whole list, so a backlog of N jobs costs O(N²):
/// with 100,000 queued, 1.9 ms of Redis time per job, and Redis at 80 % of a core while the
/// worker ran 110 jobs a second (measured). The lock only records the task as running (fetch
/// already moved it to this worker's in-flight set, which is what recovery after a crash
/// uses), and every handler here is safe to run twice anyway.
macro_rules! redis_consumer {
    ($monitor:expr, $consumers:expr, $job:ty, $label:expr, $concurrency:expr, $data:expr, $handler:expr) => {{
        let consumers: &Consumers = $consumers;
        let settings = &consumers.settings;
        let config = queue_jobs::storage_config(&consumers.prefix, <$job as Job>::QUEUE)
            .batch_size(settings.fetch_batch.max(1))
            .heartbeat_interval(settings.heartbeat_interval)
            .lock_tasks(false);
        let name = format!("{}-{}", $label, settings.name);
        let (redis, poll_interval, concurrency, data) =
            (consumers.redis.clone(), settings.poll_interval, $concurrency.max(1), $data);
        let nudge = consumers.nudges.of(<$job as Job>::QUEUE);
        $monitor.register(move |restarts| {
            let storage = RedisStorage::<$job>::new(redis.clone()).with_config(config.clone());
            WorkerBuilder::new(name.as_str())
                .backend(
                    storage
                        .before_start(move |_| pause_before_restart(restarts))
                        .poll_with_strategy(Every::new(poll_interval).nudged_by(nudge.clone())),
                )
                .concurrency(concurrency)
                .data(data.clone())
                .build($handler)
        })
    }};
}

/// Every queue, in the order they are registered and reported.
pub fn registry() -> Vec<QueueSpec> {
    vec![
        QueueSpec {
            label: "email",
            counters: |metrics| &metrics.email_jobs,
            storage: Some(RedisQueueOps::of::<DeliverEmail>()),
            register: |monitor, consumers| {
                let concurrency = consumers.settings.email_concurrency;
                redis_consumer!(
                    monitor,
                    consumers,
                    DeliverEmail,
                    "email",
                    concurrency,
                    consumers.delivery.clone(),
                    deliver_email
                )
            },
        },
        QueueSpec {
            label: "ticket-timers",
            counters: |metrics| &metrics.timer_jobs,
            storage: Some(RedisQueueOps::of::<TicketTimer>()),
            register: |monitor, consumers| {
                let (concurrency, data) = (consumers.settings.timer_concurrency, consumers.timers.clone());
                redis_consumer!(monitor, consumers, TicketTimer, "ticket-timers", concurrency, data, run_ticket_timer)
            },
        },
        QueueSpec {
            label: "webhooks",
            counters: |metrics| &metrics.webhook_jobs,
            storage: Some(RedisQueueOps::of::<DeliverWebhooks>()),
            register: |monitor, consumers| {
                let (concurrency, data) = (consumers.settings.webhooks.concurrency, consumers.webhooks.clone());
                redis_consumer!(monitor, consumers, DeliverWebhooks, "webhooks", concurrency, data, deliver_webhooks)
            },
        },
        QueueSpec {
            label: "reconcile",
            counters: |metrics| &metrics.reconcile_jobs,
            storage: None,
            register: |monitor, consumers| {
                let name = format!("reconcile-{}", consumers.settings.name);
                let (interval, reconciler) = (consumers.settings.reconcile_interval, consumers.reconciler.clone());
                monitor.register(move |_| {
                    WorkerBuilder::new(name.as_str())
                        .backend(CronScheduler::new(EveryInterval::new(interval)))
                        .data(reconciler.clone())
                        .build(reconcile)
                })
            },
        },
        QueueSpec {
            label: "retention",
            counters: |metrics| &metrics.retention_jobs,
            storage: None,
            register: |monitor, consumers| {
                let name = format!("retention-{}", consumers.settings.name);
                let (interval, retention) = (consumers.settings.retention_interval, consumers.retention.clone());
                monitor.register(move |_| {
                    WorkerBuilder::new(name.as_str())
                        .backend(CronScheduler::new(EveryInterval::new(interval)))
                        .data(retention.clone())
                        .build(retention::prune)
                })
            },
        },
        QueueSpec {
            label: "contact-retention",
            counters: |metrics| &metrics.contact_retention_jobs,
            storage: None,
            register: |monitor, consumers| {
                let name = format!("contact-retention-{}", consumers.settings.name);
                let (interval, retention) =
                    (consumers.settings.retention_interval, consumers.contact_retention.clone());
                monitor.register(move |_| {
                    WorkerBuilder::new(name.as_str())
                        .backend(CronScheduler::new(EveryInterval::new(interval)))
                        .data(retention.clone())
                        .build(prune_contact_requests)
                })
            },
        },
        QueueSpec {
            label: "monitor-tick",
            counters: |metrics| &metrics.monitor_tick_jobs,
            storage: None,
            register: |monitor, consumers| {
                let name = format!("monitor-tick-{}", consumers.settings.name);
                let (interval, prober) = (consumers.settings.probes.tick_interval, consumers.prober.clone());
                monitor.register(move |_| {
                    WorkerBuilder::new(name.as_str())
                        .backend(CronScheduler::new(EveryInterval::new(interval)))
                        .data(prober.clone())
                        .build(tick)
                })
            },
        },
        QueueSpec {
            label: "monitor-probes",
            counters: |metrics| &metrics.probe_jobs,
            storage: Some(RedisQueueOps::of::<ProbeBatch>()),
            register: |monitor, consumers| {
                let (concurrency, data) = (consumers.settings.probes.batch_concurrency, consumers.prober.clone());
                redis_consumer!(monitor, consumers, ProbeBatch, "monitor-probes", concurrency, data, run_probe_batch)
            },
        },
        QueueSpec {
            label: "monitor-upkeep",
            counters: |metrics| &metrics.monitor_upkeep_jobs,
            storage: None,
            register: |monitor, consumers| {
                let name = format!("monitor-upkeep-{}", consumers.settings.name);
                let (interval, upkeep) = (consumers.settings.probes.upkeep_interval, consumers.monitor_upkeep.clone());
                monitor.register(move |_| {
                    WorkerBuilder::new(name.as_str())
                        .backend(CronScheduler::new(EveryInterval::new(interval)))
                        .data(upkeep.clone())
                        .build(run_upkeep)
                })
            },
        },
    ]
}

/// A worker stops when its backend fails (Redis unreachable) and the monitor restarts it: pause
/// first, longer after each restart, so an outage does not become a busy loop.
async fn pause_before_restart(restarts: usize) -> Result<(), apalis_redis::Error> {
    if restarts > 0 {
        let seconds = u64::try_from(restarts.min(30)).unwrap_or(30);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
    Ok(())
}

/// Moves the due delayed jobs of every Redis-backed queue onto its ready list, in chunks
/// (`JobQueue::promote_due` says why apalis-redis cannot be left to do it alone).
pub async fn promote_all(queues: &[QueueSpec], queue: &JobQueue) {
    for spec in queues {
        let Some(storage) = spec.storage else { continue };
        match (storage.promote)(queue.clone()).await {
            Ok(0) => {}
            Ok(moved) => tracing::debug!(queue = spec.label, moved, "moved due jobs onto the queue"),
            Err(error) => tracing::warn!(queue = spec.label, %error, "cannot move due jobs onto the queue"),
        }
    }
}

/// Removes the finished jobs of every Redis-backed queue; without this their hashes only grow.
pub async fn vacuum_all(queues: &[QueueSpec], queue: &JobQueue) {
    for spec in queues {
        let Some(storage) = spec.storage else { continue };
        match (storage.vacuum)(queue.clone()).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(queue = spec.label, removed, "vacuumed finished jobs"),
            Err(error) => tracing::warn!(queue = spec.label, %error, "cannot vacuum finished jobs"),
        }
    }
}

/// Every queue's counters, labelled, for `/metrics`.
pub fn counters<'m>(queues: &[QueueSpec], metrics: &'m Metrics) -> Vec<(&'static str, &'m QueueCounters)> {
    queues.iter().map(|spec| (spec.label, (spec.counters)(metrics))).collect()
}
