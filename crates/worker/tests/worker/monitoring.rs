//! Uptime monitoring end to end (issue 10): the worker probes real HTTP targets on a test clock,
//! records through the state machine, and announces each alert once through the outbox.

use chrono::{Datelike, TimeDelta, Weekday};
use chrono_tz::America::Sao_Paulo;

use crate::monitoring_support::{next_local, watch, weekday_morning};
use crate::targets::{Mode, Target};

const MINUTE: TimeDelta = TimeDelta::minutes(1);

#[tokio::test]
async fn one_failure_sends_nothing_and_two_send_one_down_from_the_first() {
    let start = weekday_morning();
    let watch = watch(start, &[], |_| {}).await;
    // An integration subscribed to incidents (issue 13) hears of exactly what people are told.
    sqlx::query(
        "INSERT INTO webhook_subscriptions (id, url, event_types, secret, created_at, updated_at)
         VALUES (gen_random_uuid(), 'http://127.0.0.1:9/', '{incident.down,incident.recovered}', 'whsec_dGVzdA==', now(), now())",
    )
    .execute(&watch.app.pool)
    .await
    .unwrap();
    let site = Target::start(Mode::Up).await;
    let monitor = watch.monitor(&site.url()).await;
    watch.advance_to(start).await;
    assert_eq!(site.connections(), 1, "probed once at its planned instant");

    site.set(Mode::Status(503));
    watch.advance_to(start + TimeDelta::minutes(5)).await;
    let next: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar!("SELECT next_check_at FROM monitors WHERE id = $1", monitor)
            .fetch_one(&watch.app.pool)
            .await
            .unwrap();
    assert_eq!(next, start + TimeDelta::minutes(6), "a single failure schedules a confirmation a minute later");
    assert!(watch.alert_kinds(monitor).await.is_empty());

    site.set(Mode::Up);
    watch.advance_to(start + TimeDelta::minutes(6)).await;
    assert!(watch.incidents(monitor).await.is_empty(), "one failure is not a downtime");

    site.set(Mode::WrongKeyword);
    watch.advance_to(start + TimeDelta::minutes(10)).await;
    assert!(watch.alert_kinds(monitor).await.is_empty());
    watch.advance_to(start + TimeDelta::minutes(11)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down"]);
    let incidents = watch.incidents(monitor).await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].started_at, start + TimeDelta::minutes(10), "the incident starts at the first failure");
    let emails = watch.emails("monitor_alert", monitor).await;
    assert_eq!(emails.len(), 2, "the agent and the organisation's customer: {emails:?}");
    assert!(emails.iter().any(|email| email["detail"].as_str().unwrap().contains("America/Sao_Paulo")));

    watch.advance(TimeDelta::minutes(10)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down"], "still one DOWN while it stays down");
    let events: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT type, payload FROM webhook_events ORDER BY occurred_at, id")
            .fetch_all(&watch.app.pool)
            .await
            .unwrap();
    assert_eq!(events.len(), 1, "one incident.down event: {events:?}");
    assert_eq!(events[0].0, "incident.down");
    assert_eq!(events[0].1["monitor_id"], serde_json::json!(monitor));
    assert_eq!(events[0].1["started_at"], serde_json::json!(incidents[0].started_at));
    watch.app.finish().await;
}

