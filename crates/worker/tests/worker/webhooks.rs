//! Webhooks end to end (issue 13): events written by the real operations in their transactions,
//! delivered by the real worker to a receiver on 127.0.0.1, signatures checked by Python's hmac.

use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_core::accounts::Caller;
use helpdesk_core::meetings::{self, Booking, MeetingSettings, NewMeeting, Reschedule};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::tickets::{self, NewMessage, NewTicket, TicketUpdate};
use helpdesk_core::webhook_events;
use helpdesk_core::webhooks::{NewSubscription, deliveries, subscriptions};
use helpdesk_domain::accounts::Role;
use helpdesk_domain::egress::EgressPolicy;
use helpdesk_domain::meetings::MeetingRules;
use helpdesk_domain::plans::Category;
use helpdesk_domain::sla::Severity;
use helpdesk_domain::tickets::{CloseReason, Status};
use helpdesk_domain::webhooks::events::{IncidentEvent, MaintenanceScheduled};
use helpdesk_domain::webhooks::{DisableRule, RetryPolicy};
use helpdesk_worker::settings::WorkerSettings;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::{TestApp, in_tx, spawn_app_at};
use crate::webhook_receiver::{Receiver, verified_by_python};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Fast retries and sweeps, so an outage of a second or two is a handful of attempts.
fn fast_webhooks(settings: &mut WorkerSettings) {
    settings.webhooks.retry = RetryPolicy {
        base: TimeDelta::milliseconds(50),
        cap: TimeDelta::milliseconds(300),
        give_up_after: TimeDelta::hours(24),
    };
    settings.webhooks.sweep_interval = Duration::from_millis(200);
    settings.webhooks.lease = TimeDelta::seconds(2);
    settings.webhooks.timeout = Duration::from_secs(2);
}

/// Moves the test's manual clock with real time (retries, leases), until the test ends.
fn tick_clock(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let clock = app.clock.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            clock.advance(TimeDelta::milliseconds(20));
        }
    })
}

async fn admin(app: &TestApp) -> Caller {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO users (id, email, name, password_hash, role, locale) VALUES ($1, $2, 'Ada Admin', 'x', 'admin', 'en')",
        id,
        format!("admin-{id}@kadix.test")
    )
    .execute(&app.pool)
    .await
    .unwrap();
    Caller { user_id: id, role: Role::Admin, organization_id: None }
}

/// A subscription to `url` (checked by the allow-listing policy of the tests) and its secret.
async fn subscribe(app: &TestApp, admin: &Caller, url: &str, organization_id: Option<Uuid>) -> (Uuid, String) {
    let url = subscriptions::check_url(&app.config.egress, url).await.unwrap();
    let input = NewSubscription { url, description: "test".into(), event_types: vec![], organization_id };
    let (subscription, secret) =
        in_tx(&app.pool, async |c| subscriptions::create(c, admin, input, app.clock.now()).await).await.unwrap();
    (subscription.id, secret)
}

pub(crate) fn incident(organization_id: Uuid, n: u128) -> IncidentEvent {
    IncidentEvent {
        incident_id: Uuid::from_u128(n),
        monitor_id: Uuid::from_u128(1000 + n),
        organization_id,
        url: "https://shop.example".into(),
        started_at: at("2026-12-01T13:00:00Z"),
        resolved_at: None,
        in_maintenance: false,
        ticket_id: None,
        reason: Some("connection refused".into()),
    }
}

/// The event ids of the subscription's deliveries, by sequence (the order they must arrive in).
pub(crate) async fn delivery_order(pool: &sqlx::PgPool, subscription: Uuid) -> Vec<String> {
    sqlx::query_scalar!(
        "SELECT event_id FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY sequence",
        subscription
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|id| id.to_string())
    .collect()
}

