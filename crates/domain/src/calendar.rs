//! Business calendars: when the helpdesk is open, and how much open time lies between instants.
//!
//! Business time is the union of half-open intervals `[open, close)`. Each local opening
//! boundary `L` on a date is mapped to UTC as *the first instant at which the wall clock reads
//! `L` or later*:
//! - a boundary inside a DST gap (02:30 on a spring-forward night in New York) maps to the
//!   transition instant, so the part of an interval that never existed on the wall clock does
//!   not count;
//! - a boundary inside a DST overlap (01:30 on a fall-back night) maps to its first occurrence,
//!   so an interval spanning the repeated hour counts the real elapsed time (one hour more).
//!
//! That mapping is monotonic, so intervals stay ordered and never overlap in UTC.
//!
//! Speed comes from per-year tables (built lazily, cached for 1900–2300 and shared by clones)
//! holding each local day's UTC start and prefix sums of business seconds: `between` is two
//! lookups plus one addition per year crossed, and `add` is a binary search over the prefix
//! sums. chrono-tz is only consulted when a table is built and on the rare days whose length
//! is not 24 h.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::holidays::{ClosedDate, HolidayRule, RuleError, brazil_national_rules};

const NS: i128 = 1_000_000_000;
const DAY_SECS: u32 = 86_400;
/// Years whose tables are cached; others are computed on demand (correct, slower).
const CACHE_FIRST_YEAR: i32 = 1900;
const CACHE_LAST_YEAR: i32 = 2300;
/// Inputs are clamped to these years so that every year we touch (±1) is representable.
const MIN_YEAR: i32 = -262_000;
const MAX_YEAR: i32 = 262_000;

/// A local time of day, in seconds since midnight; `24:00` (86 400) is allowed as an end.
/// Serialized as `"HH:MM"` or `"HH:MM:SS"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u32);

impl TimeOfDay {
    /// Midnight at the start of the day.
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);
    /// Midnight at the end of the day (`24:00`), only meaningful as an interval end.
    pub const END_OF_DAY: TimeOfDay = TimeOfDay(DAY_SECS);

    /// `hour:minute`; out-of-range values are rejected when the calendar is built.
    pub const fn hm(hour: u32, minute: u32) -> Self {
        TimeOfDay(hour.saturating_mul(3600).saturating_add(minute.saturating_mul(60)))
    }

    /// `hour:minute:second`; out-of-range values are rejected when the calendar is built.
    pub const fn hms(hour: u32, minute: u32, second: u32) -> Self {
        TimeOfDay(Self::hm(hour, minute).0.saturating_add(second))
    }

    /// Seconds since local midnight.
    pub const fn seconds(self) -> u32 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if s == 0 { write!(f, "{h:02}:{m:02}") } else { write!(f, "{h:02}:{m:02}:{s:02}") }
    }
}

impl std::str::FromStr for TimeOfDay {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid time of day {s:?}, expected HH:MM or HH:MM:SS");
        let parts: Vec<&str> = s.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let mut nums = [0u32; 3];
        for (slot, part) in nums.iter_mut().zip(&parts) {
            *slot = part.parse().map_err(|_| bad())?;
        }
        let [h, m, sec] = nums;
        if m > 59 || sec > 59 || h > 24 || (h == 24 && (m, sec) != (0, 0)) {
            return Err(bad());
        }
        Ok(TimeOfDay::hms(h, m, sec))
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// One opening interval `[start, end)` in local wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenInterval {
    /// Opening time.
    pub start: TimeOfDay,
    /// Closing time (exclusive); may be `24:00`.
    pub end: TimeOfDay,
}

impl OpenInterval {
    /// `[start, end)`.
    pub const fn new(start: TimeOfDay, end: TimeOfDay) -> Self {
        OpenInterval { start, end }
    }

    /// Whole hours, e.g. `OpenInterval::hours(9, 18)`.
    pub const fn hours(start_hour: u32, end_hour: u32) -> Self {
        OpenInterval { start: TimeOfDay::hm(start_hour, 0), end: TimeOfDay::hm(end_hour, 0) }
    }

