//! Consultancy meetings (R13): which starts are bookable, whether a consultant is free, and when
//! reminders fall. Pure functions over the business calendar; the database enforces the one rule
//! that needs it (no overlaps), and `helpdesk-core` runs these.
//!
//! - A **grid** (default 15 min, counted on the calendar's wall clock) gives the possible starts;
//!   it is separate from the **duration** (at most 45 min).
//! - A meeting lies inside one opening interval of the calendar, so it ends by closing time
//!   (17:15 is the last 45-minute start on a 09:00–18:00 day). Closed days have no starts; a
//!   partial day (an admin override) only the starts of its open part.
//! - **Notice**: the start is at least 2 *business* hours after now; **horizon**: at most 30 days.
//! - A consultant works inside the calendar, within their own weekly hours (default: all of the
//!   calendar's) and outside their time off and meetings.

use crate::calendar::{BusinessCalendar, WeeklyHours};
use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// The tunable parts of the rules; [`MeetingRules::default`] is the policy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeetingRules {
    /// Starts fall on multiples of this on the local wall clock.
    pub grid: TimeDelta,
    pub min_duration: TimeDelta,
    pub max_duration: TimeDelta,
    /// Business time between now and the earliest bookable start.
    pub notice: TimeDelta,
    /// Calendar time between now and the latest bookable start.
    pub horizon: TimeDelta,
    /// A customer's cancellation this close to the start still uses up the quota, and a customer
    /// can no longer reschedule.
    pub cancel_cutoff: TimeDelta,
}

impl Default for MeetingRules {
    fn default() -> Self {
        MeetingRules {
            grid: TimeDelta::minutes(15),
            min_duration: TimeDelta::minutes(15),
            max_duration: TimeDelta::minutes(45),
            notice: TimeDelta::hours(2),
            horizon: TimeDelta::days(30),
            cancel_cutoff: TimeDelta::hours(2),
        }
    }
}

/// The rule a requested meeting breaks; its `code` is part of the API's error contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotRule {
    #[error("a meeting lasts at most 45 minutes")]
    DurationTooLong,
    #[error("a meeting lasts at least 15 minutes")]
    DurationTooShort,
    #[error("meetings start on the slot grid (every 15 minutes on the local clock)")]
    OffGrid,
    #[error("meetings are held Monday to Friday")]
    Weekend,
    #[error("the helpdesk is closed that day")]
    ClosedDay,
    #[error("the meeting must start and end within business hours")]
    OutsideBusinessHours,
    #[error("meetings are booked at least 2 business hours ahead")]
    TooSoon,
    #[error("meetings are booked at most 30 days ahead")]
    TooFar,
    #[error("the consultant does not work at that time")]
    ConsultantUnavailable,
}

impl SlotRule {
    pub fn code(self) -> &'static str {
        match self {
            SlotRule::DurationTooLong => "duration_too_long",
            SlotRule::DurationTooShort => "duration_too_short",
            SlotRule::OffGrid => "off_grid",
            SlotRule::Weekend => "weekend",
            SlotRule::ClosedDay => "closed_day",
            SlotRule::OutsideBusinessHours => "outside_business_hours",
            SlotRule::TooSoon => "too_soon",
            SlotRule::TooFar => "too_far",
            SlotRule::ConsultantUnavailable => "consultant_unavailable",
        }
    }
}

impl MeetingRules {
    /// Checks a duration alone (a slot listing asks before it computes anything).
    pub fn check_duration(&self, duration: TimeDelta) -> Result<(), SlotRule> {
        if duration > self.max_duration {
            Err(SlotRule::DurationTooLong)
        } else if duration < self.min_duration {
            Err(SlotRule::DurationTooShort)
        } else {
            Ok(())
        }
    }

    /// The earliest bookable start at `now`.
    pub fn earliest_start(&self, calendar: &BusinessCalendar, now: DateTime<Utc>) -> DateTime<Utc> {
        calendar.add_business_time(now, self.notice)
    }

