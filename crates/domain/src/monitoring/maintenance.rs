//! Maintenance windows (R12): when they cover a monitor, and which monitors they concern.
//!
//! A window is one-off, `[starts_at, ends_at)`, or weekly: from a local wall-clock weekday and
//! time, for a duration of up to a week, in the business calendar's time zone. A weekly window
//! may cross midnight (Tuesday 23:00 for 3 h) or span a whole weekend (Friday 22:00 to Monday
//! 06:00). Its ends are wall-clock readings too, so "Saturday 00:00 to Monday 00:00" stays exactly
//! the weekend across DST changes. Each local boundary maps to UTC as the first instant at which
//! the wall clock reads it or later: a boundary inside a spring-forward gap maps to the
//! transition, one inside a fall-back overlap to its first occurrence (as the calendar does).
//!
//! A window only covers time while it is in force: a weekly window from its creation on, any
//! window until it is cancelled.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use uuid::Uuid;

use super::span::Span;

/// The longest weekly window: a whole week.
pub const MAX_WEEKLY_MINUTES: u32 = 7 * 24 * 60;
/// The longest one-off window.
pub const MAX_ONE_OFF_DAYS: i64 = 31;
/// Limit on coverage chaining (back-to-back occurrences of several windows).
const MAX_CHAIN: usize = 1_000;

/// A weekly window on the local wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyWindow {
    pub weekday: Weekday,
    /// Whole minutes.
    pub start: NaiveTime,
    pub duration_minutes: u32,
    pub zone: Tz,
}

impl WeeklyWindow {
    /// The duration from one local weekday and time to the next occurrence of another
    /// (Friday 22:00 → Monday 06:00 is 56 h); `None` when the two are the same instant of the
    /// week, which names no window.
    pub fn minutes_until(weekday: Weekday, start: NaiveTime, end_weekday: Weekday, end: NaiveTime) -> Option<u32> {
        let at = |d: Weekday, t: NaiveTime| i64::from(d.num_days_from_monday()) * 1440 + i64::from(minute_of_day(t));
        let minutes = (at(end_weekday, end) - at(weekday, start)).rem_euclid(i64::from(MAX_WEEKLY_MINUTES));
        if minutes == 0 { None } else { u32::try_from(minutes).ok() }
    }

    /// The occurrence starting on local date `date` (which must be on `weekday`).
    fn occurrence_on(&self, date: NaiveDate) -> Span {
        let start_local = date.and_time(self.start);
        let end_local = start_local + TimeDelta::minutes(i64::from(self.duration_minutes));
        Span::new(wall_to_utc(self.zone, start_local), wall_to_utc(self.zone, end_local))
    }

    /// Occurrences overlapping `range`, unclipped, in order.
    fn occurrences(&self, range: Span) -> Vec<Span> {
        let first = range.start.with_timezone(&self.zone).date_naive() - TimeDelta::days(8);
        let last = range.end.with_timezone(&self.zone).date_naive() + TimeDelta::days(1);
        let offset = (7 + i64::from(self.weekday.num_days_from_monday())
            - i64::from(first.weekday().num_days_from_monday()))
            % 7;
        let mut date = first + TimeDelta::days(offset);
        let mut out = Vec::new();
        while date <= last {
            let occurrence = self.occurrence_on(date);
            if occurrence.overlaps(&range) {
                out.push(occurrence);
            }
            date += TimeDelta::days(7);
        }
        out
    }
}

fn minute_of_day(t: NaiveTime) -> u32 {
    use chrono::Timelike;
    t.hour() * 60 + t.minute()
}

/// The first UTC instant at which the wall clock in `zone` reads `local` or later.
pub fn wall_to_utc(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Inside a gap: the first minute after it that exists is the gap's end, read at the
            // transition instant (real zones move on whole minutes). Gaps last at most a day.
            (1..=24 * 60)
                .find_map(|m| zone.from_local_datetime(&(local + TimeDelta::minutes(m))).earliest())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| local.and_utc())
        }
    }
}

/// When a window recurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSchedule {
    OneOff(Span),
    Weekly(WeeklyWindow),
}

/// Which monitors a window concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowScope {
    All,
    Organization(Uuid),
    Monitors(Vec<Uuid>),
}

impl WindowScope {
    pub fn concerns(&self, monitor_id: Uuid, organization_id: Uuid) -> bool {
        match self {
            WindowScope::All => true,
            WindowScope::Organization(org) => *org == organization_id,
            WindowScope::Monitors(ids) => ids.contains(&monitor_id),
        }
    }
}

