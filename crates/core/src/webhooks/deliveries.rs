//! Deliveries: what admins see and replay, and the protocol the worker follows.
//!
//! **Worker protocol** (one run at a time per subscription, in order):
//! 1. [`claim`]: take the subscription's lease (a committed instant, extended by the worker's
//!    heartbeat while it sends) and read its queue's head, in sequence order, up to the first
//!    delivery that is not yet due (a retry waiting blocks everything behind it: order).
//! 2. Send each, in order; after each answer, [`record_success`] or [`record_failure`].
//! 3. [`release`]: give the lease back and learn whether more is due now, or when next.
//!
//! A worker killed mid-send leaves the lease to run out; the next run resends the deliveries it
//! had not recorded, with the same `webhook-id` (the event's id).

use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::webhooks::{DisableRule, EventType};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::caller::Caller;
use crate::outbox::{self, NewEmail, templates};
use crate::webhook_events::{self, filter_of};
use crate::{CoreError, webhooks::subscriptions};

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub sequence: i64,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub replay_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<Attempt>,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub succeeded: bool,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// The subscription's deliveries, newest first, each with its attempts. `before` is the
/// `sequence` cursor of the previous page.
pub async fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    subscription_id: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<Delivery>, Option<i64>), CoreError> {
    subscriptions::get(&mut *conn, caller, subscription_id).await?;
    let limit = limit.clamp(1, 100);
    let rows = sqlx::query!(
        "SELECT d.id, d.subscription_id, d.event_id, e.type AS event_type, d.sequence, d.state, d.attempts,
                d.next_attempt_at, d.replay_of, d.created_at, d.finished_at
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
         WHERE d.subscription_id = $1 AND ($2::bigint IS NULL OR d.sequence < $2)
         ORDER BY d.sequence DESC LIMIT $3",
        subscription_id,
        before,
        limit + 1
    )
    .fetch_all(&mut *conn)
    .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(100);
    let rows: Vec<_> = rows.into_iter().take(usize::try_from(limit).unwrap_or(100)).collect();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let attempts = sqlx::query!(
        "SELECT delivery_id, attempt, at, succeeded, response_status, response_body, latency_ms, error
         FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt, at",
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let next = if more { rows.last().map(|r| r.sequence) } else { None };
    let deliveries = rows
        .into_iter()
        .map(|r| Delivery {
            attempt_log: attempts
                .iter()
                .filter(|a| a.delivery_id == r.id)
                .map(|a| Attempt {
                    attempt: a.attempt,
                    at: a.at,
                    succeeded: a.succeeded,
                    response_status: a.response_status,
                    response_body: a.response_body.clone(),
                    latency_ms: a.latency_ms,
                    error: a.error.clone(),
                })
                .collect(),
            id: r.id,
            subscription_id: r.subscription_id,
            event_id: r.event_id,
            event_type: r.event_type,
            sequence: r.sequence,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            replay_of: r.replay_of,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
        .collect();
    Ok((deliveries, next))
}

/// Sends one delivery's event again, as a new delivery at the end of the subscription's queue
/// with the same `webhook-id`. Returns the new delivery's id.
pub async fn replay(
    conn: &mut PgConnection,
    caller: &Caller,
    subscription_id: Uuid,
    delivery_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Uuid, CoreError> {
    subscriptions::get(&mut *conn, caller, subscription_id).await?;
    let event_id = sqlx::query_scalar!(
        "SELECT event_id FROM webhook_deliveries WHERE id = $1 AND subscription_id = $2",
        delivery_id,
        subscription_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound("webhook delivery"))?;
    webhook_events::insert_deliveries(conn, event_id, &[subscription_id], Some(&[Some(delivery_id)]), now).await?;
    let id = sqlx::query_scalar!(
        "SELECT id FROM webhook_deliveries WHERE subscription_id = $1 AND replay_of = $2 ORDER BY sequence DESC LIMIT 1",
        subscription_id,
        delivery_id
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Most events one replay-since request queues.
pub const MAX_REPLAY: i64 = 10_000;

/// Queues again every event since `since` that this subscription receives (by its filter now),
/// oldest first, whether or not it was delivered before. Returns how many were queued.
pub async fn replay_since(
    conn: &mut PgConnection,
    caller: &Caller,
    subscription_id: Uuid,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, CoreError> {
    let subscription = subscriptions::get(&mut *conn, caller, subscription_id).await?;
    if since > now {
        return Err(CoreError::invalid("since", "is in the future"));
    }
    let filter = filter_of(&subscription.event_types, subscription.organization_id);
    let events = sqlx::query!(
        "SELECT e.id, e.type, e.organization_id, e.subscription_id,
                (SELECT d.id FROM webhook_deliveries d WHERE d.event_id = e.id AND d.subscription_id = $1
                 ORDER BY d.sequence LIMIT 1) AS first_delivery
         FROM webhook_events e WHERE e.occurred_at >= $2 ORDER BY e.occurred_at, e.id LIMIT $3",
        subscription_id,
        since,
        MAX_REPLAY + 1
    )
    .fetch_all(&mut *conn)
    .await?;
    if events.len() > usize::try_from(MAX_REPLAY).unwrap_or(usize::MAX) {
        return Err(CoreError::invalid("since", format!("more than {MAX_REPLAY} events; pick a later instant")));
    }
    let mut queued = 0;
    for e in events {
        let wanted = match EventType::parse(&e.r#type) {
            Ok(EventType::Ping) => e.subscription_id == Some(subscription_id),
            Ok(t) => filter.receives(t, e.organization_id),
            Err(_) => false,
        };
        if !wanted {
            continue;
        }
        // Never delivered to this subscription: an original delivery; otherwise a replay of it.
        let replay_of = [e.first_delivery];
        queued +=
            webhook_events::insert_deliveries(&mut *conn, e.id, &[subscription_id], Some(&replay_of), now).await?;
    }
    Ok(queued)
}

/// A subscription claimed for sending, with its due deliveries in order.
#[derive(Debug, Clone)]
pub struct Claim {
    pub subscription_id: Uuid,
    /// Identifies this run's lease.
    pub token: Uuid,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub consecutive_failures: i32,
    pub deliveries: Vec<DueDelivery>,
}

#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub organization_id: Option<Uuid>,
    pub payload: Value,
    pub attempts: i32,
    pub first_attempt_at: Option<DateTime<Utc>>,
}

/// Takes the subscription's lease and its due head (up to `limit`), marking them in flight.
/// `None` when it is disabled, leased by another run, or gone.
pub async fn claim(
    conn: &mut PgConnection,
    subscription_id: Uuid,
    now: DateTime<Utc>,
    lease: TimeDelta,
    limit: i64,
) -> Result<Option<Claim>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let token = Uuid::new_v4();
    let Some(sub) = sqlx::query!(
        "UPDATE webhook_subscriptions SET lease_until = $2, lease_token = $4
         WHERE id = $1 AND enabled AND (lease_until IS NULL OR lease_until <= $3)
         RETURNING url, secret, CASE WHEN previous_secret_expires_at > $3 THEN previous_secret END AS previous_secret,
                   consecutive_failures",
        subscription_id,
        now + lease,
        now,
        token
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let heads = sqlx::query!(
        "SELECT d.id, d.event_id, e.type AS event_type, e.occurred_at, e.organization_id, e.payload, d.attempts,
                d.first_attempt_at, d.next_attempt_at
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
         WHERE d.subscription_id = $1 AND d.state IN ('pending', 'in_flight')
         ORDER BY d.sequence LIMIT $2",
        subscription_id,
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    let deliveries: Vec<DueDelivery> = heads
        .into_iter()
        .take_while(|d| d.next_attempt_at <= now)
        .map(|d| DueDelivery {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            occurred_at: d.occurred_at,
            organization_id: d.organization_id,
            payload: d.payload,
            attempts: d.attempts,
            first_attempt_at: d.first_attempt_at,
        })
        .collect();
    let ids: Vec<Uuid> = deliveries.iter().map(|d| d.id).collect();
    sqlx::query!("UPDATE webhook_deliveries SET state = 'in_flight' WHERE id = ANY($1)", &ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(Claim {
        subscription_id,
        token,
        url: sub.url,
        secret: sub.secret,
        previous_secret: sub.previous_secret,
        consecutive_failures: sub.consecutive_failures,
        deliveries,
    }))
}

/// What the receiver answered (or why there was no answer).
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// A 2xx: the delivery is done. Resets the subscription's failure count when it had one.
pub async fn record_success(
    conn: &mut PgConnection,
    claim: &Claim,
    delivery: &DueDelivery,
    record: &AttemptRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "WITH attempt AS (
             INSERT INTO webhook_attempts (id, delivery_id, attempt, at, succeeded, response_status, response_body, latency_ms, error)
             VALUES ($1, $2, $3, $4, true, $5, $6, $7, NULL))
         UPDATE webhook_deliveries SET state = 'succeeded', attempts = $3, finished_at = $4,
                first_attempt_at = COALESCE(first_attempt_at, $4)
         WHERE id = $2",
        Uuid::now_v7(),
        delivery.id,
        delivery.attempts + 1,
        record.at,
        record.response_status,
        record.response_body,
        record.latency_ms
    )
    .execute(&mut *conn)
    .await?;
    if claim.consecutive_failures > 0 {
        sqlx::query!(
            "UPDATE webhook_subscriptions SET consecutive_failures = 0, failing_since = NULL WHERE id = $1",
            claim.subscription_id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// The delivery was given up (24 h of retries).
    pub gave_up: bool,
    /// The subscription was disabled by this failure (and the admins e-mailed).
    pub disabled: bool,
}

/// A failed attempt: the delivery waits until `retry_at`, or is given up when `None`; the
/// subscription's failure count grows, and `rule` may disable it, e-mailing every admin in the
/// same transaction.
pub async fn record_failure(
    conn: &mut PgConnection,
    claim: &Claim,
    delivery: &DueDelivery,
    record: &AttemptRecord,
    retry_at: Option<DateTime<Utc>>,
    rule: DisableRule,
) -> Result<FailureOutcome, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query!(
        "INSERT INTO webhook_attempts (id, delivery_id, attempt, at, succeeded, response_status, response_body, latency_ms, error)
         VALUES ($1, $2, $3, $4, false, $5, $6, $7, $8)",
        Uuid::now_v7(),
        delivery.id,
        delivery.attempts + 1,
        record.at,
        record.response_status,
        record.response_body,
        record.latency_ms,
        record.error
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE webhook_deliveries
         SET state = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END, attempts = $2,
             next_attempt_at = COALESCE($3, next_attempt_at), first_attempt_at = COALESCE(first_attempt_at, $4),
             finished_at = CASE WHEN $3::timestamptz IS NULL THEN $4 END
         WHERE id = $1",
        delivery.id,
        delivery.attempts + 1,
        retry_at,
        record.at
    )
    .execute(&mut *tx)
    .await?;
    let sub = sqlx::query!(
        "UPDATE webhook_subscriptions SET consecutive_failures = consecutive_failures + 1,
                failing_since = COALESCE(failing_since, $2)
         WHERE id = $1 RETURNING consecutive_failures, failing_since AS \"failing_since!\", url, enabled",
        claim.subscription_id,
        record.at
    )
    .fetch_one(&mut *tx)
    .await?;
    let disabled = sub.enabled && rule.should_disable(sub.consecutive_failures, sub.failing_since, record.at);
    if disabled {
        let reason = format!(
            "{} failed deliveries in a row since {}; last: {}",
            sub.consecutive_failures,
            sub.failing_since.to_rfc3339(),
            record.error.as_deref().unwrap_or("no answer")
        );
        sqlx::query!(
            "UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2, disabled_at = $3, updated_at = $3
             WHERE id = $1",
            claim.subscription_id,
            reason,
            record.at
        )
        .execute(&mut *tx)
        .await?;
        email_admins(&mut tx, claim.subscription_id, &sub.url, sub.consecutive_failures, &reason, record.at).await?;
    }
    tx.commit().await?;
    Ok(FailureOutcome { gave_up: retry_at.is_none(), disabled })
}

async fn email_admins(
    conn: &mut PgConnection,
    subscription_id: Uuid,
    url: &str,
    failures: i32,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let admins = sqlx::query!(
        "SELECT id, email, name, locale FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id"
    )
    .fetch_all(&mut *conn)
    .await?;
    let emails = admins
        .iter()
        .map(|a| {
            (
                NewEmail {
                    idempotency_key: format!("webhook:{subscription_id}:disabled:{}:{}", now.timestamp_micros(), a.id),
                    to_address: &a.email,
                    to_name: Some(&a.name),
                    locale: &a.locale,
                    template: templates::WEBHOOK_DISABLED,
                    payload: json!({
                        "name": a.name, "subscription_id": subscription_id, "url": url,
                        "failures": failures, "reason": reason,
                    }),
                },
                now,
            )
        })
        .collect();
    outbox::enqueue_all(conn, emails, now).await?;
    Ok(())
}

/// What follows a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRun {
    /// More is due now: run again.
    DueNow,
    /// The head waits until then (a retry).
    DueAt(DateTime<Utc>),
    /// The queue is empty, or the subscription disabled.
    Idle,
}

/// Gives the lease back (deliveries claimed but not sent become pending again) and says what
/// is next. Reads after releasing, so a delivery committed while the lease was held is seen.
pub async fn release(conn: &mut PgConnection, claim: &Claim, now: DateTime<Utc>) -> Result<AfterRun, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let enabled = sqlx::query_scalar!(
        "UPDATE webhook_subscriptions SET lease_until = NULL, lease_token = NULL WHERE id = $1 AND lease_token = $2
         RETURNING enabled",
        claim.subscription_id,
        claim.token
    )
    .fetch_optional(&mut *tx)
    .await?;
    if enabled.is_some() {
        sqlx::query!(
            "UPDATE webhook_deliveries SET state = 'pending' WHERE subscription_id = $1 AND state = 'in_flight'",
            claim.subscription_id
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    if enabled != Some(true) {
        // Disabled, or our lease ran out and another run took over: that run goes on.
        return Ok(AfterRun::Idle);
    }
    let head = sqlx::query_scalar!(
        "SELECT next_attempt_at FROM webhook_deliveries WHERE subscription_id = $1 AND state IN ('pending', 'in_flight')
         ORDER BY sequence LIMIT 1",
        claim.subscription_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match head {
        None => AfterRun::Idle,
        Some(at) if at <= now => AfterRun::DueNow,
        Some(at) => AfterRun::DueAt(at),
    })
}

/// Extends the leases this process holds (its heartbeat).
pub async fn extend_leases(conn: &mut PgConnection, tokens: &[Uuid], until: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!("UPDATE webhook_subscriptions SET lease_until = $2 WHERE lease_token = ANY($1)", tokens, until)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// Enabled, unleased subscriptions whose queue head is due: the sweep's work (a dead worker's
/// runs, lost wake-ups, retries whose job was lost).
pub async fn due_subscriptions(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT s.id FROM webhook_subscriptions s
         WHERE s.enabled AND (s.lease_until IS NULL OR s.lease_until <= $1)
           AND (SELECT d.next_attempt_at FROM webhook_deliveries d
                WHERE d.subscription_id = s.id AND d.state IN ('pending', 'in_flight')
                ORDER BY d.sequence LIMIT 1) <= $1
         ORDER BY s.id LIMIT $2",
        now,
        limit
    )
    .fetch_all(&mut *conn)
    .await
}
