//! The OpenAPI 3.1 document, generated from the handlers' annotations. The committed copy at
//! `openapi/openapi.json` is `helpdesk-api openapi` output; a test fails when they differ.

use crate::error::{Problem, ProblemField};
use actix_web::App;
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
        (name = "reports", description = "SLA attainment against the policy's 85–95 % band"),
        (name = "contact", description = "The public contact form and the commercial team's handling of it"),
        (name = "admin", description = "Operations views for administrators"),
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
    let (_, api) =
        App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(crate::routes::configure).split_for_parts();
    api
}

pub fn document_json() -> String {
    let mut json = document().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
