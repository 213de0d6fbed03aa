//! The worker's monitoring operations (R11, R12): claiming due monitors, recording probe results
//! through the domain's state machine, and the alerts, tickets and pages that follow, each in the
//! transaction that records its cause (DESIGN §3). The monitors' CRUD and the API's reads are in
//! `monitoring`; this module is what the probing worker does to them.
//!
//! - [`claim`]: due monitors claimed with `FOR UPDATE SKIP LOCKED`, and what to probe.
//! - [`record`]: one result: the check row, the state machine, the incident, the alerts.
//! - [`certificate`]: the TLS expiry warning.
//! - [`alerts`]: the e-mails of an alert, the emergency ticket and the on-call page.
//! - [`storm`]: the storm guard's episodes ("probe connectivity problem").
//! - [`upkeep`]: self-check, partitions and hourly rollups.

pub mod alerts;
pub mod certificate;
pub mod claim;
pub mod holds;
pub mod record;
pub mod storm;
pub mod upkeep;
