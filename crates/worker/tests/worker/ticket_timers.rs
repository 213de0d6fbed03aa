//! Ticket timers end to end (R5–R8): tickets made by the core operations, the real worker's
//! reconciler and timer jobs, the test SMTP server, and a manual clock moved by the test.
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_core::jobs::{TicketTimer, TicketTimerKind};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::ticket_timers::{self, TimerOutcome, TimerPolicy};
use helpdesk_core::tickets::{self, NewMessage, NewTicket, TicketUpdate};
use helpdesk_domain::plans::Category;
use helpdesk_domain::sla::Severity;
use helpdesk_domain::tickets::{CloseReason, Status};
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::{Desk, TestApp, spawn_app_with_settings};

/// The real worker, its reconciler sweeping every second. E-mails go out as soon as their row is
/// committed (and due), through the outbox notification: the timers are what is under test.
async fn spawn_app() -> TestApp {
    spawn_app_with_settings(1, |s| s.outbox_notifications = true).await
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn open(app: &TestApp, store: &SlaStore, desk: &Desk, severity: Severity, emergency: bool) -> Uuid {
    let input = NewTicket {
        subject: "Site fora do ar".into(),
        description: "Nada carrega desde as 15h.".into(),
        category: Category::Technical,
        severity,
        emergency,
        references_ticket_id: None,
    };
    tickets::open(&app.pool, store, &desk.customer, input, app.clock.now()).await.unwrap().id
}

async fn status(app: &TestApp, ticket: Uuid) -> (String, Option<String>) {
    let row = sqlx::query!("SELECT status, close_reason FROM tickets WHERE id = $1", ticket)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (row.status, row.close_reason)
}

async fn event_kinds(app: &TestApp, ticket: Uuid) -> Vec<String> {
    sqlx::query_scalar!("SELECT kind FROM ticket_events WHERE ticket_id = $1 ORDER BY occurred_at, id", ticket)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn due_kinds(app: &TestApp, ticket: Uuid) -> Vec<TicketTimerKind> {
    let mut conn = app.pool.acquire().await.unwrap();
    ticket_timers::due_timers(&mut conn, app.clock.now(), &TimerPolicy::default(), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.ticket_id == ticket)
        .map(|t| t.kind)
        .collect()
}

async fn handle(app: &TestApp, store: &SlaStore, timer: TicketTimer) -> TimerOutcome {
    ticket_timers::handle(&app.pool, store, &TimerPolicy::default(), timer, app.clock.now()).await.unwrap()
}

/// A few reconciler rounds (1 s apart in the tests' settings).
async fn let_the_worker_run() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

async fn wait_for_status(app: &TestApp, ticket: Uuid, wanted: &str) -> (String, Option<String>) {
    for _ in 0..400 {
        let current = status(app, ticket).await;
        if current.0 == wanted {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("ticket {ticket} never became {wanted}: {:?}", status(app, ticket).await);
}

async fn wait_customer(app: &TestApp, store: &SlaStore, desk: &Desk, ticket: Uuid) {
    let update = TicketUpdate { status: Some(Status::WaitingCustomer), ..TicketUpdate::default() };
    tickets::update(&app.pool, store, &desk.agents[0], ticket, update, app.clock.now()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_ticket_gets_one_reminder_at_72h_and_is_auto_closed_at_120h() {
    let app = spawn_app().await;
    let store = SlaStore::default();
    let desk = app.desk("pro", 1).await;
    let ticket = open(&app, &store, &desk, Severity::Low, false).await;
    let t0 = app.clock.now();
    wait_customer(&app, &store, &desk, ticket).await;

    app.clock.set(t0 + TimeDelta::hours(72) - TimeDelta::minutes(1));
    assert!(!due_kinds(&app, ticket).await.contains(&TicketTimerKind::CustomerReminder));
    let_the_worker_run().await;
    assert!(app.emails("ticket_reminder", ticket).await.is_empty(), "no reminder before 72 h");

    app.clock.set(t0 + TimeDelta::hours(72));
    let reminders = app.wait_for_sent("ticket_reminder", ticket, 1).await;
    assert_eq!(reminders.len(), 1);
    assert!(reminders[0].to_address.starts_with("customer-"));
    // Duplicates: the same job again, and more reconciler rounds, change nothing.
    let reminder = TicketTimer {
        ticket_id: ticket,
        kind: TicketTimerKind::CustomerReminder,
        due_at: t0 + TimeDelta::hours(72),
        version: 1,
    };
    assert_eq!(handle(&app, &store, reminder).await, TimerOutcome::Stale);
    let_the_worker_run().await;
    let reminders = app.emails("ticket_reminder", ticket).await;
    assert_eq!(reminders.len(), 1, "exactly one reminder");
    assert_eq!(app.received(reminders[0].message_id.as_deref().unwrap()), 1, "delivered once");
    assert!(event_kinds(&app, ticket).await.contains(&"reminder_sent".to_owned()));

    // 48 h after the reminder, not before.
    app.clock.set(t0 + TimeDelta::hours(120) - TimeDelta::minutes(1));
    assert!(!due_kinds(&app, ticket).await.contains(&TicketTimerKind::AutoClose));
    let_the_worker_run().await;
    assert_eq!(status(&app, ticket).await.0, "waiting_customer");

    app.clock.set(t0 + TimeDelta::hours(120));
    let (_, reason) = wait_for_status(&app, ticket, "closed").await;
    assert_eq!(reason.as_deref(), Some(CloseReason::AutoClosed.as_str()));
    app.wait_for_sent("ticket_closed", ticket, 1).await;
    // The timeline event noting the auto-close follows the close itself.
    for _ in 0..200 {
        if event_kinds(&app, ticket).await.contains(&"auto_closed".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let kinds = event_kinds(&app, ticket).await;
    assert!(kinds.contains(&"closed".to_owned()) && kinds.contains(&"auto_closed".to_owned()), "{kinds:?}");
    let note =
        sqlx::query_scalar!("SELECT data FROM ticket_events WHERE ticket_id = $1 AND kind = 'auto_closed'", ticket)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(note["reminder_sent_at"].as_str().map(at), Some(t0 + TimeDelta::hours(72)));
    let_the_worker_run().await;
    assert_eq!(app.emails("ticket_reminder", ticket).await.len(), 1);
    assert_eq!(app.emails("ticket_closed", ticket).await.len(), 1, "closed once");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_reply_after_the_reminder_cancels_the_auto_close() {
    let app = spawn_app().await;
    let store = SlaStore::default();
    let desk = app.desk("pro", 1).await;
    let ticket = open(&app, &store, &desk, Severity::Low, false).await;
    let t0 = app.clock.now();
    wait_customer(&app, &store, &desk, ticket).await;

    app.clock.set(t0 + TimeDelta::hours(72));
    app.wait_for_sent("ticket_reminder", ticket, 1).await;

    app.clock.set(t0 + TimeDelta::hours(100));
    let reply = NewMessage { body: "Voltou a cair hoje cedo.".into(), internal: false, then_status: None };
    let (_, after) =
        tickets::post_message(&app.pool, &store, &desk.customer, ticket, reply, app.clock.now()).await.unwrap();
    assert_eq!(after.status, Status::Open);

    app.clock.set(t0 + TimeDelta::hours(120) + TimeDelta::minutes(1));
    assert!(
        !due_kinds(&app, ticket)
            .await
            .iter()
            .any(|k| matches!(k, TicketTimerKind::AutoClose | TicketTimerKind::CustomerReminder))
    );
    // The auto-close job scheduled after the reminder still runs: it must do nothing.
    let stale = TicketTimer {
        ticket_id: ticket,
        kind: TicketTimerKind::AutoClose,
        due_at: t0 + TimeDelta::hours(120),
        version: 1,
    };
    assert_eq!(handle(&app, &store, stale).await, TimerOutcome::Stale);
    let_the_worker_run().await;
    assert_eq!(status(&app, ticket).await, ("open".to_owned(), None));
    assert!(app.emails("ticket_closed", ticket).await.is_empty());
    assert_eq!(app.emails("ticket_reminder", ticket).await.len(), 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_risk_and_breach_alerts_fire_once_each_to_the_assignee() {
    let app = spawn_app().await;
    let store = SlaStore::default();
    let desk = app.desk("premium", 2).await;
    // Tuesday 2026-12-01 10:00 São Paulo: premium critical, first response in 1 business hour.
    app.clock.set(at("2026-12-01T13:00:00Z"));
    let ticket = open(&app, &store, &desk, Severity::Critical, false).await;
    let assign = TicketUpdate { assignee_id: Some(Some(desk.agents[1].user_id)), ..TicketUpdate::default() };
    tickets::update(&app.pool, &store, &desk.agents[0], ticket, assign, app.clock.now()).await.unwrap();

    // At risk at 80 %: 10:48.
    app.clock.set(at("2026-12-01T13:50:00Z"));
    let alerts = app.wait_for_sent("sla_at_risk", ticket, 1).await;
    assert_eq!(alerts.len(), 1, "to the assignee only: {alerts:?}");
    assert!(alerts[0].to_address.starts_with("agent1-"));
    let at_risk = TicketTimer {
        ticket_id: ticket,
        kind: TicketTimerKind::FirstResponseAtRisk,
        due_at: at("2026-12-01T13:48:00Z"),
        version: 2,
    };
    assert_eq!(handle(&app, &store, at_risk).await, TimerOutcome::Stale, "a duplicate job is a no-op");
    assert_eq!(handle(&app, &store, at_risk).await, TimerOutcome::Stale);
    assert!(due_kinds(&app, ticket).await.is_empty());
    // A change saved past the threshold re-projects the at-risk instant onto the save's "now";
    // the alert stands for the target, so it does not fire again.
    app.clock.set(at("2026-12-01T13:55:00Z"));
    let note = NewMessage { body: "Olhando os logs.".into(), internal: true, then_status: None };
    let (_, saved) =
        tickets::post_message(&app.pool, &store, &desk.agents[1], ticket, note, app.clock.now()).await.unwrap();
    assert_eq!(saved.first_response_at_risk_at, Some(at("2026-12-01T13:55:00Z")));
    assert!(due_kinds(&app, ticket).await.is_empty());
    let_the_worker_run().await;
    let alerts = app.emails("sla_at_risk", ticket).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(app.received(alerts[0].message_id.as_deref().unwrap()), 1);

    // Breached at 11:00.
    app.clock.set(at("2026-12-01T14:01:00Z"));
    let breaches = app.wait_for_sent("sla_breached", ticket, 1).await;
    assert!(breaches[0].to_address.starts_with("agent1-"));
    let breach = TicketTimer {
        ticket_id: ticket,
        kind: TicketTimerKind::FirstResponseBreached,
        due_at: at("2026-12-01T14:00:00Z"),
        version: 2,
    };
    assert_eq!(handle(&app, &store, breach).await, TimerOutcome::Stale);
    let_the_worker_run().await;
    let breaches = app.emails("sla_breached", ticket).await;
    assert_eq!(breaches.len(), 1, "one breach alert");
    assert_eq!(app.received(breaches[0].message_id.as_deref().unwrap()), 1);
    assert_eq!(app.emails("sla_at_risk", ticket).await.len(), 1, "still one at-risk alert");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_on_friday_night_is_delivered_on_monday_at_nine() {
    let app = spawn_app().await;
    let store = SlaStore::default();
    let desk = app.desk("premium", 1).await;
    // Friday 2026-12-04 16:00 São Paulo: first response due 17:00.
    app.clock.set(at("2026-12-04T19:00:00Z"));
    let ticket = open(&app, &store, &desk, Severity::Critical, false).await;

    // Nobody answered; the alert is raised at 20:00, out of hours.
    app.clock.set(at("2026-12-04T23:00:00Z"));
    let rows = app.wait_for_queued("sla_breached", ticket, 1).await;
    assert_eq!(rows.len(), 1, "unassigned: every agent, and there is one");
    assert_eq!(rows[0].next_attempt_at, at("2026-12-07T12:00:00Z"), "held for Monday 09:00 São Paulo");
    assert_eq!(rows[0].created_at, at("2026-12-04T23:00:00Z"));
    assert!(app.emails("sla_at_risk", ticket).await.is_empty(), "the breach supersedes the at-risk alert");

    let_the_worker_run().await;
    app.clock.set(at("2026-12-07T11:59:00Z"));
    let_the_worker_run().await;
    let row = &app.emails("sla_breached", ticket).await[0];
    assert_eq!(row.status, "pending", "nothing is sent before Monday 09:00");
    assert!(row.message_id.is_none());

    app.clock.set(at("2026-12-07T12:00:00Z"));
    let rows = app.wait_for_sent("sla_breached", ticket, 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(app.received(rows[0].message_id.as_deref().unwrap()), 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_pages_every_agent_at_once_out_of_hours() {
    let app = spawn_app().await;
    let store = SlaStore::default();
    let desk = app.desk("premium", 2).await;
    // Friday 2026-12-04 19:00 São Paulo: an emergency counts calendar time, first response in 1 h.
    app.clock.set(at("2026-12-04T22:00:00Z"));
    let ticket = open(&app, &store, &desk, Severity::Critical, true).await;
    let assign = TicketUpdate { assignee_id: Some(Some(desk.agents[0].user_id)), ..TicketUpdate::default() };
    tickets::update(&app.pool, &store, &desk.agents[0], ticket, assign, app.clock.now()).await.unwrap();

    app.clock.set(at("2026-12-04T22:49:00Z"));
    let at_risk = app.wait_for_sent("sla_at_risk", ticket, 2).await;
    assert_eq!(at_risk.len(), 2, "on-call: every agent, assigned or not");

    app.clock.set(at("2026-12-04T23:01:00Z"));
    let breaches = app.wait_for_sent("sla_breached", ticket, 2).await;
    assert_eq!(breaches.len(), 2);
    // Sent while the clock still reads Friday 20:01: the rows were due at once (a delivery claims
    // only rows whose `next_attempt_at` has come).
    for row in &breaches {
        assert_eq!(row.created_at, at("2026-12-04T23:01:00Z"));
        assert_eq!(app.received(row.message_id.as_deref().unwrap()), 1);
    }
    let_the_worker_run().await;
    assert_eq!(app.emails("sla_breached", ticket).await.len(), 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_change_schedules_its_due_timer_without_the_reconciler() {
    // The reconciler runs at start-up and then hourly: what happens here comes from the
    // notifications (ticket → timer job, outbox row → delivery job).
    let app = spawn_app_with_settings(1, |s| {
        s.outbox_notifications = true;
        s.ticket_notifications = true;
        s.reconcile_interval = Duration::from_secs(3600);
    })
    .await;
    // Let the start-up reconciliation pass and the listeners subscribe.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let store = SlaStore::default();
    let desk = app.desk("premium", 1).await;
    // Tuesday 10:00: premium low, first response in 8 business hours.
    app.clock.set(at("2026-12-01T13:00:00Z"));
    let ticket = open(&app, &store, &desk, Severity::Low, false).await;

    // 50 minutes later the severity goes up to critical (1 h): already past 80 %.
    app.clock.set(at("2026-12-01T13:50:00Z"));
    let raise = TicketUpdate { severity: Some(Severity::Critical), ..TicketUpdate::default() };
    tickets::update(&app.pool, &store, &desk.agents[0], ticket, raise, app.clock.now()).await.unwrap();
    let alerts = app.wait_for_sent("sla_at_risk", ticket, 1).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(app.total(|m| crate::helpers::load(&m.reconciler_enqueued)), 0, "not the reconciler");
    app.finish().await;
}