    /// The latest bookable start at `now`.
    pub fn latest_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.horizon
    }

    fn on_grid(&self, calendar: &BusinessCalendar, start: DateTime<Utc>) -> bool {
        let local = calendar.local(start);
        let grid = self.grid.num_seconds().max(1);
        local.nanosecond() == 0 && i64::from(local.num_seconds_from_midnight()) % grid == 0
    }

    /// Whether a meeting `[start, start + duration)` requested at `now` keeps every rule that
    /// does not depend on who is free; the first rule broken otherwise.
    pub fn check_request(
        &self,
        calendar: &BusinessCalendar,
        now: DateTime<Utc>,
        start: DateTime<Utc>,
        duration: TimeDelta,
    ) -> Result<(), SlotRule> {
        self.check_duration(duration)?;
        if !self.on_grid(calendar, start) {
            return Err(SlotRule::OffGrid);
        }
        let date = calendar.today(start);
        let open = calendar.open_intervals_on(date);
        if open.is_empty() {
            let weekday = chrono::Datelike::weekday(&date);
            return Err(if calendar.spec().weekly_hours.on(weekday).is_empty() {
                SlotRule::Weekend
            } else {
                SlotRule::ClosedDay
            });
        }
        let end = start + duration;
        if !open.iter().any(|&(a, b)| a <= start && end <= b) {
            return Err(SlotRule::OutsideBusinessHours);
        }
        if start < self.earliest_start(calendar, now) {
            return Err(SlotRule::TooSoon);
        }
        if start > self.latest_start(now) {
            return Err(SlotRule::TooFar);
        }
        Ok(())
    }

    /// Every grid start of a local date whose meeting fits inside one opening interval, in order.
    pub fn starts_on(&self, calendar: &BusinessCalendar, date: NaiveDate, duration: TimeDelta) -> Vec<DateTime<Utc>> {
        let grid = self.grid.num_seconds().max(1);
        let mut starts = Vec::new();
        for (open, close) in calendar.open_intervals_on(date) {
            let local = calendar.local(open);
            let into_grid = i64::from(local.num_seconds_from_midnight()) % grid;
            let mut start = open - TimeDelta::nanoseconds(i64::from(local.nanosecond()));
            if into_grid != 0 || local.nanosecond() != 0 {
                start += TimeDelta::seconds(grid - into_grid);
            }
            while start + duration <= close {
                // A DST change inside the interval shifts the wall clock off the grid.
                if self.on_grid(calendar, start) {
                    starts.push(start);
                }
                start += TimeDelta::seconds(grid);
            }
        }
        starts
    }

    /// Bookable starts between the local dates `from` and `to` (inclusive), clamped to notice
    /// and horizon, each with the indexes of the consultants free for it; only starts with at
    /// least one free consultant are listed.
    pub fn free_slots(
        &self,
        calendar: &BusinessCalendar,
        now: DateTime<Utc>,
        from: NaiveDate,
        to: NaiveDate,
        duration: TimeDelta,
        consultants: &[ConsultantSchedule<'_>],
    ) -> Vec<Slot> {
        let (earliest, latest) = (self.earliest_start(calendar, now), self.latest_start(now));
        let first = from.max(calendar.today(earliest));
        let last = to.min(calendar.today(latest));
        let mut slots = Vec::new();
        for date in first.iter_days().take_while(|d| *d <= last) {
            for start in self.starts_on(calendar, date, duration) {
                if start < earliest || start > latest {
                    continue;
                }
                let end = start + duration;
                let free: Vec<usize> = consultants
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.is_free(calendar, start, end))
                    .map(|(i, _)| i)
                    .collect();
                if !free.is_empty() {
                    slots.push(Slot { start, end, free });
                }
            }
        }
        slots
    }

    /// Whether a customer may still reschedule a meeting starting at `start`.
    pub fn before_cutoff(&self, start: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now <= start - self.cancel_cutoff
    }

    /// Whether a cancellation at `now` still uses up the organisation's quota: a customer's
    /// after the cut-off does; one before it, or an agent's on the customer's behalf, does not.
    pub fn cancellation_counts(&self, start: DateTime<Utc>, now: DateTime<Utc>, by_staff: bool) -> bool {
        !by_staff && !self.before_cutoff(start, now)
    }
}

/// One bookable start and who is free for it (indexes into the consultants given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub free: Vec<usize>,
}

/// When one consultant can meet: their weekly hours (inside the calendar's) and what blocks them.
#[derive(Debug, Clone)]
pub struct ConsultantSchedule<'a> {
    /// `None`: all of the calendar's opening hours.
    pub hours: Option<&'a WeeklyHours>,
    /// Time off and meetings, as half-open ranges sorted by start (they may overlap).
    pub blocked: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The latest end among `blocked[..=i]`, so an overlap check is one binary search.
    reach: Vec<DateTime<Utc>>,
}

