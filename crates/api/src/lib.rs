//! The helpdesk's HTTP API: routes, authentication, problem+json errors, the OpenAPI document.
//! Handlers are short: extract, call a `helpdesk-core` operation, map the result.

pub mod auth;
pub mod auth_cache;
pub mod common_responses;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod methods;
pub mod metrics;
pub mod openapi;
pub mod preconditions;
pub mod rate_limits;
pub mod routes;
pub mod seed;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tx;
pub mod webhook_docs;