    fn len(&self) -> i64 {
        i64::from(self.end.0) - i64::from(self.start.0)
    }
}

/// Opening intervals for each day of the week, sorted and non-overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeeklyHours {
    /// Monday's intervals.
    pub monday: Vec<OpenInterval>,
    /// Tuesday's intervals.
    pub tuesday: Vec<OpenInterval>,
    /// Wednesday's intervals.
    pub wednesday: Vec<OpenInterval>,
    /// Thursday's intervals.
    pub thursday: Vec<OpenInterval>,
    /// Friday's intervals.
    pub friday: Vec<OpenInterval>,
    /// Saturday's intervals.
    pub saturday: Vec<OpenInterval>,
    /// Sunday's intervals.
    pub sunday: Vec<OpenInterval>,
}

impl WeeklyHours {
    /// The same intervals Monday to Friday, closed at weekends.
    pub fn weekdays(intervals: Vec<OpenInterval>) -> Self {
        WeeklyHours {
            monday: intervals.clone(),
            tuesday: intervals.clone(),
            wednesday: intervals.clone(),
            thursday: intervals.clone(),
            friday: intervals,
            ..Default::default()
        }
    }

    /// The intervals of `day`.
    pub fn on(&self, day: Weekday) -> &[OpenInterval] {
        match day {
            Weekday::Mon => &self.monday,
            Weekday::Tue => &self.tuesday,
            Weekday::Wed => &self.wednesday,
            Weekday::Thu => &self.thursday,
            Weekday::Fri => &self.friday,
            Weekday::Sat => &self.saturday,
            Weekday::Sun => &self.sunday,
        }
    }

    /// Mutable access to the intervals of `day`.
    pub fn on_mut(&mut self, day: Weekday) -> &mut Vec<OpenInterval> {
        match day {
            Weekday::Mon => &mut self.monday,
            Weekday::Tue => &mut self.tuesday,
            Weekday::Wed => &mut self.wednesday,
            Weekday::Thu => &mut self.thursday,
            Weekday::Fri => &mut self.friday,
            Weekday::Sat => &mut self.saturday,
            Weekday::Sun => &mut self.sunday,
        }
    }
}

/// A date whose intervals replace the weekly ones (and any holiday rule) — e.g. opening at
/// 14:00 only. Empty `intervals` closes the whole day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayOverride {
    /// The local date.
    pub date: NaiveDate,
    /// That date's opening intervals.
    pub intervals: Vec<OpenInterval>,
    /// Why (shown to admins; used as the closed-day name when `intervals` is empty).
    pub name: String,
}

/// Everything an admin edits; the serialized form of a [`BusinessCalendar`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarSpec {
    /// Bumped on every edit; SLA clocks cite it and look calendars up by it.
    pub version: u32,
    /// IANA zone, serialized by name (e.g. `"America/Sao_Paulo"`).
    #[serde(with = "tz_name")]
    pub time_zone: Tz,
    /// The ordinary week.
    pub weekly_hours: WeeklyHours,
    /// Recurring closed days.
    #[serde(default)]
    pub holiday_rules: Vec<HolidayRule>,
    /// One-off closed dates.
    #[serde(default)]
    pub closed_dates: Vec<ClosedDate>,
    /// Dates with their own hours; they win over rules and the weekly hours.
    #[serde(default)]
    pub overrides: Vec<DayOverride>,
}

mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<Tz>().map_err(|_| serde::de::Error::custom(format!("unknown IANA time zone {name:?}")))
    }
}

/// Why a calendar spec was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// An interval ends after 24:00 or does not start before it ends.
    #[error("{day}: interval {start}–{end} must satisfy start < end ≤ 24:00")]
    BadInterval { day: String, start: TimeOfDay, end: TimeOfDay },
    /// Intervals of a day overlap or are out of order.
    #[error("{day}: intervals must be sorted and must not overlap")]
    Overlapping { day: String },
    /// A date appears twice among one-off closures and overrides.
    #[error("{0} is listed more than once among closed dates and overrides")]
    DuplicateDate(NaiveDate),
    /// The ordinary week has no opening hours, so business time would never advance.
    #[error("the weekly hours must open at least once a week")]
    NoOpeningHours,
    /// A holiday rule is invalid.
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// A validated calendar with lazily built lookup tables. `Clone` is cheap (tables are shared).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "CalendarSpec", into = "CalendarSpec")]
pub struct BusinessCalendar {
    spec: CalendarSpec,
    cache: Arc<[OnceLock<YearTable>]>,
}

