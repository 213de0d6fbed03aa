#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of the meeting slot rules (R13): every listed slot is bookable and free, none
//! breaks notice, horizon, closing time or the grid, and reminders never go out twice or late.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use helpdesk_domain::calendar::{BusinessCalendar, DayOverride, OpenInterval, TimeOfDay, WeeklyHours};
use helpdesk_domain::meetings::{ConsultantSchedule, MeetingRules, ReminderKind, Reminders, SlotRule};
use proptest::prelude::*;

fn now_strategy() -> impl Strategy<Value = DateTime<Utc>> {
    // 2026-01-01 .. 2027-12-31, at minute precision plus odd seconds.
    (1_767_225_600_i64..1_830_297_600).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

fn calendar_with_partial_day() -> BusinessCalendar {
    let mut spec = BusinessCalendar::brazil_default().spec().clone();
    spec.version = 2;
    spec.overrides.push(DayOverride {
        date: NaiveDate::from_ymd_opt(2026, 12, 23).unwrap(),
        intervals: vec![OpenInterval::new(TimeOfDay::hm(14, 0), TimeOfDay::hm(18, 0))],
        name: "Véspera".into(),
    });
    BusinessCalendar::new(spec).unwrap()
}

fn blocks() -> impl Strategy<Value = Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    proptest::collection::vec((0_i64..40 * 24 * 4, 1_i64..16), 0..30).prop_map(|v| {
        let base = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().with_timezone(&Utc);
        v.into_iter()
            .map(|(q, len)| (base + TimeDelta::minutes(q * 15), base + TimeDelta::minutes((q + len) * 15)))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_listed_slot_is_bookable_free_and_on_the_grid(
        now in now_strategy(),
        minutes in prop_oneof![Just(15_i64), Just(30), Just(45), 15_i64..=45],
        blocked in blocks(),
        narrow in any::<bool>(),
    ) {
        let calendar = calendar_with_partial_day();
        let rules = MeetingRules::default();
        let duration = TimeDelta::minutes(minutes);
        let afternoons = WeeklyHours::weekdays(vec![OpenInterval::hours(13, 18)]);
        let hours = narrow.then_some(&afternoons);
        let consultants = [ConsultantSchedule::new(hours, blocked.clone()), ConsultantSchedule::new(None, blocked)];
        let today = calendar.today(now);
        let slots = rules.free_slots(&calendar, now, today, today + TimeDelta::days(40), duration, &consultants);
        let earliest = calendar.add_business_time(now, TimeDelta::hours(2));
        for slot in &slots {
            prop_assert_eq!(rules.check_request(&calendar, now, slot.start, duration), Ok(()));
            prop_assert!(slot.start >= earliest && slot.start <= now + TimeDelta::days(30));
            prop_assert_eq!(slot.end - slot.start, duration);
            let local = calendar.local(slot.start);
            prop_assert!(local.weekday().number_from_monday() <= 5, "weekend slot {}", local);
            prop_assert_eq!(local.format("%M").to_string().parse::<u32>().unwrap() % 15, 0);
            let local_end = calendar.local(slot.end);
            prop_assert!(local_end.format("%H%M").to_string().as_str() <= "1800", "ends after closing: {}", local_end);
            prop_assert!(!slot.free.is_empty());
            for &i in &slot.free {
                prop_assert!(consultants[i].is_free(&calendar, slot.start, slot.end));
                for &(a, b) in &consultants[i].blocked {
                    prop_assert!(slot.end <= a || b <= slot.start, "slot overlaps a block");
                }
            }
            if narrow && slot.free.contains(&0) {
                prop_assert!(local.format("%H").to_string().as_str() >= "13");
            }
        }
        // Nothing free is left out: every grid start that passes the rules with a free
        // consultant is listed.
        for date in today.iter_days().take(32) {
            for start in rules.starts_on(&calendar, date, duration) {
                let bookable = rules.check_request(&calendar, now, start, duration).is_ok()
                    && consultants.iter().any(|c| c.is_free(&calendar, start, start + duration));
                prop_assert_eq!(bookable, slots.iter().any(|s| s.start == start), "start {}", start);
            }
        }
    }

    #[test]
    fn a_crafted_request_outside_notice_or_horizon_is_refused(now in now_strategy(), offset in -600_i64..60_000) {
        let calendar = BusinessCalendar::brazil_default();
        let rules = MeetingRules::default();
        let start = now + TimeDelta::minutes(offset);
        let verdict = rules.check_request(&calendar, now, start, TimeDelta::minutes(30));
        if start < calendar.add_business_time(now, TimeDelta::hours(2)) {
            prop_assert!(verdict.is_err());
        }
        if start > now + TimeDelta::days(30) {
            prop_assert!(verdict.is_err());
        }
        if verdict == Err(SlotRule::TooSoon) || verdict == Err(SlotRule::TooFar) {
            prop_assert!(rules.check_request(&calendar, start - TimeDelta::days(1), start, TimeDelta::minutes(30)).is_ok());
        }
    }

    #[test]
    fn reminders_go_out_at_most_once_each_and_never_after_the_start(
        lead_minutes in 0_i64..5 * 24 * 60,
        steps in proptest::collection::vec(1_i64..600, 1..40),
    ) {
        let start = DateTime::parse_from_rfc3339("2026-12-10T13:00:00Z").unwrap().with_timezone(&Utc);
        let booked = start - TimeDelta::minutes(lead_minutes);
        let mut state = Reminders { starts_at: start, from: booked, day_sent: false, hour_sent: false, cancelled: false };
        let mut now = booked;
        let mut sent = Vec::new();
        for step in steps {
            now += TimeDelta::minutes(step);
            let run = state.run(now);
            if let Some(kind) = run.send {
                prop_assert!(now < start && now >= kind.instant(start));
                sent.push(kind);
            }
            for kind in run.settle {
                match kind {
                    ReminderKind::DayBefore => state.day_sent = true,
                    ReminderKind::HourBefore => state.hour_sent = true,
                }
            }
            prop_assert_eq!(run.next_at, state.next_at());
            if let Some(next) = run.next_at { prop_assert!(next > now || next >= booked); }
        }
        let mut unique = sent.clone();
        unique.dedup();
        prop_assert_eq!(unique.len(), sent.len());
        if lead_minutes < 24 * 60 { prop_assert!(!sent.contains(&ReminderKind::DayBefore)); }
    }
}
