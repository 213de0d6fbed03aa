//! The events the helpdesk POSTs to subscribers, as the OpenAPI 3.1 document's top-level
//! `webhooks`: one entry per event type, whose request body is the envelope with that type's
//! payload in `data`. utoipa 6 has the field but no derive for it, so it is filled here.

use helpdesk_domain::webhooks::EventType;
use helpdesk_domain::webhooks::events::{
    Envelope, FieldChange, IncidentEvent, MaintenanceScheduled, MeetingEvent, Ping, SlaAlert, TicketClosed,
    TicketCreated, TicketMessageAdded, TicketReopened, TicketStatusChanged, TicketSummary, TicketUpdated,
};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{ContentBuilder, PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Schema};
use utoipa::{PartialSchema, ToSchema};

fn register<T: ToSchema + PartialSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    <T as ToSchema>::schemas(schemas);
    schemas.push((T::name().into_owned(), T::schema()));
}

/// The schema component describing each event type's `data`.
fn payload_of(event_type: EventType) -> String {
    let name = match event_type {
        EventType::TicketCreated => TicketCreated::name(),
        EventType::TicketUpdated => TicketUpdated::name(),
        EventType::TicketStatusChanged => TicketStatusChanged::name(),
        EventType::TicketMessageAdded => TicketMessageAdded::name(),
        EventType::TicketClosed => TicketClosed::name(),
        EventType::TicketReopened => TicketReopened::name(),
        EventType::SlaAtRisk | EventType::SlaBreached => SlaAlert::name(),
        EventType::IncidentDown | EventType::IncidentEscalated | EventType::IncidentRecovered => IncidentEvent::name(),
        EventType::MaintenanceScheduled => MaintenanceScheduled::name(),
        EventType::MeetingBooked | EventType::MeetingRescheduled | EventType::MeetingCancelled => MeetingEvent::name(),
        EventType::Ping => Ping::name(),
    };
    name.into_owned()
}

fn describe(event_type: EventType) -> &'static str {
    match event_type {
        EventType::TicketCreated => {
            "A ticket was opened (by a customer, an agent on a customer's behalf, or monitoring)."
        }
        EventType::TicketUpdated => "Staff changed a ticket's assignee or severity.",
        EventType::TicketStatusChanged => "A ticket moved between `open` and `waiting_customer`.",
        EventType::TicketMessageAdded => "A public reply was added to a ticket (internal notes are never sent).",
        EventType::TicketClosed => "A ticket was closed, by a person or automatically (R8).",
        EventType::TicketReopened => "A closed ticket was reopened (R9).",
        EventType::SlaAtRisk => "An SLA target of a ticket is about to be missed (R5).",
        EventType::SlaBreached => "An SLA target of a ticket was missed (R5).",
        EventType::IncidentDown => "A monitored site is confirmed down (R11).",
        EventType::IncidentEscalated => {
            "A downtime passed 15 minutes, or 2 hours and an emergency ticket was opened (R11)."
        }
        EventType::IncidentRecovered => "A monitored site is back up (R11).",
        EventType::MaintenanceScheduled => "A maintenance window was scheduled (R12).",
        EventType::MeetingBooked => "A consultancy meeting was booked (R13).",
        EventType::MeetingRescheduled => "A consultancy meeting moved (R13).",
        EventType::MeetingCancelled => "A consultancy meeting was cancelled (R13).",
        EventType::Ping => "Sent by `POST /v1/webhooks/{id}/test` to that subscription only.",
    }
}

fn header(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// Adds the payload schemas and one `webhooks` entry per event type.
pub fn add_to(api: &mut utoipa::openapi::OpenApi) {
    let mut schemas = Vec::new();
    register::<Envelope>(&mut schemas);
    register::<TicketSummary>(&mut schemas);
    register::<FieldChange>(&mut schemas);
    register::<TicketCreated>(&mut schemas);
    register::<TicketUpdated>(&mut schemas);
    register::<TicketStatusChanged>(&mut schemas);
    register::<TicketMessageAdded>(&mut schemas);
    register::<TicketClosed>(&mut schemas);
    register::<TicketReopened>(&mut schemas);
    register::<SlaAlert>(&mut schemas);
    register::<IncidentEvent>(&mut schemas);
    register::<MaintenanceScheduled>(&mut schemas);
    register::<MeetingEvent>(&mut schemas);
    register::<Ping>(&mut schemas);
    let components = api.components.get_or_insert_with(Default::default);
    for (name, schema) in schemas {
        components.schemas.entry(name).or_insert(schema);
    }

    let mut paths = PathsBuilder::new();
    for event_type in EventType::ALL {
        let wire = event_type.as_str();
        let body = ObjectBuilder::new()
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .description(Some("The event's id, equal to `webhook-id`.")),
            )
            .required("id")
            .property("type", ObjectBuilder::new().schema_type(Type::String).enum_values(Some([wire])))
            .required("type")
            .property(
                "timestamp",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("When the event happened.")),
            )
            .required("timestamp")
            .property(
                "organization_id",
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
            )
            .property("data", Ref::from_schema_name(payload_of(event_type)))
            .required("data")
            .build();
        let operation = OperationBuilder::new()
            .tag("webhooks")
            .operation_id(Some(format!("webhook_{}", wire.replace('.', "_"))))
            .summary(Some(wire))
            .description(Some(format!(
                "{} POSTed to each subscription that receives `{wire}`, at least once, in order per subscription. \
                 Signed per Standard Webhooks: `webhook-signature` is `v1,` + base64 HMAC-SHA256 over \
                 `{{webhook-id}}.{{webhook-timestamp}}.{{body}}` with the key in the subscription's `whsec_` secret \
                 (two space-separated signatures while a rotated secret overlaps). Retries and replays carry the \
                 same `webhook-id`: deduplicate on it. Refuse a `webhook-timestamp` far from your clock.",
                describe(event_type)
            )))
            .parameter(header("webhook-id", "The event's id; the same on every retry and replay."))
            .parameter(header("webhook-timestamp", "Seconds since the Unix epoch when this attempt was signed."))
            .parameter(header("webhook-signature", "`v1,<base64>` (space-separated when two secrets overlap)."))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", ContentBuilder::new().schema(Some(body)).build())
                    .build(),
            ))
            .response("2XX", ResponseBuilder::new().description("Any 2xx acknowledges the delivery."))
            .response(
                "default",
                ResponseBuilder::new().description(
                    "Anything else (or no answer within the timeout) is retried with backoff for up to 24 h.",
                ),
            )
            .build();
        paths = paths.path(wire, PathItem::new(HttpMethod::Post, operation));
    }
    api.webhooks = Some(paths.build());
}
