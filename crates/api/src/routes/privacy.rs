//! LGPD duties (DESIGN R14): a person's export and anonymisation (by themselves or an
//! administrator), the terms acceptance, staff reads of a profile (audited), and the
//! organisation's admin contacts.

use super::dto::{MeView, UserView};
use crate::auth::{AdminOnly, Authenticated, SignedIn, client_ip};
use crate::error::{ApiError, Problem};
use crate::extract::Json;
use crate::preconditions::{content_tag, tagged_read};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use helpdesk_core::accounts::{self, Caller};
use helpdesk_core::audit::{self, AuditEntry};
use helpdesk_core::personal_data::{self, PersonalDataExport};
use helpdesk_core::{CoreError, admin_contacts, terms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{PgConnection, Postgres, Transaction};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptTerms {
    /// The version accepted: must be the current one (`terms_current_version` of `/v1/me`).
    #[schema(example = "2026-01", min_length = 1, max_length = 50)]
    pub version: String,
}

/// Everything held about one person (LGPD Art. 18). Other people appear only as opaque ids.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonalDataExportView {
    pub generated_at: DateTime<Utc>,
    /// The profile: e-mail, name, phone, role, organisation, language, terms accepted.
    #[schema(value_type = Object)]
    pub profile: Value,
    /// Sign-in sessions: when each began, ended or was rotated (never the token).
    #[schema(value_type = Vec<Object>)]
    pub sessions: Value,
    /// Tickets the person opened, with subject and description.
    #[schema(value_type = Vec<Object>)]
    pub tickets: Value,
    /// Messages the person wrote, on any ticket.
    #[schema(value_type = Vec<Object>)]
    pub messages: Value,
    /// Ticket timeline entries of the person's own actions.
    #[schema(value_type = Vec<Object>)]
    pub ticket_events: Value,
    /// E-mails sent or queued to the person, with their content.
    #[schema(value_type = Vec<Object>)]
    pub emails: Value,
    /// Audit entries about the person (sign-ins, changes, staff reads, exports); who acted is
    /// `self`, `system` or the other person's role, and only the person's own IP address is shown.
    #[schema(value_type = Vec<Object>)]
    pub audit_events: Value,
}

impl From<PersonalDataExport> for PersonalDataExportView {
    fn from(e: PersonalDataExport) -> Self {
        PersonalDataExportView {
            generated_at: e.generated_at,
            profile: e.profile,
            sessions: e.sessions,
            tickets: e.tickets,
            messages: e.messages,
            ticket_events: e.ticket_events,
            emails: e.emails,
            audit_events: e.audit_events,
        }
    }
}

async fn begin(state: &AppState) -> Result<Transaction<'static, Postgres>, ApiError> {
    Ok(state.pool.begin().await.map_err(CoreError::from)?)
}

async fn commit(tx: Transaction<'static, Postgres>) -> Result<(), ApiError> {
    Ok(tx.commit().await.map_err(CoreError::from)?)
}

/// Reads an export and records who took it, in one transaction: an export nobody can trace is
/// not given.
async fn export_for(
    state: &AppState,
    req: &HttpRequest,
    caller: &Caller,
    user_id: Uuid,
) -> Result<HttpResponse, ApiError> {
    personal_data::check_access(caller, user_id)?;
    let now = state.clock.now();
    let ip = client_ip(req, state.config.trust_proxy);
    let mut tx = begin(state).await?;
    let export = personal_data::export(&mut tx, user_id, now).await?;
    record(&mut tx, caller, "user.exported", user_id, &ip, json!({}), now).await?;
    commit(tx).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Disposition", format!("attachment; filename=\"personal-data-{user_id}.json\"")))
        .insert_header(("Cache-Control", "no-store"))
        .json(PersonalDataExportView::from(export)))
}

async fn record(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &'static str,
    user_id: Uuid,
    ip: &str,
    details: Value,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        actor_id: Some(caller.user_id),
        action,
        subject_type: "user",
        subject_id: Some(user_id),
        ip: Some(ip),
        details,
    };
    audit::record(conn, entry, now).await.map_err(CoreError::from)?;
    Ok(())
}

async fn anonymise(
    state: &AppState,
    req: &HttpRequest,
    caller: &Caller,
    user_id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(req, state.config.trust_proxy);
    let mut tx = begin(state).await?;
    personal_data::anonymise(&mut tx, caller, user_id, Some(&ip), state.clock.now()).await?;
    commit(tx).await?;
    state.auth_cache.forget(user_id);
    Ok(HttpResponse::NoContent().finish())
}

/// Export everything held about the caller, as JSON (LGPD Art. 18). Recorded in the audit log.
#[utoipa::path(tag = "privacy", path = "/v1/me/export", security(("bearer" = [])), responses(
    (status = 200, description = "The export", body = PersonalDataExportView),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/me/export")]
pub async fn export_me(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: SignedIn,
) -> Result<HttpResponse, ApiError> {
    export_for(&state, &req, &caller.0, caller.0.user_id).await
}

