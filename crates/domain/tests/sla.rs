#![allow(clippy::unwrap_used, clippy::expect_used)]
//! SLA clock replay: pauses, met/reopen, target and calendar changes, errors.

use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::calendar::{BusinessCalendar, CalendarSpec, OpenInterval, WeeklyHours};
use helpdesk_domain::sla::{
    ClockEvent, ClockEventKind, ClockMode, ClockPhase, DEFAULT_AT_RISK_FRACTION, Metric, Severity, SlaClock, SlaError,
    SlaPolicy, Target, Targets, evaluate, explain,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn h(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

fn ev(at: &str, kind: ClockEventKind) -> ClockEvent {
    ClockEvent { at: utc(at), kind }
}

fn pro_normal() -> Targets {
    SlaPolicy::default_targets().targets("pro", Severity::Normal, false).unwrap()
}

fn started(at: &str, targets: Targets) -> ClockEvent {
    ev(at, ClockEventKind::Started { targets, calendar_version: 1, policy_version: 1 })
}

#[test]
fn default_table() {
    let p = SlaPolicy::default_targets();
    let t = |plan, sev, em| p.targets(plan, sev, em).unwrap();
    assert_eq!(t("essencial", Severity::Critical, false).first_response, Target::business_hours(16));
    assert_eq!(t("essencial", Severity::Low, false).resolution, Target::business_hours(40));
    assert_eq!(t("pro", Severity::Critical, false).resolution, Target::business_hours(8));
    assert_eq!(t("pro", Severity::Low, false).resolution, Target::business_hours(72));
    assert_eq!(t("premium", Severity::High, false).first_response, Target::business_hours(2));
    assert_eq!(t("premium", Severity::Normal, false).resolution, Target::business_hours(24));
    let em = t("premium", Severity::Low, true);
    assert_eq!(em.first_response, Target::calendar_hours(1));
    assert_eq!(em.resolution.mode, ClockMode::Calendar);
    assert_eq!(em.resolution.duration, h(4));
    // No emergency row for Pro: the ordinary row applies.
    assert_eq!(t("pro", Severity::High, true).first_response, Target::business_hours(4));
    assert!(p.targets("gold", Severity::High, false).is_none());
    assert!(p.pauses("waiting_customer", Metric::Resolution));
    assert!(!p.pauses("waiting_customer", Metric::FirstResponse));
}

#[test]
fn running_clock_due_and_at_risk() {
    let cal = BusinessCalendar::brazil_default();
    // Monday 2026-03-02 09:00 local; Pro normal: 8 h first response, 40 h resolution.
    let events = [started("2026-03-02T12:00:00Z", pro_normal())];
    let s = evaluate(&events, &cal, utc("2026-03-02T18:00:00Z"), DEFAULT_AT_RISK_FRACTION).unwrap();
    assert_eq!(s.first_response.consumed, h(6));
    assert_eq!(s.first_response.remaining, h(2));
    assert_eq!(s.first_response.due_at, Some(utc("2026-03-02T20:00:00Z")));
    assert!(!s.first_response.at_risk);
    let s = evaluate(&events, &cal, utc("2026-03-02T19:30:00Z"), 0.8).unwrap();
    assert!(s.first_response.at_risk);
    assert!(!s.first_response.breached);
    // Over the night nothing is consumed; breach happens at the due instant.
    let s = evaluate(&events, &cal, utc("2026-03-03T12:30:00Z"), 0.8).unwrap();
    assert!(s.first_response.breached);
    assert_eq!(s.first_response.breached_at, Some(utc("2026-03-02T20:00:00Z")));
    assert_eq!(s.first_response.remaining, TimeDelta::zero());
    assert_eq!(s.first_response.consumed, h(9) + TimeDelta::minutes(30));
    // Resolution: 40 h = Mon..Thu full + 4 h Fri.
    assert_eq!(s.resolution.due_at, Some(utc("2026-03-06T16:00:00Z")));
}

#[test]
fn met_on_time_and_late() {
    let cal = BusinessCalendar::brazil_default();
    let mut events = vec![started("2026-03-02T12:00:00Z", pro_normal())];
    events.push(ev("2026-03-02T20:00:00Z", ClockEventKind::Met { metric: Metric::FirstResponse }));
    let s = evaluate(&events, &cal, utc("2026-03-10T00:00:00Z"), 0.8).unwrap();
    assert_eq!(s.first_response.phase, ClockPhase::Met);
    assert!(!s.first_response.breached, "met exactly at the due instant is on time");
    assert_eq!(s.first_response.due_at, None);
    assert_eq!(s.first_response.met_at, Some(utc("2026-03-02T20:00:00Z")));
    events[1].at = utc("2026-03-02T20:00:01Z");
    let s = evaluate(&events, &cal, utc("2026-03-10T00:00:00Z"), 0.8).unwrap();
    assert!(s.first_response.breached);
}

#[test]
fn waiting_for_customer_pauses_resolution_only() {
    let cal = BusinessCalendar::brazil_default();
    let events = [
        started("2026-03-02T12:00:00Z", pro_normal()),
        ev("2026-03-02T14:00:00Z", ClockEventKind::Paused { metric: Metric::Resolution }),
        ev("2026-03-03T14:00:00Z", ClockEventKind::Resumed { metric: Metric::Resolution }),
    ];
    let s = evaluate(&events, &cal, utc("2026-03-03T15:00:00Z"), 0.8).unwrap();
    assert_eq!(s.resolution.consumed, h(3));
    assert_eq!(s.first_response.consumed, h(9 + 3));
    // Paused 9 business hours → due shifts by exactly that.
    assert_eq!(s.resolution.due_at, Some(cal.add_business_time(utc("2026-03-02T12:00:00Z"), h(49))));
    let paused = evaluate(&events[..2], &cal, utc("2026-03-03T15:00:00Z"), 0.8).unwrap();
    assert_eq!(paused.resolution.phase, ClockPhase::Paused);
    assert_eq!(paused.resolution.due_at, None);
    assert_eq!(paused.resolution.consumed, h(2));
}

#[test]
fn status_change_events_follow_policy() {
    let cal = BusinessCalendar::brazil_default();
    let policy = SlaPolicy::default_targets();
    let mut clock = SlaClock::replay(&[started("2026-03-02T12:00:00Z", pro_normal())], &cal).unwrap();
    let at = utc("2026-03-02T13:00:00Z");
    let evs = clock.status_change_events(&policy, "waiting_customer", at);
    assert_eq!(evs, vec![ClockEvent { at, kind: ClockEventKind::Paused { metric: Metric::Resolution } }]);
    clock.apply_all(&evs, &cal).unwrap();
    assert!(clock.status_change_events(&policy, "waiting_customer", at).is_empty());
    let back = clock.status_change_events(&policy, "open", at);
    assert_eq!(back, vec![ClockEvent { at, kind: ClockEventKind::Resumed { metric: Metric::Resolution } }]);
}

#[test]
fn reopen_keeps_consumed_time() {
    let cal = BusinessCalendar::brazil_default();
    let events = [
        started("2026-03-02T12:00:00Z", pro_normal()),
        ev("2026-03-02T15:00:00Z", ClockEventKind::Met { metric: Metric::Resolution }),
        ev("2026-03-04T12:00:00Z", ClockEventKind::Reopened),
    ];
    let s = evaluate(&events, &cal, utc("2026-03-04T14:00:00Z"), 0.8).unwrap();
    assert_eq!(s.resolution.phase, ClockPhase::Running);
    assert_eq!(s.resolution.consumed, h(5));
    assert_eq!(s.resolution.met_at, None);
}

#[test]
fn target_and_calendar_changes_keep_consumed_time() {
    let cal1 = BusinessCalendar::brazil_default();
    let mut spec: CalendarSpec = cal1.spec().clone();
    spec.version = 2;
    spec.weekly_hours = WeeklyHours::weekdays(vec![OpenInterval::hours(8, 20)]);
    let cal2 = BusinessCalendar::new(spec).unwrap();
    let calendars = vec![cal1, cal2.clone()];
    let events = [
        started("2026-03-02T12:00:00Z", pro_normal()),
        ev("2026-03-02T16:00:00Z", ClockEventKind::CalendarChanged { calendar_version: 2 }),
        ev(
            "2026-03-02T17:00:00Z",
            ClockEventKind::TargetChanged {
                metric: Metric::FirstResponse,
                target: Target::business_hours(6),
                policy_version: 2,
            },
        ),
    ];
    let s = evaluate(&events, calendars.as_slice(), utc("2026-03-02T17:00:00Z"), 0.8).unwrap();
    assert_eq!(s.first_response.consumed, h(5));
    assert_eq!(s.first_response.calendar_version, 2);
    assert_eq!(s.first_response.policy_version, 2);
    // 1 h left on the 08:00–20:00 calendar: 15:00 local.
    assert_eq!(s.first_response.due_at, Some(utc("2026-03-02T18:00:00Z")));
    // Lowering the target below what was consumed breaches at the change.
    let lower = [
        events[0].clone(),
        ev(
            "2026-03-02T17:00:00Z",
            ClockEventKind::TargetChanged {
                metric: Metric::FirstResponse,
                target: Target::business_hours(2),
                policy_version: 2,
            },
        ),
    ];
    let s = evaluate(&lower, calendars.as_slice(), utc("2026-03-02T17:30:00Z"), 0.8).unwrap();
    assert!(s.first_response.breached);
    assert_eq!(s.first_response.breached_at, Some(utc("2026-03-02T17:00:00Z")));

    let x = explain(&events, calendars.as_slice(), utc("2026-03-02T17:00:00Z"), 0.8).unwrap();
    assert_eq!(x.first_response.calendar_versions, vec![1, 2]);
    assert_eq!(x.first_response.policy_versions, vec![1, 2]);
    assert_eq!(x.first_response.counted.len(), 2);
    assert_eq!(x.first_response.counted[0].counted, h(4));
    assert_eq!(x.first_response.counted[1].calendar_version, Some(2));
}

#[test]
fn emergency_counts_wall_time() {
    let cal = BusinessCalendar::brazil_default();
    let targets = SlaPolicy::default_targets().targets("premium", Severity::Critical, true).unwrap();
    // Saturday night.
    let events = [started("2026-03-07T23:00:00Z", targets)];
    let s = evaluate(&events, &cal, utc("2026-03-08T00:30:00Z"), 0.8).unwrap();
    assert_eq!(s.first_response.consumed, TimeDelta::minutes(90));
    assert!(s.first_response.breached);
    assert_eq!(s.first_response.breached_at, Some(utc("2026-03-08T00:00:00Z")));
    assert_eq!(s.resolution.due_at, Some(utc("2026-03-08T03:00:00Z")));
}

#[test]
fn explanation_lists_closed_days() {
    let cal = BusinessCalendar::brazil_default();
    // Friday before Carnival 2026 to the Wednesday after.
    let events = [started("2026-02-13T20:00:00Z", pro_normal())];
    let x = explain(&events, &cal, utc("2026-02-18T13:00:00Z"), 0.8).unwrap();
    let days: Vec<_> = x.resolution.closed_days_skipped.iter().map(|d| (d.date.to_string(), d.name.clone())).collect();
    assert_eq!(
        days,
        vec![
            ("2026-02-16".to_owned(), "Carnaval (segunda-feira)".to_owned()),
            ("2026-02-17".to_owned(), "Carnaval (terça-feira)".to_owned()),
        ]
    );
    assert_eq!(x.resolution.state.consumed, h(2));
}

#[test]
fn invalid_sequences_are_typed_errors() {
    let cal = BusinessCalendar::brazil_default();
    let s = started("2026-03-02T12:00:00Z", pro_normal());
    let bad = |events: &[ClockEvent]| SlaClock::replay(events, &cal).unwrap_err();
    assert_eq!(bad(&[ev("2026-03-02T12:00:00Z", ClockEventKind::Reopened)]), SlaError::NotStarted);
    assert_eq!(evaluate(&[], &cal, utc("2026-03-02T12:00:00Z"), 0.8).unwrap_err(), SlaError::NotStarted);
    assert_eq!(bad(&[s.clone(), s.clone()]), SlaError::AlreadyStarted);
    assert!(matches!(
        bad(&[s.clone(), ev("2026-03-02T13:00:00Z", ClockEventKind::Resumed { metric: Metric::Resolution })]),
        SlaError::InvalidTransition { phase: ClockPhase::Running, .. }
    ));
    assert!(matches!(
        bad(&[s.clone(), ev("2026-03-02T13:00:00Z", ClockEventKind::Reopened)]),
        SlaError::InvalidTransition { .. }
    ));
    assert!(matches!(
        bad(&[s.clone(), ev("2026-03-02T11:00:00Z", ClockEventKind::Reopened)]),
        SlaError::OutOfOrder { .. }
    ));
    assert_eq!(
        bad(&[s.clone(), ev("2026-03-02T13:00:00Z", ClockEventKind::CalendarChanged { calendar_version: 9 })]),
        SlaError::UnknownCalendar(9)
    );
    let met = ev("2026-03-02T13:00:00Z", ClockEventKind::Met { metric: Metric::FirstResponse });
    assert!(matches!(
        bad(&[s.clone(), met.clone(), met.clone()]),
        SlaError::InvalidTransition { phase: ClockPhase::Met, .. }
    ));
    // A failed apply leaves the clock unchanged.
    let mut clock = SlaClock::replay(&[s, met.clone()], &cal).unwrap();
    let before = clock.clone();
    assert!(clock.apply(&met, &cal).is_err());
    assert_eq!(clock, before);
}

#[test]
fn business_target_with_unknown_calendar_errors() {
    let other = BusinessCalendar::new(CalendarSpec { version: 5, ..BusinessCalendar::brazil_default().spec().clone() })
        .unwrap();
    let events = [started("2026-03-02T12:00:00Z", pro_normal())];
    assert_eq!(evaluate(&events, &other, utc("2026-03-02T13:00:00Z"), 0.8).unwrap_err(), SlaError::UnknownCalendar(1));
}
