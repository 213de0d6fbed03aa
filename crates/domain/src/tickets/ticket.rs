//! A ticket as the rules see it: what it is about, where it stands, and its SLA clock's stored
//! events and projection.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::lifecycle::{CloseReason, Status, UnknownValue};
use super::verdict::{self, StoredMetric};
use crate::plans::Category;
use crate::sla::{ClockEvent, Severity};
use crate::timers::AlertMarks;

/// How a ticket came in (R3: every request is a ticket, whoever opens it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Source {
    /// A customer opened it for their organisation.
    Portal,
    /// An agent opened it on behalf of a customer (a phone call, an e-mail).
    Agent,
    /// Monitoring opened it for the organisation (R11: down for two hours).
    Monitoring,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Portal => "portal",
            Source::Agent => "agent",
            Source::Monitoring => "monitoring",
        }
    }
}

impl std::str::FromStr for Source {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "portal" => Ok(Source::Portal),
            "agent" => Ok(Source::Agent),
            "monitoring" => Ok(Source::Monitoring),
            other => Err(UnknownValue(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: Uuid,
    /// Assigned by the store when the ticket is first saved.
    pub number: i64,
    pub organization_id: Uuid,
    /// The customer the ticket is for; `None` when the system opened it for the organisation.
    pub requester_id: Option<Uuid>,
    /// Who opened it: the requester, an agent on their behalf, or `None` for the system.
    pub opened_by: Option<Uuid>,
    pub source: Source,
    pub assignee_id: Option<Uuid>,
    pub subject: String,
    pub description: String,
    pub category: Category,
    pub severity: Severity,
    pub emergency: bool,
    pub plan_code: String,
    pub status: Status,
    pub close_reason: Option<CloseReason>,
    pub closed_at: Option<DateTime<Utc>>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub references_ticket_id: Option<Uuid>,
    pub first_response_due_at: Option<DateTime<Utc>>,
    pub first_response_at_risk_at: Option<DateTime<Utc>>,
    pub first_response_met_at: Option<DateTime<Utc>>,
    pub first_response_breached: bool,
    pub resolution_due_at: Option<DateTime<Utc>>,
    pub resolution_at_risk_at: Option<DateTime<Utc>>,
    pub resolution_met_at: Option<DateTime<Utc>>,
    pub resolution_breached: bool,
    pub next_due_at: DateTime<Utc>,
    /// When a timer of this ticket acts next (an SLA alert, the R8 reminder or auto-close); the
    /// worker's sweep reads it (DESIGN §3.1).
    pub next_timer_at: Option<DateTime<Utc>>,
    /// When the reminder of the current wait for the customer went out (R8).
    pub reminder_sent_at: Option<DateTime<Utc>>,
    /// The SLA alerts already sent, per metric and target revision.
    pub sla_alerts: AlertMarks,
    pub calendar_version: i32,
    pub policy_version: i32,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The clock's events. Lists leave it empty: replaying is never needed to show a page, and
    /// decoding it for every row would cost the most.
    pub sla_events: Vec<ClockEvent>,
}

impl Ticket {
    pub fn first_response(&self) -> StoredMetric {
        StoredMetric {
            breached: self.first_response_breached,
            due_at: self.first_response_due_at,
            at_risk_at: self.first_response_at_risk_at,
            met_at: self.first_response_met_at,
        }
    }

    pub fn resolution(&self) -> StoredMetric {
        StoredMetric {
            breached: self.resolution_breached,
            due_at: self.resolution_due_at,
            at_risk_at: self.resolution_at_risk_at,
            met_at: self.resolution_met_at,
        }
    }

    /// Breached at `now` (see [`verdict`]). A closed ticket keeps the verdict it closed with.
    pub fn breached_at(&self, now: DateTime<Utc>) -> bool {
        verdict::ticket_breached_at(&self.first_response(), &self.resolution(), now)
    }

    pub fn first_response_breached_at(&self, now: DateTime<Utc>) -> bool {
        self.first_response().breached_at(now)
    }

    pub fn resolution_breached_at(&self, now: DateTime<Utc>) -> bool {
        self.resolution().breached_at(now)
    }

    /// At risk at `now` (see [`verdict`]).
    pub fn at_risk_at(&self, now: DateTime<Utc>) -> bool {
        verdict::ticket_at_risk_at(&self.first_response(), &self.resolution(), now)
    }

    pub fn sla_events(&self) -> &[ClockEvent] {
        &self.sla_events
    }
}
