//! "Fale Conosco" (R1): the public contact form and the commercial team's list of what came in.
//! The form needs no account and creates none. Its guards, in order: a rate limit per client
//! address (Redis), a honeypot field, a minimum time between serving the form and sending it
//! (a one-time token from `GET /v1/contact/form`), and length limits.

use crate::auth::{Authenticated, client_ip};
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::preconditions::{content_tag, tagged_read};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use helpdesk_core::CoreError;
use helpdesk_core::config::RateLimit;
use helpdesk_core::contact::{self, ContactFilter, ContactRequest, ContactStatus};
use helpdesk_core::pagination::PageRequest;
use helpdesk_domain::contact::{Refusal, Submission};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactForm {
    /// Send it back with the form; valid once, for 24 hours.
    pub form_token: String,
    /// A submission sooner than this after the form was served is refused (`submitted_too_fast`).
    #[schema(example = 3)]
    pub min_fill_seconds: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactSubmission {
    #[schema(min_length = 1, max_length = 200, example = "Ana Souza")]
    pub name: String,
    #[schema(max_length = 254, example = "ana@empresa.com.br")]
    pub email: String,
    #[schema(max_length = 200, example = "Empresa Ltda")]
    pub company: Option<String>,
    #[schema(min_length = 1, max_length = 5000)]
    pub message: String,
    /// Consent to be contacted about this message; required.
    pub consent: bool,
    /// From `GET /v1/contact/form`.
    pub form_token: String,
    /// Leave empty: the form hides this field from people.
    #[schema(max_length = 0)]
    pub website: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactReceived {
    #[schema(example = "received")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactRequestView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub company: Option<String>,
    pub message: String,
    pub consented_at: DateTime<Utc>,
    /// `open`, `answered` or `closed`.
    #[schema(example = "open")]
    pub status: &'static str,
    pub answer: Option<String>,
    pub answered_by: Option<Uuid>,
    pub answered_at: Option<DateTime<Utc>>,
    pub closed_by: Option<Uuid>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<ContactRequest> for ContactRequestView {
    fn from(r: ContactRequest) -> Self {
        ContactRequestView {
            id: r.id,
            name: r.name,
            email: r.email,
            company: r.company,
            message: r.message,
            consented_at: r.consented_at,
            status: r.status.as_str(),
            answer: r.answer,
            answered_by: r.answered_by,
            answered_at: r.answered_at,
            closed_by: r.closed_by,
            closed_at: r.closed_at,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactRequestPage {
    pub items: Vec<ContactRequestView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContactRequestQuery {
    /// `open`, `answered` or `closed`.
    #[param(example = "open")]
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactAnswer {
    /// E-mailed to the sender.
    #[schema(min_length = 1, max_length = 5000)]
    pub body: String,
}

fn problem(status: StatusCode, code: &'static str, detail: &str) -> ApiError {
    ApiError::bad_request(status, code, detail.to_owned())
}

/// A one-time token for the contact form; its serving instant starts the minimum fill time.
#[utoipa::path(tag = "contact", responses(
    (status = 200, description = "OK", body = ContactForm),
    (status = 429, description = "Too many forms from this address", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/contact/form")]
pub async fn contact_form(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req, state.config.trust_proxy);
    // Serving a form costs a Redis key: bounded per address too, more loosely than submissions.
    let limit = &state.config.contact_rate_limit;
    let forms = RateLimit { max: limit.max.saturating_mul(10), window_seconds: limit.window_seconds };
    state.limiter.hit("contact_form", &format!("ip:{ip}"), &forms).await?;
    let form_token = state.contact_forms.issue(state.clock.now()).await?;
    Ok(HttpResponse::Ok()
        .json(ContactForm { form_token, min_fill_seconds: state.config.contact_min_fill_time.num_seconds() }))
}

/// Send a message to Kadix's commercial team ("Fale Conosco"), without an account. The request
/// is stored and e-mailed to the commercial team; no account is created.
#[utoipa::path(tag = "contact", request_body = ContactSubmission, responses(
    (status = 202, description = "Received; the commercial team will answer by e-mail", body = ContactReceived),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "`validation_failed` (a field breaks a rule or is unknown, or `form_token` is unknown, expired or spent), `submitted_too_fast`, or `contact_rejected` (the submission looks automated)", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Too many submissions from this address", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/contact")]
pub async fn submit_contact(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<ContactSubmission>,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req, state.config.trust_proxy);
    state.limiter.hit("contact", &format!("ip:{ip}"), &state.config.contact_rate_limit).await?;
    let b = body.0;
    let now = state.clock.now();
    let served_at =
        state.contact_forms.served_at(&b.form_token).await?.ok_or_else(|| {
            CoreError::invalid("form_token", "is unknown, expired or already used: load the form again")
        })?;
    let submission = Submission {
        name: &b.name,
        email: &b.email,
        company: b.company.as_deref(),
        message: &b.message,
        consent: b.consent,
        honeypot: b.website.as_deref(),
    };
    let valid = match helpdesk_domain::contact::check(&submission, served_at, now, state.config.contact_min_fill_time) {
        Ok(valid) => valid,
        Err(Refusal::Robot) => {
            // Spent, so a robot cannot retry with the same token; the answer names no field.
            state.contact_forms.spend(&b.form_token).await?;
            return Err(problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "contact_rejected",
                "the message could not be accepted",
            ));
        }
        Err(Refusal::TooFast) => {
            return Err(problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "submitted_too_fast",
                "the form was sent too soon after it was loaded; please check it and send it again",
            ));
        }
        Err(Refusal::Invalid(errors)) => {
            return Err(CoreError::Validation(
                errors.into_iter().map(|(field, message)| helpdesk_core::FieldError::new(field, message)).collect(),
            )
            .into());
        }
    };
    if !state.contact_forms.spend(&b.form_token).await? {
        return Err(CoreError::invalid("form_token", "is unknown, expired or already used: load the form again").into());
    }
    let mut tx = state.pool.begin().await.map_err(CoreError::from)?;
    let zone = state.sla.snapshot(&mut tx).await?.calendar.time_zone();
    contact::submit(&mut tx, valid, &state.config.commercial_email, zone, now).await?;
    tx.commit().await.map_err(CoreError::from)?;
    Ok(HttpResponse::Accepted().json(ContactReceived { status: "received" }))
}

/// Contact requests, newest first (agents and admins).
#[utoipa::path(tag = "contact", security(("bearer" = [])), params(ContactRequestQuery), responses(
    (status = 200, description = "OK", body = ContactRequestPage),
    (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "`staff_only`", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Bad `status`, `limit` or `cursor`", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/contact-requests")]
pub async fn list_contact_requests(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<ContactRequestQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.0.require_staff()?;
    let q = query.0;
    let status = q
        .status
        .as_deref()
        .map(|s| ContactStatus::parse(s).map_err(|_| CoreError::invalid("status", "must be open, answered or closed")))
        .transpose()?;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await.map_err(CoreError::from)?;
    let (items, next_cursor) = contact::list(&mut conn, &caller.0, ContactFilter { status }, page).await?;
    Ok(HttpResponse::Ok().json(ContactRequestPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

/// One contact request (agents and admins).
#[utoipa::path(tag = "contact", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = ContactRequestView),
    (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "`staff_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/contact-requests/{id}")]
pub async fn get_contact_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await.map_err(CoreError::from)?;
    let request = contact::get(&mut conn, &caller.0, *id).await?;
    let body = ContactRequestView::from(request);
    Ok(tagged_read(&req, &content_tag(&body), &body))
}

/// Answer a contact request: the answer is e-mailed to the sender, once.
#[utoipa::path(tag = "contact", security(("bearer" = [])), request_body = ContactAnswer, responses(
    (status = 200, description = "Answered", body = ContactRequestView),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "`staff_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "`already_answered` or `contact_closed`", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Empty or oversize `body`", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/contact-requests/{id}/answer")]
pub async fn answer_contact_request(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: Json<ContactAnswer>,
) -> Result<HttpResponse, ApiError> {
    caller.0.require_staff()?;
    let mut tx = state.pool.begin().await.map_err(CoreError::from)?;
    let request = contact::answer(&mut tx, &caller.0, *id, &body.0.body, state.clock.now()).await?;
    tx.commit().await.map_err(CoreError::from)?;
    Ok(HttpResponse::Ok().json(ContactRequestView::from(request)))
}

/// Close a contact request, answered or not.
#[utoipa::path(tag = "contact", security(("bearer" = [])), responses(
    (status = 200, description = "Closed", body = ContactRequestView),
    (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "`staff_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "`contact_closed`", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/contact-requests/{id}/close")]
pub async fn close_contact_request(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.pool.begin().await.map_err(CoreError::from)?;
    let request = contact::close(&mut tx, &caller.0, *id, state.clock.now()).await?;
    tx.commit().await.map_err(CoreError::from)?;
    Ok(HttpResponse::Ok().json(ContactRequestView::from(request)))
}
