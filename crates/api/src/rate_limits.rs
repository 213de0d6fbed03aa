//! The per-caller request limit on authenticated routes, and the `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` headers (IETF draft "RateLimit header fields
//! for HTTP") on every rate-limited answer. Routes with limits of their own (sign-in, sign-up,
//! refresh, password reset) leave their [`Quota`] in the request's extensions; this middleware
//! writes whichever quota applies.

use crate::auth::resolved_caller;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use helpdesk_core::rate_limit::Quota;

/// Middleware, inside `auth::authenticate`: counts the request against its caller's quota (a
/// 429 with `Retry-After` past it), then writes the `RateLimit-*` headers.
pub async fn per_caller(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let (Some(state), Some(caller)) = (state, resolved_caller(req.request())) {
        let subject = format!("user:{}", caller.user_id);
        match state.limiter.hit_reserving("api", &subject, &state.config.api_rate_limit).await {
            Ok(quota) => {
                req.extensions_mut().insert(quota);
            }
            Err(error) => {
                // 429 carries Retry-After and RateLimit-Remaining/Reset (see `error.rs`).
                let (req, _) = req.into_parts();
                let mut response = actix_web::ResponseError::error_response(&ApiError::from(error));
                let limit = state.config.api_rate_limit.max;
                response.headers_mut().insert(HeaderName::from_static("ratelimit-limit"), HeaderValue::from(limit));
                return Ok(ServiceResponse::new(req, response).map_into_right_body());
            }
        }
    }
    let mut response = next.call(req).await?;
    let quota = response.request().extensions().get::<Quota>().copied();
    if let Some(quota) = quota {
        write_headers(response.headers_mut(), quota);
    }
    Ok(response.map_into_left_body())
}

fn write_headers(headers: &mut HeaderMap, quota: Quota) {
    for (name, value) in [
        ("ratelimit-limit", u64::from(quota.limit)),
        ("ratelimit-remaining", u64::from(quota.remaining)),
        ("ratelimit-reset", quota.reset_seconds),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}
