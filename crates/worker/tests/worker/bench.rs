//! Throughput of the e-mail path against the in-process SMTP sink. Ignored by default; run with
//! `cargo test -p helpdesk-worker --release --test worker -- --ignored --nocapture bench`.

use helpdesk_core::jobs::{DeliverEmail, Enqueue};
use serde_json::json;
use std::time::{Duration, Instant};

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_emails_delivered_per_second() {
    const COUNT: i64 = 3000;
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for n in 0..COUNT {
        ids.push(app.insert_email("welcome", "en", json!({ "name": format!("User {n}") })).await);
    }
    let started = Instant::now();
    let jobs = ids.iter().map(|&outbox_id| Enqueue::now(DeliverEmail { outbox_id })).collect();
    app.queue.push_all(jobs).await.unwrap();
    while app.count_with_status("sent").await < COUNT {
        assert!(started.elapsed() < Duration::from_secs(120), "too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    println!("delivered {COUNT} e-mails in {elapsed:.2?}: {:.0} e-mails/s", COUNT as f64 / elapsed.as_secs_f64());
    assert_eq!(app.smtp.count_by_message_id().len(), COUNT as usize);
    app.finish().await;
}
