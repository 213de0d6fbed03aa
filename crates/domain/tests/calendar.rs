#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Edge cases of the business calendar, checked to the second.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc, Weekday};
use helpdesk_domain::calendar::{
    BusinessCalendar, CalendarError, CalendarSpec, DayOverride, OpenInterval, TimeOfDay, WeeklyHours,
};
use helpdesk_domain::holidays::{ClosedDate, HolidayRule};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn h(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn br() -> BusinessCalendar {
    BusinessCalendar::brazil_default()
}

fn nine_to_six(tz: chrono_tz::Tz) -> BusinessCalendar {
    BusinessCalendar::new(CalendarSpec {
        version: 7,
        time_zone: tz,
        weekly_hours: WeeklyHours::weekdays(vec![OpenInterval::hours(9, 18)]),
        holiday_rules: vec![],
        closed_dates: vec![],
        overrides: vec![],
    })
    .unwrap()
}

fn every_day(tz: chrono_tz::Tz, intervals: Vec<OpenInterval>) -> BusinessCalendar {
    let mut week = WeeklyHours::weekdays(intervals.clone());
    week.saturday = intervals.clone();
    week.sunday = intervals;
    BusinessCalendar::new(CalendarSpec {
        version: 1,
        time_zone: tz,
        weekly_hours: week,
        holiday_rules: vec![],
        closed_dates: vec![],
        overrides: vec![],
    })
    .unwrap()
}

#[test]
fn before_opening_starts_at_nine() {
    // Monday 2026-03-02, 07:00 local = 10:00Z.
    let cal = br();
    assert_eq!(cal.add_business_time(utc("2026-03-02T10:00:00Z"), h(1)), utc("2026-03-02T13:00:00Z"));
    assert_eq!(cal.next_business_instant(utc("2026-03-02T10:00:00Z")), utc("2026-03-02T12:00:00Z"));
    assert!(!cal.is_business_time(utc("2026-03-02T11:59:59Z")));
    assert!(cal.is_business_time(utc("2026-03-02T12:00:00Z")));
}

#[test]
fn running_out_at_six_stays_at_six() {
    let cal = br();
    let monday_nine = utc("2026-03-02T12:00:00Z");
    assert_eq!(cal.add_business_time(monday_nine, h(9)), utc("2026-03-02T21:00:00Z"));
    assert_eq!(cal.add_business_time(monday_nine, h(9) + TimeDelta::seconds(1)), utc("2026-03-03T12:00:01Z"));
    assert!(!cal.is_business_time(utc("2026-03-02T21:00:00Z")));
    assert!(cal.is_business_time(utc("2026-03-02T20:59:59Z")));
    // Starting exactly at 18:00: the next hour is on Tuesday.
    assert_eq!(cal.add_business_time(utc("2026-03-02T21:00:00Z"), h(1)), utc("2026-03-03T13:00:00Z"));
}

#[test]
fn zero_and_negative_amounts_return_start() {
    let cal = br();
    let t = utc("2026-03-07T03:04:05.123456789Z");
    assert_eq!(cal.add_business_time(t, TimeDelta::zero()), t);
    assert_eq!(cal.add_business_time(t, h(-5)), t);
    assert_eq!(cal.business_time_between(t, t - h(1)), TimeDelta::zero());
}

#[test]
fn friday_evening_to_monday() {
    let cal = br();
    // Friday 2026-03-06 17:00 local; two hours → Monday 10:00 local.
    assert_eq!(cal.add_business_time(utc("2026-03-06T20:00:00Z"), h(2)), utc("2026-03-09T13:00:00Z"));
    assert_eq!(cal.business_time_between(utc("2026-03-06T20:00:00Z"), utc("2026-03-09T13:00:00Z")), h(2));
    assert!(!cal.is_business_time(utc("2026-03-07T15:00:00Z")));
}

#[test]
fn carnival_2026_is_skipped() {
    let cal = br();
    // Friday 2026-02-13 17:00 local + 2 h: Mon 16 and Tue 17 are Carnival → Wed 18 10:00.
    assert_eq!(cal.add_business_time(utc("2026-02-13T20:00:00Z"), h(2)), utc("2026-02-18T13:00:00Z"));
    assert!(!cal.is_business_time(utc("2026-02-16T15:00:00Z")));
    assert!(!cal.is_business_time(utc("2026-02-17T15:00:00Z")));
    // Ash Wednesday is an ordinary day.
    assert!(cal.is_business_time(utc("2026-02-18T15:00:00Z")));
}

#[test]
fn easter_holidays_2024_to_2026() {
    let cal = br();
    for (y, m, d, name) in [
        (2026, 4, 3, "Sexta-feira Santa"),
        (2026, 6, 4, "Corpus Christi"),
        (2025, 4, 18, "Sexta-feira Santa"),
        (2025, 3, 3, "Carnaval (segunda-feira)"),
        (2024, 3, 29, "Sexta-feira Santa"),
        (2024, 2, 13, "Carnaval (terça-feira)"),
    ] {
        let days = cal.closed_days_in_year(y);
        assert!(days.contains(&(date(y, m, d), name.to_owned())), "{y}-{m}-{d} {name}: {days:?}");
        assert!(cal.open_intervals_on(date(y, m, d)).is_empty());
    }
    let names: Vec<String> = cal.closed_days_in_year(2026).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names.len(), 13);
    assert!(names.contains(&"Tiradentes".to_owned()));
}

