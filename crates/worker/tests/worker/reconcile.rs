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
    // Another process claims the row and dies before sending. Written and claimed in one
    // transaction, so this worker's reconciler cannot claim it first.
    let id = {
        let mut tx = app.pool.begin().await.unwrap();
        let email = outbox::NewEmail {
            idempotency_key: "leased".into(),
            to_address: "ana@example.com",
            to_name: None,
            locale: "en",
            template: "welcome",
            payload: json!({ "name": "Ana" }),
        };
        let id = outbox::enqueue_returning_id(&mut tx, email, app.clock.now()).await.unwrap().unwrap();
        let claimed = outbox::claim_batch(&mut tx, &[id], app.clock.now(), TimeDelta::minutes(5)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        tx.commit().await.unwrap();
        id
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.row(id).await.status, "pending", "a live lease is respected");
    assert!(app.smtp.messages().is_empty());

    app.advance_clock(TimeDelta::minutes(5) + TimeDelta::seconds(1));
    let row = app.wait_for_row(id, "sent", |row| row.status == "sent").await;
    assert_eq!(row.attempts, 2);
    assert_eq!(app.smtp.messages().len(), 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_with_nobody_consuming_queue_each_due_email_once() {
    use helpdesk_core::jobs::JobQueue;
    use helpdesk_core::outbox::NewEmail;
    use helpdesk_worker::reconcile::Reconciler;
    use std::sync::Arc;
    use std::time::Duration;

    // A stalled consumer must not be buried: before, every round queued a fresh copy of every
    // due e-mail (917,000 jobs for 1,000 e-mails was seen).
    let id = helpdesk_test_support::test_id();
    let prefix = format!("test:{id}");
    let pool = helpdesk_core::db::connect_and_migrate(
        &format!("{}/helpdesk_test_{id}", crate::helpers::base_database_url()),
        5,
    )
    .await
    .unwrap();
    let clock = helpdesk_core::Clock::manual(chrono::Utc::now());
    for i in 0..10 {
        let mut conn = pool.acquire().await.unwrap();
        let email = NewEmail {
            idempotency_key: format!("stalled:{i}"),
            to_address: "ana@example.com",
            to_name: None,
            locale: "en",
            template: "welcome",
            payload: json!({ "name": "Ana" }),
        };
        outbox::enqueue(&mut conn, email, clock.now()).await.unwrap();
    }
    let redis = helpdesk_core::redis_conn::connect(&crate::helpers::redis_url()).await.unwrap();
    let reconciler = Reconciler {
        pool: pool.clone(),
        queue: JobQueue::new(redis.clone(), &prefix),
        clock: clock.clone(),
        interval: Duration::from_secs(1),
        // Pages of 3: the round reads all 10 rows in 4 pages.
        batch: 3,
        max_per_round: 1000,
        drain_concurrency: 1,
        drain_batch: 10,
        store: helpdesk_core::sla_store::SlaStore::default(),
        metrics: Arc::new(helpdesk_worker::metrics::Metrics::default()),
        email_nudge: Default::default(),
        rounds: Default::default(),
    };
    assert_eq!(reconciler.run().await.unwrap().emails, 10, "every due e-mail in one round");
    for _ in 0..4 {
        reconciler.run().await.unwrap();
    }
    let queued = |pattern: String| {
        let mut redis = redis.clone();
        async move {
            let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query_async(&mut redis).await.unwrap();
            keys.len()
        }
    };
    // One job per page of 3 rows (e-mail jobs carry batches): 4 jobs for the 10 rows.
    assert_eq!(queued(format!("{prefix}:email:meta:*")).await, 4, "each due e-mail queued once, however many rounds");

    // A new attempt (the due instant moved, as a claim or a retry moves it) is queued again.
    sqlx::query("UPDATE email_outbox SET next_attempt_at = next_attempt_at - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    reconciler.run().await.unwrap();
    assert_eq!(queued(format!("{prefix}:email:meta:*")).await, 8);
}
