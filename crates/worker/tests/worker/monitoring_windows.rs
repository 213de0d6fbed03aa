//! Maintenance windows (R12) in the worker: probes go on and incidents are recorded, flagged,
//! without alerts; a site still down when its window ends is announced once, with its timers
//! counted from the window's end.

use chrono::{NaiveTime, TimeDelta, Weekday};

use crate::monitoring_support::{Watch, next_local, watch};
use crate::targets::{Mode, Target};

const MINUTE: TimeDelta = TimeDelta::minutes(1);

/// Down for 20 minutes from `start` + 5 min, then up: the whole incident inside a window.
async fn down_and_up(watch: &Watch, site: &Target, monitor: uuid::Uuid, start: chrono::DateTime<chrono::Utc>) {
    watch.advance_to(start).await;
    site.set(Mode::Status(503));
    watch.advance_to(start + TimeDelta::minutes(25)).await;
    site.set(Mode::Up);
    watch.advance_to(start + TimeDelta::minutes(40)).await;
    let incidents = watch.incidents(monitor).await;
    assert_eq!(incidents.len(), 1, "the incident is recorded");
    assert!(incidents[0].in_maintenance, "and flagged");
    assert!(incidents[0].resolved_at.is_some());
    assert!(watch.alert_kinds(monitor).await.is_empty());
    assert!(watch.emails("monitor_alert", monitor).await.is_empty(), "no e-mail");
}

#[tokio::test]
async fn down_and_up_inside_a_one_off_window_sends_nothing() {
    let start = next_local(Weekday::Wed, 23, 0);
    let watch = watch(start, &[], |_| {}).await;
    watch.one_off_window(start, start + TimeDelta::hours(2)).await;
    let site = Target::start(Mode::Up).await;
    let monitor = watch.monitor(&site.url()).await;
    down_and_up(&watch, &site, monitor, start).await;
    watch.app.finish().await;
}

#[tokio::test]
async fn a_weekly_window_over_the_whole_weekend_holds_alerts_on_saturday() {
    let start = next_local(Weekday::Sat, 14, 0);
    let watch = watch(start, &[], |_| {}).await;
    // Friday 22:00 to Monday 06:00, São Paulo time.
    watch.weekly_window(5, NaiveTime::from_hms_opt(22, 0, 0).unwrap(), 56 * 60).await;
    let site = Target::start(Mode::Up).await;
    let monitor = watch.monitor(&site.url()).await;
    down_and_up(&watch, &site, monitor, start).await;
    watch.app.finish().await;
}

#[tokio::test]
async fn a_weekly_window_across_midnight_holds_alerts_after_midnight() {
    // Wednesday 23:00 for two hours: Thursday 00:10 is inside.
    let start = next_local(Weekday::Thu, 0, 10);
    let watch = watch(start, &[], |_| {}).await;
    watch.weekly_window(3, NaiveTime::from_hms_opt(23, 0, 0).unwrap(), 120).await;
    let site = Target::start(Mode::Up).await;
    let monitor = watch.monitor(&site.url()).await;
    down_and_up(&watch, &site, monitor, start).await;
    watch.app.finish().await;
}

#[tokio::test]
async fn still_down_after_the_window_is_announced_once_with_timers_from_its_end() {
    let start = next_local(Weekday::Sat, 2, 0);
    let end = start + TimeDelta::minutes(30);
    let watch = watch(start, &[], |_| {}).await;
    watch.one_off_window(start, end).await;
    let site = Target::start(Mode::Up).await;
    let monitor = watch.monitor(&site.url()).await;
    watch.advance_to(start).await;
    site.set(Mode::Refused);
    watch.advance_to(end - MINUTE).await;
    assert!(watch.alert_kinds(monitor).await.is_empty(), "held during the window");

    watch.advance_to(end).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down"], "announced at the first check after the window");
    let incident = watch.incidents(monitor).await.remove(0);
    assert_eq!(incident.started_at, start + TimeDelta::minutes(5), "the incident still starts at its first failure");
    assert_eq!(incident.maintenance_ended_at, Some(end));

    watch.advance_to(end + TimeDelta::minutes(14)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down"], "15 minutes count from the window's end");
    watch.advance_to(end + TimeDelta::minutes(16)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down", "down_15m"]);
    watch.advance_to(end + TimeDelta::minutes(119)).await;
    assert_eq!(watch.monitoring_tickets().await, 0, "two hours count from the window's end too");
    watch.advance_to(end + TimeDelta::minutes(121)).await;
    assert_eq!(watch.alert_kinds(monitor).await, ["down", "down_15m", "down_2h"]);
    assert_eq!(watch.emails("monitor_alert", monitor).await.iter().filter(|e| e["kind"] == "down").count(), 2);
    watch.app.finish().await;
}