#[tokio::test]
async fn sixteen_minutes_down_escalates_exactly_once() {
    let start = weekday_morning();
    let watch = watch(start, &[], |_| {}).await;
    let site = Target::start(Mode::Status(500)).await;
    let monitor = watch.monitor(&site.url()).await;
    watch.advance_to(start + MINUTE).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down"]);
    watch.advance_to(start + TimeDelta::minutes(14)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down"]);
    watch.advance_to(start + TimeDelta::minutes(16)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down", "down_15m"]);
    watch.advance_to(start + TimeDelta::minutes(45)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down", "down_15m"]);
    assert_eq!(watch.emails("monitor_alert", monitor).await.len(), 4);
    watch.app.finish().await;
}

#[tokio::test]
async fn two_hours_down_at_3_on_a_sunday_opens_one_emergency_ticket_and_pages_once() {
    // Down from 01:00 on a Sunday: the two-hour mark is 03:00, out of hours (R7).
    let start = next_local(Weekday::Sun, 1, 0);
    let watch = watch(start, &[], |_| {}).await;
    let site = Target::start(Mode::Refused).await;
    let monitor = watch.monitor(&site.url()).await;
    watch.advance_to(start + TimeDelta::minutes(119)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down", "down_15m"]);
    assert_eq!(watch.monitoring_tickets().await, 0);

    watch.advance_to(start + TimeDelta::hours(2)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down", "down_15m", "down_2h"]);
    let sent_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar!(
        "SELECT a.sent_at FROM incident_alerts a JOIN incidents i ON i.id = a.incident_id WHERE i.monitor_id = $1 AND a.kind = 'down_2h'",
        monitor
    )
    .fetch_one(&watch.app.pool)
    .await
    .unwrap();
    let local = sent_at.with_timezone(&Sao_Paulo);
    assert_eq!((local.weekday(), local.format("%H:%M").to_string()), (Weekday::Sun, "03:00".to_owned()));

    let incident = watch.incidents(monitor).await.remove(0);
    let ticket = incident.ticket_id.expect("the emergency ticket is linked to the incident");
    let row = sqlx::query!(
        "SELECT organization_id, source, severity, emergency, plan_code FROM tickets WHERE id = $1",
        ticket
    )
    .fetch_one(&watch.app.pool)
    .await
    .unwrap();
    assert_eq!(row.organization_id, watch.org);
    assert_eq!((row.source.as_str(), row.severity.as_str(), row.emergency), ("monitoring", "critical", true));
    assert_eq!(row.plan_code, "pro", "under the organisation's plan");
    assert_eq!(watch.emails("monitor_page", monitor).await.len(), 1, "one page to the one agent");

    watch.advance_to(start + TimeDelta::hours(3)).await;
    assert_eq!(watch.monitoring_tickets().await, 1);
    assert_eq!(watch.emails("monitor_page", monitor).await.len(), 1);
    // The page leaves at once: the SMTP listener receives it at 03:00 on a Sunday.
    let mut paged = false;
    for _ in 0..600 {
        paged = watch.app.smtp.messages().iter().any(|message| message.contains("ON-CALL"));
        if paged {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(paged, "the on-call page reached the SMTP server");
    watch.app.finish().await;
}

#[tokio::test]
async fn recovery_needs_two_successes_and_is_announced_once_with_the_duration() {
    let start = weekday_morning();
    let watch = watch(start, &[], |_| {}).await;
    let site = Target::start(Mode::Status(502)).await;
    let monitor = watch.monitor(&site.url()).await;
    watch.advance_to(start + MINUTE).await;
    site.set(Mode::Up);
    watch.advance_to(start + TimeDelta::minutes(5)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down"], "one success is not a recovery");
    watch.advance_to(start + TimeDelta::minutes(6)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down", "recovered"]);
    let incident = watch.incidents(monitor).await.remove(0);
    assert_eq!(incident.resolved_at, Some(start + TimeDelta::minutes(5)), "down until its first success");
    let recoveries: Vec<_> =
        watch.emails("monitor_alert", monitor).await.into_iter().filter(|email| email["kind"] == "recovered").collect();
    assert_eq!(recoveries.len(), 2);
    assert!(recoveries.iter().all(|email| email["detail"].as_str().unwrap().contains("(5 min)")), "{recoveries:?}");
    watch.advance(TimeDelta::minutes(30)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down", "recovered"]);
    watch.app.finish().await;
}

#[tokio::test]
async fn flapping_sends_at_most_one_down_and_one_recovery() {
    let start = weekday_morning();
    let watch = watch(start, &[], |_| {}).await;
    let site = Target::start(Mode::Up).await;
    let monitor = watch.monitor(&site.url()).await;
    // Down, down (DOWN), then up and down in turn, then up twice (RECOVERY), then flapping
    // without two failures in a row.
    let pattern = [false, false, true, false, true, false, true, true, false, true, false, true];
    let mut at = start;
    for up in pattern {
        site.set(if up { Mode::Up } else { Mode::Status(503) });
        let next = sqlx::query_scalar!("SELECT next_check_at FROM monitors WHERE id = $1", monitor)
            .fetch_one(&watch.app.pool)
            .await
            .unwrap();
        at = at.max(next);
        watch.advance_to(at).await;
    }
    assert_eq!(watch.alert_kinds(monitor).await, ["down", "recovered"]);
    assert_eq!(watch.incidents(monitor).await.len(), 1);
    watch.app.finish().await;
}

#[tokio::test]
async fn slow_is_degraded_and_never_alerts() {
    let start = weekday_morning();
    let watch = watch(start, &[], |_| {}).await;
    let site = Target::start(Mode::Slow(std::time::Duration::from_millis(1300))).await;
    let monitor = watch.monitor(&site.url()).await;
    watch.advance_to(start + TimeDelta::minutes(20)).await;
    let state = sqlx::query_scalar!("SELECT state FROM monitors WHERE id = $1", monitor)
        .fetch_one(&watch.app.pool)
        .await
        .unwrap();
    assert_eq!(state, "degraded");
    assert!(watch.alert_kinds(monitor).await.is_empty());
    watch.app.finish().await;
}

#[tokio::test]
async fn missed_slots_after_an_outage_are_one_catch_up_probe_and_a_gap() {
    let start = weekday_morning();
    let watch = watch(start, &[], |_| {}).await;
    let site = Target::start(Mode::Up).await;
    let monitor = watch.monitor(&site.url()).await;
    watch.advance_to(start).await;
    // The worker "was out" for 31 minutes: the clock jumps past six slots at once.
    watch.app.clock.set(start + TimeDelta::minutes(36));
    watch.settle().await;
    assert_eq!(site.connections(), 2, "one catch-up probe, not one per missed slot");
    let gap = sqlx::query!("SELECT from_at, to_at, missed_slots FROM monitor_gaps WHERE monitor_id = $1", monitor)
        .fetch_one(&watch.app.pool)
        .await
        .unwrap();
    assert_eq!(
        (gap.from_at, gap.to_at, gap.missed_slots),
        (start + TimeDelta::minutes(5), start + TimeDelta::minutes(36), 6)
    );
    let next = sqlx::query_scalar!("SELECT next_check_at FROM monitors WHERE id = $1", monitor)
        .fetch_one(&watch.app.pool)
        .await
        .unwrap();
    assert_eq!(next, start + TimeDelta::minutes(40), "back on the monitor's grid");
    watch.app.finish().await;
}
