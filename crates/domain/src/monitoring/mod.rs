//! Uptime monitoring (R11) and maintenance windows (R12), as pure rules.
//!
//! - [`status`]: the vocabularies shared with the worker and the API (monitor state, error kinds,
//!   incident and alert kinds), each with its stored spelling.
//! - [`settings`]: what a monitor may be configured to, and what an answer must look like to count
//!   as up.
//! - [`schedule`]: each monitor's stable phase offset and its planned slots.
//! - [`maintenance`]: one-off and weekly windows on the local wall clock, which instants and which
//!   monitors they cover.
//! - [`span`]: half-open spans and their set arithmetic.
//! - [`uptime`]: the share of observed time a monitor was up, from its incidents, with
//!   maintenance and "no data" time left out.
//!
//! - [`certificate`]: the TLS expiry warning, raised once per expiring certificate.
//! - [`probe_state`]: the probe-result state machine (confirmation, DOWN, recovery, flapping,
//!   escalation timers, holds for maintenance and storms).

pub mod certificate;
pub mod maintenance;
pub mod probe_state;
pub mod schedule;
pub mod settings;
pub mod span;
pub mod status;
pub mod uptime;