/// Arrival order with duplicates folded (a duplicate is a resend of one already accepted).
pub(crate) fn first_arrivals(received: &[crate::webhook_receiver::Received]) -> Vec<String> {
    let mut seen = HashSet::new();
    received.iter().filter(|r| seen.insert(r.id.clone())).map(|r| r.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_is_delivered_in_order_and_its_signature_verifies_independently() {
    // Tuesday 2026-12-01, 10:00 in São Paulo: business hours.
    let app = spawn_app_at(at("2026-12-01T13:00:00Z"), 1, fast_webhooks).await;
    let _clock = tick_clock(&app);
    let receiver = Receiver::start().await;
    let admin = admin(&app).await;
    let desk = app.desk("premium", 1).await;
    let org = desk.customer.organization_id.unwrap();
    let agent = desk.agents[0];
    let (subscription, secret) = subscribe(&app, &admin, &receiver.url(), None).await;
    let store = SlaStore::default();

    // Tickets: created, updated, message added (a public reply; the internal note causes
    // nothing), status changed, closed, reopened.
    let input = NewTicket {
        subject: "Site down".into(),
        description: "The shop is down".into(),
        category: Category::Technical,
        severity: Severity::Critical,
        emergency: false,
        references_ticket_id: None,
        on_behalf_of: None,
    };
    let ticket = in_tx(&app.pool, async |c| tickets::open(c, &store, &desk.customer, input, app.clock.now()).await)
        .await
        .unwrap();
    let update = TicketUpdate { severity: Some(Severity::High), assignee_id: Some(Some(agent.user_id)), status: None };
    in_tx(&app.pool, async |c| tickets::update(c, &store, &agent, ticket.id, update, app.clock.now()).await)
        .await
        .unwrap();
    let note = NewMessage { body: "internal only".into(), internal: true, then_status: None };
    in_tx(&app.pool, async |c| tickets::post_message(c, &store, &agent, ticket.id, note, app.clock.now()).await)
        .await
        .unwrap();
    let reply =
        NewMessage {
            body: "Olá! Pode confirmar?".into(), internal: false, then_status: Some(Status::WaitingCustomer)
        };
    in_tx(&app.pool, async |c| tickets::post_message(c, &store, &agent, ticket.id, reply, app.clock.now()).await)
        .await
        .unwrap();
    in_tx(&app.pool, async |c| {
        tickets::close(c, &store, &agent, ticket.id, CloseReason::Resolved, app.clock.now()).await
    })
    .await
    .unwrap();
    in_tx(&app.pool, async |c| tickets::reopen(c, &store, &desk.customer, ticket.id, app.clock.now()).await)
        .await
        .unwrap();

    // Meetings: booked, rescheduled, cancelled.
    sqlx::query!("INSERT INTO consultants (user_id) VALUES ($1)", agent.user_id).execute(&app.pool).await.unwrap();
    let settings = MeetingSettings {
        rules: MeetingRules::default(),
        url_template: "https://meet.example/kadix-{room}",
        organizer: "Kadix Atendimento <atendimento@kadix.test>",
    };
    let booking = NewMeeting {
        starts_at: at("2026-12-03T13:00:00Z"),
        duration_minutes: 45,
        consultant_id: None,
        organization_id: None,
        ticket_id: None,
        topic: "CDN review".into(),
        idempotency_key: None,
    };
    let meeting = in_tx(&app.pool, async |c| {
        let calendar = store.snapshot(&mut *c).await.unwrap().calendar;
        meetings::book(c, &calendar, &settings, &desk.customer, booking, app.clock.now()).await
    })
    .await
    .unwrap();
    let Booking::Created(meeting) = meeting else { panic!("a new meeting") };
    let moved = Reschedule { starts_at: at("2026-12-03T15:00:00Z"), duration_minutes: None };
    in_tx(&app.pool, async |c| {
        let calendar = store.snapshot(&mut *c).await.unwrap().calendar;
        meetings::reschedule(c, &calendar, &settings, &desk.customer, meeting.id, moved, app.clock.now()).await
    })
    .await
    .unwrap();
    in_tx(&app.pool, async |c| {
        let calendar = store.snapshot(&mut *c).await.unwrap().calendar;
        meetings::cancel(c, &calendar, &settings, &desk.customer, meeting.id, None, app.clock.now()).await
    })
    .await
    .unwrap();

    // Monitoring's events, through the functions the monitoring feature will call.
    in_tx(&app.pool, async |c| {
        let now = app.clock.now();
        webhook_events::incident_down(c, incident(org, 1), now).await.unwrap();
        webhook_events::incident_escalated(c, incident(org, 1), now).await.unwrap();
        webhook_events::incident_recovered(c, IncidentEvent { resolved_at: Some(now), ..incident(org, 1) }, now)
            .await
            .unwrap();
        let window = MaintenanceScheduled {
            window_id: Uuid::now_v7(),
            organization_id: None,
            monitor_id: None,
            starts_at: at("2026-12-05T03:00:00Z"),
            ends_at: at("2026-12-05T05:00:00Z"),
            recurrence: None,
            description: "Database upgrade".into(),
        };
        webhook_events::maintenance_scheduled(c, window, now).await.unwrap();
    })
    .await;
    in_tx(&app.pool, async |c| subscriptions::ping(c, &admin, subscription, app.clock.now()).await).await.unwrap();

    // SLA: a second ticket (critical on Premium: first response in 1 business hour, at risk at
    // 80 %); the worker's timers fire as the clock passes each instant.
    let urgent = NewTicket {
        subject: "Checkout broken".into(),
        description: "500 on checkout".into(),
        category: Category::Technical,
        severity: Severity::Critical,
        emergency: false,
        references_ticket_id: None,
        on_behalf_of: None,
    };
    in_tx(&app.pool, async |c| tickets::open(c, &store, &desk.customer, urgent, app.clock.now()).await).await.unwrap();
    app.advance_clock(TimeDelta::minutes(50));
    receiver.wait_for(30, "sla.at_risk", |r| r.iter().any(|r| r.json()["type"] == "sla.at_risk")).await;
    app.advance_clock(TimeDelta::minutes(15));
    let wanted = [
        "ticket.created",
        "ticket.updated",
        "ticket.status_changed",
        "ticket.message_added",
        "ticket.closed",
        "ticket.reopened",
        "sla.at_risk",
        "sla.breached",
        "incident.down",
        "incident.escalated",
        "incident.recovered",
        "maintenance.scheduled",
        "meeting.booked",
        "meeting.rescheduled",
        "meeting.cancelled",
        "ping",
    ];
    let received = receiver
        .wait_for(30, "every event type", |r| wanted.iter().all(|w| r.iter().any(|r| r.json()["type"] == *w)))
        .await;

    // Signed: every request verifies with Python's hmac, and a wrong secret verifies none.
    assert_eq!(verified_by_python(&secret, &received), received.len());
    let other = subscriptions::generate_secret();
    assert_eq!(verified_by_python(&other, &received), 0);
    for r in &received {
        let body = r.json();
        assert_eq!(body["id"].as_str().unwrap(), r.id, "the body's id is the webhook-id");
    }
    // Only the public reply was sent, with its body. Delivery is at least once, so a resend of the
    // same webhook-id under load is the same event, counted once.
    let mut seen = HashSet::new();
    let messages: Vec<_> =
        received.iter().filter(|r| r.json()["type"] == "ticket.message_added" && seen.insert(r.id.clone())).collect();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].json()["data"]["body"], "Olá! Pode confirmar?");
    // In order: arrivals follow the deliveries' sequence.
    let order = delivery_order(&app.pool, subscription).await;
    assert_eq!(first_arrivals(&received), order[..first_arrivals(&received).len()].to_vec());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_everything_in_order_without_gaps_once_up() {
    let app = spawn_app_at(Utc::now(), 1, fast_webhooks).await;
    let _clock = tick_clock(&app);
    let receiver = Receiver::start().await;
    receiver.answer_with(503);
    let admin = admin(&app).await;
    let desk = app.desk("pro", 0).await;
    let org = desk.customer.organization_id.unwrap();
    let (subscription, _) = subscribe(&app, &admin, &receiver.url(), None).await;
    for n in 0..40 {
        in_tx(&app.pool, async |c| webhook_events::incident_down(c, incident(org, n), app.clock.now()).await)
            .await
            .unwrap();
    }
    // Down: attempts are made and refused, and nothing behind the head is tried.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let refused = receiver.all();
    assert!(refused.len() >= 2, "the head was retried: {}", refused.len());
    assert!(refused.iter().all(|r| r.id == refused[0].id), "only the head is tried while it fails");
    receiver.answer_with(200);
    let received = receiver.wait_for(30, "40 deliveries", |r| first_arrivals(r).len() >= 40).await;
    assert_eq!(first_arrivals(&received), delivery_order(&app.pool, subscription).await, "in order, none missing");
    let attempts = sqlx::query_scalar!(
        "SELECT count(*) AS \"count!\" FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
         WHERE d.subscription_id = $1 AND NOT a.succeeded AND a.response_status = 503",
        subscription
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(attempts >= 2, "the failed attempts are recorded with the status");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_delivery_loses_nothing_and_resends_with_the_same_webhook_id() {
    let mut app = spawn_app_at(Utc::now(), 1, fast_webhooks).await;
    let _clock = tick_clock(&app);
    let receiver = Receiver::start().await;
    let admin = admin(&app).await;
    let desk = app.desk("pro", 0).await;
    let org = desk.customer.organization_id.unwrap();
    let (subscription, _) = subscribe(&app, &admin, &receiver.url(), None).await;
    for n in 0..5 {
        in_tx(&app.pool, async |c| webhook_events::incident_down(c, incident(org, n), app.clock.now()).await)
            .await
            .unwrap();
    }
    receiver.wait_for(30, "5 deliveries", |r| r.len() >= 5).await;
    // The next delivery reaches the receiver, which holds it; the worker dies meanwhile.
    receiver.hang(true);
    for n in 5..20 {
        in_tx(&app.pool, async |c| webhook_events::incident_down(c, incident(org, n), app.clock.now()).await)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.kill_and_restart_workers(fast_webhooks).await;
    receiver.hang(false);
    let received = receiver.wait_for(40, "20 deliveries", |r| first_arrivals(r).len() >= 20).await;
    let order = delivery_order(&app.pool, subscription).await;
    assert_eq!(first_arrivals(&received), order, "nothing lost, in order");
    let ids: HashSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 20, "any duplicate carries an id already seen");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_events_are_never_delivered_and_scoped_subscriptions_see_only_their_organisation() {
    let app = spawn_app_at(Utc::now(), 1, fast_webhooks).await;
    let receiver = Receiver::start().await;
    let admin = admin(&app).await;
    let ours = app.desk("pro", 0).await.customer.organization_id.unwrap();
    let theirs = app.desk("pro", 0).await.customer.organization_id.unwrap();
    subscribe(&app, &admin, &receiver.url(), Some(ours)).await;

    in_tx(&app.pool, async |c| webhook_events::incident_down(c, incident(ours, 1), app.clock.now()).await)
        .await
        .unwrap();
    in_tx(&app.pool, async |c| webhook_events::incident_down(c, incident(theirs, 2), app.clock.now()).await)
        .await
        .unwrap();
    let mut tx = app.pool.begin().await.unwrap();
    webhook_events::incident_down(&mut tx, incident(ours, 3), app.clock.now()).await.unwrap();
    tx.rollback().await.unwrap();
    in_tx(&app.pool, async |c| webhook_events::incident_down(c, incident(ours, 4), app.clock.now()).await)
        .await
        .unwrap();

    receiver
        .wait_for(30, "the last committed event", |r| {
            r.iter().any(|r| r.json()["data"]["incident_id"] == Uuid::from_u128(4).to_string())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let incidents: Vec<String> =
        receiver.all().iter().map(|r| r.json()["data"]["incident_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(incidents, vec![Uuid::from_u128(1).to_string(), Uuid::from_u128(4).to_string()]);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_at_creation_and_delivery_unless_allow_listed() {
    let strict = EgressPolicy::strict();
    for url in ["http://127.0.0.1:8080/", "https://10.1.2.3/", "https://169.254.169.254/latest", "http://localhost/"] {
        let refused = subscriptions::check_url(&strict, url).await;
        assert!(matches!(refused, Err(helpdesk_core::CoreError::Validation(ref e)) if e[0].field == "url"), "{url}");
    }
    let allowing = EgressPolicy::parse("127.0.0.1/32").unwrap();
    assert!(subscriptions::check_url(&allowing, "http://127.0.0.1:8080/").await.is_ok());
    // Plain http to a public address is refused even though the address is fine.
    assert!(subscriptions::check_url(&allowing, "http://93.184.216.34/").await.is_err());

    // A subscription whose address is not allow-listed (written straight to the table, as if
    // the list had changed since) is refused by the worker's client on delivery.
    let app = spawn_app_at(Utc::now(), 1, fast_webhooks).await;
    let receiver = Receiver::start().await;
    let admin = admin(&app).await;
    let org = app.desk("pro", 0).await.customer.organization_id.unwrap();
    let (subscription, _) = subscribe(&app, &admin, &receiver.url(), None).await;
    sqlx::query!(
        "UPDATE webhook_subscriptions SET url = $2 WHERE id = $1",
        subscription,
        format!("http://127.0.0.2:{}/hooks", receiver.port)
    )
    .execute(&app.pool)
    .await
    .unwrap();
    in_tx(&app.pool, async |c| webhook_events::incident_down(c, incident(org, 1), app.clock.now()).await)
        .await
        .unwrap();
    let mut errors = Vec::new();
    for _ in 0..200 {
        errors = sqlx::query_scalar!(
            "SELECT a.error FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.subscription_id = $1",
            subscription
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        if !errors.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(errors.iter().flatten().any(|e| e.contains("egress guard")), "{errors:?}");
    assert!(receiver.all().is_empty(), "nothing reached the listener");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_subscription_is_disabled_with_an_email_to_admins_and_replay_sends_again() {
    let app = spawn_app_at(Utc::now(), 1, |s| {
        fast_webhooks(s);
        s.outbox_notifications = true;
        s.webhooks.disable = DisableRule { min_failures: 3, min_duration: TimeDelta::zero() };
    })
    .await;
    let _clock = tick_clock(&app);
    let receiver = Receiver::start().await;
    receiver.answer_with(500);
    let admin = admin(&app).await;
    let org = app.desk("pro", 0).await.customer.organization_id.unwrap();
    let (subscription, _) = subscribe(&app, &admin, &receiver.url(), None).await;
    let since = app.clock.now();
    in_tx(&app.pool, async |c| webhook_events::incident_down(c, incident(org, 1), app.clock.now()).await)
        .await
        .unwrap();

    let mut disabled = None;
    for _ in 0..200 {
        let s = in_tx(&app.pool, async |c| subscriptions::get(c, &admin, subscription).await).await.unwrap();
        if !s.enabled {
            disabled = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let disabled = disabled.expect("disabled after 3 failures");
    assert!(disabled.disabled_reason.unwrap().contains("3 failed deliveries"));
    assert_eq!(receiver.all().len(), 3);
    // The admins hear of it.
    let email = admin_email(&app, &admin).await;
    let mut told = false;
    for _ in 0..200 {
        told = app.smtp.messages().iter().any(|m| m.contains("Webhook disabled") && m.contains(&email));
        if told {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(told, "the admin got the e-mail");

    // Fixed and enabled: the waiting delivery goes out; then a replay of everything since
    // sends the event again with the same webhook-id, and so does a replay of one delivery.
    receiver.answer_with(200);
    in_tx(&app.pool, async |c| subscriptions::set_enabled(c, &admin, subscription, true, app.clock.now()).await)
        .await
        .unwrap();
    let first = receiver.wait_for(30, "the waiting delivery", |r| !r.is_empty()).await;
    let queued =
        in_tx(&app.pool, async |c| deliveries::replay_since(c, &admin, subscription, since, app.clock.now()).await)
            .await
            .unwrap();
    assert_eq!(queued, 1);
    let again = receiver.wait_for(30, "the replay", |r| r.len() >= 2).await;
    assert_eq!(again[1].id, first[0].id, "a replay keeps the webhook-id");
    let (list, _) =
        in_tx(&app.pool, async |c| deliveries::list(c, &admin, subscription, None, 10).await).await.unwrap();
    let original = list.iter().find(|d| d.replay_of.is_none()).unwrap();
    assert_eq!(original.attempt_log.len(), 4, "3 failures then a success");
    assert_eq!(original.attempt_log[0].response_status, Some(500));
    assert_eq!(original.attempt_log[0].response_body.as_deref(), Some("status 500"));
    let replayed =
        in_tx(&app.pool, async |c| deliveries::replay(c, &admin, subscription, original.id, app.clock.now()).await)
            .await
            .unwrap();
    let third = receiver.wait_for(30, "the single replay", |r| r.len() >= 3).await;
    assert_eq!(third[2].id, first[0].id);
    assert_ne!(replayed, original.id);
    app.finish().await;
}

async fn admin_email(app: &TestApp, admin: &Caller) -> String {
    sqlx::query_scalar!("SELECT email FROM users WHERE id = $1", admin.user_id).fetch_one(&app.pool).await.unwrap()
}

/// Benchmark, not a test (`scripts/bench-webhooks`): `BENCH_WEBHOOKS` events (default 20,000)
/// for `BENCH_SUBSCRIPTIONS` subscriptions (default 10) to the local receiver, one worker with
/// production settings, written as fast as possible or at `BENCH_RATE` events a second. Prints
/// deliveries/s and the delay from commit to arrival, p50 and p99.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_webhooks() {
    let events: usize = std::env::var("BENCH_WEBHOOKS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let subs: usize = std::env::var("BENCH_SUBSCRIPTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let app = spawn_app_at(Utc::now(), 1, |s| {
        s.poll_interval = Duration::from_secs(1);
        s.webhooks = helpdesk_worker::jobs::webhook::WebhookSettings::default();
    })
    .await;
    let _clock = tick_clock(&app);
    let receiver = Receiver::start().await;
    let admin = admin(&app).await;
    let org = app.desk("pro", 0).await.customer.organization_id.unwrap();
    for _ in 0..subs {
        subscribe(&app, &admin, &receiver.url(), None).await;
    }
    // `BENCH_RATE` events a second (0, the default: as fast as they can be written), to measure
    // the delay at a steady load rather than behind a backlog.
    let rate: f64 = std::env::var("BENCH_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let started = std::time::Instant::now();
    let mut committed = std::collections::HashMap::new();
    // Batches of 50 events per transaction, as a busy desk would commit them.
    for batch in 0..events.div_ceil(50) {
        if rate > 0.0 {
            let due = started + Duration::from_secs_f64((batch * 50) as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let mut tx = app.pool.begin().await.unwrap();
        let mut ids = Vec::new();
        for n in 0..50.min(events - batch * 50) {
            let id = webhook_events::incident_down(&mut tx, incident(org, (batch * 50 + n) as u128), app.clock.now())
                .await
                .unwrap();
            ids.push(id.to_string());
        }
        tx.commit().await.unwrap();
        let at = std::time::Instant::now();
        committed.extend(ids.into_iter().map(|id| (id, at)));
    }
    let written = started.elapsed();
    let total = events * subs;
    let mut arrivals = Vec::new();
    for _ in 0..12_000 {
        if receiver.accepted().len() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let received = receiver.accepted();
    for r in &received {
        if let Some(at) = committed.get(&r.id) {
            arrivals.push(r.arrived.saturating_duration_since(*at));
        }
    }
    arrivals.sort();
    let pct = |p: f64| arrivals.get(((arrivals.len() as f64) * p) as usize).copied().unwrap_or_default();
    println!(
        "webhooks: {} of {total} delivered in {:.1} s ({:.0}/s); events written in {:.1} s; commit→arrival p50 {:?} p99 {:?}",
        received.len(),
        elapsed.as_secs_f64(),
        received.len() as f64 / elapsed.as_secs_f64(),
        written.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
    app.finish().await;
}

/// Ticket transactions take the receivers from the process's copy when the token they read with
/// the SLA versions is the one it has: a subscription created, re-filtered, disabled or deleted
/// between two tickets changes the token, so the second ticket's events follow the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ticket_sees_the_subscriptions_as_they_are_when_it_opens() {
    let app = spawn_app_at(at("2026-12-01T13:00:00Z"), 1, fast_webhooks).await;
    let admin = admin(&app).await;
    let desk = app.desk("premium", 0).await;
    let store = SlaStore::default();
    let open = async |subject: &str| {
        let input = NewTicket {
            subject: subject.into(),
            description: "d".into(),
            category: Category::Technical,
            severity: Severity::Normal,
            emergency: false,
            references_ticket_id: None,
            on_behalf_of: None,
        };
        in_tx(&app.pool, async |c| tickets::open(c, &store, &desk.customer, input, app.clock.now()).await)
            .await
            .unwrap()
    };
    let created_events = async |subscription: Uuid| {
        sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
               WHERE d.subscription_id = $1 AND e.type = 'ticket.created'"#,
            subscription
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    // Nobody subscribed: the process copies the empty set.
    open("before any subscription").await;
    assert_eq!(
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM webhook_events"#).fetch_one(&app.pool).await.unwrap(),
        0
    );

    let (first, _) = subscribe(&app, &admin, "http://127.0.0.1:9999/hook", None).await;
    open("after subscribing").await;
    open("again, from the copy").await;
    assert_eq!(created_events(first).await, 2);

    // Re-filtered to meetings only: the next ticket is not sent to it.
    let only_meetings =
        subscriptions::SubscriptionUpdate { event_types: Some(vec!["meeting.booked".into()]), ..Default::default() };
    in_tx(&app.pool, async |c| subscriptions::update(c, &admin, first, only_meetings, app.clock.now()).await)
        .await
        .unwrap();
    open("after re-filtering").await;
    assert_eq!(created_events(first).await, 2);

    // A second subscription, then disabled; then deleted.
    let (second, _) = subscribe(&app, &admin, "http://127.0.0.1:9999/other", None).await;
    open("two subscriptions").await;
    assert_eq!(created_events(second).await, 1);
    in_tx(&app.pool, async |c| subscriptions::set_enabled(c, &admin, second, false, app.clock.now()).await)
        .await
        .unwrap();
    open("second disabled").await;
    assert_eq!(created_events(second).await, 1);
    in_tx(&app.pool, async |c| subscriptions::set_enabled(c, &admin, second, true, app.clock.now()).await)
        .await
        .unwrap();
    open("second enabled again").await;
    assert_eq!(created_events(second).await, 2);
    in_tx(&app.pool, async |c| subscriptions::delete(c, &admin, second).await).await.unwrap();
    let last = open("second deleted").await;
    let delivered = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM webhook_events WHERE type = 'ticket.created' AND payload -> 'ticket' ->> 'id' = $1"#,
        last.id.to_string()
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(delivered, 0, "nobody receives it any more, so the event is not stored");
    assert_eq!(created_events(first).await, 2);
    app.finish().await;
}
