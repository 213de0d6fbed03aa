//! The errors operations return. The API maps each variant to one HTTP status and a stable
//! machine-readable `code`; the worker decides from them whether to retry.

use serde::Serialize;

/// One invalid input field, named as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl ToString) -> Self {
        Self { field: field.into(), message: message.to_string() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Input that parses but breaks a rule; each field says what is wrong.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// Credentials or token missing, wrong, expired or revoked. The detail never says which.
    #[error("authentication failed")]
    Unauthenticated,
    /// Authenticated but not allowed; `code` names the missing permission or entitlement.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// The organisation's contract does not cover the request (DESIGN R2).
    #[error("{0}")]
    NotEntitled(helpdesk_domain::plans::MissingEntitlement),
    /// The resource does not exist, or belongs to an organisation the caller cannot see.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (duplicate, overlap, too late…).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// The caller's `If-Match` names a version the resource has moved on from.
    #[error("the {0} has changed since it was read; fetch it again")]
    PreconditionFailed(&'static str),
    #[error("too many attempts; retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("redis error")]
    Redis(#[from] redis::RedisError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn invalid(field: &str, message: impl ToString) -> Self {
        CoreError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        CoreError::Forbidden { code, detail: detail.into() }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        CoreError::Conflict { code, detail: detail.into() }
    }
}

/// The name of the constraint a database error violated, if any; lets operations turn unique
/// and exclusion violations into 409s instead of 500s.
pub fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}
