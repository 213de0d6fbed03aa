//! The events integrations can subscribe to and the payload of each. The body POSTed is
//! `{"id", "type", "timestamp", "organization_id", "data"}` ([`Envelope`]); `data` is one of the
//! payloads below, whose schemas the OpenAPI document lists under `webhooks`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::sla::{Metric, Severity};
use crate::tickets::{CloseReason, Source, Status, Ticket};

/// Every event type, by its wire name (`ticket.created`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    #[serde(rename = "ticket.created")]
    TicketCreated,
    #[serde(rename = "ticket.updated")]
    TicketUpdated,
    #[serde(rename = "ticket.status_changed")]
    TicketStatusChanged,
    #[serde(rename = "ticket.message_added")]
    TicketMessageAdded,
    #[serde(rename = "ticket.closed")]
    TicketClosed,
    #[serde(rename = "ticket.reopened")]
    TicketReopened,
    #[serde(rename = "sla.at_risk")]
    SlaAtRisk,
    #[serde(rename = "sla.breached")]
    SlaBreached,
    #[serde(rename = "incident.down")]
    IncidentDown,
    #[serde(rename = "incident.escalated")]
    IncidentEscalated,
    #[serde(rename = "incident.recovered")]
    IncidentRecovered,
    #[serde(rename = "maintenance.scheduled")]
    MaintenanceScheduled,
    #[serde(rename = "meeting.booked")]
    MeetingBooked,
    #[serde(rename = "meeting.rescheduled")]
    MeetingRescheduled,
    #[serde(rename = "meeting.cancelled")]
    MeetingCancelled,
    /// Sent only by `POST /v1/webhooks/{id}/test`, to that subscription, whatever its filter.
    #[serde(rename = "ping")]
    Ping,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type '{0}'")]
pub struct UnknownEventType(pub String);

impl EventType {
    pub const ALL: [EventType; 16] = [
        EventType::TicketCreated,
        EventType::TicketUpdated,
        EventType::TicketStatusChanged,
        EventType::TicketMessageAdded,
        EventType::TicketClosed,
        EventType::TicketReopened,
        EventType::SlaAtRisk,
        EventType::SlaBreached,
        EventType::IncidentDown,
        EventType::IncidentEscalated,
        EventType::IncidentRecovered,
        EventType::MaintenanceScheduled,
        EventType::MeetingBooked,
        EventType::MeetingRescheduled,
        EventType::MeetingCancelled,
        EventType::Ping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TicketCreated => "ticket.created",
            EventType::TicketUpdated => "ticket.updated",
            EventType::TicketStatusChanged => "ticket.status_changed",
            EventType::TicketMessageAdded => "ticket.message_added",
            EventType::TicketClosed => "ticket.closed",
            EventType::TicketReopened => "ticket.reopened",
            EventType::SlaAtRisk => "sla.at_risk",
            EventType::SlaBreached => "sla.breached",
            EventType::IncidentDown => "incident.down",
            EventType::IncidentEscalated => "incident.escalated",
            EventType::IncidentRecovered => "incident.recovered",
            EventType::MaintenanceScheduled => "maintenance.scheduled",
            EventType::MeetingBooked => "meeting.booked",
            EventType::MeetingRescheduled => "meeting.rescheduled",
            EventType::MeetingCancelled => "meeting.cancelled",
            EventType::Ping => "ping",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, UnknownEventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw).ok_or_else(|| UnknownEventType(raw.to_owned()))
    }

    /// Types a subscription may ask for (a ping is never subscribed to: it is sent on request).
    pub fn subscribable() -> impl Iterator<Item = EventType> {
        Self::ALL.into_iter().filter(|t| *t != EventType::Ping)
    }
}

/// The ticket as events describe it: what an integration needs to find and show it, without the
/// description or the SLA clock's internals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = WebhookTicket))]
pub struct TicketSummary {
    pub id: Uuid,
    pub number: i64,
    pub organization_id: Uuid,
    pub subject: String,
    pub status: Status,
    pub severity: Severity,
    pub emergency: bool,
    pub source: Source,
    pub requester_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub first_response_due_at: Option<DateTime<Utc>>,
    pub resolution_due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TicketSummary {
    pub fn of(ticket: &Ticket) -> Self {
        Self {
            id: ticket.id,
            number: ticket.number,
            organization_id: ticket.organization_id,
            subject: ticket.subject.clone(),
            status: ticket.status,
            severity: ticket.severity,
            emergency: ticket.emergency,
            source: ticket.source,
            requester_id: ticket.requester_id,
            assignee_id: ticket.assignee_id,
            first_response_due_at: ticket.first_response_due_at,
            resolution_due_at: ticket.resolution_due_at,
            created_at: ticket.created_at,
            updated_at: ticket.updated_at,
        }
    }
}

/// `ticket.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketCreated {
    pub ticket: TicketSummary,
}