impl<'a> ConsultantSchedule<'a> {
    pub fn new(hours: Option<&'a WeeklyHours>, mut blocked: Vec<(DateTime<Utc>, DateTime<Utc>)>) -> Self {
        blocked.sort_unstable();
        let mut reach = Vec::with_capacity(blocked.len());
        let mut furthest = DateTime::<Utc>::MIN_UTC;
        for &(_, end) in &blocked {
            furthest = furthest.max(end);
            reach.push(furthest);
        }
        ConsultantSchedule { hours, blocked, reach }
    }

    /// Whether `[start, end)` lies in the consultant's weekly hours (the calendar's own opening
    /// hours are checked by the caller) and overlaps nothing blocked.
    pub fn is_free(&self, calendar: &BusinessCalendar, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.works_at(calendar, start, end) && !self.is_blocked(start, end)
    }

    /// Within the consultant's own weekly hours (always, without any).
    pub fn works_at(&self, calendar: &BusinessCalendar, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let Some(hours) = self.hours else { return true };
        let local = calendar.local(start);
        let from = i64::from(local.num_seconds_from_midnight());
        let to = from + (end - start).num_seconds();
        hours
            .on(chrono::Datelike::weekday(&local))
            .iter()
            .any(|i| i64::from(i.start.seconds()) <= from && to <= i64::from(i.end.seconds()))
    }

    /// Overlaps time off or a meeting.
    pub fn is_blocked(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        // Ranges starting before `end` are candidates; one of them overlaps exactly when the
        // furthest end among them lies after `start`.
        let before_end = self.blocked.partition_point(|&(s, _)| s < end);
        before_end > 0 && self.reach[before_end - 1] > start
    }
}

/// The two reminders of a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// 24 hours before the start.
    DayBefore,
    /// 1 hour before the start.
    HourBefore,
}

impl ReminderKind {
    pub const ALL: [ReminderKind; 2] = [ReminderKind::DayBefore, ReminderKind::HourBefore];

    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::DayBefore => "day_before",
            ReminderKind::HourBefore => "hour_before",
        }
    }

    /// When this reminder falls for a meeting starting at `start`.
    pub fn instant(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            ReminderKind::DayBefore => start - TimeDelta::hours(24),
            ReminderKind::HourBefore => start - TimeDelta::hours(1),
        }
    }
}

/// What a meeting's row says about its reminders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reminders {
    pub starts_at: DateTime<Utc>,
    /// When the current schedule was set (booking or last reschedule): a reminder whose instant
    /// lies before it is not sent (a meeting booked 3 hours ahead gets no "tomorrow" e-mail).
    pub from: DateTime<Utc>,
    pub day_sent: bool,
    pub hour_sent: bool,
    /// A cancelled meeting has no reminders.
    pub cancelled: bool,
}

/// What a reminder run at some instant does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderRun {
    /// The reminder to send now, if any: when both are due (a worker that was down for a day),
    /// only the one closest to the meeting goes out.
    pub send: Option<ReminderKind>,
    /// Reminders to record as done (the one sent and any it supersedes).
    pub settle: Vec<ReminderKind>,
    /// The instant the next reminder falls, once these are recorded.
    pub next_at: Option<DateTime<Utc>>,
}

impl Reminders {
    fn sent(&self, kind: ReminderKind) -> bool {
        match kind {
            ReminderKind::DayBefore => self.day_sent,
            ReminderKind::HourBefore => self.hour_sent,
        }
    }

