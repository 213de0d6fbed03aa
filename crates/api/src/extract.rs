//! Request extractors whose errors name what is wrong: a JSON body reader that reports the
//! path of the offending field, and handlers for query and path errors.

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

/// A JSON request body. Malformed JSON is a 400; JSON of the wrong shape is a 422 naming the
/// field (`contact.email`, `items[2].quantity`); a body over the limit is a 413.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        let bytes = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::bad_request(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
            let bytes = bytes.await.map_err(|e| match e.as_response_error().status_code() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::bad_request(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                ),
                status => ApiError::bad_request(status, "bad_request", e.to_string()),
            })?;
            crate::idempotency::note_body(&req, &bytes);
            parse(&bytes).map(Json)
        })
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => deserializer.end().map(|()| value).map_err(|e| {
            ApiError::bad_request(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {e}"))
        }),
        Err(error) => {
            let inner = error.inner();
            // serde_json reports a value of the wrong JSON type where an enum is expected
            // (`"severity": 5`) as a syntax error; a body that parses as JSON is well formed,
            // so that is a wrong value, reported at its field like any other.
            let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
            if !well_formed && (inner.is_syntax() || inner.is_eof() || inner.is_io()) {
                return Err(ApiError::bad_request(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!("the body is not valid JSON: {inner}"),
                ));
            }
            let path = error.path().to_string();
            let message = if inner.is_syntax() {
                "has the wrong type: expected one of the values the schema lists".to_owned()
            } else {
                strip_position(&inner.to_string())
            };
            // A missing field is reported at its parent; name the field itself.
            let field = match missing_field(&message) {
                Some(name) if path == "." => name.to_owned(),
                Some(name) => format!("{path}.{name}"),
                None if path == "." => "body".to_owned(),
                None => path,
            };
            Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, message))
        }
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Query parameters. A value that does not parse is a 400 naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(req.query_string().as_bytes()));
        std::future::ready(serde_path_to_error::deserialize::<_, T>(deserializer).map(Query).map_err(|error| {
            let message = error.inner().to_string();
            let field = match (error.path().to_string(), missing_field(&message)) {
                (_, Some(name)) => name.to_owned(),
                (path, None) if path == "." => "query".to_owned(),
                (path, None) => path,
            };
            ApiError::field(StatusCode::BAD_REQUEST, field, message)
        }))
    }
}

/// A path segment that does not parse (an id that is not a UUID) names no resource: 404.
pub fn path_error(_error: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(StatusCode::NOT_FOUND, "not_found", format!("no resource at {}", req.path())).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        quantity: u32,
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        email: String,
        items: Vec<Inner>,
    }

    fn field_of(result: Result<Body, ApiError>) -> String {
        match result {
            Err(ApiError::BadRequest { errors, .. }) if !errors.is_empty() => errors[0].field.clone(),
            other => format!("unexpected: {other:?}"),
        }
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        assert_eq!(field_of(parse(br#"{"email":"a","items":[{"quantity":1},{"quantity":"x"}]}"#)), "items[1].quantity");
    }

    #[test]
    fn missing_field_is_named() {
        assert_eq!(field_of(parse(br#"{"items":[]}"#)), "email");
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WithEnum {
        severity: Level,
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Level {
        Low,
        High,
    }

    #[test]
    fn a_wrong_json_type_on_an_enum_names_the_field() {
        let result = parse::<WithEnum>(br#"{"severity": 5}"#);
        match result {
            Err(ApiError::BadRequest { status, errors, .. }) => {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
                assert_eq!(errors[0].field, "severity");
            }
            other => panic!("unexpected: {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_400() {
        assert!(matches!(
            parse::<Body>(b"{not json"),
            Err(ApiError::BadRequest { status: StatusCode::BAD_REQUEST, .. })
        ));
    }
}
