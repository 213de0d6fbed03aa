//! Closed-day rules: holidays are described by rules so that no one has to type next year's
//! dates in, plus the one-off dates an admin adds.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// Which occurrence of a weekday in a month an [`HolidayRule::NthWeekday`] means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Occurrence {
    /// The first, second, … fifth occurrence (1..=5); a fifth that does not exist yields no date.
    Nth(u8),
    /// The last occurrence in the month.
    Last,
}

/// A recurring closed day, evaluated per year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HolidayRule {
    /// The same month/day every year. Feb 29 only exists in leap years.
    Fixed { month: u32, day: u32, name: String },
    /// A day relative to Gregorian Easter Sunday (Good Friday = −2, Corpus Christi = +60).
    EasterOffset { offset_days: i32, name: String },
    /// E.g. the fourth Thursday of November, or the last Monday of May.
    NthWeekday { month: u32, weekday: Weekday, occurrence: Occurrence, name: String },
}

/// A single closed date an admin adds (a local holiday, an office move…).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClosedDate {
    /// The local date the calendar is closed.
    pub date: NaiveDate,
    /// Shown in the admin listing and in SLA explanations.
    pub name: String,
}

/// Why a rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The month/day pair exists in no year.
    #[error("holiday rule {name:?}: {month}/{day} is not a calendar date")]
    InvalidDate { name: String, month: u32, day: u32 },
    /// The month is outside 1..=12.
    #[error("holiday rule {name:?}: month {month} is out of range")]
    InvalidMonth { name: String, month: u32 },
    /// The occurrence is outside 1..=5.
    #[error("holiday rule {name:?}: occurrence {nth} is out of range 1..=5")]
    InvalidOccurrence { name: String, nth: u8 },
    /// Offsets beyond a year would put the holiday in another year than its Easter.
    #[error("holiday rule {name:?}: Easter offset {offset} is out of range −300..=300")]
    InvalidEasterOffset { name: String, offset: i32 },
}

/// Gregorian Easter Sunday (anonymous / Meeus–Jones–Butcher algorithm). `None` only for years
/// chrono cannot represent.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

impl HolidayRule {
    /// A fixed month/day holiday.
    pub fn fixed(month: u32, day: u32, name: impl Into<String>) -> Self {
        HolidayRule::Fixed { month, day, name: name.into() }
    }

    /// A holiday `offset_days` after (negative: before) Easter Sunday.
    pub fn easter(offset_days: i32, name: impl Into<String>) -> Self {
        HolidayRule::EasterOffset { offset_days, name: name.into() }
    }

    /// The `occurrence` of `weekday` in `month`.
    pub fn nth_weekday(month: u32, weekday: Weekday, occurrence: Occurrence, name: impl Into<String>) -> Self {
        HolidayRule::NthWeekday { month, weekday, occurrence, name: name.into() }
    }

    /// The holiday's display name.
    pub fn name(&self) -> &str {
        match self {
            HolidayRule::Fixed { name, .. }
            | HolidayRule::EasterOffset { name, .. }
            | HolidayRule::NthWeekday { name, .. } => name,
        }
    }

    /// Checks the rule can produce dates; the calendar calls this on construction.
    pub fn validate(&self) -> Result<(), RuleError> {
        let name = self.name().to_owned();
        match *self {
            HolidayRule::Fixed { month, day, .. } => {
                // 2000 is a leap year, so Feb 29 passes.
                if NaiveDate::from_ymd_opt(2000, month, day).is_none() {
                    return Err(RuleError::InvalidDate { name, month, day });
                }
            }
            HolidayRule::EasterOffset { offset_days, .. } => {
                if !(-300..=300).contains(&offset_days) {
                    return Err(RuleError::InvalidEasterOffset { name, offset: offset_days });
                }
            }
            HolidayRule::NthWeekday { month, occurrence, .. } => {
                if !(1..=12).contains(&month) {
                    return Err(RuleError::InvalidMonth { name, month });
                }
                if let Occurrence::Nth(nth) = occurrence
                    && !(1..=5).contains(&nth)
                {
                    return Err(RuleError::InvalidOccurrence { name, nth });
                }
            }
        }
        Ok(())
    }

    /// The date this rule closes in `year`, if any (Feb 29 in a common year, a missing fifth
    /// weekday, or a year chrono cannot represent give `None`).
    pub fn date_in(&self, year: i32) -> Option<NaiveDate> {
        match *self {
            HolidayRule::Fixed { month, day, .. } => NaiveDate::from_ymd_opt(year, month, day),
            HolidayRule::EasterOffset { offset_days, .. } => {
                let easter = easter_sunday(year)?;
                let delta = Days::new(u64::from(offset_days.unsigned_abs()));
                if offset_days >= 0 { easter.checked_add_days(delta) } else { easter.checked_sub_days(delta) }
            }
            HolidayRule::NthWeekday { month, weekday, occurrence, .. } => match occurrence {
                Occurrence::Nth(nth) => NaiveDate::from_weekday_of_month_opt(year, month, weekday, nth),
                Occurrence::Last => last_weekday_of_month(year, month, weekday),
            },
        }
    }
}

