//! Ticket timers end to end (R5–R8): tickets made by the core operations, the real worker's
//! reconciler and timer jobs, the test SMTP server, and a manual clock moved by the test.
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_core::calendar_admin::{self, PolicyEdit};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::ticket_timers::{self, TimerOutcome};
use helpdesk_core::tickets::{self, NewMessage, NewTicket, TicketUpdate};
use helpdesk_domain::accounts::Role;
use helpdesk_domain::plans::Category;
use helpdesk_domain::sla::Severity;
use helpdesk_domain::tickets::{CloseReason, Status};
use helpdesk_domain::timers::TimerKind;
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::{Desk, TestApp, in_tx, spawn_app_at, spawn_app_with_settings};

/// The real worker, its reconciler sweeping every second. E-mails go out as soon as their row is
/// committed (and due), through the outbox notification: the timers are what is under test.
async fn spawn_app() -> TestApp {
    spawn_app_with_settings(1, |s| s.outbox_notifications = true).await
}

/// The same, its clock at `start` from the beginning (see `spawn_app_at`).
async fn spawn_app_from(start: &str) -> TestApp {
    spawn_app_at(at(start), 1, |s| s.outbox_notifications = true).await
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
        on_behalf_of: None,
    };
    in_tx(&app.pool, async |c| tickets::open(c, store, &desk.customer, input, app.clock.now()).await).await.unwrap().id
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

/// The stored instant of the ticket's next timer.
async fn next_timer(app: &TestApp, ticket: Uuid) -> Option<DateTime<Utc>> {
    sqlx::query_scalar!("SELECT next_timer_at FROM tickets WHERE id = $1", ticket).fetch_one(&app.pool).await.unwrap()
}

/// Whether the reconciler's drain would take the ticket at the clock's reading.
async fn swept(app: &TestApp, ticket: Uuid) -> bool {
    sqlx::query_scalar!(
        r#"SELECT coalesce(next_timer_at <= $2, false) AS "due!" FROM tickets WHERE id = $1"#,
        ticket,
        app.clock.now()
    )
    .fetch_optional(&app.pool)
    .await
    .unwrap()
    .unwrap_or(false)
}

/// Runs the ticket's timers the way a (duplicate) job would.
async fn run_now(app: &TestApp, store: &SlaStore, ticket: Uuid) -> TimerOutcome {
    in_tx(&app.pool, async |c| ticket_timers::run_due(c, store, ticket, app.clock.now()).await).await.unwrap()
}

/// A few reconciler rounds (1 s apart in the tests' settings).
async fn let_the_worker_run() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

