//! Who is calling: the one place a request's bearer token is checked and resolved to a caller
//! (id, role, organisation), re-checked against the user's row so disabled accounts and tokens
//! issued before a password change stop working (see [`AuthCache`] for how fresh that row is).

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use helpdesk_core::CoreError;
use helpdesk_core::accounts::{self, AuthRecord, Caller};
use helpdesk_domain::privacy::must_accept_terms;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Users' authentication records, kept for a moment so a burst of requests does not re-read the
/// same row each time. A change this process makes (password change or reset) forgets the entry
/// at once; other instances see it within `ttl` (default 1 s). A zero `ttl` disables the cache.
pub struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<Uuid, (Instant, AuthRecord)>>,
}

/// Bounds memory: past this many users the cache starts afresh.
const AUTH_CACHE_MAX_ENTRIES: usize = 50_000;

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn get(&self, user: Uuid) -> Option<AuthRecord> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(&user).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, record)| record.clone())
    }

    fn put(&self, record: AuthRecord) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= AUTH_CACHE_MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(record.user_id, (Instant::now(), record));
    }

    pub fn forget(&self, user: Uuid) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(&user);
    }
}

/// An authenticated caller who holds the current terms; extracting it answers 401 problem+json
/// when the token is missing, malformed, expired, of another audience or signed with anything but
/// our key and algorithm, and 403 `terms_not_accepted` when a customer has yet to accept the
/// current terms and privacy notice (R14) — every route but the few that take [`SignedIn`].
pub struct Authenticated(pub Caller);

/// An authenticated caller, whether or not they hold the current terms: for the routes a person
/// must reach to accept them, or to take their data and leave instead (their profile, the terms,
/// the export, the deletion).
pub struct SignedIn(pub Caller);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let resolving = resolve(req);
        Box::pin(async move {
            let (caller, record, current_terms) = resolving.await?;
            if must_accept_terms(record.role, record.terms_version.as_deref(), &current_terms) {
                return Err(CoreError::forbidden(
                    "terms_not_accepted",
                    format!(
                        "accept the current terms and privacy notice ({current_terms}) with POST /v1/me/terms first"
                    ),
                )
                .into());
            }
            Ok(Authenticated(caller))
        })
    }
}

impl FromRequest for SignedIn {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let resolving = resolve(req);
        Box::pin(async move { Ok(SignedIn(resolving.await?.0)) })
    }
}

/// The caller of a request, their authentication record and the current terms version.
fn resolve(req: &HttpRequest) -> LocalBoxFuture<'static, Result<(Caller, AuthRecord, String), ApiError>> {
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
                let record = accounts::auth_record(&state.pool, claims.sub).await?.ok_or(CoreError::Unauthenticated)?;
                state.auth_cache.put(record.clone());
                record
            }
        };
        let caller = record.admit(&claims)?;
        Ok((caller, record, state.config.current_terms_version.clone()))
    })
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
