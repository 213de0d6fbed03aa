//! Who is calling: the one place a request's bearer token is checked and resolved to a caller
//! (id, role, organisation), re-checked against the user's row so disabled accounts and tokens
//! issued before a password change stop working (see [`AuthCache`] for how fresh that row is).

pub use crate::auth_cache::AuthCache;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use helpdesk_core::CoreError;
use helpdesk_core::accounts::{self, Caller};
use helpdesk_domain::privacy::must_accept_terms;
use std::future::{Ready, ready};

/// An authenticated caller who holds the current terms; extracting it answers 401 problem+json
/// when the token is missing, malformed, expired, of another audience or signed with anything but
/// our key and algorithm, and 403 `terms_not_accepted` when a customer has yet to accept the
/// current terms and privacy notice (R14) — every route but the few that take [`SignedIn`].
/// The token was already resolved by [`authenticate`] before any extractor ran, so this one is
/// ready at once: as the first argument of a handler, its 401 comes before any 400/422 that the
/// handler's query or body would cause.
pub struct Authenticated(pub Caller);

/// An authenticated administrator: a 403 `admin_only` for anyone else. Admin routes take this
/// instead of [`Authenticated`], so that the role is checked before their input is validated
/// (an agent probing an admin route learns nothing about the expected input).
pub struct AdminOnly(pub Caller);

/// An authenticated caller, whether or not they hold the current terms: for the routes a person
/// must reach to accept them, or to take their data and leave instead (their profile, the terms,
/// the export, the deletion).
pub struct SignedIn(pub Caller);

/// What [`authenticate`] found, kept in the request's extensions for the extractors.
#[derive(Clone)]
struct Resolved(Result<(Caller, Option<String>), InvalidToken>);

/// A bearer token was sent but is not good (expired, forged, revoked by a password change, of a
/// disabled account): RFC 6750 `invalid_token`, so a client knows to refresh.
#[derive(Clone, Copy, Debug)]
struct InvalidToken;

fn bearer_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned())
}

/// Checks a token and the user's current row; `Ok(None)` when the token is not good. Also gives
/// the terms version the user accepted.
async fn resolve(state: &AppState, token: &str) -> Result<Option<(Caller, Option<String>)>, ApiError> {
    let Ok(claims) = state.keys.verify_access(token, state.clock.now()) else { return Ok(None) };
    let record = match state.auth_cache.get(claims.sub) {
        Some(record) => record,
        None => match accounts::auth_record(&state.pool, claims.sub).await? {
            Some(record) => {
                state.auth_cache.put(record.clone());
                record
            }
            None => return Ok(None),
        },
    };
    Ok(record.admit(&claims).ok().map(|caller| (caller, record.terms_version.clone())))
}

/// Middleware: resolves the bearer token of every request that carries one, before routing and
/// extraction. Only a server error (database down) answers here; a bad token is left for the
/// extractors, so public routes never fail because of a stale header.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let (Some(state), Some(token)) = (state, bearer_token(req.request())) {
        let resolved = resolve(&state, &token).await?;
        req.extensions_mut().insert(Resolved(resolved.ok_or(InvalidToken)));
    }
    next.call(req).await
}

/// The caller [`authenticate`] found, if the request carried a good token.
pub fn resolved_caller(req: &HttpRequest) -> Option<Caller> {
    match req.extensions().get::<Resolved>() {
        Some(Resolved(Ok((caller, _)))) => Some(*caller),
        _ => None,
    }
}

fn caller_of(req: &HttpRequest) -> Result<Caller, ApiError> {
    signed_in(req).map(|(caller, _)| caller)
}

/// The caller and the terms version they accepted.
fn signed_in(req: &HttpRequest) -> Result<(Caller, Option<String>), ApiError> {
    match req.extensions().get::<Resolved>() {
        Some(Resolved(Ok(found))) => Ok(found.clone()),
        Some(Resolved(Err(InvalidToken))) => Err(ApiError::InvalidToken),
        // No token (the middleware resolves every request that has one).
        None if bearer_token(req).is_none() => Err(CoreError::Unauthenticated.into()),
        None => Err(CoreError::Internal("the authenticate middleware is not installed".into()).into()),
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(signed_in(req).and_then(|(caller, accepted)| {
            let current = req
                .app_data::<web::Data<AppState>>()
                .map(|state| state.config.current_terms_version.clone())
                .unwrap_or_default();
            if must_accept_terms(caller.role, accepted.as_deref(), &current) {
                return Err(CoreError::forbidden(
                    "terms_not_accepted",
                    format!("accept the current terms and privacy notice ({current}) with POST /v1/me/terms first"),
                )
                .into());
            }
            Ok(Authenticated(caller))
        }))
    }
}

impl FromRequest for SignedIn {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_of(req).map(SignedIn))
    }
}

impl FromRequest for AdminOnly {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_of(req).and_then(|caller| {
            caller.require_admin()?;
            Ok(AdminOnly(caller))
        }))
    }
}

/// The client's address, for rate limits and the audit log. `X-Forwarded-For` is believed only
/// when configured to sit behind a proxy; otherwise anyone could pick their own limit bucket.
pub fn client_ip(req: &HttpRequest, trust_proxy: bool) -> String {
    let info = req.connection_info();
    let ip = if trust_proxy { info.realip_remote_addr() } else { info.peer_addr() };
    ip.map(|ip| match ip.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) => ip.to_owned(),
    })
    .unwrap_or_else(|| "unknown".to_owned())
}
