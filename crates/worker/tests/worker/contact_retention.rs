//! Contact requests past their retention are deleted by the worker's retention job (R14).
use crate::helpers::*;
use chrono::{TimeDelta, Utc};
use std::time::Duration;
use uuid::Uuid;

async fn insert_contact(app: &TestApp, received_days_ago: i64) -> Uuid {
    let id = Uuid::now_v7();
    let at = app.clock.now() - TimeDelta::days(received_days_ago);
    sqlx::query!(
        "INSERT INTO contact_requests (id, name, email, message, consented_at, created_at) VALUES ($1, 'Marina', 'marina@prospect.example', 'Olá', $2, $2)",
        id,
        at
    )
    .execute(&app.pool)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn the_worker_deletes_contact_requests_older_than_the_retention_and_keeps_the_rest() {
    let app = spawn_app_at(Utc::now(), 1, |settings| {
        settings.contact_retention = TimeDelta::days(30);
        settings.retention_interval = Duration::from_secs(1);
    })
    .await;
    let old = insert_contact(&app, 31).await;
    let recent = insert_contact(&app, 29).await;
    let remaining = || async {
        sqlx::query_scalar!("SELECT id FROM contact_requests ORDER BY id").fetch_all(&app.pool).await.unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while remaining().await.contains(&old) {
        assert!(tokio::time::Instant::now() < deadline, "the old contact request was not pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(remaining().await, vec![recent]);

    // Time passes: the other one ages past the retention too.
    app.advance_clock(TimeDelta::days(2));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !remaining().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the aged contact request was not pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.finish().await;
}
