//! Subscriptions (admin only): a URL checked by the SSRF guard, the event types, an optional
//! organisation, and a secret generated here and shown once. Rotating keeps the old secret
//! signing alongside the new one for an overlap period, so receivers can switch without a gap.

use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::egress::{DestinationHost, EgressPolicy};
use helpdesk_domain::webhooks::events::Ping;
use helpdesk_domain::webhooks::routing::plain_http_allowed;
use helpdesk_domain::webhooks::{EventData, EventType, Secret, WebhookEvent};
use rand::RngCore;
use sqlx::PgConnection;
use std::net::IpAddr;
use uuid::Uuid;

use crate::caller::Caller;
use crate::webhook_events;
use crate::{CoreError, FieldError};

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub organization_id: Option<Uuid>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub organization_id: Option<Uuid>,
}

/// A partial update; `organization_id: Some(None)` clears the filter.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionUpdate {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub organization_id: Option<Option<Uuid>>,
}

/// A new random secret, `whsec_` + 32 random bytes in base64.
pub fn generate_secret() -> String {
    let mut key = vec![0_u8; 32];
    rand::rng().fill_bytes(&mut key);
    Secret::from_key(key).map_or_else(
        |_| format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([0_u8; 32])),
        |s| s.expose(),
    )
}

/// Checks a subscription URL before any transaction is opened (it resolves names): the SSRF
/// guard, then https unless every address is allow-listed. Refusals name the field `url`.
pub async fn check_url(policy: &EgressPolicy, url: &str) -> Result<String, CoreError> {
    let trimmed = url.trim();
    if trimmed.is_empty() || trimmed.len() > 2000 {
        return Err(CoreError::invalid("url", "must have 1 to 2000 characters"));
    }
    let parsed = crate::egress::check_reachable(policy, trimmed)
        .await
        .map_err(|refusal| CoreError::invalid("url", refusal.to_string()))?;
    if parsed.scheme() == "http" {
        let (_, destination) =
            policy.check_url_str(trimmed).map_err(|refusal| CoreError::invalid("url", refusal.to_string()))?;
        let addresses: Vec<IpAddr> = match destination.host {
            DestinationHost::Address(address) => vec![address],
            DestinationHost::Name(name) => tokio::net::lookup_host((name.as_str(), destination.port))
                .await
                .map(|found| found.map(|a| a.ip()).collect())
                .unwrap_or_default(),
        };
        if !plain_http_allowed(policy, &addresses) {
            return Err(CoreError::invalid("url", "must use https (plain http only to allow-listed addresses)"));
        }
    }
    Ok(parsed.to_string())
}

fn check_types(types: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut out = Vec::new();
    for raw in types {
        match EventType::parse(raw.trim()) {
            Ok(EventType::Ping) => {
                errors.push(FieldError::new("event_types", "ping is sent on request, not subscribed to"))
            }
            Ok(t) if !out.contains(&t.as_str().to_owned()) => out.push(t.as_str().to_owned()),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::new("event_types", e)),
        }
    }
    out
}

fn check_description(description: &str, errors: &mut Vec<FieldError>) -> String {
    let description = description.trim().to_owned();
    if description.chars().count() > 500 {
        errors.push(FieldError::new("description", "at most 500 characters"));
    }
    description
}

async fn check_organization(conn: &mut PgConnection, organization_id: Option<Uuid>) -> Result<(), CoreError> {
    if let Some(org) = organization_id {
        let exists = sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)", org)
            .fetch_one(&mut *conn)
            .await?;
        if exists != Some(true) {
            return Err(CoreError::invalid("organization_id", "no such organisation"));
        }
    }
    Ok(())
}

