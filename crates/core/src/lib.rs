//! The helpdesk's operations over PostgreSQL and Redis. Each operation applies the rules of
//! `helpdesk-domain`, persists in one transaction, and writes the e-mails it causes to the outbox.
//! Shared by the API and the worker; knows nothing of HTTP or job queues' wire formats.

pub mod accounts;
pub mod admin_contacts;
pub mod audit;
pub mod calendar_admin;
pub mod caller;
pub mod clock;
pub mod config;
pub mod consultants;
pub mod contact;
pub mod db;
pub mod egress;
pub mod email_admin;
pub mod error;
pub mod idempotency;
pub mod jobs;
pub mod meeting_invites;
pub mod meeting_reminders;
pub mod meetings;
pub mod monitoring;
pub mod organizations;
pub mod outbox;
pub mod pagination;
pub mod passwords;
pub mod personal_data;
pub mod probing;
pub mod rate_limit;
pub mod redis_conn;
pub mod reports;
pub mod retention;
pub mod sla_store;
pub mod telemetry;
pub mod terms;
pub mod ticket_timers;
pub mod tickets;
pub mod tokens;
pub mod webhook_events;
pub mod webhooks;

pub use clock::Clock;
pub use config::Config;
pub use error::{CoreError, FieldError};
