//! One error type for every handler, rendered as RFC 9457 `application/problem+json` with a
//! stable machine-readable `code`. Server errors are logged here, with their source chain, and
//! answered without internals.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use helpdesk_core::{CoreError, FieldError};
use serde::Serialize;
use std::error::Error as _;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem: `/problems/{code}`.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation_failed")]
    pub problem_type: String,
    #[schema(example = "Invalid input")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "email: is not a valid e-mail address")]
    pub detail: String,
    /// Stable, machine-readable code; the last segment of `type`.
    #[schema(example = "validation_failed")]
    pub code: String,
    /// For validation problems: each invalid field and what is wrong with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<ProblemField>)]
    pub errors: Vec<FieldError>,
    /// For `plan_not_entitled`: the entitlement the organisation's contract lacks
    /// (`technical_support`, `emergency_priority`, `consultancy_meetings`, `no_active_contract`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "technical_support")]
    pub missing_entitlement: Option<&'static str>,
}

/// One invalid field of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    #[schema(example = "email")]
    pub field: String,
    #[schema(example = "is not a valid e-mail address")]
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            problem_type: format!("/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            errors: Vec::new(),
            missing_entitlement: None,
        }
    }

    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status).content_type(PROBLEM_JSON).json(self)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A problem found while reading the request (body, query, path, headers).
    #[error("{detail}")]
    BadRequest { status: StatusCode, code: &'static str, detail: String, errors: Vec<FieldError> },
    /// A bearer token was presented but is expired, forged or revoked (RFC 6750 `invalid_token`).
    #[error("the access token is invalid or expired")]
    InvalidToken,
}

impl ApiError {
    pub fn bad_request(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest { status, code, detail: detail.into(), errors: Vec::new() }
    }

    pub fn field(status: StatusCode, field: impl Into<String>, message: impl ToString) -> Self {
        let error = FieldError::new(field, message);
        ApiError::BadRequest {
            status,
            code: "validation_failed",
            detail: format!("{}: {}", error.field, error.message),
            errors: vec![error],
        }
    }

    fn problem(&self) -> Problem {
        match self {
            ApiError::BadRequest { status, code, detail, errors } => {
                Problem { errors: errors.clone(), ..Problem::new(*status, code, detail.clone()) }
            }
            ApiError::InvalidToken => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the access token is invalid or expired; refresh it or sign in again",
            ),
            ApiError::Core(error) => match error {
                CoreError::Validation(errors) => Problem {
                    errors: errors.clone(),
                    ..Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", error.to_string())
                },
                CoreError::Unauthenticated => {
                    Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "missing, invalid or expired credentials")
                }
                CoreError::Forbidden { code, detail } => Problem::new(StatusCode::FORBIDDEN, code, detail.clone()),
                CoreError::NotEntitled(missing) => Problem {
                    missing_entitlement: Some(missing.code()),
                    ..Problem::new(
                        StatusCode::FORBIDDEN,
                        "plan_not_entitled",
                        format!("{missing}; contact Kadix to change your plan"),
                    )
                },
                CoreError::NotFound(what) => {
                    Problem::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
                }
                CoreError::Conflict { code, detail } => Problem::new(StatusCode::CONFLICT, code, detail.clone()),
                CoreError::PreconditionFailed(_) => {
                    Problem::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", error.to_string())
                }
                CoreError::RateLimited { retry_after_seconds } => Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many attempts; retry in {retry_after_seconds} s"),
                ),
                CoreError::Database(sqlx::Error::PoolTimedOut) => Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is not answering; retry shortly",
                ),
                CoreError::Database(_) | CoreError::Redis(_) | CoreError::Internal(_) => Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an unexpected error occurred; it has been logged",
                ),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        if problem.status >= 500 {
            let mut chain = self.to_string();
            let mut source = self.source();
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(error = %chain, "request failed");
        }
        let mut response = problem.response();
        match self {
            ApiError::Core(CoreError::RateLimited { retry_after_seconds }) => {
                let headers = response.headers_mut();
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
                headers.insert(header::HeaderName::from_static("ratelimit-remaining"), HeaderValue::from(0u32));
                headers.insert(
                    header::HeaderName::from_static("ratelimit-reset"),
                    HeaderValue::from(*retry_after_seconds),
                );
            }
            ApiError::Core(CoreError::Unauthenticated) => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::InvalidToken => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer error="invalid_token""#));
            }
            _ => {}
        }
        response
    }
}

/// Turns every error response that is not already problem+json (unknown route, wrong method,
/// framework errors) into one, so clients parse a single error format.
pub fn render_bare_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", format!("no resource at {}", res.request().path())),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", format!("{} is not allowed on {}", res.request().method(), res.request().path()))
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large".to_owned()),
        s if s.is_server_error() => ("internal_error", "an unexpected error occurred; it has been logged".to_owned()),
        _ => ("bad_request", status.canonical_reason().unwrap_or("bad request").to_lowercase()),
    };
    let (req, old) = res.into_parts();
    let mut response = Problem::new(status, code, detail).response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let response: HttpResponse<EitherBody<B, BoxBody>> = response.map_into_right_body();
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, response)))
}
