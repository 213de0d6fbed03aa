//! HTTP integration tests: the real API on a random port, a fresh PostgreSQL database per test,
//! real Redis under a key prefix of its own. One binary, so there is one link step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod admin;
mod binary;
mod calendar;
mod contact;
mod errors;
mod health;
mod helpers;
mod http_contract;
mod maintenance_windows;
mod meetings;
mod monitors;
mod openapi;
mod organizations;
mod privacy;
mod reports;
mod sessions;
mod spec_coverage;
mod ticket_model;
mod tickets;
mod webhooks;
mod writes;
