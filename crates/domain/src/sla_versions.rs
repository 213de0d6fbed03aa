//! The calendar and SLA policy versions in force at one moment, as every ticket command sees them.
//! Storage reads them (core's `SlaStore`); the rules here only consume them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::calendar::BusinessCalendar;
use crate::sla::SlaPolicy;

/// The current calendar and policy plus every calendar version a clock may refer to.
#[derive(Debug, Clone)]
pub struct SlaSnapshot {
    pub calendars: BTreeMap<u32, BusinessCalendar>,
    pub calendar: BusinessCalendar,
    pub calendar_created_at: DateTime<Utc>,
    pub policy: SlaPolicy,
    pub policy_created_at: DateTime<Utc>,
}
