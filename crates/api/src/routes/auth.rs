//! Sign-up, sign-in, session refresh and logout, password reset. All rate-limited per client
//! address and per account in Redis, so limits hold across API instances.

use super::dto::UserView;
use crate::auth::client_ip;
use crate::error::{ApiError, Problem};
use crate::extract::Json;
use crate::state::AppState;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Utc};
use helpdesk_core::accounts::{self, Registration, Session};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(min_length = 3, max_length = 254, example = "ana@cliente.com.br")]
    pub email: String,
    /// At least 10 characters, not a commonly used password.
    #[schema(min_length = 10, max_length = 128)]
    pub password: String,
    #[schema(min_length = 1, max_length = 200, example = "Ana Souza")]
    pub name: String,
    /// The signup code of the organisation's active contract, handed out by Kadix.
    #[schema(example = "ABCD-EFGH-JKMN")]
    pub signup_code: String,
    /// The version of the terms of use and privacy policy the user accepted.
    #[schema(example = "2026-01")]
    pub accepted_terms_version: String,
    /// `pt-BR` (default) or `en`.
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[schema(min_length = 3, max_length = 254)]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The token from the reset e-mail.
    pub token: String,
    #[schema(min_length = 10, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Short-lived JWT for the `Authorization: Bearer` header.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Opaque, single-use: exchange it at `/v1/auth/refresh` for a new pair.
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub user: UserView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    #[schema(example = "if the address has an account, a reset e-mail is on its way")]
    pub message: &'static str,
}

impl From<Session> for TokenResponse {
    fn from(s: Session) -> Self {
        TokenResponse {
            access_token: s.access_token,
            token_type: "Bearer",
            expires_in: s.access_expires_in.num_seconds(),
            refresh_token: s.refresh_token,
            refresh_expires_at: s.refresh_expires_at,
            user: s.user.into(),
        }
    }
}

/// Counts the attempt against the client's address (a loose limit: offices share one NAT
/// address) and, when given, the account (a tight one: password guessing).
async fn limit(state: &AppState, req: &HttpRequest, scope: &str, account: Option<&str>) -> Result<String, ApiError> {
    let ip = client_ip(req, state.config.trust_proxy);
    let mut quota = state.limiter.hit(scope, &format!("ip:{ip}"), &state.config.auth_ip_rate_limit).await?;
    if let Some(account) = account {
        let account = account.trim().to_lowercase();
        let account = state.limiter.hit(scope, &format!("account:{account}"), &state.config.auth_rate_limit).await?;
        quota = quota.tighter(account);
    }
    req.extensions_mut().insert(quota);
    Ok(ip)
}

/// Sign up as a customer of the organisation whose active contract holds the signup code.
#[utoipa::path(tag = "auth", request_body = RegisterRequest, responses(
    (status = 201, description = "Created", body = UserView),
    (status = 403, description = "The signup code belongs to no active contract (`no_active_contract`)", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The e-mail already has an account", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/auth/register")]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let ip = limit(&state, &req, "register", Some(&body.email)).await?;
    let input = Registration {
        email: body.email,
        password: body.password,
        name: body.name,
        signup_code: body.signup_code,
        accepted_terms_version: body.accepted_terms_version,
        locale: body.locale,
    };
    let user =
        accounts::register(&state.pool, input, &state.config.current_terms_version, Some(&ip), state.clock.now())
            .await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// Sign in with e-mail and password.
#[utoipa::path(tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "OK", body = TokenResponse),
    (status = 401, description = "Unknown e-mail or wrong password (the answer does not say which)", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let ip = limit(&state, &req, "login", Some(&body.0.email)).await?;
    let session = accounts::login(
        &state.pool,
        &state.keys,
        state.config.refresh_token_ttl,
        &body.0.email,
        body.0.password,
        Some(&ip),
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(session)))
}

/// Exchange a refresh token for a new access and refresh token. A refresh token works once;
/// presenting a spent one revokes every token of that session.
#[utoipa::path(tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, description = "OK", body = TokenResponse),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    limit(&state, &req, "refresh", None).await?;
    let session = accounts::refresh(
        &state.pool,
        &state.keys,
        state.config.refresh_token_ttl,
        &body.0.refresh_token,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(session)))
}

/// End the session the refresh token belongs to.
#[utoipa::path(tag = "auth", request_body = RefreshRequest, responses((status = 204, description = "No content")))]
#[post("/v1/auth/logout")]
pub async fn logout(state: web::Data<AppState>, body: Json<RefreshRequest>) -> Result<HttpResponse, ApiError> {
    accounts::logout(&state.pool, &body.0.refresh_token, state.clock.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ask for a password-reset e-mail. Always 202, whether or not the address has an account.
#[utoipa::path(tag = "auth", path = "/v1/auth/password-reset/request", request_body = PasswordResetRequest, responses(
    (status = 202, description = "Accepted", body = Accepted),
    (status = 422, description = "`validation_failed`: `email` is not 3 to 254 characters long (what any account's address is; nothing is said about accounts)", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/auth/password-reset/request")]
pub async fn password_reset_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<PasswordResetRequest>,
) -> Result<HttpResponse, ApiError> {
    // The schema's limits: no account has a shorter or longer address, so refusing says nothing.
    if !(3..=254).contains(&body.0.email.chars().count()) {
        return Err(helpdesk_core::CoreError::invalid("email", "must be 3 to 254 characters long").into());
    }
    limit(&state, &req, "password-reset", Some(&body.0.email)).await?;
    accounts::request_password_reset(
        &state.pool,
        &body.0.email,
        &state.config.public_url,
        state.config.password_reset_ttl,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Accepted()
        .json(Accepted { message: "if the address has an account, a reset e-mail is on its way" }))
}

/// Set a new password with the token from the reset e-mail; every session of the account ends.
#[utoipa::path(tag = "auth", path = "/v1/auth/password-reset/confirm", request_body = PasswordResetConfirm, responses(
    (status = 204, description = "No content"),
    (status = 422, description = "Invalid/expired token or weak password", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/auth/password-reset/confirm")]
pub async fn password_reset_confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<PasswordResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    limit(&state, &req, "password-reset-confirm", None).await?;
    let user =
        accounts::confirm_password_reset(&state.pool, &body.0.token, body.0.new_password, state.clock.now()).await?;
    state.auth_cache.forget(user);
    Ok(HttpResponse::NoContent().finish())
}
