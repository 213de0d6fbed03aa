//! The helpdesk's business rules, free of I/O: who may do what, what a plan entitles, and how
//! business time and the SLA clock are counted. Every other crate calls into this one.

pub mod accounts;
pub mod attainment;
pub mod calendar;
pub mod contact;
pub mod egress;
pub mod holidays;
pub mod meetings;
pub mod monitoring;
pub mod plans;
pub mod privacy;
pub mod sla;
pub mod sla_projection;
pub mod sla_validation;
pub mod sla_versions;
pub mod tickets;
pub mod timers;
pub mod waiting;
pub mod webhooks;
