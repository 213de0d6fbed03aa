//! Monitoring housekeeping on apalis-cron (every `upkeep_interval`, and at start-up): the
//! self-check, the daily partitions (created ahead, dropped after the retention) and the hourly
//! rollups of the last complete hours. All idempotent, so replicas running it side by side do no
//! harm (the partition functions tolerate a concurrent creator at worst by failing one round).

use apalis::prelude::Data;
use apalis_cron::Tick;
use chrono::{DurationRound, TimeDelta, Utc};
use helpdesk_core::Clock;
use helpdesk_core::probing::upkeep;
use sqlx::PgPool;
use std::sync::Arc;

use super::prober::ProbeError;
use crate::metrics::{Metrics, increment};

#[derive(Clone)]
pub struct MonitorUpkeep {
    pub pool: PgPool,
    pub clock: Clock,
    pub retention_days: u32,
    pub metrics: Arc<Metrics>,
}

impl MonitorUpkeep {
    pub async fn run(&self) -> Result<(), ProbeError> {
        let now = self.clock.now();
        let mut conn = self.pool.acquire().await?;
        let partitions = upkeep::partitions(&mut conn, now.date_naive(), self.retention_days).await?;
        if partitions != upkeep::Partitions::default() {
            tracing::info!(?partitions, "monitoring partitions maintained");
        }
        let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
        upkeep::roll_up(&mut conn, hour - TimeDelta::hours(2), hour).await?;
        let overdue = upkeep::self_check(&mut conn, now).await?;
        if overdue > 0 {
            tracing::warn!(overdue, "monitors went two intervals without a check; agents alerted");
        }
        Ok(())
    }
}

pub async fn run_upkeep(_tick: Tick<Utc>, upkeep: Data<MonitorUpkeep>) -> Result<(), ProbeError> {
    let counters = &upkeep.metrics.monitor_upkeep_jobs;
    let result = upkeep.run().await;
    match &result {
        Ok(()) => increment(&counters.processed),
        Err(error) => {
            increment(&counters.failed);
            tracing::warn!(%error, "monitoring upkeep failed; the next round will try again");
        }
    }
    result
}
