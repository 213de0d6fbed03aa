#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of the calendar algebra and SLA replay, on the Brazilian default and on
//! calendars whose hours cross DST changes.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use helpdesk_domain::calendar::{BusinessCalendar, CalendarSpec, OpenInterval, TimeOfDay, WeeklyHours};
use helpdesk_domain::holidays::ClosedDate;
use helpdesk_domain::sla::{ClockEvent, ClockEventKind, Metric, SlaClock, Target, Targets};
use proptest::prelude::*;

fn new_york_nights() -> BusinessCalendar {
    // Intervals straddle the 01:00–03:00 DST window so gaps and overlaps are exercised.
    let day = vec![
        OpenInterval::new(TimeOfDay::hm(0, 30), TimeOfDay::hm(2, 30)),
        OpenInterval::hours(9, 12),
        OpenInterval::hours(13, 18),
    ];
    let mut week = WeeklyHours::weekdays(day.clone());
    week.sunday = day;
    BusinessCalendar::new(CalendarSpec {
        version: 3,
        time_zone: chrono_tz::America::New_York,
        weekly_hours: week,
        holiday_rules: vec![],
        closed_dates: vec![],
        overrides: vec![],
    })
    .unwrap()
}

fn lisbon() -> BusinessCalendar {
    let mut week = WeeklyHours::weekdays(vec![OpenInterval::hours(9, 18)]);
    week.sunday = vec![OpenInterval::new(TimeOfDay::MIDNIGHT, TimeOfDay::hm(3, 0))];
    BusinessCalendar::new(CalendarSpec {
        version: 4,
        time_zone: chrono_tz::Europe::Lisbon,
        weekly_hours: week,
        holiday_rules: vec![],
        closed_dates: vec![],
        overrides: vec![],
    })
    .unwrap()
}

fn calendars() -> Vec<BusinessCalendar> {
    vec![BusinessCalendar::brazil_default(), new_york_nights(), lisbon()]
}

/// 2015-01-01 .. 2031-01-01, nanosecond resolution.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (1_420_070_400i64..1_924_992_000, 0u32..1_000_000_000).prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
}

/// Up to 600 h, with sub-second parts.
fn amount() -> impl Strategy<Value = TimeDelta> {
    prop_oneof![
        (0i64..3_600 * 600, 0u32..1_000_000_000).prop_map(|(s, n)| TimeDelta::new(s, n).unwrap()),
        (0i64..600).prop_map(TimeDelta::hours),
    ]
}

fn cal_index() -> impl Strategy<Value = usize> {
    0usize..3
}

/// Reference: sum the open intervals of each local date, one day at a time.
fn naive_between(cal: &BusinessCalendar, a: DateTime<Utc>, b: DateTime<Utc>) -> TimeDelta {
    let tz = cal.time_zone();
    let mut d = a.with_timezone(&tz).date_naive().pred_opt().unwrap();
    let last = b.with_timezone(&tz).date_naive().succ_opt().unwrap();
    let mut total = TimeDelta::zero();
    while d <= last {
        for (x, y) in cal.open_intervals_on(d) {
            let (x, y) = (x.max(a), y.min(b));
            if y > x {
                total += y - x;
            }
        }
        d = d.succ_opt().unwrap();
    }
    total
}

proptest! {
    #[test]
    fn between_of_add_is_amount(c in cal_index(), s in instant(), d in amount()) {
        let cal = &calendars()[c];
        prop_assert_eq!(cal.business_time_between(s, cal.add_business_time(s, d)), d);
    }

    #[test]
    fn add_composes(c in cal_index(), s in instant(), d1 in amount(), d2 in amount()) {
        let cal = &calendars()[c];
        prop_assert_eq!(cal.add_business_time(cal.add_business_time(s, d1), d2), cal.add_business_time(s, d1 + d2));
    }

    #[test]
    fn add_is_monotonic(c in cal_index(), s1 in instant(), s2 in instant(), d1 in amount(), d2 in amount()) {
        let cal = &calendars()[c];
        let (s1, s2) = (s1.min(s2), s1.max(s2));
        let (d1, d2) = (d1.min(d2), d1.max(d2));
        prop_assert!(cal.add_business_time(s1, d1) <= cal.add_business_time(s2, d1));
        prop_assert!(cal.add_business_time(s1, d1) <= cal.add_business_time(s1, d2));
    }

    #[test]
    fn result_ends_open_time(c in cal_index(), s in instant(), d in amount()) {
        prop_assume!(d > TimeDelta::zero());
        let cal = &calendars()[c];
        let t = cal.add_business_time(s, d);
        prop_assert!(cal.is_business_time(t - TimeDelta::nanoseconds(1)));
        prop_assert!(t >= s);
    }

    #[test]
    fn closing_a_day_never_makes_due_earlier(s in instant(), d in amount(), offset in 0u64..40) {
        let cal = BusinessCalendar::brazil_default();
        let date = s.date_naive() + chrono::Days::new(offset);
        let mut spec = cal.spec().clone();
        spec.closed_dates.push(ClosedDate { date, name: "extra".into() });
        let closed = BusinessCalendar::new(spec).unwrap();
        prop_assert!(closed.add_business_time(s, d) >= cal.add_business_time(s, d));
    }

    #[test]
    fn between_is_additive(c in cal_index(), a in instant(), b in instant(), x in instant()) {
        let cal = &calendars()[c];
        let mut v = [a, b, x];
        v.sort();
        let [a, b, x] = v;
        prop_assert_eq!(cal.business_time_between(a, b) + cal.business_time_between(b, x), cal.business_time_between(a, x));
    }

    #[test]
    fn between_matches_day_walk(c in cal_index(), a in instant(), len in 0i64..3_600 * 24 * 20) {
        let cal = &calendars()[c];
        let b = a + TimeDelta::seconds(len);
        prop_assert_eq!(cal.business_time_between(a, b), naive_between(cal, a, b));
    }

    #[test]
    fn next_business_instant_is_open(c in cal_index(), s in instant()) {
        let cal = &calendars()[c];
        let t = cal.next_business_instant(s);
        prop_assert!(t >= s && cal.is_business_time(t));
        prop_assert_eq!(cal.business_time_between(s, t), TimeDelta::zero());
    }
}

