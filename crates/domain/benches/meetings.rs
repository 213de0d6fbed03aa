//! Free slots for 30 days and 10 consultants, each with two meetings a day and one with narrower
//! weekly hours: what `GET /v1/meetings/slots` computes once its rows are read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use helpdesk_domain::calendar::{BusinessCalendar, OpenInterval, WeeklyHours};
use helpdesk_domain::meetings::{ConsultantSchedule, MeetingRules};

fn slots(c: &mut Criterion) {
    let calendar = BusinessCalendar::brazil_default();
    let rules = MeetingRules::default();
    let now: DateTime<Utc> = "2026-12-01T12:00:00Z".parse().unwrap();
    let afternoons = WeeklyHours::weekdays(vec![OpenInterval::hours(13, 18)]);
    let blocked: Vec<(DateTime<Utc>, DateTime<Utc>)> = (1..=30)
        .flat_map(|day| {
            let d = now + TimeDelta::days(day);
            [
                (d + TimeDelta::hours(1), d + TimeDelta::minutes(105)),
                (d + TimeDelta::hours(5), d + TimeDelta::minutes(345)),
            ]
        })
        .collect();
    let consultants: Vec<ConsultantSchedule<'_>> =
        (0..10).map(|i| ConsultantSchedule::new((i == 0).then_some(&afternoons), blocked.clone())).collect();
    let today = calendar.today(now);
    let count = rules
        .free_slots(&calendar, now, today, today + TimeDelta::days(30), TimeDelta::minutes(45), &consultants)
        .len();
    assert!(count > 500, "{count}");
    c.bench_function("free_slots_30_days_10_consultants", |b| {
        b.iter(|| {
            black_box(rules.free_slots(
                &calendar,
                black_box(now),
                today,
                today + TimeDelta::days(30),
                TimeDelta::minutes(45),
                &consultants,
            ))
        })
    });
}

criterion_group!(benches, slots);
criterion_main!(benches);
