//! Worker integration tests: the real worker in-process, a fresh PostgreSQL database per test,
//! real Redis under a key prefix of its own, and a real SMTP listener written for the tests. One
//! binary, so there is one link step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bench;
mod contact_retention;
mod delivery;
mod egress;
mod fixtures;
mod health;
mod helpers;
mod meetings;
mod monitoring;
mod monitoring_guard;
mod monitoring_probe;
mod monitoring_resilience;
mod monitoring_support;
mod monitoring_tls;
mod monitoring_windows;
mod notifications;
mod private_redis;
mod reconcile;
mod reprojection;
mod resilience;
mod retention;
mod schedule;
/// The SMTP listener the suites share.
mod smtp_server {
    pub use helpdesk_test_support::smtp::*;
}
mod targets;
mod ticket_timers;
mod tls_targets;
mod upgrade;
mod webhook_receiver;
mod webhooks;
mod webhooks_killed;