async fn wait_for_status(app: &TestApp, ticket: Uuid, wanted: &str) -> (String, Option<String>) {
    for _ in 0..1200 {
        let current = status(app, ticket).await;
        if current.0 == wanted {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("ticket {ticket} never became {wanted}: {:?}", status(app, ticket).await);
}

/// An agent's public reply that hands the ticket to the customer (and meets first response, so
/// only R8's timers are left).
async fn wait_customer(app: &TestApp, store: &SlaStore, desk: &Desk, ticket: Uuid) {
    let reply =
        NewMessage { body: "Pode testar agora?".into(), internal: false, then_status: Some(Status::WaitingCustomer) };
    in_tx(&app.pool, async |c| tickets::post_message(c, store, &desk.agents[0], ticket, reply, app.clock.now()).await)
        .await
        .unwrap();
}

/// A Pro customer's low-severity ticket that an agent answered and handed back at `t0`.
struct Scene {
    app: TestApp,
    store: SlaStore,
    desk: Desk,
    ticket: Uuid,
    t0: DateTime<Utc>,
}

async fn waiting_ticket(app: TestApp) -> Scene {
    let store = SlaStore::default();
    let desk = app.desk("pro", 1).await;
    let ticket = open(&app, &store, &desk, Severity::Low, false).await;
    let t0 = app.clock.now();
    wait_customer(&app, &store, &desk, ticket).await;
    Scene { app, store, desk, ticket, t0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_ticket_gets_one_reminder_at_72h_and_is_auto_closed_at_120h() {
    let Scene { app, store, ticket, t0, .. } = waiting_ticket(spawn_app().await).await;
    assert_eq!(next_timer(&app, ticket).await, Some(t0 + TimeDelta::hours(72)), "the reminder is the next timer");

    app.clock.set(t0 + TimeDelta::hours(72) - TimeDelta::minutes(1));
    assert!(!swept(&app, ticket).await);
    let_the_worker_run().await;
    assert!(app.emails("ticket_reminder", ticket).await.is_empty(), "no reminder before 72 h");

    app.clock.set(t0 + TimeDelta::hours(72));
    let reminders = app.wait_for_sent("ticket_reminder", ticket, 1).await;
    assert_eq!(reminders.len(), 1);
    assert!(reminders[0].to_address.starts_with("customer-"));
    // Duplicates: the same job again, and more reconciler rounds, change nothing.
    assert_eq!(
        run_now(&app, &store, ticket).await,
        TimerOutcome::NothingDue { next_at: Some(t0 + TimeDelta::hours(120)) }
    );
    let_the_worker_run().await;
    let reminders = app.emails("ticket_reminder", ticket).await;
    assert_eq!(reminders.len(), 1, "exactly one reminder");
    assert_eq!(app.received(reminders[0].message_id.as_deref().unwrap()), 1, "delivered once");
    assert!(event_kinds(&app, ticket).await.contains(&"reminder_sent".to_owned()));
    let row = sqlx::query!("SELECT reminder_sent_at, next_timer_at FROM tickets WHERE id = $1", ticket)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(row.reminder_sent_at, Some(t0 + TimeDelta::hours(72)));
    assert_eq!(row.next_timer_at, Some(t0 + TimeDelta::hours(120)), "auto-close 48 h after the reminder");

    // 48 h after the reminder, not before.
    app.clock.set(t0 + TimeDelta::hours(120) - TimeDelta::minutes(1));
    assert!(!swept(&app, ticket).await);
    let_the_worker_run().await;
    assert_eq!(status(&app, ticket).await.0, "waiting_customer");

    app.clock.set(t0 + TimeDelta::hours(120));
    let (_, reason) = wait_for_status(&app, ticket, "closed").await;
    assert_eq!(reason.as_deref(), Some(CloseReason::AutoClosed.as_str()));
    // The close, its note and its e-mail were written together.
    let kinds = event_kinds(&app, ticket).await;
    assert!(kinds.contains(&"closed".to_owned()) && kinds.contains(&"auto_closed".to_owned()), "{kinds:?}");
    assert_eq!(app.emails("ticket_closed", ticket).await.len(), 1);
    app.wait_for_sent("ticket_closed", ticket, 1).await;
    let note =
        sqlx::query_scalar!("SELECT data FROM ticket_events WHERE ticket_id = $1 AND kind = 'auto_closed'", ticket)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(note["reminder_sent_at"].as_str().map(at), Some(t0 + TimeDelta::hours(72)));
    assert_eq!(next_timer(&app, ticket).await, None, "a closed ticket has no timers");
    let_the_worker_run().await;
    assert_eq!(app.emails("ticket_reminder", ticket).await.len(), 1);
    assert_eq!(app.emails("ticket_closed", ticket).await.len(), 1, "closed once");
    // Reports tell an auto-close from a resolution.
    let auto_closed: i64 =
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM tickets WHERE close_reason = 'auto_closed'"#)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(auto_closed, 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_reply_at_100h_cancels_the_auto_close() {
    let Scene { app, store, desk, ticket, t0 } = waiting_ticket(spawn_app().await).await;

    app.clock.set(t0 + TimeDelta::hours(72));
    app.wait_for_sent("ticket_reminder", ticket, 1).await;

    app.clock.set(t0 + TimeDelta::hours(100));
    let reply = NewMessage { body: "Voltou a cair hoje cedo.".into(), internal: false, then_status: None };
    let (_, after) = in_tx(&app.pool, async |c| {
        tickets::post_message(c, &store, &desk.customer, ticket, reply, app.clock.now()).await
    })
    .await
    .unwrap();
    assert_eq!(after.status, Status::Open);
    assert_eq!(after.reminder_sent_at, None, "the wait, and its reminder, are over");

    app.clock.set(t0 + TimeDelta::hours(120) + TimeDelta::minutes(1));
    // The auto-close job scheduled after the reminder still runs: it must do nothing.
    assert!(matches!(run_now(&app, &store, ticket).await, TimerOutcome::NothingDue { .. }));
    let_the_worker_run().await;
    assert_eq!(status(&app, ticket).await, ("open".to_owned(), None));
    assert!(app.emails("ticket_closed", ticket).await.is_empty());
    assert_eq!(app.emails("ticket_reminder", ticket).await.len(), 1);

    // Waiting again is a new wait: a new reminder 72 h later, then a new auto-close.
    wait_customer(&app, &store, &desk, ticket).await;
    let second_wait = app.clock.now();
    assert_eq!(next_timer(&app, ticket).await, Some(second_wait + TimeDelta::hours(72)));
    app.clock.set(second_wait + TimeDelta::hours(72));
    app.wait_for_sent("ticket_reminder", ticket, 2).await;
    assert_eq!(app.emails("ticket_reminder", ticket).await.len(), 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_changing_the_status_cancels_the_reminder() {
    let Scene { app, store, desk, ticket, t0 } = waiting_ticket(spawn_app().await).await;
    app.clock.set(t0 + TimeDelta::hours(10));
    let back = TicketUpdate { status: Some(Status::Open), ..TicketUpdate::default() };
    in_tx(&app.pool, async |c| tickets::update(c, &store, &desk.agents[0], ticket, back, app.clock.now()).await)
        .await
        .unwrap();
    app.clock.set(t0 + TimeDelta::hours(200));
    let_the_worker_run().await;
    assert!(app.emails("ticket_reminder", ticket).await.is_empty());
    assert_eq!(status(&app, ticket).await.0, "open");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_risk_and_breach_alerts_fire_once_each_to_the_assignee() {
    let app = spawn_app_from("2026-12-01T13:00:00Z").await;
    let store = SlaStore::default();
    let desk = app.desk("premium", 2).await;
    // Tuesday 2026-12-01 10:00 São Paulo: premium critical, first response in 1 business hour.
    let ticket = open(&app, &store, &desk, Severity::Critical, false).await;
    assert_eq!(next_timer(&app, ticket).await, Some(at("2026-12-01T13:48:00Z")), "at risk at 80 %: 10:48");
    let assign = TicketUpdate { assignee_id: Some(Some(desk.agents[1].user_id)), ..TicketUpdate::default() };
    in_tx(&app.pool, async |c| tickets::update(c, &store, &desk.agents[0], ticket, assign, app.clock.now()).await)
        .await
        .unwrap();

    app.clock.set(at("2026-12-01T13:50:00Z"));
    let alerts = app.wait_for_sent("sla_at_risk", ticket, 1).await;
    assert_eq!(alerts.len(), 1, "to the assignee only: {alerts:?}");
    assert!(alerts[0].to_address.starts_with("agent1-"));
    assert!(
        matches!(run_now(&app, &store, ticket).await, TimerOutcome::NothingDue { .. }),
        "a duplicate job is a no-op"
    );
    assert_eq!(next_timer(&app, ticket).await, Some(at("2026-12-01T14:00:00Z")), "the breach is next");
    // A change saved past the threshold re-projects the at-risk instant onto the save's "now";
    // the alert stands for the target, so it does not fire again.
    app.clock.set(at("2026-12-01T13:55:00Z"));
    let note = NewMessage { body: "Olhando os logs.".into(), internal: true, then_status: None };
    let (_, saved) = in_tx(&app.pool, async |c| {
        tickets::post_message(c, &store, &desk.agents[1], ticket, note, app.clock.now()).await
    })
    .await
    .unwrap();
    assert_eq!(saved.first_response_at_risk_at, Some(at("2026-12-01T13:55:00Z")));
    assert!(!swept(&app, ticket).await);
    let_the_worker_run().await;
    let alerts = app.emails("sla_at_risk", ticket).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(app.received(alerts[0].message_id.as_deref().unwrap()), 1);

    // Breached at 11:00.
    app.clock.set(at("2026-12-01T14:01:00Z"));
    let breaches = app.wait_for_sent("sla_breached", ticket, 1).await;
    assert!(breaches[0].to_address.starts_with("agent1-"));
    assert!(matches!(run_now(&app, &store, ticket).await, TimerOutcome::NothingDue { .. }));
    let_the_worker_run().await;
    let breaches = app.emails("sla_breached", ticket).await;
    assert_eq!(breaches.len(), 1, "one breach alert");
    assert_eq!(app.received(breaches[0].message_id.as_deref().unwrap()), 1);
    assert_eq!(app.emails("sla_at_risk", ticket).await.len(), 1, "still one at-risk alert");
    let timeline: Vec<String> = sqlx::query_scalar!(
        "SELECT data->>'alert' AS \"alert!\" FROM ticket_events WHERE ticket_id = $1 AND kind = 'sla_alert' ORDER BY occurred_at",
        ticket
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(timeline, ["first_response_at_risk", "first_response_breached"]);

    // A new target (severity lowered to normal: 4 business hours, 1 h 1 min already consumed) is
    // a new target revision: its own at-risk alert at 80 % (13:12 local) and breach (14:00).
    let lower = TicketUpdate { severity: Some(Severity::Normal), ..TicketUpdate::default() };
    in_tx(&app.pool, async |c| tickets::update(c, &store, &desk.agents[1], ticket, lower, app.clock.now()).await)
        .await
        .unwrap();
    assert_eq!(next_timer(&app, ticket).await, Some(at("2026-12-01T16:12:00Z")));
    app.clock.set(at("2026-12-01T16:12:00Z"));
    app.wait_for_sent("sla_at_risk", ticket, 2).await;
    app.clock.set(at("2026-12-01T17:00:00Z"));
    app.wait_for_sent("sla_breached", ticket, 2).await;
    let_the_worker_run().await;
    assert_eq!(app.emails("sla_at_risk", ticket).await.len(), 2);
    assert_eq!(app.emails("sla_breached", ticket).await.len(), 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_on_friday_night_is_delivered_on_monday_at_nine() {
    let app = spawn_app_from("2026-12-04T19:00:00Z").await;
    let store = SlaStore::default();
    let desk = app.desk("premium", 1).await;
    // Friday 2026-12-04 16:00 São Paulo: first response due 17:00.
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
    let app = spawn_app_from("2026-12-04T22:00:00Z").await;
    let store = SlaStore::default();
    let desk = app.desk("premium", 2).await;
    // Friday 2026-12-04 19:00 São Paulo: an emergency counts calendar time, first response in 1 h.
    let ticket = open(&app, &store, &desk, Severity::Critical, true).await;
    let assign = TicketUpdate { assignee_id: Some(Some(desk.agents[0].user_id)), ..TicketUpdate::default() };
    in_tx(&app.pool, async |c| tickets::update(c, &store, &desk.agents[0], ticket, assign, app.clock.now()).await)
        .await
        .unwrap();

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
    let app = spawn_app_at(at("2026-12-01T13:00:00Z"), 1, |s| {
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
    let ticket = open(&app, &store, &desk, Severity::Low, false).await;

    // 50 minutes later the severity goes up to critical (1 h): already past 80 %.
    app.clock.set(at("2026-12-01T13:50:00Z"));
    let raise = TicketUpdate { severity: Some(Severity::Critical), ..TicketUpdate::default() };
    in_tx(&app.pool, async |c| tickets::update(c, &store, &desk.agents[0], ticket, raise, app.clock.now()).await)
        .await
        .unwrap();
    let alerts = app.wait_for_sent("sla_at_risk", ticket, 1).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(app.total(|m| crate::helpers::load(&m.reconciler_timers_acted)), 0, "not the reconciler");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policys_waiting_delays_move_the_timers_of_waiting_tickets() {
    let Scene { app, store, desk, ticket, t0 } = waiting_ticket(spawn_app().await).await;
    assert_eq!(next_timer(&app, ticket).await, Some(t0 + TimeDelta::hours(72)));

    let admin = helpdesk_core::accounts::Caller { role: Role::Admin, ..desk.agents[0] };
    sqlx::query!("UPDATE users SET role = 'admin' WHERE id = $1", admin.user_id).execute(&app.pool).await.unwrap();
    let edit = PolicyEdit { reminder_after_hours: Some(24), auto_close_after_hours: Some(12), ..PolicyEdit::default() };
    let policy =
        in_tx(&app.pool, async |c| calendar_admin::set_policy(c, &store, &admin, edit, t0).await).await.unwrap();
    let reprojected = calendar_admin::reproject_in_request(&app.pool, &store, t0).await.unwrap();
    assert_eq!((policy.waiting.reminder_after_hours, policy.waiting.auto_close_after_hours), (24, 12));
    assert_eq!(reprojected, 1);
    assert_eq!(next_timer(&app, ticket).await, Some(t0 + TimeDelta::hours(24)), "re-projected onto the new policy");

    app.clock.set(t0 + TimeDelta::hours(24));
    let reminders = app.wait_for_sent("ticket_reminder", ticket, 1).await;
    assert_eq!(reminders.len(), 1);
    app.clock.set(t0 + TimeDelta::hours(36));
    assert_eq!(wait_for_status(&app, ticket, "closed").await.1.as_deref(), Some("auto_closed"));

    let bad = PolicyEdit { reminder_after_hours: Some(0), auto_close_after_hours: Some(5000), ..PolicyEdit::default() };
    let error =
        in_tx(&app.pool, async |c| calendar_admin::set_policy(c, &store, &admin, bad, t0).await).await.unwrap_err();
    let text = format!("{error:?}");
    assert!(text.contains("reminder_after_hours") && text.contains("auto_close_after_hours"), "{text}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_stored_instant_is_corrected_without_acting() {
    let Scene { app, ticket, t0, .. } = waiting_ticket(spawn_app().await).await;
    // As after an upgrade, or a policy change another process has not applied yet: the stored
    // instant says "now", though nothing is due for 72 h.
    sqlx::query!("UPDATE tickets SET next_timer_at = $2 WHERE id = $1", ticket, t0).execute(&app.pool).await.unwrap();
    let version =
        sqlx::query_scalar!("SELECT version FROM tickets WHERE id = $1", ticket).fetch_one(&app.pool).await.unwrap();
    for _ in 0..600 {
        if next_timer(&app, ticket).await != Some(t0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(next_timer(&app, ticket).await, Some(t0 + TimeDelta::hours(72)), "the worker stored the true instant");
    let after =
        sqlx::query_scalar!("SELECT version FROM tickets WHERE id = $1", ticket).fetch_one(&app.pool).await.unwrap();
    assert_eq!(after, version, "nothing acted, so the ticket did not change");
    assert!(app.emails("ticket_reminder", ticket).await.is_empty());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_worker_still_gives_the_customer_the_full_delay_after_the_reminder() {
    // Only the start-up sweep runs; the test plays the late worker itself.
    let app = spawn_app_with_settings(1, |s| s.reconcile_interval = Duration::from_secs(3600)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let Scene { app, store, ticket, t0, .. } = waiting_ticket(app).await;
    // Nobody looked for five days: the reminder goes out now, and not the close with it.
    app.clock.set(t0 + TimeDelta::days(5));
    let outcome = run_now(&app, &store, ticket).await;
    assert_eq!(
        outcome,
        TimerOutcome::Acted { kinds: vec![TimerKind::CustomerReminder], next_at: Some(t0 + TimeDelta::days(7)) }
    );
    assert_eq!(status(&app, ticket).await.0, "waiting_customer");
    app.finish().await;
}
