use apalis::prelude::{TaskBuilder, TaskSink};
use chrono::TimeDelta;
use helpdesk_core::jobs::DeliverEmail;
use helpdesk_worker::smtp::message_id_for;
use serde_json::json;
use std::time::Duration;

use crate::helpers::{load, spawn_app, spawn_app_with_workers};
use crate::smtp_server::{Mode, PERMANENT_ANSWER, header};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_email_is_delivered_once_with_both_parts_in_the_recipients_locale() {
    let app = spawn_app().await;
    let id = app.insert_email_with_key("welcome:user-1", "welcome", "en", json!({ "name": "Ana" })).await;
    app.queue.deliver_email(id).await.unwrap();

    let row = app.wait_for_row(id, "sent", |row| row.status == "sent").await;
    let messages = app.smtp.wait_for_messages(1).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    let expected_id = message_id_for("welcome:user-1");
    assert_eq!(header(message, "Message-ID").as_deref(), Some(expected_id.as_str()));
    assert_eq!(header(message, "Subject").as_deref(), Some("Welcome to Kadix Support"));
    assert!(header(message, "To").unwrap().contains("ana@example.com"));
    assert!(header(message, "Content-Type").unwrap().starts_with("multipart/alternative"));
    assert!(message.contains("Content-Type: text/plain"), "{message}");
    assert!(message.contains("Content-Type: text/html"), "{message}");
    assert!(message.contains("Hello Ana,"), "{message}");
    assert_eq!(row.attempts, 1);
    assert_eq!(row.message_id.as_deref(), Some(expected_id.as_str()));
    assert_eq!(row.sent_at, Some(app.clock.now()));
    assert_eq!(row.last_error, None);

    // Portuguese is the default locale.
    let pt = app.insert_email("welcome", "pt-BR", json!({ "name": "Bia" })).await;
    app.queue.deliver_email(pt).await.unwrap();
    app.wait_for_row(pt, "sent", |row| row.status == "sent").await;
    let messages = app.smtp.wait_for_messages(2).await;
    assert_eq!(header(&messages[1], "Subject").as_deref(), Some("Bem-vindo(a) ao Kadix Atendimento"));
    assert_eq!(app.wait_for_total(2, |m| load(&m.emails_sent)).await, 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_pushed_twice_sends_one_email() {
    let app = spawn_app().await;
    let id = app.insert_email("welcome", "en", json!({ "name": "Ana" })).await;
    // Two jobs for one row, bypassing the idempotency key, as a duplicate delivery would be.
    let mut storage = app.queue.storage::<DeliverEmail>();
    storage.push_task(TaskBuilder::new(DeliverEmail::One { outbox_id: id }).build()).await.unwrap();
    storage.push_task(TaskBuilder::new(DeliverEmail::One { outbox_id: id }).build()).await.unwrap();
    // And the same job twice through the queue handle: Redis drops the second.
    app.queue.deliver_email(id).await.unwrap();
    app.queue.deliver_email(id).await.unwrap();

    app.wait_for_row(id, "sent", |row| row.status == "sent").await;
    // Both raw jobs and one keyed job ran (the reconciler may have added one more, as harmless).
    let processed = app.wait_for_total(3, |m| load(&m.email_jobs.processed)).await;
    assert!(processed >= 3, "processed {processed}");
    assert_eq!(app.wait_for_total(processed - 1, |m| load(&m.email_jobs_skipped)).await, processed - 1);
    assert_eq!(app.smtp.messages().len(), 1);
    app.finish().await;
}

/// A burst of e-mails (rows committed together, as a reminder round writes them) travels as
/// batch jobs (queued here by the reconciler: the test helper leaves the LISTEN path off): every
/// row is sent once, in far fewer jobs than rows. A batch holding a row already
/// sent and an id that names no row, beside a pending one, sends nothing twice and does not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_travels_in_batch_jobs_and_each_row_is_sent_once() {
    const ROWS: usize = 120;
    let app = spawn_app().await;
    let mut tx = app.pool.begin().await.unwrap();
    let mut ids = Vec::new();
    for n in 0..ROWS {
        let email = helpdesk_core::outbox::NewEmail {
            idempotency_key: format!("burst:{n}"),
            to_address: "ana@example.com",
            to_name: None,
            locale: "en",
            template: "welcome",
            payload: json!({ "name": format!("User {n}") }),
        };
        ids.push(helpdesk_core::outbox::enqueue_returning_id(&mut tx, email, app.clock.now()).await.unwrap().unwrap());
    }
    tx.commit().await.unwrap();
    assert_eq!(app.wait_for_total(ROWS as u64, |m| load(&m.emails_sent)).await, ROWS as u64);
    assert_eq!(app.count_with_status("sent").await, ROWS as i64);
    let jobs = app.total(|m| load(&m.email_jobs.processed));
    assert!(jobs <= (ROWS / 2) as u64, "{jobs} jobs for {ROWS} rows: the burst was not batched");

    let pending = app.insert_email("welcome", "en", json!({ "name": "Late" })).await;
    let batch = DeliverEmail::Batch { outbox_ids: vec![ids[0], uuid::Uuid::now_v7(), pending] };
    app.queue.storage::<DeliverEmail>().push_task(TaskBuilder::new(batch).build()).await.unwrap();
    app.wait_for_row(pending, "sent", |row| row.status == "sent").await;
    assert_eq!(app.wait_for_total(ROWS as u64 + 1, |m| load(&m.emails_sent)).await, ROWS as u64 + 1);
    let counts = app.smtp.count_by_message_id();
    assert_eq!(counts.len(), ROWS + 1);
    assert!(counts.values().all(|&n| n == 1), "a row was sent twice");
    assert_eq!(app.total(|m| load(&m.email_jobs.failed)), 0);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_later_and_then_delivered() {
    let app = spawn_app().await;
    app.smtp.set_mode(Mode::Transient);
    let id = app
        .insert_email(
            "password_reset",
            "en",
            json!({ "name": "Ana", "reset_url": "https://h.test/r", "token": "abc", "expires_in_minutes": 60 }),
        )
        .await;
    app.queue.deliver_email(id).await.unwrap();

    let row = app.wait_for_row(id, "retrying", |row| row.attempts == 1 && row.last_error.is_some()).await;
    assert_eq!(row.status, "pending");
    assert!(row.last_error.as_deref().unwrap().starts_with("451"), "{row:?}");
    assert_eq!(row.next_attempt_at, app.clock.now() + TimeDelta::seconds(30));
    assert!(app.smtp.messages().is_empty());

    // Not due yet: nothing happens however often the reconciler runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.row(id).await.attempts, 1);

    app.smtp.set_mode(Mode::Accept);
    app.advance_clock(TimeDelta::seconds(31));
    let row = app.wait_for_row(id, "sent", |row| row.status == "sent").await;
    assert_eq!(row.attempts, 2);
    assert_eq!(
        header(&app.smtp.wait_for_messages(1).await[0], "Subject").as_deref(),
        Some("Reset your Kadix Support password")
    );
    assert_eq!(app.wait_for_total(1, |m| load(&m.emails_retried)).await, 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_transient_failure() {
    let app = spawn_app().await;
    app.smtp.set_mode(Mode::Down);
    let id = app.insert_email("welcome", "en", json!({ "name": "Ana" })).await;
    app.queue.deliver_email(id).await.unwrap();
    let row = app.wait_for_row(id, "retrying", |row| row.attempts == 1 && row.last_error.is_some()).await;
    assert_eq!(row.status, "pending", "{row:?}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_fails_the_row_with_the_servers_answer() {
    let app = spawn_app().await;
    app.smtp.set_mode(Mode::Permanent);
    let id = app.insert_email("welcome", "pt-BR", json!({ "name": "Ana" })).await;
    app.queue.deliver_email(id).await.unwrap();

    let row = app.wait_for_row(id, "failed", |row| row.status == "failed").await;
    assert_eq!(row.last_error.as_deref(), Some(format!("550 {PERMANENT_ANSWER}").as_str()));
    assert_eq!(row.attempts, 1);
    assert!(app.smtp.messages().is_empty());
    assert_eq!(app.wait_for_total(1, |m| load(&m.emails_failed)).await, 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_template_fails_the_row_without_contacting_smtp() {
    let app = spawn_app().await;
    let id = app.insert_email("no_such_template", "en", json!({})).await;
    app.queue.deliver_email(id).await.unwrap();
    let row = app.wait_for_row(id, "failed", |row| row.status == "failed").await;
    assert_eq!(row.last_error.as_deref(), Some("unknown e-mail template 'no_such_template'"));
    assert!(app.smtp.messages().is_empty());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_deliver_two_hundred_emails_without_duplicates() {
    let app = spawn_app_with_workers(2).await;
    let mut ids = Vec::new();
    for n in 0..200 {
        ids.push(
            app.insert_email(
                "welcome",
                if n % 2 == 0 { "en" } else { "pt-BR" },
                json!({ "name": format!("User {n}") }),
            )
            .await,
        );
    }
    let jobs =
        ids.iter().map(|&outbox_id| helpdesk_core::jobs::Enqueue::now(DeliverEmail::One { outbox_id })).collect();
    app.queue.push_all(jobs).await.unwrap();

    for _ in 0..1200 {
        if app.count_with_status("sent").await == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(app.count_with_status("sent").await, 200);
    let counts = app.smtp.count_by_message_id();
    assert_eq!(counts.len(), 200, "one Message-ID per row");
    assert!(
        counts.values().all(|&n| n == 1),
        "duplicates: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert!(app.workers.iter().all(|w| load(&w.metrics.emails_sent) > 0), "both workers took a share");
    app.finish().await;
}

/// apalis-redis's fetch moves every due job of a queue in one Lua call, which Redis refuses
/// beyond ~8,000 values; the worker moves them in chunks itself. 8,500 jobs put straight
/// into apalis's scheduled set (as delayed jobs that fell due together while no worker ran) must
/// all run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_jobs_falling_due_at_once_than_one_lua_call_can_move_all_run() {
    const JOBS: u64 = 8_500;
    let app = spawn_app().await;
    let mut storage = app.queue.storage::<DeliverEmail>();
    let due = u64::try_from(chrono::Utc::now().timestamp()).unwrap() + 1;
    // Jobs for rows that do not exist: each run is a quick no-op, and counts as processed.
    let tasks: Vec<_> = (0..JOBS)
        .map(|_| TaskBuilder::new(DeliverEmail::One { outbox_id: uuid::Uuid::now_v7() }).run_at_timestamp(due).build())
        .collect();
    storage.push_all(futures_util::stream::iter(tasks)).await.unwrap();
    let processed = |m: &helpdesk_worker::metrics::Metrics| load(&m.email_jobs.processed);
    for _ in 0..1200 {
        if app.total(processed) >= JOBS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.total(processed), JOBS, "the queue stalled");
    assert_eq!(app.total(|m| load(&m.email_jobs.failed)), 0);
    app.finish().await;
}