impl fmt::Debug for BusinessCalendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusinessCalendar").field("spec", &self.spec).finish_non_exhaustive()
    }
}

impl PartialEq for BusinessCalendar {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl TryFrom<CalendarSpec> for BusinessCalendar {
    type Error = CalendarError;

    fn try_from(spec: CalendarSpec) -> Result<Self, CalendarError> {
        BusinessCalendar::new(spec)
    }
}

impl From<BusinessCalendar> for CalendarSpec {
    fn from(cal: BusinessCalendar) -> Self {
        cal.spec
    }
}

/// Which intervals a local day uses.
#[derive(Debug, Clone, Copy)]
enum DaySource {
    Weekly(Weekday),
    Override(usize),
    Closed,
}

/// One local year: where each day starts in UTC and how much business time precedes it.
#[derive(Debug, Clone)]
struct YearTable {
    first: NaiveDate,
    /// UTC second at which each local day starts; one extra entry for the next Jan 1.
    day_start: Vec<i64>,
    /// Business seconds in the year before each day; one extra entry for the year's total.
    cum: Vec<i64>,
    source: Vec<DaySource>,
}

fn validate_day(day: &str, intervals: &[OpenInterval]) -> Result<(), CalendarError> {
    for iv in intervals {
        if iv.start >= iv.end || iv.end.0 > DAY_SECS {
            return Err(CalendarError::BadInterval { day: day.to_owned(), start: iv.start, end: iv.end });
        }
    }
    if intervals.windows(2).any(|w| w[0].end > w[1].start) {
        return Err(CalendarError::Overlapping { day: day.to_owned() });
    }
    Ok(())
}

fn clamp_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    let lo = NaiveDate::from_ymd_opt(MIN_YEAR, 1, 1).map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
    let hi = NaiveDate::from_ymd_opt(MAX_YEAR, 1, 1).map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
    match (lo, hi) {
        (Some(lo), _) if t < lo => lo,
        (_, Some(hi)) if t > hi => hi,
        _ => t,
    }
}

fn to_ns(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * NS + i128::from(t.timestamp_subsec_nanos())
}

fn from_ns(ns: i128) -> DateTime<Utc> {
    let secs = i64::try_from(ns.div_euclid(NS)).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX });
    let nanos = u32::try_from(ns.rem_euclid(NS)).unwrap_or(0);
    DateTime::from_timestamp(secs, nanos).unwrap_or(if ns < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// Nanoseconds in a delta (sign kept).
pub(crate) fn delta_ns(d: TimeDelta) -> i128 {
    i128::from(d.num_seconds()) * NS + i128::from(d.subsec_nanos())
}

/// A delta of `ns` nanoseconds, saturating at `TimeDelta::MAX`/`MIN`.
pub(crate) fn ns_delta(ns: i128) -> TimeDelta {
    let secs = i64::try_from(ns.div_euclid(NS)).ok();
    let nanos = u32::try_from(ns.rem_euclid(NS)).unwrap_or(0);
    secs.and_then(|s| TimeDelta::new(s, nanos)).unwrap_or(if ns < 0 { TimeDelta::MIN } else { TimeDelta::MAX })
}

fn offset_at(tz: Tz, utc_secs: i64) -> Option<i64> {
    let t = DateTime::from_timestamp(utc_secs, 0)?;
    Some(i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()))
}

