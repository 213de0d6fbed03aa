//! Worker integration tests: the real worker in-process, a fresh PostgreSQL database per test,
//! real Redis under a key prefix of its own, and a real SMTP listener written for the tests. One
//! binary, so there is one link step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bench;
mod contact_retention;
mod delivery;
mod fixtures;
mod health;
mod helpers;
mod notifications;
mod private_redis;
mod reconcile;
mod resilience;
mod smtp_server;
mod ticket_timers;
mod upgrade;