/// One field a `ticket.updated` changed (`assignee_id` or `severity`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    pub field: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub from: serde_json::Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub to: serde_json::Value,
}

/// `ticket.updated`: staff changed the assignee or the severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketUpdated {
    pub ticket: TicketSummary,
    pub changes: Vec<FieldChange>,
}

/// `ticket.status_changed`: open ⇄ waiting for customer. Closing and reopening have their own
/// events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketStatusChanged {
    pub ticket: TicketSummary,
    pub from: Status,
    pub to: Status,
}

/// `ticket.message_added`: a public reply (internal notes are never sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketMessageAdded {
    pub ticket: TicketSummary,
    pub message_id: Uuid,
    pub author_id: Option<Uuid>,
    /// `customer`, `agent` or `admin`.
    pub author_role: String,
    pub body: String,
}

/// `ticket.closed`, by a person or automatically (R8, reason `auto_closed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketClosed {
    pub ticket: TicketSummary,
    pub reason: Option<CloseReason>,
}

/// `ticket.reopened` (R9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketReopened {
    pub ticket: TicketSummary,
}

/// `sla.at_risk` and `sla.breached`: the same alert the agents get (R5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SlaAlert {
    pub ticket: TicketSummary,
    pub metric: Metric,
    pub due_at: DateTime<Utc>,
}

/// `incident.down`, `incident.escalated` and `incident.recovered` (R11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentEvent {
    pub incident_id: Uuid,
    pub monitor_id: Uuid,
    pub organization_id: Uuid,
    /// The monitored URL.
    pub url: String,
    pub started_at: DateTime<Utc>,
    /// Set on `incident.recovered`.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Whether the incident falls inside a maintenance window (R12).
    pub in_maintenance: bool,
    /// The emergency ticket opened for it, if any (R11: after two hours).
    pub ticket_id: Option<Uuid>,
    /// Free-text reason from the last failed probe.
    pub reason: Option<String>,
}

/// `maintenance.scheduled` (R12). `organization_id` is absent for a window over every site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceScheduled {
    pub window_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub monitor_id: Option<Uuid>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// An RFC 5545 RRULE for a weekly window; absent for a one-off.
    pub recurrence: Option<String>,
    pub description: String,
}

/// `meeting.booked`, `meeting.rescheduled` and `meeting.cancelled` (R13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeetingEvent {
    pub meeting_id: Uuid,
    pub organization_id: Uuid,
    pub consultant_id: Uuid,
    pub booked_by: Uuid,
    pub ticket_id: Option<Uuid>,
    pub topic: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `confirmed` or `cancelled`.
    pub status: String,
    pub meeting_url: String,
    /// Set on `meeting.rescheduled`.
    pub previous_starts_at: Option<DateTime<Utc>>,
    /// Set on `meeting.cancelled`.
    pub cancel_reason: Option<String>,
}

/// `ping`: sent by `POST /v1/webhooks/{id}/test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ping {
    pub subscription_id: Uuid,
    pub message: String,
}

/// An event's payload, each variant tied to its type.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    TicketCreated(TicketCreated),
    TicketUpdated(TicketUpdated),
    TicketStatusChanged(TicketStatusChanged),
    TicketMessageAdded(TicketMessageAdded),
    TicketClosed(TicketClosed),
    TicketReopened(TicketReopened),
    SlaAtRisk(SlaAlert),
    SlaBreached(SlaAlert),
    IncidentDown(IncidentEvent),
    IncidentEscalated(IncidentEvent),
    IncidentRecovered(IncidentEvent),
    MaintenanceScheduled(MaintenanceScheduled),
    MeetingBooked(MeetingEvent),
    MeetingRescheduled(MeetingEvent),
    MeetingCancelled(MeetingEvent),
    Ping(Ping),
}