#[test]
fn year_end_skips_christmas_and_new_year() {
    let cal = br();
    // Thursday 2026-12-24 17:00 local + 2 h: Dec 25 closed → Mon Dec 28 10:00.
    assert_eq!(cal.add_business_time(utc("2026-12-24T20:00:00Z"), h(2)), utc("2026-12-28T13:00:00Z"));
    // Thursday 2026-12-31 17:00 local + 2 h: Jan 1 (Fri) closed → Mon Jan 4 10:00.
    assert_eq!(cal.add_business_time(utc("2026-12-31T20:00:00Z"), h(2)), utc("2027-01-04T13:00:00Z"));
    // 2025: Wed Dec 24 → Fri Dec 26 → Fri Jan 2 over Thu Jan 1.
    assert_eq!(cal.add_business_time(utc("2025-12-24T20:00:00Z"), h(2)), utc("2025-12-26T13:00:00Z"));
    assert_eq!(cal.add_business_time(utc("2025-12-31T20:00:00Z"), h(2)), utc("2026-01-02T13:00:00Z"));
    // Dec 24 09:00 → Jan 2 18:00 (2025): Dec 24, 26, 29, 30, 31, Jan 2 = 6 days.
    assert_eq!(cal.business_time_between(utc("2025-12-24T12:00:00Z"), utc("2026-01-02T21:00:00Z")), h(54));
}

#[test]
fn seconds_and_nanoseconds_are_kept() {
    let cal = br();
    let start = utc("2026-03-02T12:00:00.123456789Z");
    let end = cal.add_business_time(start, TimeDelta::seconds(3725));
    assert_eq!(end, utc("2026-03-02T13:02:05.123456789Z"));
    assert_eq!(cal.business_time_between(start, end), TimeDelta::seconds(3725));
    let d = TimeDelta::new(9 * 3600 - 1, 999_999_999).unwrap();
    assert_eq!(cal.add_business_time(utc("2026-03-02T12:00:00Z"), d), utc("2026-03-02T20:59:59.999999999Z"));
}

#[test]
fn lunch_break_splits_the_day() {
    let cal = BusinessCalendar::new(CalendarSpec {
        version: 2,
        time_zone: chrono_tz::America::Sao_Paulo,
        weekly_hours: WeeklyHours::weekdays(vec![OpenInterval::hours(8, 12), OpenInterval::hours(13, 17)]),
        holiday_rules: vec![],
        closed_dates: vec![],
        overrides: vec![],
    })
    .unwrap();
    // Monday 11:00 local + 2 h → 12:00 then lunch → 14:00.
    assert_eq!(cal.add_business_time(utc("2026-03-02T14:00:00Z"), h(2)), utc("2026-03-02T17:00:00Z"));
    // Exactly one hour lands on 12:00, the closing of the morning.
    assert_eq!(cal.add_business_time(utc("2026-03-02T14:00:00Z"), h(1)), utc("2026-03-02T15:00:00Z"));
    assert!(!cal.is_business_time(utc("2026-03-02T15:30:00Z")));
    assert_eq!(cal.business_time_between(utc("2026-03-02T11:00:00Z"), utc("2026-03-02T20:00:00Z")), h(8));
}

