//! Webhooks (issue 13): which events exist and what they carry, which subscription receives which
//! event, when a failed delivery is tried again, when a subscription that keeps failing is
//! disabled, and the Standard Webhooks signature. Pure: the core stores, the worker sends.

pub mod events;
pub mod retry;
pub mod routing;
pub mod signature;
pub mod ticket_events;

pub use events::{EventData, EventType, UnknownEventType, WebhookEvent};
pub use retry::{DisableRule, RetryPolicy};
pub use routing::SubscriptionFilter;
pub use signature::{Secret, SecretError};
