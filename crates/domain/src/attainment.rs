//! SLA attainment (DESIGN R10): how one metric of one ticket counts in a report, and where a share
//! of met targets stands against the policy's promise of 85–95 %.
//!
//! The verdict restates the single definition of "breached" (`Ticket::breached_at` in
//! `helpdesk-core`): the stored flag, or a running due instant that has passed. The SQL function
//! `sla_outcome` (migration `20261203000200`) is its copy in the database; the report and the
//! ticket list's filters both call it, and an API test (`reports::the_sql_verdict_matches_…`)
//! compares the two over every input shape.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How one metric (first response or resolution) of one ticket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    Met,
    Breached,
    /// Auto-closed for lack of the customer's answer (R8) without a breach: not met, not breached.
    Abandoned,
    /// Still running and not yet due: left out of the share.
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::Breached => "breached",
            Outcome::Abandoned => "abandoned",
            Outcome::Pending => "pending",
        }
    }

    /// The verdict at `now`. A breach counts even on an auto-closed ticket: it happened while the
    /// desk held the ticket, and the customer's later silence does not undo it.
    pub fn of(
        breached_flag: bool,
        due_at: Option<DateTime<Utc>>,
        met_at: Option<DateTime<Utc>>,
        auto_closed: bool,
        now: DateTime<Utc>,
    ) -> Outcome {
        if breached_flag || due_at.is_some_and(|due| due <= now) {
            Outcome::Breached
        } else if auto_closed {
            Outcome::Abandoned
        } else if met_at.is_some() {
            Outcome::Met
        } else {
            Outcome::Pending
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "met" => Ok(Outcome::Met),
            "breached" => Ok(Outcome::Breached),
            "abandoned" => Ok(Outcome::Abandoned),
            "pending" => Ok(Outcome::Pending),
            _ => Err(()),
        }
    }
}

/// Where a share of met targets stands against the policy's band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Band {
    Below,
    Inside,
    Above,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Below => "below",
            Band::Inside => "inside",
            Band::Above => "above",
        }
    }
}

/// The policy's promise: "Nosso percentual de atendimento está entre 85% a 95% do SLA", in
/// per-mille so the bounds are exact.
pub const BAND_LOW_PER_MILLE: u64 = 850;
pub const BAND_HIGH_PER_MILLE: u64 = 950;

/// Met and breached counts of one metric over a group of tickets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub met: u64,
    pub breached: u64,
}

impl Tally {
    /// met / (met + breached); `None` when nothing was decided yet.
    pub fn share(self) -> Option<f64> {
        let decided = self.met + self.breached;
        (decided > 0).then(|| self.met as f64 / decided as f64)
    }

    /// The band, compared in whole numbers (met × 1000 against the bounds × decided), so a share
    /// of exactly 85 % or 95 % is inside, whatever floating point would round it to.
    pub fn band(self) -> Option<Band> {
        let decided = self.met + self.breached;
        if decided == 0 {
            return None;
        }
        let scaled = self.met * 1000;
        Some(if scaled < BAND_LOW_PER_MILLE * decided {
            Band::Below
        } else if scaled > BAND_HIGH_PER_MILLE * decided {
            Band::Above
        } else {
            Band::Inside
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::minutes(minutes)
    }

    #[test]
    fn the_band_bounds_are_inside() {
        assert_eq!(Tally { met: 85, breached: 15 }.band(), Some(Band::Inside));
        assert_eq!(Tally { met: 95, breached: 5 }.band(), Some(Band::Inside));
        assert_eq!(Tally { met: 84, breached: 16 }.band(), Some(Band::Below));
        assert_eq!(Tally { met: 96, breached: 4 }.band(), Some(Band::Above));
        assert_eq!(Tally { met: 0, breached: 0 }.band(), None);
        assert_eq!(Tally { met: 0, breached: 0 }.share(), None);
    }

    #[test]
    fn an_auto_closed_ticket_is_abandoned_unless_it_breached_first() {
        assert_eq!(Outcome::of(false, None, Some(at(5)), true, at(10)), Outcome::Abandoned);
        assert_eq!(Outcome::of(true, None, Some(at(5)), true, at(10)), Outcome::Breached);
    }

    #[test]
    fn a_running_clock_past_its_due_instant_is_breached_before_any_job_records_it() {
        assert_eq!(Outcome::of(false, Some(at(10)), None, false, at(10)), Outcome::Breached);
        assert_eq!(Outcome::of(false, Some(at(10)), None, false, at(9)), Outcome::Pending);
        assert_eq!(Outcome::of(false, None, Some(at(3)), false, at(9)), Outcome::Met);
    }

    proptest! {
        #[test]
        fn band_agrees_with_the_share(met in 0u64..10_000, breached in 0u64..10_000) {
            let tally = Tally { met, breached };
            match (tally.share(), tally.band()) {
                (None, None) => prop_assert_eq!(met + breached, 0),
                (Some(share), Some(Band::Below)) => prop_assert!(share < 0.85 + 1e-9),
                (Some(share), Some(Band::Above)) => prop_assert!(share > 0.95 - 1e-9),
                (Some(share), Some(Band::Inside)) => prop_assert!((0.85 - 1e-9..=0.95 + 1e-9).contains(&share)),
                other => prop_assert!(false, "share and band disagree: {:?}", other),
            }
        }

        #[test]
        fn met_only_without_breach_and_without_abandonment(
            flag: bool, due in proptest::option::of(0i64..100), met in proptest::option::of(0i64..100),
            auto_closed: bool, now in 0i64..100,
        ) {
            let outcome = Outcome::of(flag, due.map(at), met.map(at), auto_closed, at(now));
            let breached = flag || due.is_some_and(|d| d <= now);
            prop_assert_eq!(outcome == Outcome::Breached, breached);
            prop_assert_eq!(outcome == Outcome::Met, met.is_some() && !breached && !auto_closed);
            prop_assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
        }
    }
}
