//! End-to-end walks through the policy (docs/policy.md) as customers, agents and admins take
//! them, against the real binaries: see `helpdesk_system_tests::System`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod meetings;
mod support;
mod tickets;