#[test]
fn partial_day_override_and_one_off_closure() {
    let spec = CalendarSpec {
        overrides: vec![DayOverride {
            date: date(2026, 3, 4),
            intervals: vec![OpenInterval::new(TimeOfDay::hm(14, 0), TimeOfDay::hm(18, 0))],
            name: "Inventário".into(),
        }],
        closed_dates: vec![ClosedDate { date: date(2026, 3, 5), name: "Aniversário da cidade".into() }],
        ..BusinessCalendar::brazil_default().spec().clone()
    };
    let cal = BusinessCalendar::new(spec).unwrap();
    // Wed 2026-03-04 opens at 14:00 local (17:00Z).
    assert!(!cal.is_business_time(utc("2026-03-04T13:00:00Z")));
    assert_eq!(cal.add_business_time(utc("2026-03-04T12:00:00Z"), h(1)), utc("2026-03-04T18:00:00Z"));
    // 4 h on Wed, Thu closed, then Fri.
    assert_eq!(cal.add_business_time(utc("2026-03-04T12:00:00Z"), h(5)), utc("2026-03-06T13:00:00Z"));
    let closed = cal.closed_days_skipped(utc("2026-03-01T00:00:00Z"), utc("2026-03-10T00:00:00Z"));
    assert_eq!(closed, vec![(date(2026, 3, 5), "Aniversário da cidade".to_owned())]);
}

#[test]
fn override_can_open_a_holiday() {
    let spec = CalendarSpec {
        overrides: vec![DayOverride {
            date: date(2026, 4, 21),
            intervals: vec![OpenInterval::hours(9, 12)],
            name: "Plantão".into(),
        }],
        ..BusinessCalendar::brazil_default().spec().clone()
    };
    let cal = BusinessCalendar::new(spec).unwrap();
    assert!(cal.is_business_time(utc("2026-04-21T13:00:00Z")));
    assert!(!cal.closed_days_in_year(2026).iter().any(|(d, _)| *d == date(2026, 4, 21)));
}

#[test]
fn leap_day_2028() {
    let cal = br();
    // Easter 2028 is April 16, so Carnival falls on Mon Feb 28 and Tue Feb 29 (the leap day).
    let days = cal.closed_days_in_year(2028);
    assert!(days.contains(&(date(2028, 2, 28), "Carnaval (segunda-feira)".to_owned())), "{days:?}");
    assert!(days.contains(&(date(2028, 2, 29), "Carnaval (terça-feira)".to_owned())));
    // Fri 2028-02-25 17:00 + 2 h → Wed Mar 1 10:00.
    assert_eq!(cal.add_business_time(utc("2028-02-25T20:00:00Z"), h(2)), utc("2028-03-01T13:00:00Z"));
    // Without the holidays the leap day is an ordinary Tuesday.
    let plain = nine_to_six(chrono_tz::America::Sao_Paulo);
    assert_eq!(plain.add_business_time(utc("2028-02-28T20:00:00Z"), h(2)), utc("2028-02-29T13:00:00Z"));
    assert_eq!(plain.business_time_between(utc("2028-02-29T00:00:00Z"), utc("2028-03-01T00:00:00Z")), h(9));
}

#[test]
fn new_york_dst_days() {
    let cal = nine_to_six(chrono_tz::America::New_York);
    // 2026-03-08 is a Sunday; the Monday after is EDT (UTC−4).
    assert_eq!(
        cal.open_intervals_on(date(2026, 3, 9)),
        vec![(utc("2026-03-09T13:00:00Z"), utc("2026-03-09T22:00:00Z"))]
    );
    // Friday before is EST (UTC−5).
    assert_eq!(
        cal.open_intervals_on(date(2026, 3, 6)),
        vec![(utc("2026-03-06T14:00:00Z"), utc("2026-03-06T23:00:00Z"))]
    );
    assert_eq!(cal.add_business_time(utc("2026-03-06T22:00:00Z"), h(2)), utc("2026-03-09T14:00:00Z"));
    assert_eq!(cal.add_business_time(utc("2026-10-30T21:00:00Z"), h(2)), utc("2026-11-02T15:00:00Z"));

    // A 24×7 calendar counts real hours: the spring-forward day has 23, the fall-back day 25.
    let all =
        every_day(chrono_tz::America::New_York, vec![OpenInterval::new(TimeOfDay::MIDNIGHT, TimeOfDay::END_OF_DAY)]);
    let day = |d: NaiveDate| all.open_intervals_on(d).iter().map(|(a, b)| *b - *a).sum::<TimeDelta>();
    assert_eq!(day(date(2026, 3, 8)), h(23));
    assert_eq!(day(date(2026, 11, 1)), h(25));
    let t = utc("2026-03-08T00:00:00Z");
    assert_eq!(all.business_time_between(t, t + h(72)), h(72));
    assert_eq!(all.add_business_time(t, h(72)), t + h(72));

    // 01:00–03:00 local: on 2026-03-08 02:00–03:00 doesn't exist → 1 h; on 2026-11-01 the
    // repeated hour counts → 3 h.
    let night = every_day(chrono_tz::America::New_York, vec![OpenInterval::hours(1, 3)]);
    let span = |d: NaiveDate| night.open_intervals_on(d);
    assert_eq!(span(date(2026, 3, 8)), vec![(utc("2026-03-08T06:00:00Z"), utc("2026-03-08T07:00:00Z"))]);
    assert_eq!(span(date(2026, 11, 1)), vec![(utc("2026-11-01T05:00:00Z"), utc("2026-11-01T08:00:00Z"))]);
    // An interval entirely inside the gap vanishes.
    let gap =
        every_day(chrono_tz::America::New_York, vec![OpenInterval::new(TimeOfDay::hm(2, 15), TimeOfDay::hm(2, 45))]);
    assert!(gap.open_intervals_on(date(2026, 3, 8)).is_empty());
    assert!(!gap.is_business_time(utc("2026-03-08T07:20:00Z")));
    assert_eq!(gap.add_business_time(utc("2026-03-08T00:00:00Z"), TimeDelta::minutes(10)), utc("2026-03-09T06:25:00Z"));
}

