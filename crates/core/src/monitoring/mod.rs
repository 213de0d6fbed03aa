//! Uptime monitoring (R11) and maintenance windows (R12): the operations the API runs and the
//! queries the worker shares.
//!
//! - [`monitors`]: create, read, list, change, pause, resume and delete monitors.
//! - [`windows`]: maintenance windows, and which of them apply to a monitor.
//! - [`incidents`]: incidents with their alerts.
//! - [`uptime`]: uptime over 24 h, 7 d and 30 d from incidents, maintenance and gaps.
//!
//! Customers see only their own organisation's monitors and incidents, and the windows that
//! concern them; anything else is "not found".

pub mod incidents;
pub mod monitors;
pub mod uptime;
pub mod windows;