/// A maintenance window with the time it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub schedule: WindowSchedule,
    pub scope: WindowScope,
    /// Nothing before this is covered (a weekly window's creation).
    pub in_force_from: Option<DateTime<Utc>>,
    /// Nothing from this on is covered (the cancellation).
    pub in_force_until: Option<DateTime<Utc>>,
}

impl MaintenanceWindow {
    fn in_force(&self) -> Span {
        Span::new(
            self.in_force_from.unwrap_or(DateTime::<Utc>::MIN_UTC),
            self.in_force_until.unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    /// The covered spans overlapping `range` (clipped to the time in force, not to `range`),
    /// in order.
    pub fn occurrences(&self, range: Span) -> Vec<Span> {
        let in_force = self.in_force();
        let raw = match self.schedule {
            WindowSchedule::OneOff(span) => {
                if span.overlaps(&range) {
                    vec![span]
                } else {
                    Vec::new()
                }
            }
            WindowSchedule::Weekly(weekly) => weekly.occurrences(range),
        };
        raw.into_iter().map(|s| s.clip(&in_force)).filter(|s| !s.is_empty() && s.overlaps(&range)).collect()
    }

    /// Whether the window covers the instant.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        !self.occurrences(Span::new(at, at + TimeDelta::nanoseconds(1))).is_empty()
    }
}

/// Whether any of the windows covers the instant.
pub fn any_covers(windows: &[MaintenanceWindow], at: DateTime<Utc>) -> bool {
    windows.iter().any(|w| w.covers(at))
}

/// The end of the maintenance coverage containing `at`, following back-to-back and overlapping
/// occurrences of all the windows; `None` when `at` is not covered. This is the instant from
/// which a site still down counts its 15-minute and 2-hour timers.
pub fn coverage_end(windows: &[MaintenanceWindow], at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut end: Option<DateTime<Utc>> = None;
    let mut point = at;
    for _ in 0..MAX_CHAIN {
        let probe = Span::new(point, point + TimeDelta::nanoseconds(1));
        let next = windows.iter().flat_map(|w| w.occurrences(probe)).map(|s| s.end).max();
        match next {
            Some(e) if e > point => {
                end = Some(e);
                point = e;
            }
            _ => break,
        }
    }
    end
}

/// The covered spans of all the windows within `range`, merged and clipped to it: what uptime
/// leaves out.
pub fn covered_spans(windows: &[MaintenanceWindow], range: Span) -> Vec<Span> {
    super::span::union(windows.iter().flat_map(|w| w.occurrences(range)).map(|s| s.clip(&range)).collect())
}

/// What is wrong with a window's definition; the field is the API's name for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError {
    pub field: &'static str,
    pub message: String,
}

/// Checks a one-off window at creation: it ends after it starts, in the future, and lasts at
/// most [`MAX_ONE_OFF_DAYS`].
pub fn validate_one_off(span: Span, now: DateTime<Utc>) -> Result<(), WindowError> {
    let err = |field, message: &str| Err(WindowError { field, message: message.to_owned() });
    if span.end <= span.start {
        return err("ends_at", "must be after starts_at");
    }
    if span.end <= now {
        return err("ends_at", "must be in the future");
    }
    if span.length() > TimeDelta::days(MAX_ONE_OFF_DAYS) {
        return err("ends_at", "a one-off window lasts at most 31 days; use a weekly window for recurring maintenance");
    }
    Ok(())
}

