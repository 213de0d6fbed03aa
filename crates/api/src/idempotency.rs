//! `Idempotency-Key` on creating POSTs (docs/architecture.md, decision 19). A client that sends
//! a key gets, for a retry with the same key and the same request within 24 h, the first
//! response again (status, body, `Location`/`ETag`, plus `Idempotent-Replayed: true`) and no
//! second ticket, message or account. The same key with another request is a 422
//! `idempotency_key_reused`; a retry while the first request is still running is a 409
//! `idempotency_key_in_use`. Keys belong to the authenticated caller: two callers never share
//! one.
//!
//! The key's row is written in the same transaction as the work ([`once`]), so a crash can
//! never leave the work committed without the response a retry needs.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use helpdesk_core::CoreError;
use helpdesk_core::accounts::Caller;
use helpdesk_core::idempotency::{self, Claim, StoredResponse};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};

pub const HEADER: &str = "Idempotency-Key";

/// The operations that honour the header. `create_meeting` keeps its own key (per
/// organisation, answered 200); adding a closed day is refused as a conflict when repeated.
pub const OPERATIONS: [&str; 6] =
    ["create_ticket", "create_message", "create_organization", "create_contract", "create_user", "add_time_off"];

/// The response headers a replay repeats.
const REPLAYED_HEADERS: [HeaderName; 2] = [header::LOCATION, header::ETAG];

/// The request body's digest, left by the JSON extractor when the request carries a key.
#[derive(Clone, Copy)]
pub(crate) struct BodyDigest([u8; 32]);

/// Called by [`crate::extract::Json`] with the body it read: remembers the digest of the JSON
/// with its object keys sorted, so that a retry serialised differently still matches.
pub(crate) fn note_body(req: &HttpRequest, bytes: &[u8]) {
    if !req.headers().contains_key(HEADER) {
        return;
    }
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        let mut hasher = Sha256::new();
        hash_canonical(&mut hasher, &value);
        req.extensions_mut().insert(BodyDigest(hasher.finalize().into()));
    }
}

fn hash_canonical(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                hasher.update(serde_json::to_string(key).unwrap_or_default().as_bytes());
                hasher.update(b":");
                if let Some(v) = map.get(key) {
                    hash_canonical(hasher, v);
                }
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                hash_canonical(hasher, item);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

/// A response built inside the transaction, so that it can be stored with the work.
pub struct Reply {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Self, CoreError> {
        let body = serde_json::to_vec(value).map_err(|e| CoreError::Internal(format!("cannot serialise: {e}")))?;
        Ok(Reply { status, headers: Vec::new(), body })
    }

    pub fn created<T: Serialize>(value: &T) -> Result<Self, CoreError> {
        Self::json(StatusCode::CREATED, value)
    }

    pub fn header(mut self, name: &HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name.as_str().to_owned(), value.into()));
        self
    }

    fn stored(&self) -> StoredResponse {
        let headers =
            self.headers.iter().filter(|(name, _)| REPLAYED_HEADERS.iter().any(|h| h == name.as_str())).cloned();
        StoredResponse { status: self.status.as_u16(), headers: headers.collect(), body: self.body.clone() }
    }

    fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.content_type("application/json");
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str()))
            {
                response.insert_header((name, value));
            }
        }
        response.body(self.body)
    }
}

/// The caller's key, if the request has one; a key that is not 1–255 visible ASCII characters
/// is a 400 naming the header.
fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else { return Ok(None) };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::field(StatusCode::BAD_REQUEST, HEADER, "must be 1–255 visible ASCII characters"));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// What the request is, for telling a retry from another request under the same key.
fn fingerprint(req: &HttpRequest) -> Vec<u8> {
    let mut hasher = Sha256::new().chain_update(req.method().as_str()).chain_update(b" ").chain_update(req.path());
    if let Some(BodyDigest(digest)) = req.extensions().get::<BodyDigest>().copied() {
        hasher.update(b"\n");
        hasher.update(digest);
    }
    hasher.finalize().to_vec()
}

/// Runs `work` in one transaction, at most once per caller and key: with a key, the response
/// is stored in that transaction, and a retry gets it back without `work` running again.
/// Failures are not stored: their work rolled back, so a retry is tried afresh.
pub async fn once(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    work: impl AsyncFnOnce(&mut PgConnection) -> Result<Reply, CoreError>,
) -> Result<HttpResponse, ApiError> {
    let key = key_of(req)?;
    let mut tx = state.pool.begin().await.map_err(CoreError::from)?;
    let now = state.clock.now();
    let fingerprint = fingerprint(req);
    if let Some(key) = &key {
        match idempotency::claim(&mut tx, caller.user_id, key, &fingerprint, now).await? {
            Claim::Fresh => {}
            Claim::Replay(stored) => return Ok(replay(stored)),
            Claim::Mismatch => {
                return Err(ApiError::bad_request(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request; use a new key for a new request",
                ));
            }
            Claim::InFlight => {
                return Err(ApiError::bad_request(
                    StatusCode::CONFLICT,
                    "idempotency_key_in_use",
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                ));
            }
        }
    }
    let reply = work(&mut tx).await?;
    if let Some(key) = &key {
        idempotency::record(&mut tx, caller.user_id, key, &fingerprint, &reply.stored(), now).await?;
    }
    tx.commit().await.map_err(CoreError::from)?;
    Ok(reply.into_response())
}

fn replay(stored: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reply = Reply { status, headers: stored.headers, body: stored.body };
    let mut response = reply.into_response();
    response.headers_mut().insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true"));
    response
}

/// Documents the header, and the 409 and 422 it can cause, on the operations that honour it.
pub fn document(operation_id: &str, operation: &mut Operation) {
    if !OPERATIONS.contains(&operation_id) {
        return;
    }
    let parameter = ParameterBuilder::new()
        .name(HEADER)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: within 24 h, a request with the same key (per caller) and the same body gets the first response again (`Idempotent-Replayed: true`) and nothing is done twice. 1–255 visible ASCII characters, e.g. a UUID.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(255)).pattern(Some("^[!-~]+$"))))
        .build();
    operation.parameters.get_or_insert_with(Vec::new).push(RefOr::T(parameter));
    for (status, note) in [
        ("400", "`validation_failed` naming `Idempotency-Key` when it is not 1–255 visible ASCII characters."),
        (
            "409",
            "`idempotency_key_in_use`: a request with the same Idempotency-Key is still being processed; retry shortly.",
        ),
        ("422", "`idempotency_key_reused`: the Idempotency-Key was used for a different request."),
    ] {
        crate::common_responses::add_note(operation, status, note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(json: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hash_canonical(&mut hasher, &serde_json::from_str(json).unwrap_or(Value::Null));
        hasher.finalize().into()
    }

    #[test]
    fn key_order_and_spacing_do_not_change_the_digest_but_values_do() {
        assert_eq!(digest(r#"{"a":1,"b":{"c":[1,2]}}"#), digest(r#"{ "b": {"c": [1, 2]}, "a": 1 }"#));
        assert_ne!(digest(r#"{"a":1}"#), digest(r#"{"a":2}"#));
        assert_ne!(digest(r#"{"a":"1"}"#), digest(r#"{"a":1}"#));
        assert_ne!(digest(r#"[1,2]"#), digest(r#"[2,1]"#));
    }
}
