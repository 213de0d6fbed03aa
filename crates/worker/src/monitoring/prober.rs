//! Probing on apalis (issue 10). A tick (apalis-cron, every second) claims the due monitors from
//! PostgreSQL in batches (`FOR UPDATE SKIP LOCKED`, each claim a lease on the monitor's planned
//! slot) and pushes one [`ProbeBatch`] job per batch on the `monitor-probes` queue. A batch job
//! probes its monitors concurrently (bounded) through the shared guarded client, looks for a
//! storm, and records each result in a transaction of its own. Several workers share the load:
//! a monitor is claimed by one of them per slot, and a result whose slot is no longer claimed
//! (a job replayed after its lease ran out) records nothing.

use apalis::prelude::Data;
use apalis_cron::Tick;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures_util::StreamExt;
use helpdesk_core::jobs::{Enqueue, EnqueueError, JobQueue, ProbeBatch};
use helpdesk_core::probing::claim::{self, Claimed, ProbeSpec};
use helpdesk_core::probing::record::{self, ProbeReport};
use helpdesk_core::probing::{storm, upkeep};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::{Clock, CoreError};
use helpdesk_domain::monitoring::settings::Keyword;
use helpdesk_domain::monitoring::status::KeywordMode;
use sqlx::PgPool;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::probe::{ProbeResult, ProbeTarget, probe};
use crate::egress::EgressClient;
use crate::metrics::{Metrics, increment};
use crate::reconcile::OneAtATime;

/// The probing's tuning.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// How often due monitors are claimed.
    pub tick_interval: Duration,
    /// Monitors per claim, and per job.
    pub batch: i64,
    /// Probes in flight at once in one batch job.
    pub concurrency: usize,
    /// Batch jobs run at once by this process.
    pub batch_concurrency: usize,
    /// Results recorded at once in one batch (one transaction each).
    pub record_concurrency: usize,
    /// How long a claim holds a monitor: longer than a batch can take (its probes' timeouts).
    pub lease: TimeDelta,
    /// Storm guard: the least probes in the last minute for "most failed" to mean anything.
    pub storm_min_probes: usize,
    /// Storm guard: the share of failures in the last minute that counts as "most".
    pub storm_share: f64,
    /// How often the self-check, partitions and rollups run.
    pub upkeep_interval: Duration,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            tick_interval: Duration::from_secs(1),
            batch: 200,
            concurrency: 200,
            batch_concurrency: 4,
            record_concurrency: 8,
            lease: TimeDelta::minutes(3),
            storm_min_probes: 20,
            storm_share: 0.6,
            upkeep_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

/// Results of the last minute: when (clock time) and whether it failed.
pub type RecentResults = VecDeque<(DateTime<Utc>, bool)>;

#[derive(Clone)]
pub struct Prober {
    pub pool: PgPool,
    pub queue: JobQueue,
    pub clock: Clock,
    pub client: EgressClient,
    pub store: SlaStore,
    pub settings: ProbeSettings,
    /// The operator's canary (storm guard); `None` turns the guard off.
    pub canary_url: Option<String>,
    pub metrics: Arc<Metrics>,
    /// This process's results of the last minute (clock time, failed), for the storm guard.
    pub recent: Arc<Mutex<RecentResults>>,
    pub ticks: OneAtATime,
    /// The day whose partitions this process has made sure of.
    pub prepared_day: Arc<Mutex<Option<NaiveDate>>>,
}

/// The apalis-cron handler of the tick.
pub async fn tick(_tick: Tick<Utc>, prober: Data<Prober>) -> Result<(), ProbeError> {
    let Some(_round) = prober.ticks.try_start() else { return Ok(()) };
    let counters = &prober.metrics.monitor_tick_jobs;
    match prober.claim_and_queue().await {
        Ok(_) => {
            increment(&counters.processed);
            Ok(())
        }
        Err(error) => {
            increment(&counters.failed);
            tracing::warn!(%error, "cannot claim due monitors; the next tick will try again");
            Err(error)
        }
    }
}

/// The handler of one batch job.
pub async fn run_probe_batch(job: ProbeBatch, prober: Data<Prober>) -> Result<(), ProbeError> {
    let counters = &prober.metrics.probe_jobs;
    match prober.run_batch(job.monitors).await {
        Ok(()) => {
            increment(&counters.processed);
            Ok(())
        }
        Err(error) => {
            increment(&counters.failed);
            tracing::warn!(%error, "probe batch failed; its monitors fall due again when their claims end");
            Err(error)
        }
    }
}

impl Prober {
    /// Claims every due monitor, a batch per statement, and queues a job per batch; returns how
    /// many were claimed.
    pub async fn claim_and_queue(&self) -> Result<usize, ProbeError> {
        let batch = self.settings.batch.max(1);
        let mut total = 0;
        loop {
            let claimed = {
                let mut conn = self.pool.acquire().await?;
                claim::claim_due(&mut conn, self.clock.now(), batch, self.settings.lease).await?
            };
            let count = claimed.len();
            if count == 0 {
                break;
            }
            total += count;
            // A job lost here (Redis down) costs one lease: the claims run out and the monitors
            // are claimed again, for their original slots.
            self.queue.push(Enqueue::now(ProbeBatch { monitors: claimed })).await?;
            if i64::try_from(count).unwrap_or(i64::MAX) < batch {
                break;
            }
        }
        Ok(total)
    }

