//! Uptime monitoring in the worker (R11, R12): the probe, its scheduling on apalis, and upkeep.

pub mod probe;
pub mod prober;
pub mod upkeep;
