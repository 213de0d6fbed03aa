#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of the ticket timers: whatever the ticket's state, `next_at`, `due` and
//! `record` agree, so the worker can find a ticket by its stored instant, act on what is due, and
//! treat any later job for the same instant as a no-op.

use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::timers::{AlertMark, AlertMarks, AlertStage, MetricTimer, TimerKind, TimerState, WaitingPolicy};
use proptest::prelude::*;
use std::collections::HashMap;

const BASE: i64 = 1_780_000_000; // 2026-05-28

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..30 * 24 * 3600, 0u32..1_000_000).prop_map(|(s, us)| DateTime::from_timestamp(BASE + s, us * 1000).unwrap())
}

fn metric() -> impl Strategy<Value = MetricTimer> {
    prop_oneof![
        1 => Just(MetricTimer::IDLE),
        4 => (instant(), 0i64..48 * 3600, 1u32..4).prop_map(|(at_risk_at, lead, target_revision)| MetricTimer {
            at_risk_at: Some(at_risk_at),
            due_at: Some(at_risk_at + TimeDelta::seconds(lead)),
            target_revision,
        }),
    ]
}

fn mark() -> impl Strategy<Value = Option<AlertMark>> {
    prop_oneof![
        Just(None),
        (1u32..4, prop_oneof![Just(AlertStage::AtRisk), Just(AlertStage::Breached)])
            .prop_map(|(target_revision, stage)| Some(AlertMark { target_revision, stage })),
    ]
}

fn state() -> impl Strategy<Value = TimerState> {
    (any::<u8>(), metric(), metric(), mark(), mark(), proptest::option::of(instant()), proptest::option::of(instant()))
        .prop_map(|(closed, first_response, resolution, fr, res, waiting_since, reminder_sent_at)| TimerState {
            closed: closed % 8 == 0,
            first_response,
            resolution,
            alerts: AlertMarks { first_response: fr, resolution: res },
            waiting_since,
            reminder_sent_at,
        })
}

fn policy() -> impl Strategy<Value = WaitingPolicy> {
    (1u32..200, 1u32..200).prop_map(|(reminder_after_hours, auto_close_after_hours)| WaitingPolicy {
        reminder_after_hours,
        auto_close_after_hours,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn nothing_is_due_before_next_at_and_something_is_at_and_after_it(
        s in state(), p in policy(), before in 1i64..10_000_000, after in 0i64..10_000_000
    ) {
        match s.next_at(&p) {
            None => prop_assert!(s.due(&p, DateTime::<Utc>::MAX_UTC).is_empty()),
            Some(next) => {
                prop_assert!(s.due(&p, next - TimeDelta::microseconds(before)).is_empty());
                prop_assert!(s.due(&p, next - TimeDelta::nanoseconds(1)).is_empty());
                prop_assert!(!s.due(&p, next).is_empty());
                prop_assert!(!s.due(&p, next + TimeDelta::microseconds(after)).is_empty());
            }
        }
    }

    #[test]
    fn once_recorded_nothing_is_due_and_the_next_instant_is_later(s in state(), p in policy(), now in instant()) {
        let mut s = s;
        let due = s.due(&p, now);
        for kind in &due {
            s.record(*kind, now);
        }
        prop_assert!(s.due(&p, now).is_empty(), "a duplicate job at the same instant acts again: {:?}", s.due(&p, now));
        if let Some(next) = s.next_at(&p) {
            prop_assert!(next > now, "next {next} not after {now}");
        }
    }

    #[test]
    fn an_at_risk_alert_never_fires_once_its_target_has_run_out(s in state(), p in policy(), now in instant()) {
        for kind in s.due(&p, now) {
            if let Some((metric, AlertStage::AtRisk)) = kind.alert() {
                let due_at = s.metric(metric).due_at.unwrap();
                prop_assert!(now < due_at);
            }
        }
    }

    /// A worker that looks at the ticket at arbitrary later instants, acting on whatever is due,
    /// sends each alert at most once per target revision and one reminder per wait, and closes the
    /// ticket at most once, never before the reminder's delay has passed.
    #[test]
    fn timers_act_at_most_once_however_often_the_worker_looks(
        s in state(), p in policy(), steps in proptest::collection::vec(0i64..30 * 3600, 1..40)
    ) {
        let mut s = s;
        let mut now = DateTime::from_timestamp(BASE, 0).unwrap();
        let mut fired: HashMap<(TimerKind, u32), u32> = HashMap::new();
        let mut reminders = Vec::new();
        for step in steps {
            now += TimeDelta::seconds(step);
            for kind in s.due(&p, now) {
                let revision = kind.alert().map_or(0, |(metric, _)| s.metric(metric).target_revision);
                *fired.entry((kind, revision)).or_default() += 1;
                match kind {
                    TimerKind::CustomerReminder => {
                        prop_assert!(now >= s.waiting_since.unwrap() + p.reminder_after());
                        reminders.push(now);
                    }
                    TimerKind::AutoClose => prop_assert!(now >= s.reminder_of_wait().unwrap() + p.auto_close_after()),
                    _ => {}
                }
                s.record(kind, now);
            }
        }
        for ((kind, revision), count) in &fired {
            prop_assert_eq!(*count, 1, "{:?} fired {} times for revision {}", kind, count, revision);
        }
        prop_assert!(reminders.len() <= 1);
    }

    /// A ticket that is waiting gets its reminder at exactly the policy's delay, and its
    /// auto-close announced for the reminder plus the close delay.
    #[test]
    fn the_reminder_is_due_exactly_when_the_wait_reaches_the_delay(since in instant(), p in policy()) {
        let s = TimerState {
            closed: false,
            first_response: MetricTimer::IDLE,
            resolution: MetricTimer::IDLE,
            alerts: AlertMarks::default(),
            waiting_since: Some(since),
            reminder_sent_at: None,
        };
        prop_assert_eq!(s.next_at(&p), Some(since + p.reminder_after()));
        prop_assert_eq!(s.auto_close_at(&p), Some(since + p.reminder_after() + p.auto_close_after()));
        prop_assert_eq!(s.due(&p, since + p.reminder_after()), vec![TimerKind::CustomerReminder]);
    }
}
