use chrono::TimeDelta;
use helpdesk_core::outbox;
use serde_json::json;

use crate::helpers::{load, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_with_no_job_in_redis_is_delivered_by_the_reconciler() {
    let app = spawn_app().await;
    // As if Redis had been flushed, or the API's push had failed: the row exists, no job does.
    let id = app.insert_email("welcome", "en", json!({ "name": "Ana" })).await;
    let row = app.wait_for_row(id, "sent", |row| row.status == "sent").await;
    assert_eq!(row.attempts, 1);
    assert_eq!(app.smtp.wait_for_messages(1).await.len(), 1);
    assert!(app.total(|m| load(&m.reconciler_enqueued)) >= 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_leased_by_a_dead_attempt_is_delivered_after_the_lease() {
    let app = spawn_app().await;
    let id = app.insert_email("welcome", "en", json!({ "name": "Ana" })).await;
    // Another process claims the row and dies before sending.
    {
        let mut conn = app.pool.acquire().await.unwrap();
        let claimed = outbox::claim_for_delivery(&mut conn, id, app.clock.now(), TimeDelta::minutes(5)).await.unwrap();
        assert!(claimed.is_some());
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.row(id).await.status, "pending", "a live lease is respected");
    assert!(app.smtp.messages().is_empty());

    app.advance_clock(TimeDelta::minutes(5) + TimeDelta::seconds(1));
    let row = app.wait_for_row(id, "sent", |row| row.status == "sent").await;
    assert_eq!(row.attempts, 2);
    assert_eq!(app.smtp.messages().len(), 1);
    app.finish().await;
}
