//! The OpenAPI 3.1 document, generated from the handlers' annotations. The committed copy at
//! `openapi/openapi.json` is `helpdesk-api openapi` output; a test fails when they differ.

use crate::error::{Problem, ProblemField};
use actix_web::App;
use utoipa::openapi::RefOr;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kadix Helpdesk API",
        description = "Support desk backend enforcing Kadix's support policy: plans and entitlements, SLA in business hours (America/Sao_Paulo), tickets, monitoring, meetings, LGPD. Errors are RFC 9457 `application/problem+json` with a stable `code`.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(Problem, ProblemField)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Sign-up, sign-in, sessions, password reset"),
        (name = "me", description = "The caller's own account"),
        (name = "plans", description = "Plans and entitlements"),
        (name = "organizations", description = "Customer organisations and contracts"),
        (name = "users", description = "User administration"),
        (name = "tickets", description = "Tickets, conversation, lifecycle and SLA"),
        (name = "calendar", description = "Business calendar, closed days and SLA targets"),
        (name = "meetings", description = "Consultancy meetings: consultants, free slots, booking, reschedule, cancel"),
        (name = "monitoring", description = "Uptime monitors, incidents with their alerts, maintenance windows"),
        (name = "reports", description = "SLA attainment against the policy's 85–95 % band"),
        (name = "contact", description = "The public contact form and the commercial team's handling of it"),
        (name = "admin", description = "Operations views for administrators"),
        (name = "privacy", description = "LGPD: personal-data export, anonymisation, terms acceptance"),
        (name = "audit", description = "Who read or changed personal data, and privileged actions"),
        (name = "webhooks", description = "Webhook subscriptions, deliveries and replays; the events themselves are under `webhooks`"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The whole document: the base above plus every path registered by `routes::configure`.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut api) =
        App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(crate::routes::configure).split_for_parts();
    crate::common_responses::for_each_operation(&mut api, |_, operation| {
        let id = operation.operation_id.clone().unwrap_or_default();
        crate::idempotency::document(&id, operation);
        crate::preconditions::document(&id, operation);
    });
    crate::common_responses::add_to(&mut api);
    add_ticket_links(&mut api);
    crate::webhook_docs::add_to(&mut api);
    api
}

/// OpenAPI links from a ticket to the requests that follow it (its messages, SLA explanation and
/// timeline), so generated clients and stateful testers (Schemathesis) chain them with real ids.
fn add_ticket_links(api: &mut utoipa::openapi::OpenApi) {
    const FOLLOW_UPS: [(&str, &str, &str); 3] = [
        ("messages", "list_messages", "The ticket's conversation"),
        ("sla", "explain_sla", "Why the ticket's SLA stands where it does"),
        ("events", "list_events", "The ticket's timeline"),
    ];
    let ticket_answers = [("/v1/tickets", "201"), ("/v1/tickets/{id}", "200"), ("/v1/tickets/{id}/reopen", "200")];
    for (path, status) in ticket_answers {
        let Some(item) = api.paths.paths.get_mut(path) else { continue };
        let operation = if status == "201" { item.post.as_mut() } else { item.get.as_mut().or(item.post.as_mut()) };
        let Some(RefOr::T(response)) = operation.and_then(|op| op.responses.responses.get_mut(status)) else {
            continue;
        };
        for (name, operation_id, description) in FOLLOW_UPS {
            let link = LinkBuilder::new()
                .operation_id(operation_id)
                .parameter("id", "$response.body#/id")
                .description(description)
                .build();
            response.links.insert(name.to_owned(), RefOr::T(link));
        }
    }
}

pub fn document_json() -> String {
    let mut json = document().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
