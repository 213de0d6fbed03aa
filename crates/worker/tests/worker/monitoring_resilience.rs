//! The real `helpdesk-worker` binary killed (SIGKILL) in the middle of an incident, with a probe
//! in flight, and restarted: the incident goes on and no alert is sent twice.

use chrono::{TimeDelta, Utc};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::{drop_database, redis_url};
use crate::resilience::{database, spawn_worker, wait_until, worker_env};
use crate::smtp_server::SmtpServer;
use crate::targets::{KEYWORD, Mode, Target};

async fn alert_kinds(pool: &PgPool, monitor: Uuid) -> Vec<String> {
    sqlx::query_scalar!(
        "SELECT a.kind FROM incident_alerts a JOIN incidents i ON i.id = a.incident_id WHERE i.monitor_id = $1 ORDER BY a.sent_at, a.id",
        monitor
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn alert_emails(pool: &PgPool, monitor: Uuid) -> i64 {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM email_outbox WHERE template = 'monitor_alert' AND payload->>'monitor_id' = $1"#,
        monitor.to_string()
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Makes the monitor due now (as a claim's lease running out would, keeping its slot).
async fn due_now(pool: &PgPool, monitor: Uuid) {
    sqlx::query!("UPDATE monitors SET next_check_at = now() WHERE id = $1", monitor).execute(pool).await.unwrap();
}

async fn last_check(pool: &PgPool, monitor: Uuid) -> Option<chrono::DateTime<Utc>> {
    sqlx::query_scalar!(
        r#"SELECT m.last_check_started_at FROM monitors m JOIN monitor_probe_states p ON p.monitor_id = m.id
           WHERE m.id = $1 AND p.claimed_slot IS NULL"#,
        monitor
    )
    .fetch_optional(pool)
    .await
    .unwrap()
    .flatten()
}

#[tokio::test]
async fn a_worker_killed_mid_incident_and_restarted_sends_no_duplicate_alerts() {
    let smtp = SmtpServer::start().await;
    let id = helpdesk_test_support::test_id();
    let (url, pool, desk) = database(&id).await;
    let org = desk.customer.organization_id.unwrap();
    let site = Target::start(Mode::Status(503)).await;
    let monitor = Uuid::now_v7();
    let now = Utc::now();
    sqlx::query!(
        r#"INSERT INTO monitors (id, organization_id, name, url, keyword, keyword_mode, interval_seconds, timeout_seconds,
                                 phase_offset_seconds, next_check_at, created_at, updated_at)
           VALUES ($1, $2, 'Loja', $3, $4, 'present', 300, 2, 0, $5, $5, $5)"#,
        monitor,
        org,
        site.url(),
        KEYWORD,
        now,
    )
    .execute(&pool)
    .await
    .unwrap();
    // Its first failure was a minute ago: the next failure confirms the downtime.
    let state = json!({ "phase": "suspect", "first_failure_at": now - TimeDelta::seconds(60) });
    sqlx::query!("INSERT INTO monitor_probe_states (monitor_id, state) VALUES ($1, $2)", monitor, state)
        .execute(&pool)
        .await
        .unwrap();
    let mut env = worker_env(&url, &redis_url(), &format!("test:{id}"), &smtp);
    env.push(("HELPDESK_EGRESS_ALLOW_CIDRS", "127.0.0.0/8".to_owned()));

    let mut first = spawn_worker(&env, &format!("monitor-a-{id}"));
    wait_until("DOWN", Duration::from_secs(60), async || alert_kinds(&pool, monitor).await == ["down"]).await;
    // A probe in flight when the worker dies: the site now takes longer than the timeout.
    site.set(Mode::Slow(Duration::from_secs(5)));
    let before = last_check(&pool, monitor).await;
    due_now(&pool, monitor).await;
    wait_until("the probe to be claimed", Duration::from_secs(30), async || {
        sqlx::query_scalar!("SELECT claimed_slot FROM monitor_probe_states WHERE monitor_id = $1", monitor)
            .fetch_one(&pool)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    first.kill();
    assert_eq!(last_check(&pool, monitor).await, None, "killed with the probe in flight");

    site.set(Mode::Status(503));
    due_now(&pool, monitor).await;
    let mut second = spawn_worker(&env, &format!("monitor-b-{id}"));
    wait_until("the catch-up probe", Duration::from_secs(60), async || {
        last_check(&pool, monitor).await.is_some_and(|at| Some(at) > before)
    })
    .await;
    assert_eq!(alert_kinds(&pool, monitor).await, ["down"], "no second DOWN after the restart");
    assert_eq!(alert_emails(&pool, monitor).await, 2, "the agent and the customer, once each");

    site.set(Mode::Up);
    for round in 0..2 {
        let before = last_check(&pool, monitor).await;
        due_now(&pool, monitor).await;
        wait_until(&format!("success {round}"), Duration::from_secs(60), async || {
            last_check(&pool, monitor).await.is_some_and(|at| Some(at) > before)
        })
        .await;
    }
    assert_eq!(alert_kinds(&pool, monitor).await, ["down", "recovered"]);
    assert_eq!(alert_emails(&pool, monitor).await, 4);
    wait_until("every alert delivered", Duration::from_secs(60), async || smtp.count() >= 4).await;
    assert!(smtp.count_by_message_id().values().all(|copies| *copies == 1), "no e-mail delivered twice");
    second.kill();
    pool.close().await;
    drop_database(&format!("helpdesk_test_{id}")).await;
}
