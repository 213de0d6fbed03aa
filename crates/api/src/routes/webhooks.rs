//! Webhook subscriptions, their deliveries and replays (admin; issue 13). The events and their
//! payloads are documented under the OpenAPI document's top-level `webhooks`.

use crate::auth::AdminOnly;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::preconditions::{IfMatch, content_tag, tagged, tagged_read};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_core::CoreError;
use helpdesk_core::webhooks::deliveries;
use helpdesk_core::webhooks::{Attempt, Delivery, NewSubscription, Subscription, SubscriptionUpdate, subscriptions};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `https://…`; plain `http` only to addresses in `HELPDESK_EGRESS_ALLOW_CIDRS`. Internal
    /// addresses are refused (SSRF guard).
    #[schema(example = "https://hooks.example.com/helpdesk")]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// Event types (see `webhooks` in this document); empty or absent: all of them.
    #[serde(default)]
    #[schema(example = json!(["ticket.created", "ticket.closed"]))]
    pub event_types: Vec<String>,
    /// Only this organisation's events; absent: every organisation's.
    pub organization_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `null` clears the organisation filter.
    #[serde(default, deserialize_with = "super::dto::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub organization_id: Option<Option<Uuid>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub organization_id: Option<Uuid>,
    pub enabled: bool,
    /// Why it was disabled (by an admin, or automatically after failing for too long).
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    /// Until then, deliveries carry a second signature made with the previous secret.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Subscription> for WebhookView {
    fn from(s: Subscription) -> Self {
        WebhookView {
            id: s.id,
            url: s.url,
            description: s.description,
            event_types: s.event_types,
            organization_id: s.organization_id,
            enabled: s.enabled,
            disabled_reason: s.disabled_reason,
            disabled_at: s.disabled_at,
            consecutive_failures: s.consecutive_failures,
            previous_secret_expires_at: s.previous_secret_expires_at,
            created_by: s.created_by,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A subscription with its signing secret, shown only when created or rotated.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…` (Standard Webhooks). Store it now: it is never shown again.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps signing too (0–168 hours; default 24).
    #[schema(minimum = 0, maximum = 168)]
    pub overlap_hours: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub succeeded: bool,
    /// The receiver's HTTP status; absent when it did not answer.
    pub response_status: Option<i32>,
    /// The first 1 KiB of the response body.
    pub response_body: Option<String>,
    pub latency_ms: i32,
    /// Why it failed (timeout, connection refused, refused by the egress guard, HTTP status).
    pub error: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        AttemptView {
            attempt: a.attempt,
            at: a.at,
            succeeded: a.succeeded,
            response_status: a.response_status,
            response_body: a.response_body,
            latency_ms: a.latency_ms,
            error: a.error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    /// The event's id: the `webhook-id` header of every attempt and replay of it.
    pub event_id: Uuid,
    pub event_type: String,
    /// Order within the subscription: deliveries go out one at a time, by this number.
    pub sequence: i64,
    /// `pending`, `in_flight`, `succeeded` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// The delivery this one replays.
    pub replay_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<AttemptView>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            sequence: d.sequence,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            replay_of: d.replay_of,
            created_at: d.created_at,
            finished_at: d.finished_at,
            attempt_log: d.attempt_log.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next (older) page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaySince {
    /// Every event since this instant that the subscription receives is queued again.
    pub since: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// New deliveries queued.
    pub queued: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedDelivery {
    /// The new delivery (same event, same `webhook-id`).
    pub delivery_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PingQueued {
    /// The ping event's id (its `webhook-id`).
    pub event_id: Uuid,
}

/// Create a subscription (admin). The response carries the signing secret, shown only now.
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks", security(("bearer" = [])), request_body = CreateWebhook, responses(
    (status = 201, description = "Created", body = WebhookWithSecret),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "`url` refused (not https, internal address, unresolvable), unknown `event_types`, unknown `organization_id`", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    caller: AdminOnly,
    body: Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    // Resolving the name is slow I/O: before the transaction.
    let url = subscriptions::check_url(&state.config.egress, &body.url).await?;
    let input = NewSubscription {
        url,
        description: body.description,
        event_types: body.event_types,
        organization_id: body.organization_id,
    };
    let (subscription, secret) =
        crate::tx::in_tx(&state.pool, async |c| subscriptions::create(c, &caller.0, input, state.clock.now()).await)
            .await?;
    Ok(HttpResponse::Created().json(WebhookWithSecret { webhook: subscription.into(), secret }))
}

/// Every subscription (admin).
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = WebhookList),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/webhooks")]
pub async fn list_webhooks(state: web::Data<AppState>, caller: AdminOnly) -> Result<HttpResponse, ApiError> {
    let items = crate::tx::read(&state.pool, async |c| subscriptions::list(c, &caller.0).await).await?;
    Ok(HttpResponse::Ok().json(WebhookList { items: items.into_iter().map(Into::into).collect() }))
}

/// One subscription (admin).
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "OK", body = WebhookView),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/webhooks/{id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminOnly,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let subscription = crate::tx::read(&state.pool, async |c| subscriptions::get(c, &caller.0, *id).await).await?;
    let body = WebhookView::from(subscription);
    Ok(tagged_read(&req, &content_tag(&body), &body))
}

/// Change a subscription's URL, description, event types or organisation (admin).
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = UpdateWebhook, responses(
    (status = 200, description = "OK", body = WebhookView),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "`url` refused, unknown `event_types` or `organization_id`", body = Problem, content_type = "application/problem+json")))]
#[patch("/v1/webhooks/{id}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: AdminOnly,
    id: web::Path<Uuid>,
    body: Json<UpdateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let url = match body.url {
        Some(url) => Some(subscriptions::check_url(&state.config.egress, &url).await?),
        None => None,
    };
    let change = SubscriptionUpdate {
        url,
        description: body.description,
        event_types: body.event_types,
        organization_id: body.organization_id,
    };
    let condition = IfMatch::from_request(&req)?;
    let subscription = crate::tx::in_tx(&state.pool, async |c| {
        if let Some(condition) = &condition {
            let current = subscriptions::lock(c, &caller.0, *id).await?;
            if !condition.allows(&content_tag(&WebhookView::from(current))) {
                return Err(CoreError::PreconditionFailed("webhook subscription"));
            }
        }
        subscriptions::update(c, &caller.0, *id, change, state.clock.now()).await
    })
    .await?;
    let body = WebhookView::from(subscription);
    Ok(tagged(HttpResponse::Ok(), &content_tag(&body), &body))
}

/// Delete a subscription with its delivery log (admin).
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[delete("/v1/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    caller: AdminOnly,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    crate::tx::in_tx(&state.pool, async |c| subscriptions::delete(c, &caller.0, *id).await).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Enable a subscription (admin): its failure count restarts, and what waited is sent, in order.
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}/enable", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "OK", body = WebhookView),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks/{id}/enable")]
pub async fn enable_webhook(
    state: web::Data<AppState>,
    caller: AdminOnly,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_enabled(&state, &caller, *id, true).await
}

/// Disable a subscription (admin): no new deliveries are written for it; pending ones wait.
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}/disable", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "OK", body = WebhookView),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks/{id}/disable")]
pub async fn disable_webhook(
    state: web::Data<AppState>,
    caller: AdminOnly,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_enabled(&state, &caller, *id, false).await
}

async fn set_enabled(state: &AppState, caller: &AdminOnly, id: Uuid, enabled: bool) -> Result<HttpResponse, ApiError> {
    let subscription = crate::tx::in_tx(&state.pool, async |c| {
        subscriptions::set_enabled(c, &caller.0, id, enabled, state.clock.now()).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(subscription)))
}

/// Replace the signing secret (admin). The previous one keeps signing alongside (two signatures
/// in `webhook-signature`) for `overlap_hours`, so receivers can switch without a gap.
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}/rotate-secret", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = RotateSecret, responses(
    (status = 200, description = "The new secret, shown only now", body = WebhookWithSecret),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "`overlap_hours` out of range", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks/{id}/rotate-secret")]
pub async fn rotate_webhook_secret(
    state: web::Data<AppState>,
    caller: AdminOnly,
    id: web::Path<Uuid>,
    body: Json<RotateSecret>,
) -> Result<HttpResponse, ApiError> {
    let overlap = TimeDelta::try_hours(body.0.overlap_hours.unwrap_or(24)).unwrap_or(TimeDelta::MAX);
    let (subscription, secret) = crate::tx::in_tx(&state.pool, async |c| {
        subscriptions::rotate_secret(c, &caller.0, *id, overlap, state.clock.now()).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(WebhookWithSecret { webhook: subscription.into(), secret }))
}

/// The subscription's deliveries, newest first, each with every attempt: status, response code,
/// the first 1 KiB of the response body and the latency (admin).
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}/deliveries", security(("bearer" = [])), params(("id" = Uuid, Path), DeliveryQuery), responses(
    (status = 200, description = "OK", body = DeliveryPage),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid `limit` or `cursor`", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    caller: AdminOnly,
    id: web::Path<Uuid>,
    query: Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(helpdesk_core::CoreError::invalid("limit", "must be between 1 and 100").into());
    }
    let before = match q.cursor.as_deref() {
        None => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .map_err(|_| helpdesk_core::CoreError::invalid("cursor", "is not a cursor of this list"))?,
        ),
    };
    let (items, next) =
        crate::tx::read(&state.pool, async |c| deliveries::list(c, &caller.0, *id, before, limit).await).await?;
    Ok(HttpResponse::Ok().json(DeliveryPage {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// Send one delivery's event again (admin): a new delivery at the end of the queue, with the
/// same `webhook-id`.
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}/deliveries/{delivery_id}/replay", security(("bearer" = [])), params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)), responses(
    (status = 202, description = "Queued", body = ReplayedDelivery),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks/{id}/deliveries/{delivery_id}/replay")]
pub async fn replay_delivery(
    state: web::Data<AppState>,
    caller: AdminOnly,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery_id) = path.into_inner();
    let delivery_id = crate::tx::in_tx(&state.pool, async |c| {
        deliveries::replay(c, &caller.0, id, delivery_id, state.clock.now()).await
    })
    .await?;
    Ok(HttpResponse::Accepted().json(ReplayedDelivery { delivery_id }))
}

/// Send again every event since an instant that the subscription receives, oldest first
/// (admin; at most 10,000).
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}/replay", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = ReplaySince, responses(
    (status = 202, description = "Queued", body = Replayed),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "`since` in the future, or too many events", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks/{id}/replay")]
pub async fn replay_since(
    state: web::Data<AppState>,
    caller: AdminOnly,
    id: web::Path<Uuid>,
    body: Json<ReplaySince>,
) -> Result<HttpResponse, ApiError> {
    let since = body.0.since;
    let queued = crate::tx::in_tx(&state.pool, async |c| {
        deliveries::replay_since(c, &caller.0, *id, since, state.clock.now()).await
    })
    .await?;
    Ok(HttpResponse::Accepted().json(Replayed { queued }))
}

/// Send a `ping` event to this subscription (admin).
#[utoipa::path(tag = "webhooks", path = "/v1/webhooks/{id}/test", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 202, description = "Queued", body = PingQueued),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/webhooks/{id}/test")]
pub async fn test_webhook(
    state: web::Data<AppState>,
    caller: AdminOnly,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let event_id =
        crate::tx::in_tx(&state.pool, async |c| subscriptions::ping(c, &caller.0, *id, state.clock.now()).await)
            .await?;
    Ok(HttpResponse::Accepted().json(PingQueued { event_id }))
}