impl EventData {
    pub fn event_type(&self) -> EventType {
        match self {
            EventData::TicketCreated(_) => EventType::TicketCreated,
            EventData::TicketUpdated(_) => EventType::TicketUpdated,
            EventData::TicketStatusChanged(_) => EventType::TicketStatusChanged,
            EventData::TicketMessageAdded(_) => EventType::TicketMessageAdded,
            EventData::TicketClosed(_) => EventType::TicketClosed,
            EventData::TicketReopened(_) => EventType::TicketReopened,
            EventData::SlaAtRisk(_) => EventType::SlaAtRisk,
            EventData::SlaBreached(_) => EventType::SlaBreached,
            EventData::IncidentDown(_) => EventType::IncidentDown,
            EventData::IncidentEscalated(_) => EventType::IncidentEscalated,
            EventData::IncidentRecovered(_) => EventType::IncidentRecovered,
            EventData::MaintenanceScheduled(_) => EventType::MaintenanceScheduled,
            EventData::MeetingBooked(_) => EventType::MeetingBooked,
            EventData::MeetingRescheduled(_) => EventType::MeetingRescheduled,
            EventData::MeetingCancelled(_) => EventType::MeetingCancelled,
            EventData::Ping(_) => EventType::Ping,
        }
    }

    /// The organisation the event is about; `None` for events about no one organisation.
    pub fn organization_id(&self) -> Option<Uuid> {
        match self {
            EventData::TicketCreated(e) => Some(e.ticket.organization_id),
            EventData::TicketUpdated(e) => Some(e.ticket.organization_id),
            EventData::TicketStatusChanged(e) => Some(e.ticket.organization_id),
            EventData::TicketMessageAdded(e) => Some(e.ticket.organization_id),
            EventData::TicketClosed(e) => Some(e.ticket.organization_id),
            EventData::TicketReopened(e) => Some(e.ticket.organization_id),
            EventData::SlaAtRisk(e) | EventData::SlaBreached(e) => Some(e.ticket.organization_id),
            EventData::IncidentDown(e) | EventData::IncidentEscalated(e) | EventData::IncidentRecovered(e) => {
                Some(e.organization_id)
            }
            EventData::MaintenanceScheduled(e) => e.organization_id,
            EventData::MeetingBooked(e) | EventData::MeetingRescheduled(e) | EventData::MeetingCancelled(e) => {
                Some(e.organization_id)
            }
            EventData::Ping(_) => None,
        }
    }

    /// The payload as JSON (what `data` holds on the wire and in storage).
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            EventData::TicketCreated(e) => serde_json::to_value(e),
            EventData::TicketUpdated(e) => serde_json::to_value(e),
            EventData::TicketStatusChanged(e) => serde_json::to_value(e),
            EventData::TicketMessageAdded(e) => serde_json::to_value(e),
            EventData::TicketClosed(e) => serde_json::to_value(e),
            EventData::TicketReopened(e) => serde_json::to_value(e),
            EventData::SlaAtRisk(e) | EventData::SlaBreached(e) => serde_json::to_value(e),
            EventData::IncidentDown(e) | EventData::IncidentEscalated(e) | EventData::IncidentRecovered(e) => {
                serde_json::to_value(e)
            }
            EventData::MaintenanceScheduled(e) => serde_json::to_value(e),
            EventData::MeetingBooked(e) | EventData::MeetingRescheduled(e) | EventData::MeetingCancelled(e) => {
                serde_json::to_value(e)
            }
            EventData::Ping(e) => serde_json::to_value(e),
        };
        // Plain structs of strings, numbers and instants always serialise.
        value.unwrap_or_default()
    }
}

/// An event as recorded: a stable id (the `webhook-id` of every delivery of it, retries and
/// replays included), its type, when it happened, and its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub data: EventData,
}

impl WebhookEvent {
    pub fn new(data: EventData, occurred_at: DateTime<Utc>) -> Self {
        Self { id: Uuid::now_v7(), occurred_at, data }
    }
}

/// The JSON body POSTed to the receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = WebhookEnvelope))]
pub struct Envelope {
    /// The event's id; equal to the `webhook-id` header.
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
    pub organization_id: Option<Uuid>,
    /// The payload of this event type.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_wire_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Ok(t));
            assert_eq!(serde_json::to_value(t).ok(), Some(serde_json::Value::String(t.as_str().to_owned())));
        }
        assert!(EventType::parse("ticket.deleted").is_err());
        assert!(!EventType::subscribable().any(|t| t == EventType::Ping));
    }
}
