//! What every handler can reach: the database, Redis, token keys, the clock and configuration.

use crate::auth_cache::AuthCache;
use crate::metrics::Metrics;
use helpdesk_core::contact::FormTokens;
use helpdesk_core::rate_limit::RateLimiter;
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::tokens::TokenKeys;
use helpdesk_core::{Clock, Config};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use std::sync::Arc;

pub struct AppState {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub keys: TokenKeys,
    pub limiter: RateLimiter,
    pub clock: Clock,
    pub config: Config,
    /// Also registered on its own as app data, for the request-metrics middleware.
    pub metrics: Arc<Metrics>,
    /// Calendar and SLA policy versions, cached per process (they never change once written).
    pub sla: SlaStore,
    pub auth_cache: AuthCache,
    /// The contact form's one-time tokens (when each form was served).
    pub contact_forms: FormTokens,
}