/// Creates a subscription; `url` must have passed [`check_url`]. Returns it with its secret,
/// which is never shown again.
pub async fn create(
    conn: &mut PgConnection,
    caller: &Caller,
    input: NewSubscription,
    now: DateTime<Utc>,
) -> Result<(Subscription, String), CoreError> {
    caller.require_admin()?;
    let mut errors = Vec::new();
    let types = check_types(&input.event_types, &mut errors);
    let description = check_description(&input.description, &mut errors);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    check_organization(&mut *conn, input.organization_id).await?;
    let id = Uuid::now_v7();
    let secret = generate_secret();
    sqlx::query!(
        "INSERT INTO webhook_subscriptions (id, url, description, event_types, organization_id, secret, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        id,
        input.url,
        description,
        &types,
        input.organization_id,
        secret,
        caller.user_id,
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok((get(conn, caller, id).await?, secret))
}

pub async fn get(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Subscription, CoreError> {
    caller.require_admin()?;
    sqlx::query_as!(
        Subscription,
        "SELECT id, url, description, event_types, organization_id, enabled, disabled_reason, disabled_at,
                consecutive_failures, previous_secret_expires_at, created_by, created_at, updated_at
         FROM webhook_subscriptions WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound("webhook subscription"))
}

/// The subscription, locked until the transaction ends: a conditional change compares the
/// client's entity tag with what it is about to change.
pub async fn lock(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Subscription, CoreError> {
    caller.require_admin()?;
    sqlx::query_scalar!("SELECT id FROM webhook_subscriptions WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CoreError::NotFound("webhook subscription"))?;
    get(conn, caller, id).await
}

/// Every subscription, oldest first (a desk has a handful).
pub async fn list(conn: &mut PgConnection, caller: &Caller) -> Result<Vec<Subscription>, CoreError> {
    caller.require_admin()?;
    Ok(sqlx::query_as!(
        Subscription,
        "SELECT id, url, description, event_types, organization_id, enabled, disabled_reason, disabled_at,
                consecutive_failures, previous_secret_expires_at, created_by, created_at, updated_at
         FROM webhook_subscriptions ORDER BY created_at, id LIMIT 1000"
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Changes the URL (already checked by [`check_url`]), description, types or organisation.
pub async fn update(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    change: SubscriptionUpdate,
    now: DateTime<Utc>,
) -> Result<Subscription, CoreError> {
    let current = get(&mut *conn, caller, id).await?;
    let mut errors = Vec::new();
    let types = change.event_types.map(|t| check_types(&t, &mut errors)).unwrap_or(current.event_types);
    let description = change.description.map(|d| check_description(&d, &mut errors)).unwrap_or(current.description);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let organization_id = change.organization_id.unwrap_or(current.organization_id);
    check_organization(&mut *conn, organization_id).await?;
    sqlx::query!(
        "UPDATE webhook_subscriptions SET url = $2, description = $3, event_types = $4, organization_id = $5, updated_at = $6
         WHERE id = $1",
        id,
        change.url.unwrap_or(current.url),
        description,
        &types,
        organization_id,
        now
    )
    .execute(&mut *conn)
    .await?;
    get(conn, caller, id).await
}

/// Deletes a subscription with its deliveries and attempts.
pub async fn delete(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<(), CoreError> {
    caller.require_admin()?;
    let deleted = sqlx::query!("DELETE FROM webhook_subscriptions WHERE id = $1", id).execute(&mut *conn).await?;
    if deleted.rows_affected() == 0 {
        return Err(CoreError::NotFound("webhook subscription"));
    }
    Ok(())
}

/// Enables (clearing the failure count, so the disable rule starts afresh) or disables. While
/// disabled, no new deliveries are written for it and its pending ones wait.
pub async fn set_enabled(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    enabled: bool,
    now: DateTime<Utc>,
) -> Result<Subscription, CoreError> {
    caller.require_admin()?;
    let reason = (!enabled).then_some("disabled by an administrator");
    let updated = sqlx::query!(
        "UPDATE webhook_subscriptions
         SET enabled = $2, disabled_reason = $3, disabled_at = CASE WHEN $2 THEN NULL ELSE $4::timestamptz END,
             consecutive_failures = CASE WHEN $2 THEN 0 ELSE consecutive_failures END,
             failing_since = CASE WHEN $2 THEN NULL ELSE failing_since END, updated_at = $4
         WHERE id = $1",
        id,
        enabled,
        reason,
        now
    )
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(CoreError::NotFound("webhook subscription"));
    }
    if enabled {
        // Wake the worker for what waited while it was disabled.
        sqlx::query!("SELECT pg_notify('webhook_deliveries', $1)", id.to_string()).execute(&mut *conn).await?;
    }
    get(conn, caller, id).await
}

/// Replaces the secret; the old one keeps signing (a second signature) for `overlap`. Returns
/// the new secret, shown once.
pub async fn rotate_secret(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    overlap: TimeDelta,
    now: DateTime<Utc>,
) -> Result<(Subscription, String), CoreError> {
    caller.require_admin()?;
    if overlap < TimeDelta::zero() || overlap > TimeDelta::days(7) {
        return Err(CoreError::invalid("overlap_hours", "must be between 0 and 168"));
    }
    let secret = generate_secret();
    let updated = sqlx::query!(
        "UPDATE webhook_subscriptions
         SET previous_secret = CASE WHEN $3::timestamptz > $4::timestamptz THEN secret END, previous_secret_expires_at = CASE WHEN $3::timestamptz > $4::timestamptz THEN $3::timestamptz END,
             secret = $2, updated_at = $4
         WHERE id = $1",
        id,
        secret,
        now + overlap,
        now
    )
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(CoreError::NotFound("webhook subscription"));
    }
    Ok((get(conn, caller, id).await?, secret))
}

/// Queues a `ping` event to this subscription alone (enabled or not: a disabled one's ping waits
/// with its other deliveries). Returns the event's id.
pub async fn ping(conn: &mut PgConnection, caller: &Caller, id: Uuid, now: DateTime<Utc>) -> Result<Uuid, CoreError> {
    get(&mut *conn, caller, id).await?;
    let event = WebhookEvent::new(
        EventData::Ping(Ping { subscription_id: id, message: "ping from the Kadix helpdesk".to_owned() }),
        now,
    );
    webhook_events::record(conn, &event, now).await?;
    Ok(event.id)
}