#[test]
fn lisbon_dst_days() {
    let tz = chrono_tz::Europe::Lisbon;
    // 2026-03-29 and 2026-10-25 are Sundays; open every day 09:00–18:00.
    let cal = every_day(tz, vec![OpenInterval::hours(9, 18)]);
    assert_eq!(
        cal.open_intervals_on(date(2026, 3, 28)),
        vec![(utc("2026-03-28T09:00:00Z"), utc("2026-03-28T18:00:00Z"))]
    );
    assert_eq!(
        cal.open_intervals_on(date(2026, 3, 29)),
        vec![(utc("2026-03-29T08:00:00Z"), utc("2026-03-29T17:00:00Z"))]
    );
    assert_eq!(
        cal.open_intervals_on(date(2026, 10, 25)),
        vec![(utc("2026-10-25T09:00:00Z"), utc("2026-10-25T18:00:00Z"))]
    );
    assert_eq!(
        cal.open_intervals_on(date(2026, 10, 24)),
        vec![(utc("2026-10-24T08:00:00Z"), utc("2026-10-24T17:00:00Z"))]
    );
    assert_eq!(cal.add_business_time(utc("2026-03-28T17:00:00Z"), h(2)), utc("2026-03-29T09:00:00Z"));
    assert_eq!(cal.business_time_between(utc("2026-03-28T00:00:00Z"), utc("2026-03-30T00:00:00Z")), h(18));
    // Lisbon springs forward at 01:00 local: 00:30–01:30 keeps only 30 minutes.
    let night = every_day(tz, vec![OpenInterval::new(TimeOfDay::hm(0, 30), TimeOfDay::hm(1, 30))]);
    assert_eq!(
        night.open_intervals_on(date(2026, 3, 29)),
        vec![(utc("2026-03-29T00:30:00Z"), utc("2026-03-29T01:00:00Z"))]
    );
    // Falls back at 02:00 → 01:00: 00:30–01:30 starts at 00:30 WEST and ends at the first 01:30.
    assert_eq!(
        night.open_intervals_on(date(2026, 10, 25)),
        vec![(utc("2026-10-24T23:30:00Z"), utc("2026-10-25T00:30:00Z"))]
    );
}

#[test]
fn sao_paulo_historical_dst() {
    // Brazil last sprang forward at midnight on 2018-11-04 (00:00 → 01:00, UTC−2).
    let cal = br();
    assert_eq!(
        cal.open_intervals_on(date(2018, 11, 5)),
        vec![(utc("2018-11-05T11:00:00Z"), utc("2018-11-05T20:00:00Z"))]
    );
    assert_eq!(
        cal.open_intervals_on(date(2018, 11, 1)),
        vec![(utc("2018-11-01T12:00:00Z"), utc("2018-11-01T21:00:00Z"))]
    );
    let all =
        every_day(chrono_tz::America::Sao_Paulo, vec![OpenInterval::new(TimeOfDay::MIDNIGHT, TimeOfDay::END_OF_DAY)]);
    let t = utc("2018-11-01T00:00:00Z");
    assert_eq!(all.business_time_between(t, t + h(200)), h(200));
}

