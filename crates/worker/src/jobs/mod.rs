//! One module per job handler.

pub mod email;
pub mod ticket_timer;
pub mod webhook;
