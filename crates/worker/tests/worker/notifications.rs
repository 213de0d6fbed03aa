//! The fast path: a committed outbox row is delivered without waiting for the reconciler.
use crate::helpers::{load, spawn_app_with_settings};
use helpdesk_core::outbox::{self, NewEmail};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_email_is_delivered_at_once_and_a_rolled_back_one_never() {
    // The reconciler runs at start-up and then only hourly: anything delivered here came by the
    // notification.
    let app = spawn_app_with_settings(1, |s| {
        s.outbox_notifications = true;
        s.reconcile_interval = Duration::from_secs(3600);
    })
    .await;
    // Let the start-up reconciliation pass (it fires at the next whole second) and the listener
    // subscribe.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let email = |key: &str| NewEmail {
        idempotency_key: key.to_owned(),
        to_address: "ana@example.com",
        to_name: Some("Ana"),
        locale: "pt-BR",
        template: "welcome",
        payload: json!({ "name": "Ana" }),
    };
    let mut rolled_back = app.pool.begin().await.unwrap();
    outbox::enqueue(&mut rolled_back, email("never"), app.clock.now()).await.unwrap();
    rolled_back.rollback().await.unwrap();

    let mut tx = app.pool.begin().await.unwrap();
    let id = outbox::enqueue_returning_id(&mut tx, email("committed"), app.clock.now()).await.unwrap().unwrap();
    tx.commit().await.unwrap();

    let row = app.wait_for_row(id, "sent", |row| row.status == "sent").await;
    assert_eq!(row.attempts, 1);
    let messages = app.smtp.wait_for_messages(1).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(app.total(|m| load(&m.reconciler_enqueued)), 0, "delivered by the notification, not the reconciler");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp.messages().len(), 1, "the rolled-back e-mail was never announced");
    app.finish().await;
}
