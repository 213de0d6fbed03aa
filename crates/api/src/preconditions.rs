//! Conditional requests (RFC 9110 §13; docs/architecture.md, decision 19): single resources
//! carry a strong `ETag` derived from their stored version, `If-Match` on a change answers 412
//! `precondition_failed` when the resource has moved on (no lost updates between two agents),
//! and `If-None-Match` on a read answers 304 when the client's copy is current.
//!
//! The version is compared in the transaction that makes the change, after the row is locked,
//! so a concurrent change cannot slip between the check and the write.

use crate::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, RefOr, Required, ResponseBuilder, Type};

/// Reads that answer with an `ETag` and honour `If-None-Match`.
const TAGGED_READS: [&str; 11] = [
    "get_ticket",
    "get_organization",
    "get_user",
    "get_me",
    "get_monitor",
    "get_incident",
    "get_window",
    "get_meeting",
    "get_consultant",
    "get_contact_request",
    "get_webhook",
];
/// Changes that honour `If-Match` and answer with the new `ETag`.
const CONDITIONAL_CHANGES: [&str; 5] =
    ["update_ticket", "close_ticket", "reopen_ticket", "update_organization", "update_webhook"];
/// Creations that answer with the new resource's `ETag`.
const TAGGED_CREATIONS: [&str; 1] = ["create_ticket"];

/// The strong entity tag of a resource with a version counter.
pub fn version_tag(version: i32) -> String {
    format!("\"v{version}\"")
}

/// The strong entity tag of a resource without a counter: its last change and what it shows.
pub fn revision_tag(updated_at: DateTime<Utc>, content: &str) -> String {
    let digest = Sha256::new()
        .chain_update(updated_at.timestamp_micros().to_be_bytes())
        .chain_update(content.as_bytes())
        .finalize();
    format!("\"r{}\"", hex::encode(&digest[..12]))
}

/// The strong entity tag of a representation without a stored version: a digest of the JSON the
/// client receives, so it changes exactly when the representation does (live fields included,
/// such as a monitor's last check).
pub fn content_tag<T: serde::Serialize>(body: &T) -> String {
    let json = serde_json::to_vec(body).unwrap_or_default();
    format!("\"c{}\"", hex::encode(&Sha256::digest(&json)[..12]))
}

/// The client's `If-Match`, if it sent one.
pub enum IfMatch {
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    pub fn from_request(req: &HttpRequest) -> Result<Option<Self>, ApiError> {
        let Some(value) = req.headers().get(header::IF_MATCH) else { return Ok(None) };
        let text = value.to_str().map_err(|_| invalid_header("If-Match"))?.trim();
        if text == "*" {
            return Ok(Some(IfMatch::Any));
        }
        // A value that names no entity tag (empty, `v4` without quotes) can match no version:
        // the condition is false, a 412, as for a stale tag (RFC 9110 §13.1.1 leaves malformed
        // values to the server; refusing them with a 400 would tell a client less).
        let tags: Vec<String> = text.split(',').map(|t| t.trim().to_owned()).filter(|t| is_entity_tag(t)).collect();
        Ok(Some(IfMatch::Tags(tags)))
    }

    /// Strong comparison: a weak tag (`W/"…"`) never matches.
    pub fn allows(&self, current: &str) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| t == current),
        }
    }
}

fn is_entity_tag(tag: &str) -> bool {
    let opaque = tag.strip_prefix("W/").unwrap_or(tag);
    opaque.len() >= 2 && opaque.starts_with('"') && opaque.ends_with('"') && !opaque[1..opaque.len() - 1].contains('"')
}

fn invalid_header(name: &str) -> ApiError {
    ApiError::field(StatusCode::BAD_REQUEST, name, "must be `*` or a list of entity tags such as \"v3\"")
}

/// Whether the client's `If-None-Match` already names `current` (weak comparison): then the
/// read answers 304.
pub fn not_modified(req: &HttpRequest, current: &str) -> bool {
    let Some(text) = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else { return false };
    let text = text.trim();
    text == "*" || text.split(',').any(|t| t.trim().strip_prefix("W/").unwrap_or(t.trim()) == current)
}