#[derive(Debug, Clone)]
enum Op {
    Pause(Metric),
    Resume(Metric),
    Met(Metric),
    Reopen,
    Target(Metric, i64),
}

fn op() -> impl Strategy<Value = Op> {
    let metric = prop_oneof![Just(Metric::FirstResponse), Just(Metric::Resolution)];
    prop_oneof![
        metric.clone().prop_map(Op::Pause),
        metric.clone().prop_map(Op::Resume),
        metric.clone().prop_map(Op::Met),
        Just(Op::Reopen),
        (metric, 1i64..80).prop_map(|(m, h)| Op::Target(m, h)),
    ]
}

/// A valid event list: invalid ops are dropped by trying them on a scratch clock.
fn events(cal: &BusinessCalendar, start: DateTime<Utc>, ops: &[(Op, i64)]) -> Vec<ClockEvent> {
    let targets = Targets { first_response: Target::business_hours(8), resolution: Target::business_hours(40) };
    let first =
        ClockEvent { at: start, kind: ClockEventKind::Started { targets, calendar_version: 1, policy_version: 1 } };
    let mut clock = SlaClock::replay(std::slice::from_ref(&first), cal).unwrap();
    let mut out = vec![first];
    let mut at = start;
    for (op, gap) in ops {
        at += TimeDelta::seconds(*gap);
        let kind = match op {
            Op::Pause(m) => ClockEventKind::Paused { metric: *m },
            Op::Resume(m) => ClockEventKind::Resumed { metric: *m },
            Op::Met(m) => ClockEventKind::Met { metric: *m },
            Op::Reopen => ClockEventKind::Reopened,
            Op::Target(m, h) => {
                ClockEventKind::TargetChanged { metric: *m, target: Target::business_hours(*h), policy_version: 2 }
            }
        };
        let e = ClockEvent { at, kind };
        if clock.apply(&e, cal).is_ok() {
            out.push(e);
        }
    }
    out
}

proptest! {
    #[test]
    fn replay_in_pieces_matches_replay_at_once(
        start in instant(),
        ops in prop::collection::vec((op(), 0i64..200_000), 0..12),
        split in 0usize..13,
        later in 0i64..2_000_000,
    ) {
        let cal = BusinessCalendar::brazil_default();
        let evs = events(&cal, start, &ops);
        let k = split.min(evs.len());
        let whole = SlaClock::replay(&evs, &cal).unwrap();
        let mut pieces = SlaClock::replay(&evs[..k], &cal).unwrap();
        pieces.apply_all(&evs[k..], &cal).unwrap();
        prop_assert_eq!(&pieces, &whole);
        let now = evs.last().unwrap().at + TimeDelta::seconds(later);
        prop_assert_eq!(pieces.state(now, &cal, 0.8).unwrap(), whole.state(now, &cal, 0.8).unwrap());
    }

    #[test]
    fn pause_shifts_due_by_paused_business_time(
        start in instant(),
        pause_after in 0i64..3_600 * 24 * 7,
        pause_len in 0i64..3_600 * 24 * 10,
    ) {
        let cal = BusinessCalendar::brazil_default();
        let target = TimeDelta::hours(40);
        let targets = Targets { first_response: Target::business_hours(8), resolution: Target { duration: target, mode: helpdesk_domain::sla::ClockMode::Business } };
        let p = start + TimeDelta::seconds(pause_after);
        let r = p + TimeDelta::seconds(pause_len);
        let due0 = cal.add_business_time(start, target);
        prop_assume!(p < due0);
        let evs = [
            ClockEvent { at: start, kind: ClockEventKind::Started { targets, calendar_version: 1, policy_version: 1 } },
            ClockEvent { at: p, kind: ClockEventKind::Paused { metric: Metric::Resolution } },
            ClockEvent { at: r, kind: ClockEventKind::Resumed { metric: Metric::Resolution } },
        ];
        let state = SlaClock::replay(&evs, &cal).unwrap().state(r, &cal, 0.8).unwrap();
        let paused = cal.business_time_between(p, r);
        let due1 = state.resolution.due_at.unwrap();
        prop_assert_eq!(due1, cal.add_business_time(start, target + paused));
        prop_assert_eq!(cal.business_time_between(due0, due1), paused);
    }
}

#[test]
fn years_far_from_the_cache_agree_with_day_walk() {
    let cal = BusinessCalendar::brazil_default();
    for y in [1850, 2400, 3000] {
        let a = NaiveDate::from_ymd_opt(y, 2, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        let b = a + TimeDelta::days(60);
        assert_eq!(cal.business_time_between(a, b), naive_between(&cal, a, b), "{}", a.year());
        let t = cal.add_business_time(a, TimeDelta::hours(100));
        assert_eq!(cal.business_time_between(a, t), TimeDelta::hours(100));
    }
}
