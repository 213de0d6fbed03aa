//! Organisations and their contracts. Admins manage them; a customer sees only their own, and
//! any other organisation answers 404 exactly like one that does not exist.

use super::dto::{ContractView, OrganizationPage, OrganizationView, PageParams};
use crate::auth::{AdminOnly, Authenticated};
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::idempotency::Reply;
use crate::preconditions::{IfMatch, revision_tag, tagged, tagged_read};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::NaiveDate;
use helpdesk_core::CoreError;
use helpdesk_core::organizations::{self, NewContract};
use helpdesk_core::pagination::PageRequest;
use helpdesk_core::sla_store::local_today;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    #[schema(min_length = 1, max_length = 200, example = "Padaria Pão Quente Ltda")]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContract {
    /// Plan code: `essencial`, `pro` or `premium`.
    #[schema(example = "pro")]
    pub plan: String,
    pub starts_on: NaiveDate,
    /// Exclusive end date; omit for an open-ended contract.
    pub ends_on: Option<NaiveDate>,
}

/// Organisations the caller can see (all for staff, their own for a customer).
#[utoipa::path(tag = "organizations", security(("bearer" = [])), params(PageParams), responses((status = 200, description = "OK", body = OrganizationPage)))]
#[get("/v1/organizations")]
pub async fn list_organizations(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.0.limit, query.0.cursor.as_deref())?;
    let (items, next_cursor) = crate::tx::read(&state.pool, async |c| {
        organizations::list_organizations(c, &caller.0, page, state.clock.now()).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(OrganizationPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Create an organisation (admin).
#[utoipa::path(tag = "organizations", security(("bearer" = [])), request_body = CreateOrganization, responses(
    (status = 201, description = "Created", body = OrganizationView),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/organizations")]
pub async fn create_organization(
    state: web::Data<AppState>,
    caller: AdminOnly,
    req: HttpRequest,
    body: Json<CreateOrganization>,
) -> Result<HttpResponse, ApiError> {
    crate::idempotency::once(&req, &state, &caller.0, async |c| {
        let org = organizations::create_organization(c, &caller.0, &body.0.name, state.clock.now()).await?;
        Reply::created(&OrganizationView::from(org))
    })
    .await
}

/// One organisation.
#[utoipa::path(tag = "organizations", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = OrganizationView),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/organizations/{id}")]
pub async fn get_organization(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let org = crate::tx::read(&state.pool, async |c| {
        organizations::get_organization(c, &caller.0, *id, state.clock.now()).await
    })
    .await?;
    let tag = revision_tag(org.updated_at, &org.name);
    Ok(tagged_read(&req, &tag, &OrganizationView::from(org)))
}

/// Rename an organisation (admin).
#[utoipa::path(tag = "organizations", security(("bearer" = [])), request_body = CreateOrganization, responses(
    (status = 200, description = "OK", body = OrganizationView),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "`organization_name_taken`: another organisation has this name", body = Problem, content_type = "application/problem+json")))]
#[patch("/v1/organizations/{id}")]
pub async fn update_organization(
    state: web::Data<AppState>,
    caller: AdminOnly,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<CreateOrganization>,
) -> Result<HttpResponse, ApiError> {
    let condition = IfMatch::from_request(&req)?;
    let org = crate::tx::in_tx(&state.pool, async |c| {
        if let Some(condition) = &condition {
            let (updated_at, name) = organizations::locked_revision(c, &caller.0, *id).await?;
            if !condition.allows(&revision_tag(updated_at, &name)) {
                return Err(CoreError::PreconditionFailed("organization"));
            }
        }
        organizations::rename_organization(c, &caller.0, *id, &body.0.name, state.clock.now()).await
    })
    .await?;
    let tag = revision_tag(org.updated_at, &org.name);
    Ok(tagged(HttpResponse::Ok(), &tag, &OrganizationView::from(org)))
}

/// The organisation's contracts, newest first. Signup codes are shown to staff only.
#[utoipa::path(tag = "organizations", path = "/v1/organizations/{id}/contracts", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = Vec<ContractView>),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/organizations/{id}/contracts")]
pub async fn list_contracts(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let today = local_today(&state.pool, state.clock.now()).await.map_err(ApiError::from)?;
    let staff = caller.0.role.is_staff();
    let contracts =
        crate::tx::read(&state.pool, async |c| organizations::list_contracts(c, &caller.0, *id).await).await?;
    Ok(HttpResponse::Ok().json(contracts.into_iter().map(|c| ContractView::new(c, today, staff)).collect::<Vec<_>>()))
}

/// Add a contract (admin). Contracts of one organisation may not overlap in time.
#[utoipa::path(tag = "organizations", path = "/v1/organizations/{id}/contracts", security(("bearer" = [])), request_body = CreateContract, responses(
    (status = 201, description = "Created", body = ContractView),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Overlaps a contract already in force (`contract_overlap`)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/organizations/{id}/contracts")]
pub async fn create_contract(
    state: web::Data<AppState>,
    caller: AdminOnly,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Json<CreateContract>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let input = NewContract { plan_code: body.0.plan, starts_on: body.0.starts_on, ends_on: body.0.ends_on };
    crate::idempotency::once(&req, &state, &caller.0, async |c| {
        let contract = organizations::create_contract(c, &caller.0, *id, input, now).await?;
        let today = local_today(&mut *c, now).await?;
        Reply::created(&ContractView::new(contract, today, true))
    })
    .await
}

/// Issue a new signup code for a contract (admin); the old code stops working.
#[utoipa::path(tag = "organizations", path = "/v1/organizations/{id}/contracts/{contract_id}/signup-code", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = ContractView),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/organizations/{id}/contracts/{contract_id}/signup-code")]
pub async fn rotate_signup_code(
    state: web::Data<AppState>,
    caller: AdminOnly,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let (organization_id, contract_id) = path.into_inner();
    let contract = crate::tx::in_tx(&state.pool, async |c| {
        organizations::rotate_signup_code(c, &caller.0, organization_id, contract_id, now).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(ContractView::new(contract, local_today(&state.pool, now).await?, true)))
}