/// Export everything held about a user (admin). Recorded in the audit log.
#[utoipa::path(tag = "privacy", path = "/v1/users/{id}/export", security(("bearer" = [])), responses(
    (status = 200, description = "The export", body = PersonalDataExportView),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not allowed (`admin_only`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such user, or anonymised", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/users/{id}/export")]
pub async fn export_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminOnly,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    export_for(&state, &req, &caller.0, *id).await
}

/// Delete the caller's account: the person is anonymised (name, e-mail, phone and what they
/// wrote become placeholders, copies in e-mails, timelines and the audit log are scrubbed, every
/// session ends) while tickets, their times and SLA figures stay. An organisation's last admin
/// contact must name another first while others remain (409 `last_admin_contact`).
#[utoipa::path(tag = "privacy", path = "/v1/me", security(("bearer" = [])), responses(
    (status = 204, description = "Anonymised; the token no longer works"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "A handover is needed first (`last_admin_contact`, `last_admin`)", body = Problem, content_type = "application/problem+json")))]
#[delete("/v1/me")]
pub async fn delete_me(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: SignedIn,
) -> Result<HttpResponse, ApiError> {
    anonymise(&state, &req, &caller.0, caller.0.user_id).await
}

/// Anonymise a user (admin), as `DELETE /v1/me` does for oneself.
#[utoipa::path(tag = "privacy", path = "/v1/users/{id}", security(("bearer" = [])), responses(
    (status = 204, description = "Anonymised"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not allowed (`admin_only`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such user, or already anonymised", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "A handover is needed first (`last_admin_contact`, `last_admin`)", body = Problem, content_type = "application/problem+json")))]
#[delete("/v1/users/{id}")]
pub async fn delete_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminOnly,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    anonymise(&state, &req, &caller.0, *id).await
}

/// Accept the current terms of use and privacy notice.
#[utoipa::path(tag = "privacy", path = "/v1/me/terms", security(("bearer" = [])), request_body = AcceptTerms, responses(
    (status = 200, description = "Accepted; the caller's profile", body = MeView),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Not the current version", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/me/terms")]
pub async fn accept_terms(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: SignedIn,
    body: Json<AcceptTerms>,
) -> Result<HttpResponse, ApiError> {
    let current = &state.config.current_terms_version;
    let ip = client_ip(&req, state.config.trust_proxy);
    let mut tx = begin(&state).await?;
    terms::accept(&mut tx, &caller.0, body.0.version.trim(), current, Some(&ip), state.clock.now()).await?;
    let admin_contact = admin_contacts::is_admin_contact(&mut tx, caller.0.user_id).await?;
    commit(tx).await?;
    state.auth_cache.forget(caller.0.user_id);
    let user = accounts::get_user(&state.pool, caller.0.user_id).await?;
    Ok(HttpResponse::Ok().json(MeView::new(user, admin_contact, current)))
}

/// One user's profile (staff). Every read is recorded in the audit log.
#[utoipa::path(tag = "users", path = "/v1/users/{id}", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = UserView),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not allowed (`staff_only`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.0.require_staff()?;
    let user = accounts::get_user(&state.pool, *id).await?;
    let ip = client_ip(&req, state.config.trust_proxy);
    let mut tx = begin(&state).await?;
    record(&mut tx, &caller.0, "user.profile_read", user.id, &ip, json!({}), state.clock.now()).await?;
    commit(tx).await?;
    let body = UserView::from(user);
    Ok(tagged_read(&req, &content_tag(&body), &body))
}

/// Name a customer of the organisation as one of its admin contacts (admin, or an admin contact
/// of the organisation): the handover before the last one leaves.
#[utoipa::path(tag = "organizations", path = "/v1/organizations/{id}/admin-contacts/{user_id}", security(("bearer" = [])), responses(
    (status = 204, description = "Named"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not allowed (`admin_only`, `admin_contact_only`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such organisation or active customer of it", body = Problem, content_type = "application/problem+json")))]
#[put("/v1/organizations/{id}/admin-contacts/{user_id}")]
pub async fn add_admin_contact(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    set_admin_contact(&state, &caller.0, *path, true).await
}

/// Stop being (or remove) an admin contact; the last one must name another first while others
/// remain (409 `last_admin_contact`).
#[utoipa::path(tag = "organizations", path = "/v1/organizations/{id}/admin-contacts/{user_id}", security(("bearer" = [])), responses(
    (status = 204, description = "Removed"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not allowed (`admin_only`, `admin_contact_only`)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such organisation or active customer of it", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The last admin contact (`last_admin_contact`)", body = Problem, content_type = "application/problem+json")))]
#[delete("/v1/organizations/{id}/admin-contacts/{user_id}")]
pub async fn remove_admin_contact(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    set_admin_contact(&state, &caller.0, *path, false).await
}

async fn set_admin_contact(
    state: &AppState,
    caller: &Caller,
    (organization_id, user_id): (Uuid, Uuid),
    admin_contact: bool,
) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(state).await?;
    admin_contacts::set(&mut tx, caller, organization_id, user_id, admin_contact, state.clock.now()).await?;
    commit(tx).await?;
    Ok(HttpResponse::NoContent().finish())
}
