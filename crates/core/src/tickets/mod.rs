//! Tickets under the policy (DESIGN R2–R6, R9), stored. The rules — what each command does, and
//! what "breached" means — are `helpdesk_domain::tickets`; this module loads a ticket, runs the
//! command, and persists what it returns: the ticket, its clock events and projection, its
//! timeline and the e-mails it causes. Every operation runs on a connection or transaction its
//! caller owns, so several compose into one atomic change. Timer jobs are the worker's business;
//! they find tickets by the stored instants.
//!
//! - [`store`]: the column list, loading, locking and saving;
//! - [`open`]: the three ways to open a ticket;
//! - [`conversation`]: replies and notes;
//! - [`lifecycle`]: staff changes, close, reopen;
//! - [`queries`]: lists, timeline, SLA explanation;
//! - [`reproject`]: moving open tickets onto new calendar or policy versions;
//! - [`notify`]: notifications to outbox e-mails.

pub mod conversation;
pub mod lifecycle;
pub(crate) mod notify;
pub mod open;
pub mod queries;
pub mod reproject;
pub mod store;

pub use conversation::{Message, NewMessage, messages, post_message};
pub use helpdesk_domain::tickets::Ticket;
pub use lifecycle::{TicketUpdate, close, reopen, update};
pub use open::{NewTicket, open, open_for_organization};
pub use queries::{Sort, TicketFilter, TimelineEvent, events, explain_sla, list};
pub use reproject::reproject_batch;
pub use store::{get, locked_version};
