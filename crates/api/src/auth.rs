//! Who is calling: the one place a request's bearer token is checked and resolved to a caller
//! (id, role, organisation), re-checked against the user's row so disabled accounts and tokens
//! issued before a password change stop working (see [`AuthCache`] for how fresh that row is).

pub use crate::auth_cache::AuthCache;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use helpdesk_core::CoreError;
use helpdesk_core::accounts::{self, Caller};

/// An authenticated caller; extracting it answers 401 problem+json when the token is missing,
/// malformed, expired, of another audience or signed with anything but our key and algorithm.
pub struct Authenticated(pub Caller);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_owned());
        Box::pin(async move {
            let state = state.ok_or_else(|| CoreError::Internal("application state missing".into()))?;
            let token = token.ok_or(CoreError::Unauthenticated)?;
            let claims = state.keys.verify_access(&token, state.clock.now())?;
            let record = match state.auth_cache.get(claims.sub) {
                Some(record) => record,
                None => {
                    let record =
                        accounts::auth_record(&state.pool, claims.sub).await?.ok_or(CoreError::Unauthenticated)?;
                    state.auth_cache.put(record.clone());
                    record
                }
            };
            Ok(Authenticated(record.admit(&claims)?))
        })
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