    /// Reminders still to send at some point, with their instants.
    fn pending(&self) -> impl Iterator<Item = (ReminderKind, DateTime<Utc>)> + '_ {
        ReminderKind::ALL
            .into_iter()
            .filter(move |k| !self.cancelled && !self.sent(*k))
            .map(|k| (k, k.instant(self.starts_at)))
            .filter(move |(_, at)| *at >= self.from && *at < self.starts_at)
    }

    /// The instant the worker must next look at the meeting.
    pub fn next_at(&self) -> Option<DateTime<Utc>> {
        self.pending().map(|(_, at)| at).min()
    }

    /// What is due at `now`. Nothing is sent once the meeting has started.
    pub fn run(&self, now: DateTime<Utc>) -> ReminderRun {
        let due: Vec<ReminderKind> = self.pending().filter(|(_, at)| *at <= now).map(|(k, _)| k).collect();
        let send = if now < self.starts_at { due.last().copied() } else { None };
        let mut after = *self;
        let mut settle = due;
        if now >= self.starts_at {
            // Past the start: whatever is left will never be sent.
            settle = self.pending().map(|(k, _)| k).collect();
        }
        for kind in &settle {
            match kind {
                ReminderKind::DayBefore => after.day_sent = true,
                ReminderKind::HourBefore => after.hour_sent = true,
            }
        }
        ReminderRun { send, settle, next_at: after.next_at() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn the_last_45_minute_start_is_17_15() {
        let calendar = BusinessCalendar::brazil_default();
        let rules = MeetingRules::default();
        let date = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
        let starts = rules.starts_on(&calendar, date, TimeDelta::minutes(45));
        // 09:00-03:00 = 12:00Z; 17:15-03:00 = 20:15Z.
        assert_eq!(starts.first().copied(), Some(at("2026-12-04T12:00:00Z")));
        assert_eq!(starts.last().copied(), Some(at("2026-12-04T20:15:00Z")));
        assert_eq!(starts.len(), 34);
    }

    #[test]
    fn requests_name_the_rule_they_break() {
        let calendar = BusinessCalendar::brazil_default();
        let rules = MeetingRules::default();
        let now = at("2026-12-01T12:00:00Z"); // Tuesday 09:00 local
        let m45 = TimeDelta::minutes(45);
        assert_eq!(rules.check_request(&calendar, now, at("2026-12-03T13:00:00Z"), m45), Ok(()));
        assert_eq!(
            rules.check_request(&calendar, now, at("2026-12-03T13:00:00Z"), TimeDelta::minutes(50)),
            Err(SlotRule::DurationTooLong)
        );
        assert_eq!(rules.check_request(&calendar, now, at("2026-12-03T13:05:00Z"), m45), Err(SlotRule::OffGrid));
        assert_eq!(rules.check_request(&calendar, now, at("2026-12-05T13:00:00Z"), m45), Err(SlotRule::Weekend));
        assert_eq!(rules.check_request(&calendar, now, at("2026-12-25T13:00:00Z"), m45), Err(SlotRule::ClosedDay));
        assert_eq!(
            rules.check_request(&calendar, now, at("2026-12-03T20:30:00Z"), m45),
            Err(SlotRule::OutsideBusinessHours)
        );
        assert_eq!(rules.check_request(&calendar, now, at("2026-12-01T13:45:00Z"), m45), Err(SlotRule::TooSoon));
        assert_eq!(rules.check_request(&calendar, now, at("2026-12-01T14:00:00Z"), m45), Ok(()));
        assert_eq!(rules.check_request(&calendar, now, at("2027-01-04T13:00:00Z"), m45), Err(SlotRule::TooFar));
    }

    #[test]
    fn a_consultant_is_blocked_by_any_overlap_but_not_back_to_back() {
        let schedule = ConsultantSchedule::new(
            None,
            vec![
                (at("2026-12-03T13:00:00Z"), at("2026-12-03T15:00:00Z")),
                (at("2026-12-03T13:30:00Z"), at("2026-12-03T13:45:00Z")),
            ],
        );
        assert!(schedule.is_blocked(at("2026-12-03T14:30:00Z"), at("2026-12-03T14:45:00Z")));
        assert!(schedule.is_blocked(at("2026-12-03T12:30:00Z"), at("2026-12-03T13:15:00Z")));
        assert!(!schedule.is_blocked(at("2026-12-03T15:00:00Z"), at("2026-12-03T15:45:00Z")));
        assert!(!schedule.is_blocked(at("2026-12-03T12:15:00Z"), at("2026-12-03T13:00:00Z")));
    }

    #[test]
    fn reminders_fall_a_day_and_an_hour_before_and_only_the_closest_goes_out_when_both_are_due() {
        let start = at("2026-12-10T13:00:00Z");
        let r = Reminders {
            starts_at: start,
            from: at("2026-12-01T13:00:00Z"),
            day_sent: false,
            hour_sent: false,
            cancelled: false,
        };
        assert_eq!(r.next_at(), Some(at("2026-12-09T13:00:00Z")));
        let late = r.run(at("2026-12-10T12:30:00Z"));
        assert_eq!(late.send, Some(ReminderKind::HourBefore));
        assert_eq!(late.settle, vec![ReminderKind::DayBefore, ReminderKind::HourBefore]);
        assert_eq!(late.next_at, None);
        let booked_late = Reminders { from: at("2026-12-10T10:00:00Z"), ..r };
        assert_eq!(booked_late.next_at(), Some(at("2026-12-10T12:00:00Z")));
    }
}
