//! Retention (R14): audit events and ended sessions past their periods are deleted by the worker
//! on its own schedule, measured on the worker's clock; everything younger stays.
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_worker::retention::RetentionPeriods;
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_at};

async fn insert_audit(app: &TestApp, at: DateTime<Utc>) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO audit_events (id, occurred_at, action, subject_type) VALUES ($1, $2, 'test.event', 'user')",
        id,
        at
    )
    .execute(&app.pool)
    .await
    .unwrap();
    id
}

async fn insert_session(
    app: &TestApp,
    user: Uuid,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at, revoked_at)
         VALUES ($1, $1, $2, $3, $4::timestamptz - interval '30 days', $4, $5)",
        id,
        user,
        id.as_bytes().to_vec(),
        expires_at,
        revoked_at
    )
    .execute(&app.pool)
    .await
    .unwrap();
    id
}

async fn remaining(app: &TestApp, audit: &[Uuid], sessions: &[Uuid]) -> (Vec<Uuid>, Vec<Uuid>) {
    let audit = sqlx::query_scalar!("SELECT id FROM audit_events WHERE id = ANY($1) ORDER BY id", audit)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let sessions = sqlx::query_scalar!("SELECT id FROM refresh_tokens WHERE id = ANY($1) ORDER BY id", sessions)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    (audit, sessions)
}

/// Polls until the rows left are `expected` (the retention round runs every second).
async fn wait_for(app: &TestApp, audit: &[Uuid], sessions: &[Uuid], expected: (Vec<Uuid>, Vec<Uuid>)) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = remaining(app, audit, sessions).await;
        if left == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "left {left:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_and_ended_sessions_are_pruned_after_their_periods() {
    let start: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
    let app = spawn_app_at(start, 1, |settings| {
        settings.retention = RetentionPeriods {
            audit_events: TimeDelta::days(30),
            ended_sessions: TimeDelta::days(7),
            ..RetentionPeriods::default()
        };
        settings.retention_interval = Duration::from_secs(1);
        settings.retention_batch = 2; // several batches per round
    })
    .await;
    let user = app.desk("pro", 0).await.customer.user_id;
    let day = TimeDelta::days(1);

    let mut old_audits = Vec::new();
    for days in [31, 40, 45, 400] {
        old_audits.push(insert_audit(&app, start - day * days).await);
    }
    let recent_audit = insert_audit(&app, start - day).await;
    let expired_long_ago = insert_session(&app, user, start - day * 8, None).await;
    let revoked_long_ago = insert_session(&app, user, start + day * 20, Some(start - day * 8)).await;
    let revoked_lately = insert_session(&app, user, start + day * 20, Some(start - day)).await;
    let active = insert_session(&app, user, start + day * 29, None).await;

    let mut audits = old_audits.clone();
    audits.push(recent_audit);
    let sessions = [expired_long_ago, revoked_long_ago, revoked_lately, active];
    let mut still_kept = vec![revoked_lately, active];
    still_kept.sort();
    wait_for(&app, &audits, &sessions, (vec![recent_audit], still_kept)).await;

    // A month later on the worker's clock: the recent entry and the lately revoked session are
    // past their periods too; the active session has only just expired and stays.
    app.clock.advance(day * 30);
    wait_for(&app, &audits, &sessions, (vec![], vec![active])).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_pruned_after_24_hours() {
    let start: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
    let app = spawn_app_at(start, 1, |settings| settings.retention_interval = Duration::from_secs(1)).await;
    let user = app.desk("pro", 0).await.customer.user_id;
    for (key, age) in [("old", TimeDelta::hours(25)), ("recent", TimeDelta::hours(23))] {
        sqlx::query!(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at)
             VALUES ($1, $2, '\\x00', 201, '\\x7b7d', $3)",
            user,
            key,
            start - age
        )
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let keys = sqlx::query_scalar!("SELECT key FROM idempotency_keys WHERE user_id = $1", user)
            .fetch_all(&app.pool)
            .await
            .unwrap();
        if keys == ["recent"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "left {keys:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_webhook_events_go_with_their_deliveries_unless_still_to_be_delivered() {
    let start: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
    let app = spawn_app_at(start, 1, |settings| settings.retention_interval = Duration::from_secs(1)).await;
    let subscription = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO webhook_subscriptions (id, url, secret, event_types, enabled, created_at, updated_at)
         VALUES ($1, 'https://crm.example/hooks', 'whsec_x', '{}', false, $2, $2)",
        subscription,
        start
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let mut events = Vec::new();
    for (age_days, state) in [(31, "succeeded"), (45, "failed"), (40, "pending"), (29, "succeeded")] {
        let (event, delivery) = (Uuid::now_v7(), Uuid::now_v7());
        let at = start - TimeDelta::days(age_days);
        sqlx::query!(
            "INSERT INTO webhook_events (id, type, occurred_at, payload) VALUES ($1, 'ticket.created', $2, '{}')",
            event,
            at
        )
        .execute(&app.pool)
        .await
        .unwrap();
        sqlx::query!(
            "INSERT INTO webhook_deliveries (id, subscription_id, event_id, state, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
            delivery,
            subscription,
            event,
            state,
            at
        )
        .execute(&app.pool)
        .await
        .unwrap();
        sqlx::query!(
            "INSERT INTO webhook_attempts (id, delivery_id, attempt, at, succeeded, latency_ms) VALUES ($1, $2, 1, $3, false, 5)",
            Uuid::now_v7(),
            delivery,
            at
        )
        .execute(&app.pool)
        .await
        .unwrap();
        events.push(event);
    }
    let kept = vec![events[2], events[3]];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = sqlx::query_scalar!("SELECT id FROM webhook_events WHERE id = ANY($1) ORDER BY id", &events)
            .fetch_all(&app.pool)
            .await
            .unwrap();
        if left == kept {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "left {left:?}, expected the pending and the recent one");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM webhook_deliveries) AS "deliveries!", (SELECT count(*) FROM webhook_attempts) AS "attempts!""#
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((left.deliveries, left.attempts), (2, 2), "the pruned events' deliveries and attempts went with them");
    app.finish().await;
}
