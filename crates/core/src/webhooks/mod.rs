//! Webhook subscriptions and their deliveries (issue 13). Events are recorded by
//! [`crate::webhook_events`]; this module is what admins manage and what the worker drives.

pub mod deliveries;
pub mod retention;
pub mod subscriptions;

pub use deliveries::{Attempt, Delivery};
pub use subscriptions::{NewSubscription, Subscription, SubscriptionUpdate};