fn last_weekday_of_month(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month.checked_add(1)?, 1)?
    };
    let last = first_of_next.pred_opt()?;
    let back = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
    last.checked_sub_days(Days::new(u64::from(back)))
}

/// The national holidays of Brazil that the default helpdesk policy closes on.
pub fn brazil_national_rules() -> Vec<HolidayRule> {
    vec![
        HolidayRule::fixed(1, 1, "Confraternização Universal"),
        HolidayRule::easter(-48, "Carnaval (segunda-feira)"),
        HolidayRule::easter(-47, "Carnaval (terça-feira)"),
        HolidayRule::easter(-2, "Sexta-feira Santa"),
        HolidayRule::fixed(4, 21, "Tiradentes"),
        HolidayRule::fixed(5, 1, "Dia do Trabalho"),
        HolidayRule::easter(60, "Corpus Christi"),
        HolidayRule::fixed(9, 7, "Independência do Brasil"),
        HolidayRule::fixed(10, 12, "Nossa Senhora Aparecida"),
        HolidayRule::fixed(11, 2, "Finados"),
        HolidayRule::fixed(11, 15, "Proclamação da República"),
        HolidayRule::fixed(11, 20, "Dia Nacional de Zumbi e da Consciência Negra"),
        HolidayRule::fixed(12, 25, "Natal"),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_known_years() {
        assert_eq!(easter_sunday(2024), Some(d(2024, 3, 31)));
        assert_eq!(easter_sunday(2025), Some(d(2025, 4, 20)));
        assert_eq!(easter_sunday(2026), Some(d(2026, 4, 5)));
        assert_eq!(easter_sunday(2000), Some(d(2000, 4, 23)));
        assert_eq!(easter_sunday(1961), Some(d(1961, 4, 2)));
        assert_eq!(easter_sunday(2285), Some(d(2285, 3, 22)));
        assert_eq!(easter_sunday(2038), Some(d(2038, 4, 25)));
    }

    #[test]
    fn easter_offsets_2026() {
        let rules = brazil_national_rules();
        let by_name = |n: &str| rules.iter().find(|r| r.name().starts_with(n)).unwrap().date_in(2026);
        assert_eq!(by_name("Carnaval (segunda"), Some(d(2026, 2, 16)));
        assert_eq!(by_name("Carnaval (terça"), Some(d(2026, 2, 17)));
        assert_eq!(by_name("Sexta-feira Santa"), Some(d(2026, 4, 3)));
        assert_eq!(by_name("Corpus Christi"), Some(d(2026, 6, 4)));
    }

    #[test]
    fn nth_and_last_weekday() {
        let thanksgiving = HolidayRule::nth_weekday(11, Weekday::Thu, Occurrence::Nth(4), "Thanksgiving");
        assert_eq!(thanksgiving.date_in(2026), Some(d(2026, 11, 26)));
        let memorial = HolidayRule::nth_weekday(5, Weekday::Mon, Occurrence::Last, "Memorial Day");
        assert_eq!(memorial.date_in(2026), Some(d(2026, 5, 25)));
        let last_dec = HolidayRule::nth_weekday(12, Weekday::Thu, Occurrence::Last, "x");
        assert_eq!(last_dec.date_in(2026), Some(d(2026, 12, 31)));
        let fifth = HolidayRule::nth_weekday(2, Weekday::Mon, Occurrence::Nth(5), "x");
        assert_eq!(fifth.date_in(2026), None);
    }

    #[test]
    fn leap_day_rule_only_in_leap_years() {
        let r = HolidayRule::fixed(2, 29, "leap");
        assert!(r.validate().is_ok());
        assert_eq!(r.date_in(2028), Some(d(2028, 2, 29)));
        assert_eq!(r.date_in(2027), None);
    }

    #[test]
    fn invalid_rules_are_rejected() {
        assert!(HolidayRule::fixed(2, 30, "x").validate().is_err());
        assert!(HolidayRule::fixed(13, 1, "x").validate().is_err());
        assert!(HolidayRule::nth_weekday(1, Weekday::Mon, Occurrence::Nth(0), "x").validate().is_err());
        assert!(HolidayRule::easter(400, "x").validate().is_err());
    }

    #[test]
    fn extreme_years_do_not_panic() {
        for y in [i32::MIN, -300_000, 262_143, 262_144, i32::MAX] {
            for r in brazil_national_rules() {
                let _ = r.date_in(y);
            }
        }
    }
}
