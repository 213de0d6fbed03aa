//! The caller's own account: profile and password (R1: users keep their profile up to date).

use super::dto::{MeView, UserView, double_option};
use crate::auth::{Authenticated, SignedIn};
use crate::error::{ApiError, Problem};
use crate::extract::Json;
use crate::preconditions::{content_tag, tagged_read};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, patch, put, web};
use helpdesk_core::accounts::{self, ProfileUpdate};
use helpdesk_core::{CoreError, admin_contacts};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(max_length = 40, value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// `pt-BR` or `en`: the language of e-mails.
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    #[schema(min_length = 10, max_length = 128)]
    pub new_password: String,
}

/// The caller's profile, with where they stand on the terms and privacy notice: reachable while
/// new terms wait for acceptance, so a client can show them.
#[utoipa::path(tag = "me", security(("bearer" = [])), responses((status = 200, description = "OK", body = MeView), (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/me")]
pub async fn get_me(state: web::Data<AppState>, req: HttpRequest, caller: SignedIn) -> Result<HttpResponse, ApiError> {
    let user = accounts::get_user(&state.pool, caller.0.user_id).await?;
    let mut conn = state.pool.acquire().await.map_err(CoreError::from)?;
    let admin_contact = admin_contacts::is_admin_contact(&mut conn, user.id).await?;
    let body = MeView::new(user, admin_contact, &state.config.current_terms_version);
    Ok(tagged_read(&req, &content_tag(&body), &body))
}

/// Update name, phone or language. E-mail, role and organisation are not self-service.
#[utoipa::path(tag = "me", security(("bearer" = [])), request_body = UpdateMe, responses(
    (status = 200, description = "OK", body = UserView),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[patch("/v1/me")]
pub async fn update_me(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: Json<UpdateMe>,
) -> Result<HttpResponse, ApiError> {
    let update = ProfileUpdate { name: body.0.name, phone: body.0.phone, locale: body.0.locale };
    let user = accounts::update_profile(&state.pool, caller.0.user_id, update, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

/// Change the password. Every session ends, this one included: sign in again.
#[utoipa::path(tag = "me", path = "/v1/me/password", security(("bearer" = [])), request_body = ChangePassword, responses(
    (status = 204, description = "No content"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[put("/v1/me/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    accounts::change_password(
        &state.pool,
        caller.0.user_id,
        body.0.current_password,
        body.0.new_password,
        state.clock.now(),
    )
    .await?;
    state.auth_cache.forget(caller.0.user_id);
    Ok(HttpResponse::NoContent().finish())
}
