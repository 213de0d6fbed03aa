//! Upgrading a database whose timers were recorded the earlier way (the `ticket_alerts` firing
//! log) to the stored-instant design: nothing that already went out goes out again, and every
//! open ticket's timers carry on.
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use helpdesk_core::db::MIGRATOR;
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::ticket_timers::{self, TimerOutcome};
use helpdesk_domain::sla::{ClockEvent, ClockEventKind, Metric, SlaPolicy, Target};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use uuid::Uuid;

use crate::helpers::{Desk, base_database_url, desk, drop_database, in_tx};

/// The first migration of the stored-instant design.
const STORED_INSTANTS: i64 = 20261201000001;

/// Inserts a ticket the way the earlier schema stored it (no timer columns).
async fn old_ticket(
    pool: &PgPool,
    desk: &Desk,
    events: &[ClockEvent],
    status: &str,
    waiting_since: Option<DateTime<Utc>>,
    first_response_due_at: DateTime<Utc>,
) -> Uuid {
    let id = Uuid::now_v7();
    let events = serde_json::to_value(events).unwrap();
    let opened = events[0]["at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    sqlx::query(
        "INSERT INTO tickets (id, organization_id, requester_id, subject, description, category, severity, emergency, plan_code,
                              status, waiting_since, sla_events, calendar_version, policy_version, first_response_due_at,
                              next_due_at, created_at, updated_at)
         VALUES ($1, $2, $3, 'Site fora do ar', 'Erro 502', 'technical', 'critical', true, 'premium', $4, $5, $6, 1, 1, $7, $7, $8, $8)",
    )
    .bind(id)
    .bind(desk.customer.organization_id)
    .bind(desk.customer.user_id)
    .bind(status)
    .bind(waiting_since)
    .bind(events)
    .bind(first_response_due_at)
    .bind(opened)
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn fired(pool: &PgPool, ticket: Uuid, kind: &str, due_at: DateTime<Utc>, fired_at: DateTime<Utc>) {
    sqlx::query("INSERT INTO ticket_alerts (ticket_id, kind, due_at, fired_at) VALUES ($1, $2, $3, $4)")
        .bind(ticket)
        .bind(kind)
        .bind(due_at)
        .bind(fired_at)
        .execute(pool)
        .await
        .unwrap();
}

