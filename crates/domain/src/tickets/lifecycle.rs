//! The ticket lifecycle (DESIGN R3, R6, R9): statuses, the transitions between them, and who may
//! make each. Operations ask here before they change anything.

use crate::accounts::Role;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The customer may reopen a closed ticket for this long; after it, a new ticket references it.
pub const REOPEN_WINDOW: TimeDelta = TimeDelta::days(7);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Status {
    /// Kadix's move: the SLA clocks run.
    Open,
    /// The customer's move: the resolution clock is paused (R6) and the 72 h reminder runs (R8).
    WaitingCustomer,
    /// Done; the customer may reopen within [`REOPEN_WINDOW`].
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::WaitingCustomer => "waiting_customer",
            Status::Closed => "closed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value '{0}'")]
pub struct UnknownValue(pub String);

impl FromStr for Status {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Status::Open),
            "waiting_customer" => Ok(Status::WaitingCustomer),
            "closed" => Ok(Status::Closed),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

/// Why a ticket was closed; reports tell auto-closed tickets from resolved ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CloseReason {
    Resolved,
    NotNeeded,
    Duplicate,
    /// Closed by the system after the customer did not answer (R8). People cannot choose it.
    AutoClosed,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Resolved => "resolved",
            CloseReason::NotNeeded => "not_needed",
            CloseReason::Duplicate => "duplicate",
            CloseReason::AutoClosed => "auto_closed",
        }
    }
}

impl FromStr for CloseReason {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "resolved" => Ok(CloseReason::Resolved),
            "not_needed" => Ok(CloseReason::NotNeeded),
            "duplicate" => Ok(CloseReason::Duplicate),
            "auto_closed" => Ok(CloseReason::AutoClosed),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

/// Who acts on a ticket: a person with a role, or the system (timers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Person(Role),
    System,
}

impl Actor {
    fn is_staff_or_system(self) -> bool {
        match self {
            Actor::Person(role) => role.is_staff(),
            Actor::System => true,
        }
    }
}

/// A refused ticket action. Each maps to one stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketRuleError {
    #[error("only agents may {0}")]
    StaffOnly(&'static str),
    #[error("the ticket is closed; reopen it first")]
    Closed,
    #[error("the ticket is not closed")]
    NotClosed,
    #[error("the ticket is already {0}")]
    AlreadyInStatus(Status),
    #[error("closed tickets change status through close and reopen")]
    UseCloseOrReopen,
    #[error("the ticket was closed more than 7 days ago; open a new ticket that references it")]
    ReopenWindowExpired,
    #[error("only the system closes tickets as auto_closed")]
    ReservedReason,
}

impl TicketRuleError {
    pub fn code(&self) -> &'static str {
        match self {
            TicketRuleError::StaffOnly(_) => "staff_only",
            TicketRuleError::Closed => "ticket_closed",
            TicketRuleError::NotClosed => "ticket_not_closed",
            TicketRuleError::AlreadyInStatus(_) => "status_unchanged",
            TicketRuleError::UseCloseOrReopen => "invalid_transition",
            TicketRuleError::ReopenWindowExpired => "reopen_window_expired",
            TicketRuleError::ReservedReason => "reserved_reason",
        }
    }

    /// Permission problems are 403s; the rest conflict with the ticket's state (409).
    pub fn is_permission(&self) -> bool {
        matches!(self, TicketRuleError::StaffOnly(_) | TicketRuleError::ReservedReason)
    }
}

/// What a new message does to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyEffect {
    /// The status the ticket moves to, if it changes.
    pub new_status: Option<Status>,
    /// A public staff reply satisfies the first-response target (if not met yet).
    pub counts_as_first_response: bool,
}

/// A message by `author` on a ticket in `status`. Customers' replies hand the ticket back to
/// Kadix (R6: the clock resumes); agents may hand it to the customer with the same reply.
pub fn reply(
    status: Status,
    author: Role,
    internal: bool,
    then: Option<Status>,
) -> Result<ReplyEffect, TicketRuleError> {
    if status == Status::Closed {
        return Err(TicketRuleError::Closed);
    }
    if !author.is_staff() && (internal || then.is_some()) {
        return Err(TicketRuleError::StaffOnly(if internal { "write internal notes" } else { "set the status" }));
    }
    if then == Some(Status::Closed) {
        return Err(TicketRuleError::UseCloseOrReopen);
    }
    let new_status = if author.is_staff() {
        then.filter(|s| *s != status)
    } else {
        (status == Status::WaitingCustomer).then_some(Status::Open)
    };
    Ok(ReplyEffect { new_status, counts_as_first_response: author.is_staff() && !internal })
}

/// Moving between open and waiting-for-customer is the agents' call (and the system's).
pub fn set_status(status: Status, to: Status, actor: Actor) -> Result<(), TicketRuleError> {
    if !actor.is_staff_or_system() {
        return Err(TicketRuleError::StaffOnly("set the status"));
    }
    if status == Status::Closed || to == Status::Closed {
        return Err(TicketRuleError::UseCloseOrReopen);
    }
    if status == to {
        return Err(TicketRuleError::AlreadyInStatus(to));
    }
    Ok(())
}