/// The first UTC second at which the wall clock in `tz` reads `date` + `secs` or later.
fn first_instant_at_or_after(tz: Tz, date: NaiveDate, secs: u32) -> Option<i64> {
    let (date, secs) = if secs >= DAY_SECS { (date.succ_opt()?, secs - DAY_SECS) } else { (date, secs) };
    let local = date.and_time(chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, 0)?);
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Some(t.timestamp()),
        chrono::LocalResult::Ambiguous(first, _) => Some(first.timestamp()),
        chrono::LocalResult::None => {
            // In a gap: binary-search the transition. Offsets lie within ±15 h, and no zone has
            // two transitions that close together, so wall time is monotonic over the window.
            let wall = local.and_utc().timestamp();
            let (mut lo, mut hi) = (wall - 15 * 3600, wall + 15 * 3600);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if mid + offset_at(tz, mid)? >= wall { hi = mid } else { lo = mid + 1 }
            }
            Some(lo)
        }
    }
}

impl BusinessCalendar {
    /// Validates `spec` and builds the calendar. Closed dates and overrides are sorted by date.
    pub fn new(mut spec: CalendarSpec) -> Result<Self, CalendarError> {
        for day in [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun] {
            validate_day(&day.to_string(), spec.weekly_hours.on(day))?;
        }
        if !Self::WEEK.iter().any(|&d| !spec.weekly_hours.on(d).is_empty()) {
            return Err(CalendarError::NoOpeningHours);
        }
        for rule in &spec.holiday_rules {
            rule.validate()?;
        }
        for o in &spec.overrides {
            validate_day(&o.date.to_string(), &o.intervals)?;
        }
        let mut dates: Vec<NaiveDate> =
            spec.closed_dates.iter().map(|c| c.date).chain(spec.overrides.iter().map(|o| o.date)).collect();
        dates.sort_unstable();
        if let Some(w) = dates.windows(2).find(|w| w[0] == w[1]) {
            return Err(CalendarError::DuplicateDate(w[0]));
        }
        spec.closed_dates.sort_by_key(|c| c.date);
        spec.overrides.sort_by_key(|o| o.date);
        Ok(Self::build(spec))
    }

    const WEEK: [Weekday; 7] =
        [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];

    fn build(spec: CalendarSpec) -> Self {
        let years = usize::try_from(CACHE_LAST_YEAR - CACHE_FIRST_YEAR + 1).unwrap_or(0);
        let cache: Arc<[OnceLock<YearTable>]> = (0..years).map(|_| OnceLock::new()).collect();
        BusinessCalendar { spec, cache }
    }

    /// The helpdesk policy's calendar: America/Sao_Paulo, Monday–Friday 09:00–18:00, closed on
    /// Brazil's national holidays plus Carnival Monday/Tuesday, Good Friday and Corpus Christi.
    /// Version 1.
    pub fn brazil_default() -> Self {
        Self::build(CalendarSpec {
            version: 1,
            time_zone: chrono_tz::America::Sao_Paulo,
            weekly_hours: WeeklyHours::weekdays(vec![OpenInterval::hours(9, 18)]),
            holiday_rules: brazil_national_rules(),
            closed_dates: Vec::new(),
            overrides: Vec::new(),
        })
    }

    /// The (normalized) spec, for storage and editing.
    pub fn spec(&self) -> &CalendarSpec {
        &self.spec
    }

    /// The version SLA clocks cite.
    pub fn version(&self) -> u32 {
        self.spec.version
    }

    /// The calendar's zone.
    pub fn time_zone(&self) -> Tz {
        self.spec.time_zone
    }