async fn column(pool: &PgPool, ticket: Uuid, name: &str) -> Value {
    let sql = format!("SELECT to_jsonb({name}) FROM tickets WHERE id = $1");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(ticket).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_carries_the_firing_log_over_and_sends_nothing_twice() {
    let url = format!("{}/helpdesk_test_{}", base_database_url(), Uuid::now_v7().simple());
    <sqlx::Postgres as sqlx::migrate::MigrateDatabase>::create_database(&url).await.unwrap();
    let pool = helpdesk_core::db::connect(&url, 5).await.unwrap();
    // The schema as it was before the upgrade.
    let before = Migrator::with_migrations(MIGRATOR.iter().filter(|m| m.version < STORED_INSTANTS).cloned().collect());
    before.run(&pool).await.unwrap();
    let desk = desk(&pool, "premium", 1).await;

    let now = Utc::now().trunc_subsecs(6); // PostgreSQL keeps microseconds
    let targets =
        SlaPolicy::default_targets().targets("premium", helpdesk_domain::sla::Severity::Critical, true).unwrap();
    let started =
        |at| ClockEvent { at, kind: ClockEventKind::Started { targets, calendar_version: 1, policy_version: 1 } };

    // An emergency opened 70 minutes ago (first response: 1 h of calendar time): its first
    // response ran out 10 minutes ago, and both its alerts went out.
    let opened = now - TimeDelta::minutes(70);
    let breached = old_ticket(&pool, &desk, &[started(opened)], "open", None, opened + TimeDelta::hours(1)).await;
    let due = opened + TimeDelta::hours(1);
    fired(&pool, breached, "first_response_at_risk", due, now - TimeDelta::minutes(22)).await;
    fired(&pool, breached, "first_response_breached", due, now - TimeDelta::minutes(10)).await;

    // The same, but its first-response target was changed to 30 minutes (a second revision) and
    // went out as at risk under it.
    let retargeted_opened = now - TimeDelta::minutes(28);
    let retarget = ClockEvent {
        at: retargeted_opened,
        kind: ClockEventKind::TargetChanged {
            metric: Metric::FirstResponse,
            target: Target { duration: TimeDelta::minutes(30), ..targets.first_response },
            policy_version: 1,
        },
    };
    let retargeted_due = retargeted_opened + TimeDelta::minutes(30);
    let retargeted =
        old_ticket(&pool, &desk, &[started(retargeted_opened), retarget], "open", None, retargeted_due).await;
    fired(&pool, retargeted, "first_response_at_risk", retargeted_due, now - TimeDelta::minutes(3)).await;

    // A ticket waiting for the customer for 80 h, reminded 8 h ago.
    let since = now - TimeDelta::hours(80);
    let answered = |at| ClockEvent { at, kind: ClockEventKind::Met { metric: Metric::FirstResponse } };
    let paused = |at| ClockEvent { at, kind: ClockEventKind::Paused { metric: Metric::Resolution } };
    let waiting = old_ticket(
        &pool,
        &desk,
        &[started(since - TimeDelta::minutes(5)), answered(since), paused(since)],
        "waiting_customer",
        Some(since),
        since,
    )
    .await;
    fired(&pool, waiting, "customer_reminder", since + TimeDelta::hours(72), now - TimeDelta::hours(8)).await;

    // The upgrade.
    MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(
        column(&pool, breached, "sla_alerts").await,
        serde_json::json!({ "first_response": { "target_revision": 1, "stage": "breached" } })
    );
    assert_eq!(
        column(&pool, retargeted, "sla_alerts").await,
        serde_json::json!({ "first_response": { "target_revision": 2, "stage": "at_risk" } })
    );
    let reminder_sent_at = column(&pool, waiting, "reminder_sent_at").await;
    assert_eq!(
        reminder_sent_at.as_str().map(|s| s.parse::<DateTime<Utc>>().unwrap().timestamp()),
        Some((now - TimeDelta::hours(8)).timestamp())
    );
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('ticket_alerts') IS NOT NULL").fetch_one(&pool).await.unwrap();
    assert!(!exists, "the firing log is gone");
    // Every open ticket is due for one look by the worker.
    let due: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tickets WHERE next_timer_at <= now()").fetch_one(&pool).await.unwrap();
    assert_eq!(due, 3);

    // The look: what already went out does not go out again; what is still owed does.
    let store = SlaStore::default();
    let at = Utc::now();
    assert_eq!(
        in_tx(&pool, async |c| ticket_timers::run_due(c, &store, breached, at).await).await.unwrap(),
        TimerOutcome::NothingDue { next_at: Some(opened + TimeDelta::minutes(192)) },
        "the breach was alerted; next is resolution at risk (80 % of 4 h)"
    );
    assert_eq!(
        in_tx(&pool, async |c| ticket_timers::run_due(c, &store, waiting, at).await).await.unwrap(),
        TimerOutcome::NothingDue { next_at: Some(now - TimeDelta::hours(8) + TimeDelta::hours(48)) },
        "the reminder went out; the auto-close counts from it"
    );
    match in_tx(&pool, async |c| ticket_timers::run_due(c, &store, retargeted, at + TimeDelta::minutes(3)).await)
        .await
        .unwrap()
    {
        TimerOutcome::Acted { kinds, .. } => {
            assert_eq!(kinds, [helpdesk_domain::timers::TimerKind::FirstResponseBreached], "the breach was still owed")
        }
        other => panic!("expected the breach alert, got {other:?}"),
    }
    let alerts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE template IN ('sla_at_risk', 'sla_breached')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(alerts, 1, "one new alert in all: the breach owed to the re-targeted ticket");
    pool.close().await;
    drop_database(url.rsplit('/').next().unwrap_or_default()).await;
}