#[test]
fn invalid_specs_are_rejected() {
    let base = BusinessCalendar::brazil_default().spec().clone();
    let mut s = base.clone();
    s.weekly_hours.monday = vec![OpenInterval::hours(18, 9)];
    assert!(matches!(BusinessCalendar::new(s), Err(CalendarError::BadInterval { .. })));
    let mut s = base.clone();
    s.weekly_hours.monday = vec![OpenInterval::hours(9, 25)];
    assert!(matches!(BusinessCalendar::new(s), Err(CalendarError::BadInterval { .. })));
    let mut s = base.clone();
    s.weekly_hours.on_mut(Weekday::Tue).push(OpenInterval::hours(17, 19));
    assert!(matches!(BusinessCalendar::new(s), Err(CalendarError::Overlapping { .. })));
    let mut s = base.clone();
    s.weekly_hours = WeeklyHours::default();
    assert!(matches!(BusinessCalendar::new(s), Err(CalendarError::NoOpeningHours)));
    let mut s = base.clone();
    s.holiday_rules.push(HolidayRule::fixed(2, 31, "x"));
    assert!(matches!(BusinessCalendar::new(s), Err(CalendarError::Rule(_))));
    let mut s = base;
    s.closed_dates.push(ClosedDate { date: date(2026, 1, 5), name: "a".into() });
    s.closed_dates.push(ClosedDate { date: date(2026, 1, 5), name: "b".into() });
    assert!(matches!(BusinessCalendar::new(s), Err(CalendarError::DuplicateDate(_))));
}

#[test]
fn time_of_day_text_form() {
    assert_eq!(TimeOfDay::hm(9, 0).to_string(), "09:00");
    assert_eq!(TimeOfDay::hms(13, 5, 7).to_string(), "13:05:07");
    assert_eq!("24:00".parse::<TimeOfDay>(), Ok(TimeOfDay::END_OF_DAY));
    assert_eq!("08:30:15".parse::<TimeOfDay>(), Ok(TimeOfDay::hms(8, 30, 15)));
    for bad in ["24:01", "9", "09:60", "aa:00", "1:2:3:4"] {
        assert!(bad.parse::<TimeOfDay>().is_err(), "{bad}");
    }
}

#[test]
fn extreme_instants_do_not_panic() {
    let cal = br();
    let (lo, hi) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    let _ = cal.add_business_time(hi, h(5));
    let _ = cal.add_business_time(lo, h(5));
    let _ = cal.is_business_time(lo);
    let _ = cal.is_business_time(hi);
    let near_end = utc("2026-01-01T00:00:00Z");
    assert_eq!(cal.add_business_time(near_end, TimeDelta::MAX), DateTime::<Utc>::MAX_UTC);
    let _ = cal.business_time_between(utc("2200-01-01T00:00:00Z"), utc("2600-01-01T00:00:00Z"));
}

#[test]
fn long_spans_match_day_counts() {
    let cal = br();
    // 2026 has 261 weekdays; 12 of the 13 holidays fall on weekdays (Nov 15 is a Sunday).
    let y = cal.business_time_between(utc("2026-01-01T03:00:00Z"), utc("2027-01-01T03:00:00Z"));
    assert_eq!(y, h(9 * (261 - 12)));
    assert_eq!(cal.add_business_time(utc("2026-01-01T03:00:00Z"), y), utc("2026-12-31T21:00:00Z"));
}

#[test]
fn local_dates_follow_the_calendars_zone() {
    let cal = br();
    // 01:30 UTC on the 1st is still the evening of the 31st in São Paulo (UTC−3).
    assert_eq!(cal.today(utc("2026-02-01T01:30:00Z")), date(2026, 1, 31));
    assert_eq!(cal.today(utc("2026-02-01T03:00:00Z")), date(2026, 2, 1));
    assert_eq!(cal.start_of_day(date(2026, 2, 1)), utc("2026-02-01T03:00:00Z"));
    assert_eq!(cal.month_of(date(2026, 2, 17)), (utc("2026-02-01T03:00:00Z"), utc("2026-03-01T03:00:00Z")));
    assert_eq!(cal.month_of(date(2026, 12, 31)), (utc("2026-12-01T03:00:00Z"), utc("2027-01-01T03:00:00Z")));

    let mut spec = BusinessCalendar::brazil_default().spec().clone();
    spec.time_zone = chrono_tz::America::New_York;
    let ny = BusinessCalendar::new(spec).unwrap();
    assert_eq!(ny.today(utc("2026-02-01T03:00:00Z")), date(2026, 1, 31));
    // New York's March: 31 days less the hour lost to DST.
    let (start, end) = ny.month_of(date(2026, 3, 9));
    assert_eq!(end - start, TimeDelta::days(31) - h(1));
}