    /// The local date at `now` in the calendar's zone: contracts, reopen windows, monthly quotas
    /// and report periods all count in it.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.spec.time_zone).date_naive()
    }

    /// `now` on the calendar's wall clock.
    pub fn local(&self, now: DateTime<Utc>) -> DateTime<Tz> {
        now.with_timezone(&self.spec.time_zone)
    }

    /// The instant a local date begins: the first instant whose wall clock reads that date
    /// (a midnight skipped by a DST change begins the day at the transition).
    pub fn start_of_day(&self, date: NaiveDate) -> DateTime<Utc> {
        let tz = self.spec.time_zone;
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        match tz.from_local_datetime(&midnight) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
            // Midnight fell into a gap: the day starts at the first existing instant after it.
            chrono::LocalResult::None => (1..=180)
                .find_map(|m| tz.from_local_datetime(&(midnight + TimeDelta::minutes(m))).earliest())
                .map_or_else(|| Utc.from_utc_datetime(&midnight), |t| t.with_timezone(&Utc)),
        }
    }

    /// The local calendar month holding `date`, as the half-open instants `[first day, first day
    /// of the next month)`.
    pub fn month_of(&self, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let first = date.with_day(1).unwrap_or(date);
        let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
        (self.start_of_day(first), self.start_of_day(next))
    }

    /// Business time inside `[from, to)`; zero when `to <= from`.
    pub fn business_time_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        let (from, to) = (clamp_instant(from), clamp_instant(to));
        if to <= from {
            return TimeDelta::zero();
        }
        let (Some((ya, ta, ia)), Some((yb, tb, ib))) = (self.locate(from.timestamp()), self.locate(to.timestamp()))
        else {
            return TimeDelta::zero();
        };
        let mut total = self.before_in_year(&tb, ib, to_ns(to)) - self.before_in_year(&ta, ia, to_ns(from));
        for y in ya..yb {
            total += self.table(y).map_or(0, |t| i128::from(t.total())) * NS;
        }
        ns_delta(total.max(0))
    }

    /// The earliest instant `t >= start` with `business_time_between(start, t) == amount`.
    /// Zero or negative amounts return `start`; results past year 262 000 saturate.
    pub fn add_business_time(&self, start: DateTime<Utc>, amount: TimeDelta) -> DateTime<Utc> {
        let mut rem = delta_ns(amount);
        if rem <= 0 {
            return start;
        }
        let start = clamp_instant(start);
        let s = to_ns(start);
        let Some((mut year, mut table, day)) = self.locate(start.timestamp()) else {
            return start;
        };
        // No year holds more than 366 days of business time: anything beyond the supported
        // range saturates without walking there year by year.
        if rem > i128::from(MAX_YEAR - year + 1) * 366 * i128::from(DAY_SECS) * NS {
            return DateTime::<Utc>::MAX_UTC;
        }
        for (a, b) in self.intervals_ns(&table, day) {
            if b <= s {
                continue;
            }
            let from = a.max(s);
            if rem <= b - from {
                return from_ns(from + rem);
            }
            rem -= b - from;
        }
        let mut first_day = day + 1;
        loop {
            let base = i128::from(table.cum[first_day]) * NS;
            let left = i128::from(table.total()) * NS - base;
            if rem > left {
                rem -= left;
                year += 1;
                table = match self.table(year) {
                    Some(t) if year <= MAX_YEAR => t,
                    _ => return DateTime::<Utc>::MAX_UTC,
                };
                first_day = 0;
                continue;
            }
            let k = first_day + table.cum[first_day..].partition_point(|&c| i128::from(c) * NS - base < rem);
            let day = k.saturating_sub(1);
            let mut rem = rem - (i128::from(table.cum[day]) * NS - base);
            for (a, b) in self.intervals_ns(&table, day) {
                if rem <= b - a {
                    return from_ns(a + rem);
                }
                rem -= b - a;
            }
            // Unreachable when the tables are consistent; fall back to the day's end.
            return from_ns(i128::from(table.day_start[day + 1]) * NS);
        }
    }

    /// Whether `at` lies inside an open interval.
    pub fn is_business_time(&self, at: DateTime<Utc>) -> bool {
        let at = clamp_instant(at);
        let t = to_ns(at);
        self.locate(at.timestamp())
            .is_some_and(|(_, table, day)| self.intervals_ns(&table, day).any(|(a, b)| a <= t && t < b))
    }

    /// The earliest business instant at or after `at` (`at` itself when open).
    pub fn next_business_instant(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let one = TimeDelta::nanoseconds(1);
        let t = self.add_business_time(at, one);
        if t == DateTime::<Utc>::MAX_UTC { t } else { t - one }
    }

    /// The open intervals of a local date, in UTC (after DST mapping; empty intervals dropped).
    pub fn open_intervals_on(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let Some(table) = self.table(date.year()) else {
            return Vec::new();
        };
        let day = usize::try_from(date.ordinal0()).unwrap_or(0);
        self.intervals_ns(&table, day).map(|(a, b)| (from_ns(a), from_ns(b))).collect()
    }

    /// Every closed date of `year` with its name, sorted: holiday rules, one-off dates and
    /// all-day-closed overrides (dates an override reopens are left out). Names of rules falling
    /// on the same date are joined with " / ". Weekend dates are listed too.
    pub fn closed_days_in_year(&self, year: i32) -> Vec<(NaiveDate, String)> {
        let mut days: Vec<(NaiveDate, String)> = self
            .spec
            .holiday_rules
            .iter()
            .filter_map(|r| Some((r.date_in(year)?, r.name().to_owned())))
            .chain(self.spec.closed_dates.iter().filter(|c| c.date.year() == year).map(|c| (c.date, c.name.clone())))
            .filter(|(d, _)| self.override_on(*d).is_none())
            .chain(
                self.spec
                    .overrides
                    .iter()
                    .filter(|o| o.date.year() == year && o.intervals.is_empty())
                    .map(|o| (o.date, o.name.clone())),
            )
            .collect();
        days.sort();
        days.dedup_by(|later, earlier| {
            if later.0 != earlier.0 {
                return false;
            }
            if !earlier.1.split(" / ").any(|n| n == later.1) {
                earlier.1 = format!("{} / {}", earlier.1, later.1);
            }
            true
        });
        days
    }

    /// Closed dates (with names) whose local date lies within `[from, to]` and that would
    /// otherwise have had opening hours — the days a clock over that span skipped.
    pub fn closed_days_skipped(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(NaiveDate, String)> {
        let (from, to) = (clamp_instant(from), clamp_instant(to));
        if to < from {
            return Vec::new();
        }
        let tz = self.spec.time_zone;
        let first = from.with_timezone(&tz).date_naive();
        let last = to.with_timezone(&tz).date_naive();
        (first.year()..=last.year())
            .flat_map(|y| self.closed_days_in_year(y))
            .filter(|(d, _)| (first..=last).contains(d) && !self.spec.weekly_hours.on(d.weekday()).is_empty())
            .collect()
    }

    fn override_on(&self, date: NaiveDate) -> Option<usize> {
        self.spec.overrides.binary_search_by_key(&date, |o| o.date).ok()
    }

    fn day_intervals(&self, source: DaySource) -> &[OpenInterval] {
        match source {
            DaySource::Weekly(w) => self.spec.weekly_hours.on(w),
            DaySource::Override(i) => self.spec.overrides.get(i).map_or(&[], |o| &o.intervals),
            DaySource::Closed => &[],
        }
    }

    /// A day's intervals as UTC nanoseconds. Ordinary days are pure arithmetic; only days that
    /// are not 24 h long (DST changes) consult the zone.
    fn intervals_ns<'a>(&'a self, table: &'a YearTable, day: usize) -> impl Iterator<Item = (i128, i128)> + 'a {
        let start = table.day_start.get(day).copied().unwrap_or(0);
        let next = table.day_start.get(day + 1).copied().unwrap_or(start);
        let source = table.source.get(day).copied().unwrap_or(DaySource::Closed);
        let date = table.first + chrono::Days::new(day as u64);
        self.day_intervals(source).iter().filter_map(move |iv| {
            let (a, b) = self.resolve(date, start, next, iv)?;
            (a < b).then_some((i128::from(a) * NS, i128::from(b) * NS))
        })
    }

    fn resolve(&self, date: NaiveDate, start: i64, next: i64, iv: &OpenInterval) -> Option<(i64, i64)> {
        if next - start == i64::from(DAY_SECS) {
            return Some((start + i64::from(iv.start.0), start + i64::from(iv.end.0)));
        }
        let at = |secs: u32| match secs {
            0 => Some(start),
            DAY_SECS => Some(next),
            _ => first_instant_at_or_after(self.spec.time_zone, date, secs),
        };
        Some((at(iv.start.0)?, at(iv.end.0)?))
    }

    /// Business nanoseconds from the start of the table's year up to `t` (which is in `day`).
    fn before_in_year(&self, table: &YearTable, day: usize, t: i128) -> i128 {
        let in_day: i128 = self.intervals_ns(table, day).map(|(a, b)| (b.min(t) - a).max(0)).sum();
        i128::from(table.cum.get(day).copied().unwrap_or(0)) * NS + in_day
    }

    /// The local year, its table and the day index containing UTC second `t`.
    fn locate(&self, t: i64) -> Option<(i32, Cow<'_, YearTable>, usize)> {
        let mut year = DateTime::from_timestamp(t, 0)?.year();
        for _ in 0..3 {
            let table = self.table(year)?;
            if t < *table.day_start.first()? {
                year -= 1;
            } else if t >= *table.day_start.last()? {
                year += 1;
            } else {
                let day = table.day_start.partition_point(|&s| s <= t).saturating_sub(1);
                return Some((year, table, day));
            }
        }
        None
    }

    fn table(&self, year: i32) -> Option<Cow<'_, YearTable>> {
        if (CACHE_FIRST_YEAR..=CACHE_LAST_YEAR).contains(&year) {
            let slot = self.cache.get(usize::try_from(year - CACHE_FIRST_YEAR).ok()?)?;
            if let Some(t) = slot.get() {
                return Some(Cow::Borrowed(t));
            }
            let built = self.build_year(year)?;
            return Some(Cow::Borrowed(slot.get_or_init(|| built)));
        }
        self.build_year(year).map(Cow::Owned)
    }

    fn build_year(&self, year: i32) -> Option<YearTable> {
        let tz = self.spec.time_zone;
        let first = NaiveDate::from_ymd_opt(year, 1, 1)?;
        let next_first = NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?;
        let n = usize::try_from(next_first.signed_duration_since(first).num_days()).ok()?;
        let mut source: Vec<DaySource> = first.iter_days().take(n).map(|d| DaySource::Weekly(d.weekday())).collect();
        let mut close = |d: NaiveDate, src: DaySource| {
            if d.year() == year
                && let Some(slot) = source.get_mut(usize::try_from(d.ordinal0()).unwrap_or(usize::MAX))
            {
                *slot = src;
            }
        };
        for rule in &self.spec.holiday_rules {
            if let Some(d) = rule.date_in(year) {
                close(d, DaySource::Closed);
            }
        }
        let in_year = |d: NaiveDate| d >= first && d < next_first;
        let lo = self.spec.closed_dates.partition_point(|c| c.date < first);
        for c in self.spec.closed_dates[lo..].iter().take_while(|c| in_year(c.date)) {
            close(c.date, DaySource::Closed);
        }
        let lo = self.spec.overrides.partition_point(|o| o.date < first);
        for (i, o) in self.spec.overrides.iter().enumerate().skip(lo).take_while(|(_, o)| in_year(o.date)) {
            close(o.date, DaySource::Override(i));
        }
        let mut day_start = Vec::with_capacity(n + 1);
        for d in first.iter_days().take(n + 1) {
            day_start.push(first_instant_at_or_after(tz, d, 0)?);
        }
        let mut cum = Vec::with_capacity(n + 1);
        let mut acc = 0i64;
        cum.push(0);
        for (i, (&src, date)) in source.iter().zip(first.iter_days()).enumerate() {
            let (start, next) = (day_start[i], day_start[i + 1]);
            for iv in self.day_intervals(src) {
                if next - start == i64::from(DAY_SECS) {
                    acc += iv.len();
                } else if let Some((a, b)) = self.resolve(date, start, next, iv) {
                    acc += (b - a).max(0);
                }
            }
            cum.push(acc);
        }
        Some(YearTable { first, day_start, cum, source })
    }
}

impl YearTable {
    fn total(&self) -> i64 {
        self.cum.last().copied().unwrap_or(0)
    }
}
