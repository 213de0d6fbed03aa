//! Tickets (DESIGN R3–R9): the lifecycle rules ([`lifecycle`]), the ticket itself and its one
//! definition of breached and at risk ([`ticket`], [`verdict`]), and the aggregate whose commands
//! say what each change does ([`aggregate`]). Storage loads a [`Ticket`], runs a command, and
//! persists what the command returns.

pub mod aggregate;
pub mod lifecycle;
pub mod ticket;
pub mod verdict;

pub use aggregate::{Audience, Notice, Notification, OpenTicket, Opener, TicketChange, TimelineEntry};
pub use lifecycle::*;
pub use ticket::{Source, Ticket};
