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
mod openapi;
mod organizations;
mod reports;
mod sessions;
mod tickets;
