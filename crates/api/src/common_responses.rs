//! The answers every operation can give besides its own, added to the OpenAPI document from
//! what each operation declares, so that a new route is documented without listing them:
//!
//! - a bearer-secured operation: 401 (`unauthenticated`; `WWW-Authenticate: Bearer`, with
//!   `error="invalid_token"` when the token presented is expired or invalid) and 429
//!   `rate_limited` (the per-caller quota);
//! - a request body: 400 `malformed_json`, 413 `payload_too_large`, 415
//!   `unsupported_media_type`, 422 `validation_failed`;
//! - query parameters: 400 `validation_failed` (a value that does not parse, an unknown
//!   parameter) and 422 `validation_failed` (a value out of range);
//! - path parameters: 404 `not_found` (also for an id that is not a UUID);
//! - every operation: 500 `internal_error`; every operation that reads the database: 503
//!   `database_unavailable`.
//!
//! An operation's own description of a status wins over these.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type};

const PROBLEM_JSON: &str = "application/problem+json";

/// (status, component name, description) of each shared response.
const SHARED: [(&str, &str, &str); 9] = [
    (
        "400",
        "BadRequest",
        "The request cannot be read: `malformed_json` (the body is not JSON), or `validation_failed` for a query parameter that does not parse or is unknown.",
    ),
    (
        "401",
        "Unauthorized",
        "`unauthenticated`: no bearer token (`WWW-Authenticate: Bearer`), or one that is expired, forged or revoked (`WWW-Authenticate: Bearer error=\"invalid_token\"`: refresh it).",
    ),
    ("404", "NotFound", "`not_found`: no such resource, or one the caller may not see, or an id that is not a UUID."),
    ("413", "PayloadTooLarge", "`payload_too_large`: the body exceeds the configured limit (256 KiB by default)."),
    ("415", "UnsupportedMediaType", "`unsupported_media_type`: the body is not sent as `application/json`."),
    (
        "422",
        "ValidationFailed",
        "`validation_failed`: the input is well formed but invalid; `errors[]` names each field and what is wrong.",
    ),
    (
        "429",
        "TooManyRequests",
        "`rate_limited`: the caller's request quota is spent; retry after `Retry-After` seconds (`RateLimit-*` headers say where the quota stands).",
    ),
    ("500", "InternalError", "`internal_error`: an unexpected error, logged on the server."),
    ("503", "ServiceUnavailable", "`database_unavailable`: the database did not answer in time; retry shortly."),
];

pub fn add_to(document: &mut utoipa::openapi::OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    for (status, name, description) in SHARED {
        let problem = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        let mut response = ResponseBuilder::new().description(description).content(PROBLEM_JSON, problem);
        if status == "401" {
            let header = HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some("`Bearer`, or `Bearer error=\"invalid_token\"` for a bad token"));
            response = response.header("WWW-Authenticate", header.build());
        }
        components.responses.insert(name.to_owned(), RefOr::T(response.build()));
    }
    for_each_operation(document, |path, operation| {
        for status in statuses_of(operation, path.starts_with("/health/")) {
            if let Some((_, name, _)) = SHARED.iter().find(|(s, _, _)| *s == status) {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
            }
        }
    });
}

/// The shared statuses `operation` can answer, from what it declares.
fn statuses_of(operation: &Operation, health: bool) -> Vec<&'static str> {
    let mut statuses = vec!["500"];
    if !health {
        statuses.push("503");
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        statuses.extend(["401", "429"]);
    }
    if operation.request_body.is_some() {
        statuses.extend(["400", "413", "415", "422"]);
    }
    let parameters = operation.parameters.iter().flatten().filter_map(|p| match p {
        RefOr::T(parameter) => Some(&parameter.parameter_in),
        RefOr::Ref(_) => None,
    });
    for place in parameters {
        match place {
            ParameterIn::Query => statuses.extend(["400", "422"]),
            ParameterIn::Path => statuses.push("404"),
            _ => {}
        }
    }
    statuses
}

/// Adds `note` to the description of `operation`'s `status` answer, creating that answer (a
/// problem+json, described like the shared one) when the operation has none of its own.
pub fn add_note(operation: &mut Operation, status: &str, note: &str) {
    let shared = SHARED.iter().find(|(s, _, _)| *s == status).map_or("", |(_, _, description)| description);
    let joined = |before: &str| if before.is_empty() { note.to_owned() } else { format!("{before} Also {note}") };
    let entry = operation.responses.responses.entry(status.to_owned());
    match entry {
        std::collections::btree_map::Entry::Occupied(mut existing) => match existing.get_mut() {
            RefOr::T(response) => response.description = joined(&response.description),
            reference @ RefOr::Ref(_) => *reference = RefOr::T(problem_response(&joined(shared))),
        },
        std::collections::btree_map::Entry::Vacant(vacant) => {
            vacant.insert(RefOr::T(problem_response(&joined(shared))));
        }
    }
}

fn problem_response(description: &str) -> utoipa::openapi::Response {
    let problem = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
    ResponseBuilder::new().description(description).content(PROBLEM_JSON, problem).build()
}

/// Every operation of the document with its path, for modifiers that act on each.
pub fn for_each_operation(document: &mut utoipa::openapi::OpenApi, mut act: impl FnMut(&str, &mut Operation)) {
    for (path, item) in document.paths.paths.iter_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            act(path, operation);
        }
    }
}