/// A 200 with the body and its tag, or a 304 when the client holds that version.
pub fn tagged_read<T: serde::Serialize>(req: &HttpRequest, tag: &str, body: &T) -> HttpResponse {
    let etag = HeaderValue::from_str(tag).ok();
    if not_modified(req, tag) {
        let mut response = HttpResponse::NotModified();
        if let Some(etag) = etag {
            response.insert_header((header::ETAG, etag));
        }
        return response.finish();
    }
    tagged(HttpResponse::Ok(), tag, body)
}

/// `builder` with the body and its tag.
pub fn tagged<T: serde::Serialize>(mut builder: actix_web::HttpResponseBuilder, tag: &str, body: &T) -> HttpResponse {
    if let Ok(etag) = HeaderValue::from_str(tag) {
        builder.insert_header((header::ETAG, etag));
    }
    builder.json(body)
}

/// Documents `ETag`, `If-Match`, `If-None-Match`, 304 and 412 on the operations above.
pub fn document(operation_id: &str, operation: &mut Operation) {
    let read = TAGGED_READS.contains(&operation_id);
    let change = CONDITIONAL_CHANGES.contains(&operation_id);
    let creation = TAGGED_CREATIONS.contains(&operation_id);
    if !(read || change || creation) {
        return;
    }
    let success = if creation { "201" } else { "200" };
    if let Some(RefOr::T(response)) = operation.responses.responses.get_mut(success) {
        let etag = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some("The representation's strong entity tag; send it back in `If-Match` to change it only if nobody else did meanwhile."));
        response.headers.insert("ETag".to_owned(), RefOr::T(etag.build()));
        if creation {
            let location = HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some("The new resource's path."));
            response.headers.insert("Location".to_owned(), RefOr::T(location.build()));
        }
    }
    let header_parameter = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            // Any text: a value naming no current entity tag is a 412 (If-Match) or a full answer
            // (If-None-Match), never a 400.
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let header_parameter = |name: &str, description: &str| RefOr::T(header_parameter(name, description));
    if read {
        operation.parameters.get_or_insert_with(Vec::new).push(header_parameter(
            "If-None-Match",
            "An `ETag` the client holds: a 304 without a body when it is still current.",
        ));
        let not_modified =
            ResponseBuilder::new().description("Not modified: the `ETag` sent in `If-None-Match` is current.");
        operation.responses.responses.insert("304".to_owned(), RefOr::T(not_modified.build()));
    }
    if change {
        operation.parameters.get_or_insert_with(Vec::new).push(header_parameter(
            "If-Match",
            "The `ETag` the change is based on (or `*`): a 412 if the resource has changed since. Without it the change applies unconditionally.",
        ));
        crate::common_responses::add_note(
            operation,
            "412",
            "`precondition_failed`: the resource has changed since the `ETag` sent in `If-Match`; fetch it again.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn strong_comparison_refuses_weak_and_other_tags() {
        let req = TestRequest::default().insert_header((header::IF_MATCH, r#"W/"v3", "v4""#)).to_http_request();
        let allows = |req: &HttpRequest, tag: &str| matches!(IfMatch::from_request(req), Ok(Some(c)) if c.allows(tag));
        assert!(allows(&req, &version_tag(4)));
        assert!(!allows(&req, &version_tag(3)));
        let any = TestRequest::default().insert_header((header::IF_MATCH, "*")).to_http_request();
        assert!(allows(&any, &version_tag(9)));
        let malformed = TestRequest::default().insert_header((header::IF_MATCH, "v4")).to_http_request();
        assert!(!allows(&malformed, &version_tag(4)), "a tag without quotes matches nothing");
        let empty = TestRequest::default().insert_header((header::IF_MATCH, "")).to_http_request();
        assert!(!allows(&empty, &version_tag(4)), "an empty If-Match matches nothing");
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let req = TestRequest::default().insert_header((header::IF_NONE_MATCH, r#"W/"v3""#)).to_http_request();
        assert!(not_modified(&req, &version_tag(3)));
        assert!(!not_modified(&req, &version_tag(4)));
    }
}
