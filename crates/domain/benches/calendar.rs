//! `add_business_time` / `business_time_between` against a naive day-by-day walk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use helpdesk_domain::calendar::BusinessCalendar;

/// The baseline: walk local dates one by one, evaluating holiday rules and converting each
/// interval through chrono-tz every day.
mod naive {
    use super::*;

    fn intervals(cal: &BusinessCalendar, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let spec = cal.spec();
        if spec.holiday_rules.iter().any(|r| r.date_in(date.year()) == Some(date))
            || spec.closed_dates.iter().any(|c| c.date == date)
        {
            return Vec::new();
        }
        let list = match spec.overrides.iter().find(|o| o.date == date) {
            Some(o) => o.intervals.clone(),
            None => spec.weekly_hours.on(date.weekday()).to_vec(),
        };
        let local = |secs: u32| {
            let t = date.and_hms_opt(0, 0, 0).unwrap() + TimeDelta::seconds(i64::from(secs));
            spec.time_zone.from_local_datetime(&t).earliest().map(|t| t.with_timezone(&Utc))
        };
        list.iter().filter_map(|iv| Some((local(iv.start.seconds())?, local(iv.end.seconds())?))).collect()
    }

    pub fn add(cal: &BusinessCalendar, start: DateTime<Utc>, amount: TimeDelta) -> DateTime<Utc> {
        let mut rem = amount;
        let mut date = start.with_timezone(&cal.time_zone()).date_naive();
        loop {
            for (a, b) in intervals(cal, date) {
                if b <= start {
                    continue;
                }
                let from = a.max(start);
                if rem <= b - from {
                    return from + rem;
                }
                rem -= b - from;
            }
            date = date.succ_opt().unwrap();
        }
    }

    pub fn between(cal: &BusinessCalendar, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        let tz = cal.time_zone();
        let mut date = from.with_timezone(&tz).date_naive();
        let last = to.with_timezone(&tz).date_naive();
        let mut total = TimeDelta::zero();
        while date <= last {
            for (a, b) in intervals(cal, date) {
                let (a, b) = (a.max(from), b.min(to));
                if b > a {
                    total += b - a;
                }
            }
            date = date.succ_opt().unwrap();
        }
        total
    }
}

const HOURS: [i64; 4] = [1, 8, 200, 2_000];

fn bench(c: &mut Criterion) {
    let cal = BusinessCalendar::brazil_default();
    // Tuesday 2026-02-10 10:17:23.5 local: the spans cross Carnival, Easter and year ends.
    let start = DateTime::parse_from_rfc3339("2026-02-10T13:17:23.5Z").unwrap().with_timezone(&Utc);
    let _ = cal.add_business_time(start, TimeDelta::hours(4_000)); // warm the year tables

    let mut g = c.benchmark_group("add_business_time");
    for h in HOURS {
        let d = TimeDelta::hours(h);
        assert_eq!(cal.add_business_time(start, d), naive::add(&cal, start, d));
        g.bench_with_input(BenchmarkId::new("fast", h), &d, |b, &d| {
            b.iter(|| cal.add_business_time(black_box(start), black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("naive", h), &d, |b, &d| {
            b.iter(|| naive::add(&cal, black_box(start), black_box(d)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("business_time_between");
    for h in HOURS {
        let end = cal.add_business_time(start, TimeDelta::hours(h));
        assert_eq!(cal.business_time_between(start, end), naive::between(&cal, start, end));
        g.bench_with_input(BenchmarkId::new("fast", h), &end, |b, &end| {
            b.iter(|| cal.business_time_between(black_box(start), black_box(end)))
        });
        g.bench_with_input(BenchmarkId::new("naive", h), &end, |b, &end| {
            b.iter(|| naive::between(&cal, black_box(start), black_box(end)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