/// Checks a weekly window's start and duration.
pub fn validate_weekly(start: NaiveTime, duration_minutes: u32) -> Result<(), WindowError> {
    use chrono::Timelike;
    if start.second() != 0 || start.nanosecond() != 0 {
        return Err(WindowError { field: "start_time", message: "must be a whole minute (HH:MM)".to_owned() });
    }
    if !(1..=MAX_WEEKLY_MINUTES).contains(&duration_minutes) {
        return Err(WindowError {
            field: "duration_minutes",
            message: format!("must be 1 to {MAX_WEEKLY_MINUTES} minutes (a week)"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use proptest::prelude::*;

    const SP: Tz = chrono_tz::America::Sao_Paulo;
    const NY: Tz = chrono_tz::America::New_York;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
    }

    fn weekly(weekday: Weekday, start: NaiveTime, minutes: u32, zone: Tz) -> MaintenanceWindow {
        MaintenanceWindow {
            schedule: WindowSchedule::Weekly(WeeklyWindow { weekday, start, duration_minutes: minutes, zone }),
            scope: WindowScope::All,
            in_force_from: None,
            in_force_until: None,
        }
    }

    /// Minutes since local Monday 00:00, for zones whose wall clock is linear at `at`.
    fn week_minute(at: DateTime<Utc>, zone: Tz) -> i64 {
        let local = at.with_timezone(&zone);
        i64::from(local.weekday().num_days_from_monday()) * 1440 + i64::from(local.hour() * 60 + local.minute())
    }

    #[test]
    fn across_midnight() {
        // Tuesday 23:00 for 3 h, São Paulo (UTC-3, no DST since 2019).
        let w = weekly(Weekday::Tue, hm(23, 0), 180, SP);
        assert!(!w.covers(utc("2026-12-02T01:59:59Z"))); // Tue 22:59:59 local
        assert!(w.covers(utc("2026-12-02T02:00:00Z"))); // Tue 23:00
        assert!(w.covers(utc("2026-12-02T04:59:59Z"))); // Wed 01:59:59
        assert!(!w.covers(utc("2026-12-02T05:00:00Z"))); // Wed 02:00, end excluded
        assert_eq!(coverage_end(&[w], utc("2026-12-02T03:00:00Z")), Some(utc("2026-12-02T05:00:00Z")));
    }

    #[test]
    fn whole_weekend_from_friday_night() {
        let minutes = WeeklyWindow::minutes_until(Weekday::Fri, hm(22, 0), Weekday::Mon, hm(6, 0));
        assert_eq!(minutes, Some(56 * 60));
        let w = weekly(Weekday::Fri, hm(22, 0), 56 * 60, SP);
        assert!(w.covers(utc("2026-12-05T01:00:00Z"))); // Fri 22:00 local
        assert!(w.covers(utc("2026-12-06T06:00:00Z"))); // Sun 03:00
        assert!(!w.covers(utc("2026-12-07T09:00:00Z"))); // Mon 06:00
        assert!(!w.covers(utc("2026-12-04T15:00:00Z"))); // Fri 12:00
        let occurrences = w.occurrences(Span::new(utc("2026-12-01T00:00:00Z"), utc("2026-12-31T00:00:00Z")));
        assert_eq!(occurrences.len(), 4);
        assert!(occurrences.iter().all(|o| o.length() == TimeDelta::hours(56)));
    }

    #[test]
    fn wall_clock_ends_follow_dst() {
        // New York springs forward on Sunday 2026-03-08 at 02:00 → 03:00. Saturday 00:00 to
        // Monday 00:00 is then 47 real hours, and still ends at local Monday midnight.
        let w = weekly(Weekday::Sat, hm(0, 0), 2 * 1440, NY);
        let range = Span::new(utc("2026-03-07T00:00:00Z"), utc("2026-03-10T00:00:00Z"));
        let occ = w.occurrences(range);
        assert_eq!(occ, vec![Span::new(utc("2026-03-07T05:00:00Z"), utc("2026-03-09T04:00:00Z"))]);
        assert_eq!(occ[0].length(), TimeDelta::hours(47));
        // A window starting at 02:30 that night starts when the clock jumps (03:00 EDT).
        let gap = weekly(Weekday::Sun, hm(2, 30), 60, NY);
        let occ = gap.occurrences(range);
        assert_eq!(occ, vec![Span::new(utc("2026-03-08T07:00:00Z"), utc("2026-03-08T07:30:00Z"))]);
        // Fall back on 2026-11-01: 01:30 happens twice; the window starts at the first.
        let overlap = weekly(Weekday::Sun, hm(1, 30), 60, NY);
        let occ = overlap.occurrences(Span::new(utc("2026-11-01T00:00:00Z"), utc("2026-11-02T00:00:00Z")));
        assert_eq!(occ, vec![Span::new(utc("2026-11-01T05:30:00Z"), utc("2026-11-01T07:30:00Z"))]);
    }

    #[test]
    fn in_force_bounds_and_chained_coverage() {
        let mut w = weekly(Weekday::Sat, hm(0, 0), 1440, SP);
        w.in_force_from = Some(utc("2026-12-12T12:00:00Z"));
        assert!(!w.covers(utc("2026-12-05T12:00:00Z"))); // a Saturday before creation
        assert!(w.covers(utc("2026-12-12T12:00:00Z")));
        w.in_force_until = Some(utc("2026-12-15T00:00:00Z"));
        assert!(!w.covers(utc("2026-12-19T12:00:00Z"))); // after cancellation
        // Saturday then Sunday windows chain into one coverage ending Monday 00:00 local.
        let sat = weekly(Weekday::Sat, hm(0, 0), 1440, SP);
        let sun = weekly(Weekday::Sun, hm(0, 0), 1440, SP);
        assert_eq!(coverage_end(&[sat, sun], utc("2026-12-05T12:00:00Z")), Some(utc("2026-12-07T03:00:00Z")));
        assert_eq!(coverage_end(&[], utc("2026-12-05T12:00:00Z")), None);
    }

    #[test]
    fn scope_concerns() {
        let (m, o) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(WindowScope::All.concerns(m, o));
        assert!(WindowScope::Organization(o).concerns(m, o));
        assert!(!WindowScope::Organization(Uuid::new_v4()).concerns(m, o));
        assert!(WindowScope::Monitors(vec![m]).concerns(m, Uuid::new_v4()));
        assert!(!WindowScope::Monitors(vec![Uuid::new_v4()]).concerns(m, o));
    }

    #[test]
    fn validation() {
        let now = utc("2026-12-03T12:00:00Z");
        let span = |a, b| Span::new(utc(a), utc(b));
        assert!(validate_one_off(span("2026-12-05T01:00:00Z", "2026-12-05T05:00:00Z"), now).is_ok());
        assert_eq!(
            validate_one_off(span("2026-12-05T05:00:00Z", "2026-12-05T01:00:00Z"), now).map_err(|e| e.field),
            Err("ends_at")
        );
        assert!(validate_one_off(span("2026-12-01T01:00:00Z", "2026-12-01T05:00:00Z"), now).is_err());
        assert!(validate_one_off(span("2026-12-05T01:00:00Z", "2027-02-05T05:00:00Z"), now).is_err());
        assert!(validate_weekly(hm(23, 0), 180).is_ok());
        assert!(validate_weekly(hm(23, 0), 0).is_err());
        assert!(validate_weekly(hm(23, 0), MAX_WEEKLY_MINUTES + 1).is_err());
        assert!(validate_weekly(NaiveTime::from_hms_opt(1, 2, 3).unwrap_or_default(), 10).is_err());
        assert_eq!(WeeklyWindow::minutes_until(Weekday::Tue, hm(23, 0), Weekday::Wed, hm(2, 0)), Some(180));
        assert_eq!(WeeklyWindow::minutes_until(Weekday::Tue, hm(23, 0), Weekday::Tue, hm(23, 0)), None);
    }

    fn weekday(i: u32) -> Weekday {
        Weekday::try_from(u8::try_from(i % 7).unwrap_or(0)).unwrap_or(Weekday::Mon)
    }

    proptest! {
        /// In a zone without DST, a weekly window covers exactly the instants whose local
        /// minute of the week lies in [start, start + duration), wrapping around Sunday night.
        #[test]
        fn weekly_covers_exactly_its_wall_clock_minutes(
            day in 0u32..7, minute in 0u32..1440, duration in 1u32..=MAX_WEEKLY_MINUTES,
            at_secs in 1_577_836_800i64..1_893_456_000, // 2020..2030
        ) {
            let w = weekly(weekday(day), hm(minute / 60, minute % 60), duration, SP);
            let at = DateTime::from_timestamp(at_secs, 0).unwrap_or_default();
            let start = i64::from(day) * 1440 + i64::from(minute);
            let expected = (week_minute(at, SP) - start).rem_euclid(10_080) < i64::from(duration);
            prop_assert_eq!(w.covers(at), expected);
        }

        /// Saturday 00:00 for two days covers exactly the local weekend, DST or not.
        #[test]
        fn whole_weekend_is_exactly_saturday_and_sunday(at_secs in 1_577_836_800i64..1_893_456_000, ny in any::<bool>()) {
            let zone = if ny { NY } else { SP };
            let w = weekly(Weekday::Sat, hm(0, 0), 2 * 1440, zone);
            let at = DateTime::from_timestamp(at_secs, 0).unwrap_or_default();
            let local_day = at.with_timezone(&zone).weekday();
            prop_assert_eq!(w.covers(at), matches!(local_day, Weekday::Sat | Weekday::Sun));
        }

        /// Coverage end is covered up to its end and not at it (unless another window starts).
        #[test]
        fn coverage_end_is_the_first_uncovered_instant(day in 0u32..7, minute in 0u32..1440, duration in 1u32..3000,
                                                        at_secs in 1_577_836_800i64..1_893_456_000) {
            let w = weekly(weekday(day), hm(minute / 60, minute % 60), duration, NY);
            let at = DateTime::from_timestamp(at_secs, 0).unwrap_or_default();
            let windows = [w];
            match coverage_end(&windows, at) {
                None => prop_assert!(!any_covers(&windows, at)),
                Some(end) => {
                    prop_assert!(any_covers(&windows, at));
                    prop_assert!(end > at);
                    prop_assert!(!any_covers(&windows, end));
                    prop_assert!(any_covers(&windows, end - TimeDelta::seconds(1)));
                }
            }
        }
    }
}
