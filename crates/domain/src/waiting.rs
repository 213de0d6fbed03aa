//! R8's waiting delays: how long a ticket waits for its customer before a reminder, and then
//! before it is closed. Part of the SLA policy (`sla`) and read by the timers (`timers`), so it
//! lives apart from both.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// R8's delays. Part of the SLA policy, so admins change them like the targets, as a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitingPolicy {
    /// Waiting for the customer this long earns one reminder e-mail (default 72).
    pub reminder_after_hours: u32,
    /// Still waiting this long after the reminder, the ticket is closed as `auto_closed` (default 48).
    pub auto_close_after_hours: u32,
}

impl Default for WaitingPolicy {
    fn default() -> Self {
        Self { reminder_after_hours: 72, auto_close_after_hours: 48 }
    }
}

impl WaitingPolicy {
    /// The longest delay accepted for either: 90 days.
    pub const MAX_HOURS: u32 = 90 * 24;

    /// How long a wait lasts before its reminder.
    pub fn reminder_after(&self) -> TimeDelta {
        TimeDelta::hours(i64::from(self.reminder_after_hours))
    }

    /// How long after the reminder the ticket is closed.
    pub fn auto_close_after(&self) -> TimeDelta {
        TimeDelta::hours(i64::from(self.auto_close_after_hours))
    }
}