/// Agent or customer may close (R9); `auto_closed` is reserved for the system.
pub fn close(status: Status, reason: CloseReason, actor: Actor) -> Result<(), TicketRuleError> {
    if reason == CloseReason::AutoClosed && actor != Actor::System {
        return Err(TicketRuleError::ReservedReason);
    }
    if status == Status::Closed {
        return Err(TicketRuleError::AlreadyInStatus(Status::Closed));
    }
    Ok(())
}

/// The customer may reopen within seven days of closing (R9); agents may always reopen, for
/// example after closing by mistake.
pub fn reopen(
    status: Status,
    closed_at: Option<DateTime<Utc>>,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<(), TicketRuleError> {
    if status != Status::Closed {
        return Err(TicketRuleError::NotClosed);
    }
    let within_window = closed_at.is_none_or(|closed| now - closed <= REOPEN_WINDOW);
    if !within_window && !actor.is_staff_or_system() {
        return Err(TicketRuleError::ReopenWindowExpired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CUSTOMER: Role = Role::Customer;
    const AGENT: Role = Role::Agent;

    #[test]
    fn customer_reply_hands_a_waiting_ticket_back() {
        assert_eq!(
            reply(Status::WaitingCustomer, CUSTOMER, false, None),
            Ok(ReplyEffect { new_status: Some(Status::Open), counts_as_first_response: false })
        );
        assert_eq!(
            reply(Status::Open, CUSTOMER, false, None),
            Ok(ReplyEffect { new_status: None, counts_as_first_response: false })
        );
    }

    #[test]
    fn agent_public_reply_is_a_first_response_and_may_wait_for_the_customer() {
        let effect = reply(Status::Open, AGENT, false, Some(Status::WaitingCustomer));
        assert_eq!(
            effect,
            Ok(ReplyEffect { new_status: Some(Status::WaitingCustomer), counts_as_first_response: true })
        );
        let note = reply(Status::Open, AGENT, true, None);
        assert_eq!(note, Ok(ReplyEffect { new_status: None, counts_as_first_response: false }));
    }

    #[test]
    fn customers_cannot_write_internal_notes_or_set_status() {
        assert!(matches!(reply(Status::Open, CUSTOMER, true, None), Err(TicketRuleError::StaffOnly(_))));
        assert!(matches!(
            reply(Status::Open, CUSTOMER, false, Some(Status::WaitingCustomer)),
            Err(TicketRuleError::StaffOnly(_))
        ));
        assert!(matches!(
            set_status(Status::Open, Status::WaitingCustomer, Actor::Person(CUSTOMER)),
            Err(TicketRuleError::StaffOnly(_))
        ));
    }

    #[test]
    fn nobody_replies_on_a_closed_ticket() {
        assert_eq!(reply(Status::Closed, AGENT, false, None), Err(TicketRuleError::Closed));
        assert_eq!(reply(Status::Closed, CUSTOMER, false, None), Err(TicketRuleError::Closed));
    }

    #[test]
    fn auto_closed_is_reserved_for_the_system() {
        assert_eq!(
            close(Status::WaitingCustomer, CloseReason::AutoClosed, Actor::Person(AGENT)),
            Err(TicketRuleError::ReservedReason)
        );
        assert_eq!(close(Status::WaitingCustomer, CloseReason::AutoClosed, Actor::System), Ok(()));
        assert_eq!(close(Status::Open, CloseReason::Resolved, Actor::Person(CUSTOMER)), Ok(()));
        assert_eq!(
            close(Status::Closed, CloseReason::Resolved, Actor::Person(CUSTOMER)),
            Err(TicketRuleError::AlreadyInStatus(Status::Closed))
        );
    }

    #[test]
    fn reopen_window_is_seven_days_for_customers() {
        let closed = DateTime::<Utc>::UNIX_EPOCH;
        let customer = Actor::Person(CUSTOMER);
        assert_eq!(reopen(Status::Closed, Some(closed), customer, closed + REOPEN_WINDOW), Ok(()));
        assert_eq!(
            reopen(Status::Closed, Some(closed), customer, closed + REOPEN_WINDOW + TimeDelta::seconds(1)),
            Err(TicketRuleError::ReopenWindowExpired)
        );
        assert_eq!(reopen(Status::Closed, Some(closed), Actor::Person(AGENT), closed + TimeDelta::days(30)), Ok(()));
        assert_eq!(reopen(Status::Open, None, customer, closed), Err(TicketRuleError::NotClosed));
    }

    fn any_status() -> impl Strategy<Value = Status> {
        prop_oneof![Just(Status::Open), Just(Status::WaitingCustomer), Just(Status::Closed)]
    }

    proptest! {
        #[test]
        fn a_reply_never_closes_a_ticket(status in any_status(), staff in any::<bool>(), internal in any::<bool>(), then in proptest::option::of(any_status())) {
            let author = if staff { AGENT } else { CUSTOMER };
            if let Ok(effect) = reply(status, author, internal, then) {
                prop_assert_ne!(effect.new_status, Some(Status::Closed));
                prop_assert!(!effect.counts_as_first_response || (staff && !internal));
            }
        }

        #[test]
        fn status_names_round_trip(status in any_status()) {
            prop_assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
    }
}
