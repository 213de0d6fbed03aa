//! Throughput benchmarks, ignored by default; run them in release:
//! `cargo test -p helpdesk-worker --release --test worker -- --ignored --nocapture bench`
//! (one at a time with the test's name instead of `bench`). They print figures and assert only
//! correctness (everything delivered, once), never speed.

use chrono::{TimeDelta, Utc};
use helpdesk_core::{Clock, Config};
use helpdesk_worker::Worker;
use helpdesk_worker::settings::WorkerSettings;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::fixtures::{reminded, waiting_tickets};
use crate::helpers::{base_database_url, desk, drop_database, load, redis_url, spawn_app_with_settings};
use crate::smtp_server::SmtpServer;

/// A benchmark's knob from the environment, or its default.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// A fresh database of the benchmark's own: its id, name and URL. `BENCH_DATABASE_PARAMS` is
/// appended to the URL (`?sslmode=disable` for a database on the same host, where TLS only costs
/// CPU).
fn bench_database() -> (String, String, String) {
    let id = helpdesk_test_support::test_id();
    let name = format!("helpdesk_test_{id}");
    let url = format!("{}/{name}{}", base_database_url(), std::env::var("BENCH_DATABASE_PARAMS").unwrap_or_default());
    (id, name, url)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_emails_delivered_per_second() {
    let count: i64 = setting("BENCH_EMAILS", 3000);
    // The production polling and reconciling, not the test suite's fast ones.
    let app = spawn_app_with_settings(1, |s| {
        s.poll_interval = Duration::from_millis(setting("BENCH_POLL_MS", 1000));
        s.reconcile_interval = Duration::from_secs(60);
        s.email_concurrency = setting("BENCH_EMAIL_CONCURRENCY", s.email_concurrency);
        s.fetch_batch = setting("BENCH_FETCH_BATCH", s.fetch_batch);
        // The LISTEN fast path, on in production (the test helper turns it off by default).
        s.outbox_notifications = true;
    })
    .await;
    // All rows in one transaction, so that none is visible (and delivered) before the clock starts.
    let mut tx = app.pool.begin().await.unwrap();
    for n in 0..count {
        let email = helpdesk_core::outbox::NewEmail {
            idempotency_key: format!("bench:{n}"),
            to_address: "ana@example.com",
            to_name: Some("Ana Souza"),
            locale: "en",
            template: "welcome",
            payload: json!({ "name": format!("User {n}") }),
        };
        helpdesk_core::outbox::enqueue_returning_id(&mut tx, email, app.clock.now()).await.unwrap().unwrap();
    }
    tx.commit().await.unwrap();
    let started = Instant::now();
    // The commit announces every row; the worker's LISTEN fast path queues them, as in production.
    // Progress from the worker's counter: polling the database would take CPU from it.
    let trace = std::env::var("BENCH_TRACE").is_ok();
    let mut next_trace = Duration::ZERO;
    while app.total(|m| load(&m.emails_sent)) < count as u64 {
        assert!(started.elapsed() < Duration::from_secs(900), "gave up after 15 minutes");
        if trace && started.elapsed() >= next_trace {
            let jobs = app.total(|m| load(&m.email_jobs.processed));
            println!("  at {:>6.2?}: {} sent, {jobs} jobs", started.elapsed(), app.total(|m| load(&m.emails_sent)));
            next_trace += Duration::from_millis(250);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    assert_eq!(app.count_with_status("sent").await, count);
    println!("delivered {count} e-mails in {elapsed:.2?}: {:.0} e-mails/s", count as f64 / elapsed.as_secs_f64());
    assert_eq!(app.smtp.count_by_message_id().len(), count as usize);
    app.finish().await;
}

/// 100,000 tickets whose R8 reminder is due (`BENCH_REMINDERS` to change the number), found by a
/// worker that starts with the production settings, as after an outage: the start-up
/// reconciliation queues them, the timer jobs write the reminders, the e-mail jobs deliver them
/// to the in-process SMTP sink. Prints when each stage finished, counted from the worker's start.
/// `BENCH_DATABASE_PARAMS` is appended to the database URL (`?sslmode=disable` for a database on
/// the same host, where TLS only costs CPU).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_a_hundred_thousand_due_reminders_end_to_end() {
    let count: i64 = setting("BENCH_REMINDERS", 100_000);
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let smtp = SmtpServer::start().await;
    let (id, name, database) = bench_database();
    let pool = helpdesk_core::db::connect_and_migrate(&database, 5).await.unwrap();
    let desk = desk(&pool, "pro", 1).await;
    let seeding = Instant::now();
    let tickets = waiting_tickets(&pool, &desk, Utc::now() - TimeDelta::minutes(1), count).await;
    sqlx::query("VACUUM ANALYZE tickets").execute(&pool).await.unwrap();
    println!("seeded {count} waiting tickets in {:.1?}", seeding.elapsed());
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN (ANALYZE, BUFFERS) SELECT id, next_timer_at FROM tickets WHERE next_timer_at <= now() ORDER BY next_timer_at, id LIMIT 2000",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    println!("the sweep's first page with {count} due:\n  {}", plan.join("\n  "));

    let vars: HashMap<String, String> = [
        ("DATABASE_URL", database.clone()),
        ("REDIS_URL", redis_url()),
        ("HELPDESK_REDIS_PREFIX", format!("test:{id}")),
        ("SMTP_URL", smtp.url()),
        ("HELPDESK_WORKER_LISTEN", "127.0.0.1:0".to_owned()),
        ("HELPDESK_DEV_MODE", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_map(&vars).unwrap();
    let mut settings = WorkerSettings::from_env().unwrap();
    settings.name = format!("bench-{id}");
    let started = Instant::now();
    let worker = Worker::build(&config, settings, Clock::system()).await.unwrap();
    let metrics = worker.metrics();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));

    // Progress from the worker's own counters: polling the database would take CPU from it.
    let mut handled = None;
    let acted = || load(&metrics.reconciler_timers_acted) + load(&metrics.timers_acted);
    // The reminders, and the two e-mails the template ticket's opening and reply caused.
    let emails = count as u64 + 2;
    let mut next_report = Duration::from_secs(10);
    loop {
        if started.elapsed() >= next_report {
            println!(
                "  at {:>4.0?}: {} reminders written, {} e-mails sent",
                started.elapsed(),
                acted(),
                load(&metrics.emails_sent)
            );
            next_report += Duration::from_secs(10);
        }
        if handled.is_none() && acted() >= count as u64 {
            handled = Some(started.elapsed());
        }
        if handled.is_some() && load(&metrics.emails_sent) >= emails {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(900), "gave up after 15 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = started.elapsed();
    let _ = stop.send(());
    let _ = handle.await;
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    let handled = handled.unwrap_or(delivered);
    println!(
        "reminders written (ticket, timeline, outbox), counted from the worker's start: {handled:.1?} ({:.0}/s), {} by the reconciler's drain",
        rate(handled),
        load(&metrics.reconciler_timers_acted)
    );
    println!("reminder e-mails delivered: {delivered:.1?} ({:.0}/s end to end)", rate(delivered));
    assert_eq!(reminded(&pool, &tickets).await, count);
    let by_message_id = smtp.count_by_message_id();
    println!(
        "messages at the SMTP sink: {}, duplicates: {}",
        by_message_id.len(),
        by_message_id.values().map(|n| n - 1).sum::<usize>()
    );
    assert!(by_message_id.values().all(|n| *n == 1));
    drop(pool);
    drop_database(&name).await;
}

/// The timers alone: `BENCH_REMINDERS` (default 100,000) due reminders drained by
/// `ticket_timers::run_due_batch` straight from the test, `BENCH_DRAINS` transactions at a time
/// (default 4) of `BENCH_BATCH` tickets (default 100): the database and domain work of the
/// reconciler's drain without the job queue or e-mail delivery competing for the same cores.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_timer_drain_alone() {
    let (count, drains, batch): (i64, i64, i64) =
        (setting("BENCH_REMINDERS", 100_000), setting("BENCH_DRAINS", 4), setting("BENCH_BATCH", 100));
    let (_, name, database) = bench_database();
    // As the worker connects: cached plans.
    let pool =
        helpdesk_core::db::connect_and_migrate_with(&database, 10, helpdesk_core::db::Plans::Cached).await.unwrap();
    let desk = desk(&pool, "pro", 1).await;
    let tickets = waiting_tickets(&pool, &desk, Utc::now() - TimeDelta::minutes(1), count).await;
    sqlx::query("VACUUM ANALYZE tickets").execute(&pool).await.unwrap();
    let store = helpdesk_core::sla_store::SlaStore::default();
    let started = Instant::now();
    let tasks = (0..drains).map(|_| {
        let (pool, store) = (pool.clone(), store.clone());
        tokio::spawn(async move {
            let mut timers = 0;
            loop {
                let mut tx = pool.begin().await.unwrap();
                let done =
                    helpdesk_core::ticket_timers::run_due_batch(&mut tx, &store, Utc::now(), batch, &[]).await.unwrap();
                tx.commit().await.unwrap();
                assert!(done.failed.is_empty());
                timers += done.timers;
                if done.tickets == 0 {
                    return timers;
                }
            }
        })
    });
    let mut timers = 0;
    for task in tasks.collect::<Vec<_>>() {
        timers += task.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "{timers} reminders written by {drains} drains of {batch} in {elapsed:.1?}: {:.0}/s",
        timers as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(reminded(&pool, &tickets).await, count);
    drop(pool);
    drop_database(&name).await;
}