    /// Probes a batch and records the results.
    pub async fn run_batch(&self, claimed: Vec<Claimed>) -> Result<(), ProbeError> {
        self.prepare_day().await;
        let ids: Vec<_> = claimed.iter().map(|c| c.monitor_id).collect();
        let specs: HashMap<_, _> = {
            let mut conn = self.pool.acquire().await?;
            claim::specs(&mut conn, &ids).await?.into_iter().map(|spec| (spec.id, spec)).collect()
        };
        let probes: Vec<(Claimed, ProbeTarget)> =
            claimed.iter().filter_map(|c| specs.get(&c.monitor_id).map(|spec| (*c, target_of(spec)))).collect();
        // The futures own what they use: apalis needs the handler's future to be `Send` for any
        // lifetime, which borrowed closures in a stream cannot promise.
        let (client, clock) = (self.client.clone(), self.clock.clone());
        let results: Vec<(Claimed, ProbeResult)> = futures_util::stream::iter(probes)
            .map(move |(claimed, target)| {
                let (client, clock) = (client.clone(), clock.clone());
                async move { (claimed, probe(&client, &target, clock.now()).await) }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        self.metrics.probes_run.fetch_add(results.len() as u64, Ordering::Relaxed);
        let storm = self.storm_check(&results).await?;
        let this = self.clone();
        let recorded: Vec<Result<(), ProbeError>> = futures_util::stream::iter(results)
            .map(move |(claimed, result)| {
                let this = this.clone();
                async move { this.record(claimed, result, storm).await }
            })
            .buffer_unordered(self.settings.record_concurrency.max(1))
            .collect()
            .await;
        recorded.into_iter().collect()
    }

    /// Creates today's partitions if this process has not yet today. A failure (another worker
    /// creating the same partition at once) is logged; the daily upkeep creates them anyway.
    async fn prepare_day(&self) {
        let today = self.clock.now().date_naive();
        if *self.prepared_day.lock().unwrap_or_else(PoisonError::into_inner) == Some(today) {
            return;
        }
        let ensured = async {
            let mut conn = self.pool.acquire().await.map_err(CoreError::from)?;
            upkeep::ensure_day(&mut conn, today).await
        };
        match ensured.await {
            Ok(_) => *self.prepared_day.lock().unwrap_or_else(PoisonError::into_inner) = Some(today),
            Err(error) => tracing::warn!(%error, "cannot prepare today's probe partitions"),
        }
    }

    async fn record(&self, claimed: Claimed, result: ProbeResult, storm: bool) -> Result<(), ProbeError> {
        let report = ProbeReport {
            monitor_id: claimed.monitor_id,
            slot: claimed.slot,
            started_at: result.started_at,
            status_code: result.status,
            latency_ms: Some(result.latency_ms()),
            outcome: result.outcome,
            certificate_expires_at: result.certificate_expires_at,
        };
        let mut tx = self.pool.begin().await?;
        let recorded = record::record(&mut tx, &self.store, &report, storm, self.clock.now()).await?;
        tx.commit().await?;
        if !recorded.alerts.is_empty() {
            tracing::info!(monitor = %claimed.monitor_id, alerts = ?recorded.alerts, "monitor alerts announced");
        }
        Ok(())
    }

    /// The storm guard: most of this process's probes of the last minute failed (at least
    /// `storm_min_probes` of them) and the canary fails too. Opens one episode (one alert to the
    /// agents), holds alerts while it lasts, and ends it once the canary answers.
    async fn storm_check(&self, results: &[(Claimed, ProbeResult)]) -> Result<bool, ProbeError> {
        let Some(canary) = &self.canary_url else { return Ok(false) };
        let now = self.clock.now();
        let (failing, probed) = {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            recent.extend(results.iter().map(|(_, result)| (now, result.outcome.is_failure())));
            while recent.front().is_some_and(|(at, _)| *at < now - TimeDelta::minutes(1)) {
                recent.pop_front();
            }
            (recent.iter().filter(|(_, failed)| *failed).count(), recent.len())
        };
        #[allow(clippy::cast_precision_loss)]
        let stormy = probed >= self.settings.storm_min_probes.max(1)
            && failing as f64 >= probed as f64 * self.settings.storm_share;
        let active = {
            let mut conn = self.pool.acquire().await?;
            storm::active(&mut conn).await?
        };
        if !stormy && !active {
            return Ok(false);
        }
        let target = ProbeTarget {
            url: canary.clone(),
            expected_statuses: Vec::new(),
            keyword: None,
            latency_threshold: None,
            timeout: Duration::from_secs(10),
        };
        let canary_down = probe(&self.client, &target, now).await.outcome.is_failure();
        let mut tx = self.pool.begin().await?;
        let holding = match (canary_down, stormy) {
            (true, true) => {
                if storm::begin(&mut tx, failing, probed, canary, now).await? {
                    tracing::warn!(failing, probed, "probe connectivity problem: alerts held");
                }
                true
            }
            (true, false) => true,
            (false, _) => {
                if storm::end(&mut tx, now).await? {
                    tracing::info!("probe connectivity is back");
                }
                false
            }
        };
        tx.commit().await?;
        Ok(holding)
    }
}

fn target_of(spec: &ProbeSpec) -> ProbeTarget {
    let keyword = match (&spec.keyword, spec.keyword_mode.as_deref().and_then(KeywordMode::parse)) {
        (Some(text), Some(mode)) => Some(Keyword { text: text.clone(), mode }),
        _ => None,
    };
    ProbeTarget {
        url: spec.url.clone(),
        expected_statuses: spec.expected_status_codes.iter().filter_map(|code| u16::try_from(*code).ok()).collect(),
        keyword,
        latency_threshold: spec.latency_threshold_ms.and_then(|ms| u64::try_from(ms).ok()).map(Duration::from_millis),
        timeout: Duration::from_secs(u64::try_from(spec.timeout_seconds).unwrap_or(15)),
    }
}
