//! User administration: admins create agents and admins and list users.

use super::dto::{UserPage, UserView};
use crate::auth::{AdminOnly, client_ip};
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use helpdesk_core::CoreError;
use helpdesk_core::accounts::{self, NewStaffUser, UserFilter};
use helpdesk_core::audit::{self, AuditEntry};
use helpdesk_core::pagination::PageRequest;
use helpdesk_domain::accounts::Role;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// `agent` or `admin`; customers sign up with their organisation's code.
    #[schema(value_type = String, example = "agent")]
    pub role: Role,
    /// Initial password; the user should change it.
    #[schema(min_length = 10, max_length = 128)]
    pub password: String,
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// `customer`, `agent` or `admin`.
    #[param(inline)]
    pub role: Option<Role>,
    pub organization_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List users (admin), oldest first, filtered by role or organisation.
#[utoipa::path(tag = "users", security(("bearer" = [])), params(UserQuery), responses(
    (status = 200, description = "OK", body = UserPage),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminOnly,
    query: Query<UserQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let (items, next_cursor) = accounts::list_users(
        &state.pool,
        UserFilter { role: query.role, organization_id: query.organization_id },
        page,
    )
    .await?;
    // Reading people's profiles is recorded (R14), naming whom.
    let ids: Vec<Uuid> = items.iter().map(|u| u.id).collect();
    let mut conn = state.pool.acquire().await.map_err(CoreError::from)?;
    let entry = AuditEntry {
        actor_id: Some(caller.0.user_id),
        action: "user.list_read",
        subject_type: "user",
        subject_id: None,
        ip: Some(&client_ip(&req, state.config.trust_proxy)),
        details: json!({ "user_ids": ids }),
    };
    audit::record(&mut conn, entry, state.clock.now()).await.map_err(CoreError::from)?;
    Ok(HttpResponse::Ok().json(UserPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Create an agent or administrator (admin).
#[utoipa::path(tag = "users", security(("bearer" = [])), request_body = CreateUser, responses(
    (status = 201, description = "Created", body = UserView),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: AdminOnly,
    req: HttpRequest,
    body: Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let input = NewStaffUser { email: b.email, name: b.name, role: b.role, password: b.password, locale: b.locale };
    // The account is written in a transaction of its own (the password is hashed first, off the
    // async threads); the key's transaction holds the key meanwhile and commits right after.
    crate::idempotency::once(&req, &state, &caller.0, async |_| {
        let user = accounts::create_staff_user(&state.pool, Some(caller.0.user_id), input, state.clock.now()).await?;
        crate::idempotency::Reply::created(&UserView::from(user))
    })
    .await
}
