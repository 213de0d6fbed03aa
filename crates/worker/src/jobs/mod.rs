//! One module per job handler.

pub mod email;
