//! Re-projection is worker work (issue 14): a calendar edit over 5,000 open tickets moves a first
//! batch inside the edit and leaves the rest to the worker binary, which finishes it even when it
//! is killed half-way and started again.
use crate::fixtures::{copy_ticket, new_ticket};
use crate::resilience::{database, spawn_worker, wait_until, worker_env};
use crate::smtp_server::SmtpServer;
use chrono::{NaiveDate, Utc};
use helpdesk_core::accounts::Caller;
use helpdesk_core::calendar_admin;
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::tickets;
use helpdesk_domain::accounts::Role;
use helpdesk_domain::sla::Severity;
use helpdesk_test_support::in_tx;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

async fn behind(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM tickets WHERE status <> 'closed' AND calendar_version < (SELECT max(version) FROM calendar_versions)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_calendar_edit_over_5000_open_tickets_finishes_in_the_worker_across_a_kill() {
    let id = helpdesk_test_support::test_id();
    let (url, pool, desk) = database(&id).await;
    let store = SlaStore::default();
    let opened = in_tx(&pool, async |c| {
        tickets::open(c, &store, &desk.customer, new_ticket(Severity::Low, false), Utc::now()).await
    })
    .await
    .unwrap();
    copy_ticket(&pool, opened.id, 4_999).await;
    assert_eq!(behind(&pool).await, 0);

    // The edit: a new calendar version; the request itself moves the first 2,000 tickets.
    let admin = Caller { user_id: desk.agents[0].user_id, role: Role::Admin, organization_id: None };
    let closed_day = NaiveDate::from_ymd_opt(2030, 3, 1).unwrap();
    let spec = in_tx(&pool, async |c| {
        calendar_admin::add_closed_day(c, &store, &admin, closed_day, "Inventário", Vec::new(), Utc::now()).await
    })
    .await
    .unwrap();
    let moved = calendar_admin::reproject_in_request(&pool, &store, Utc::now()).await.unwrap();
    assert_eq!(moved, 2_000);
    assert_eq!(behind(&pool).await, 3_000);

    // Another transaction holds 1,000 of the rest, so the first worker can only get half-way.
    let mut holder = pool.begin().await.unwrap();
    let held: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM tickets WHERE calendar_version < $1 ORDER BY id LIMIT 1000 FOR UPDATE")
            .bind(spec.version as i32)
            .fetch_all(&mut *holder)
            .await
            .unwrap();
    assert_eq!(held.len(), 1_000);

    let smtp = SmtpServer::start().await;
    let redis = crate::helpers::redis_url();
    let prefix = format!("test:{id}");
    let vars = worker_env(&url, &redis, &prefix, &smtp);
    let mut first = spawn_worker(&vars, &format!("reproject-a-{id}"));
    wait_until("the first worker to move what it can", Duration::from_secs(60), async || behind(&pool).await == 1_000)
        .await;
    first.kill();
    holder.rollback().await.unwrap();
    assert_eq!(behind(&pool).await, 1_000, "the killed worker left half of its share");

    let _second = spawn_worker(&vars, &format!("reproject-b-{id}"));
    wait_until("the restarted worker to finish", Duration::from_secs(60), async || behind(&pool).await == 0).await;
    let versions: Vec<(i32, i64)> =
        sqlx::query_as("SELECT calendar_version, count(*) FROM tickets GROUP BY calendar_version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, vec![(spec.version as i32, 5_000)], "every ticket ends on the new version");
    // Each ticket's clock records the change once.
    let changes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tickets, jsonb_array_elements(sla_events) e WHERE e->'kind'->>'type' = 'calendar_changed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(changes, 5_000);
}
