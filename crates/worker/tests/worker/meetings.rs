//! Meetings end to end in the worker (R13): the invite goes out attached as `text/calendar`, and
//! the reminders a day and an hour before fire once each, from the stored instant, also when the
//! worker is restarted in between. A meeting booked by the core operation, the real worker, the
//! test SMTP server and a manual clock.

use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_core::meeting_reminders;
use helpdesk_core::meetings::{self, Booking, MeetingSettings, NewMeeting};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_domain::meetings::MeetingRules;
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_at};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// (template, recipient, status, Message-ID) of the meeting's e-mails, oldest first.
async fn emails(app: &TestApp, meeting: Uuid, template: &str) -> Vec<(String, String, Option<String>)> {
    sqlx::query!(
        "SELECT to_address, status, message_id FROM email_outbox WHERE template = $1 AND payload->>'meeting_id' = $2 ORDER BY created_at, to_address",
        template,
        meeting.to_string()
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.to_address, r.status, r.message_id))
    .collect()
}

async fn wait_for_sent(
    app: &TestApp,
    meeting: Uuid,
    template: &str,
    count: usize,
) -> Vec<(String, String, Option<String>)> {
    for _ in 0..1200 {
        let rows = emails(app, meeting, template).await;
        if rows.iter().filter(|r| r.1 == "sent").count() >= count {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {count} sent '{template}' e-mails for {meeting}: {:?}", emails(app, meeting, template).await);
}

/// A few reconciler rounds (1 s apart in the tests' settings).
async fn let_the_worker_run() {
    tokio::time::sleep(Duration::from_millis(2200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_go_out_a_day_and_an_hour_before_once_each_also_across_a_worker_restart() {
    // Tuesday 2026-12-01, 09:00 in São Paulo.
    let mut app = spawn_app_at(at("2026-12-01T12:00:00Z"), 1, |s| s.outbox_notifications = true).await;
    let desk = app.desk("premium", 1).await;
    let consultant = desk.agents[0].user_id;
    sqlx::query!("INSERT INTO consultants (user_id) VALUES ($1)", consultant).execute(&app.pool).await.unwrap();
    let store = SlaStore::default();
    let start = at("2026-12-03T13:00:00Z");
    let settings = MeetingSettings {
        rules: MeetingRules::default(),
        url_template: "https://meet.example/kadix-{room}",
        organizer: "Kadix Atendimento <atendimento@kadix.test>",
    };
    let input = NewMeeting {
        starts_at: start,
        duration_minutes: 45,
        consultant_id: None,
        organization_id: None,
        ticket_id: None,
        topic: "CDN review".into(),
        idempotency_key: None,
    };
    let mut tx = app.pool.begin().await.unwrap();
    let calendar = store.snapshot(&mut tx).await.unwrap().calendar;
    let Booking::Created(meeting) =
        meetings::book(&mut tx, &calendar, &settings, &desk.customer, input, app.clock.now()).await.unwrap()
    else {
        panic!("a new meeting")
    };
    tx.commit().await.unwrap();
    let next: Option<DateTime<Utc>> =
        sqlx::query_scalar!("SELECT next_reminder_at FROM meetings WHERE id = $1", meeting.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(next, Some(start - TimeDelta::hours(24)), "the day-before reminder is the stored instant");

    // The confirmation carries the invite as a calendar attachment.
    wait_for_sent(&app, meeting.id, "meeting_confirmed", 2).await;
    let messages = app.smtp.messages();
    let invite = messages.iter().find(|m| m.contains("invite.ics")).expect("an e-mail with the invite");
    assert!(invite.contains("multipart/mixed"), "{invite}");
    assert!(invite.contains("text/calendar; charset=utf-8; method=REQUEST"), "{invite}");
    assert!(invite.contains(&format!("UID:meeting-{}@kadix-helpdesk", meeting.id)), "{invite}");
    assert!(invite.contains("METHOD:REQUEST"), "{invite}");

    // Not a minute early.
    app.clock.set(start - TimeDelta::hours(24) - TimeDelta::minutes(1));
    let_the_worker_run().await;
    assert!(emails(&app, meeting.id, "meeting_reminder").await.is_empty(), "no reminder before its instant");

    app.clock.set(start - TimeDelta::hours(24));
    let day_before = wait_for_sent(&app, meeting.id, "meeting_reminder", 2).await;
    assert_eq!(day_before.len(), 2, "one to the customer, one to the consultant");
    let next: Option<DateTime<Utc>> =
        sqlx::query_scalar!("SELECT next_reminder_at FROM meetings WHERE id = $1", meeting.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(next, Some(start - TimeDelta::hours(1)));

    // A restart between the two changes nothing already done, and loses nothing still to do.
    app.restart_workers(|s| s.outbox_notifications = true).await;
    let_the_worker_run().await;
    assert_eq!(emails(&app, meeting.id, "meeting_reminder").await.len(), 2, "the day-before reminder is not repeated");

    app.clock.set(start - TimeDelta::minutes(30));
    let all = wait_for_sent(&app, meeting.id, "meeting_reminder", 4).await;
    assert_eq!(all.len(), 4);
    // A duplicate run (another replica, a late round) finds nothing due.
    let mut tx = app.pool.begin().await.unwrap();
    let again = meeting_reminders::run_due_batch(&mut tx, &store, app.clock.now(), 100).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(again.sent, 0);
    let_the_worker_run().await;
    let all = emails(&app, meeting.id, "meeting_reminder").await;
    assert_eq!(all.len(), 4, "each reminder once: {all:?}");
    for (to, status, message_id) in &all {
        assert_eq!(status, "sent", "{to}");
        assert_eq!(app.received(message_id.as_deref().unwrap()), 1, "{to}: delivered once");
    }
    let next: Option<DateTime<Utc>> =
        sqlx::query_scalar!("SELECT next_reminder_at FROM meetings WHERE id = $1", meeting.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(next, None, "no reminder left");
    // The reminders name the zone of the time they give.
    let reminder = app.smtp.messages().into_iter().find(|m| m.contains("Reminder") || m.contains("Lembrete")).unwrap();
    assert!(reminder.contains("America/Sao_Paulo"), "{reminder}");
    app.finish().await;
}
