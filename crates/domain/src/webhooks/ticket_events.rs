//! The webhook events a saved ticket change causes, read from what the command recorded on the
//! timeline (so every path that changes a ticket, people's and timers', causes the same events).

use serde_json::Value;

use super::events::{
    EventData, FieldChange, SlaAlert, TicketClosed, TicketCreated, TicketMessageAdded, TicketReopened,
    TicketStatusChanged, TicketSummary, TicketUpdated,
};
use crate::sla::Metric;
use crate::tickets::{CloseReason, Status, Ticket, TimelineEntry};

/// The events of a change: `ticket` as saved (it has its number), whether the change created
/// it, and the timeline entries the change recorded (taken before saving, which writes them
/// away), in the order they happened. `message_body` is the body of the public reply the change
/// added, if any. Internal notes cause nothing.
pub fn events_of(
    ticket: &Ticket,
    created: bool,
    timeline: &[TimelineEntry],
    message_body: Option<&str>,
) -> Vec<EventData> {
    let summary = TicketSummary::of(ticket);
    let mut events = Vec::new();
    let mut updates = Vec::new();
    if created {
        events.push(EventData::TicketCreated(TicketCreated { ticket: summary.clone() }));
    }
    for entry in timeline {
        let field = |name: &str| entry.data.get(name).cloned().unwrap_or(Value::Null);
        match entry.kind {
            "assigned" => {
                updates.push(FieldChange { field: "assignee_id".into(), from: field("from"), to: field("to") })
            }
            "severity_changed" => {
                updates.push(FieldChange { field: "severity".into(), from: field("from"), to: field("to") })
            }
            "status_changed" => {
                let from = serde_json::from_value::<Status>(field("from"));
                let to = serde_json::from_value::<Status>(field("to"));
                if let (Ok(from), Ok(to)) = (from, to) {
                    events.push(EventData::TicketStatusChanged(TicketStatusChanged {
                        ticket: summary.clone(),
                        from,
                        to,
                    }));
                }
            }
            "reply_added" if !entry.internal => {
                let Ok(message_id) = serde_json::from_value(field("message_id")) else { continue };
                events.push(EventData::TicketMessageAdded(TicketMessageAdded {
                    ticket: summary.clone(),
                    message_id,
                    author_id: entry.actor,
                    author_role: field("author_role").as_str().unwrap_or_default().to_owned(),
                    body: message_body.unwrap_or_default().to_owned(),
                }));
            }
            "closed" | "auto_closed" => events.push(EventData::TicketClosed(TicketClosed {
                ticket: summary.clone(),
                reason: serde_json::from_value::<CloseReason>(field("reason")).ok(),
            })),
            "reopened" => events.push(EventData::TicketReopened(TicketReopened { ticket: summary.clone() })),
            "sla_alert" => {
                let (Ok(metric), Ok(due_at)) =
                    (serde_json::from_value::<Metric>(field("metric")), serde_json::from_value(field("due_at")))
                else {
                    continue;
                };
                let alert = SlaAlert { ticket: summary.clone(), metric, due_at };
                let kind = field("alert");
                match kind.as_str().unwrap_or_default() {
                    k if k.ends_with("_breached") => events.push(EventData::SlaBreached(alert)),
                    k if k.ends_with("_at_risk") => events.push(EventData::SlaAtRisk(alert)),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !updates.is_empty() {
        events.push(EventData::TicketUpdated(TicketUpdated { ticket: summary, changes: updates }));
    }
    events
}
