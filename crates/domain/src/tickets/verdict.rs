//! The one definition of "breached" and "at risk" (DESIGN R5, R10). A ticket's own view, the list
//! filters and the attainment reports all use it: the SQL predicates in core are written from these
//! functions and a test holds the two together over generated tickets.
//!
//! Both work on what a ticket stores about each metric: the breach flag (set when the target ran
//! out before it was met, and kept after the ticket closes), the due instant (only while the
//! clock runs) and the at-risk instant (likewise).

use chrono::{DateTime, Utc};

/// What a ticket stores about one metric's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMetric {
    /// The target ran out before it was met (as of the last save).
    pub breached: bool,
    /// When the running clock reaches its target; `None` while paused or met.
    pub due_at: Option<DateTime<Utc>>,
    /// When the running clock crosses its at-risk threshold; `None` while paused or met.
    pub at_risk_at: Option<DateTime<Utc>>,
    /// When the target was met.
    pub met_at: Option<DateTime<Utc>>,
}

/// Where one metric stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricOutcome {
    /// Met in time.
    Met,
    /// Ran out: the stored flag says so, or the running clock has passed its due instant since.
    Breached,
    /// Still running (or paused) and not yet due: neither met nor breached.
    Pending,
}

impl StoredMetric {
    /// Breached at `now`: `breached OR due_at <= now`.
    pub fn breached_at(&self, now: DateTime<Utc>) -> bool {
        self.breached || self.due_at.is_some_and(|due| due <= now)
    }

    /// At risk at `now`: not breached, and the running clock is past its at-risk instant:
    /// `NOT breached AND NOT due_at <= now AND at_risk_at <= now`.
    pub fn at_risk_at(&self, now: DateTime<Utc>) -> bool {
        !self.breached_at(now) && self.at_risk_at.is_some_and(|at| at <= now)
    }

    /// Met, breached or pending at `now`: what attainment reports count.
    pub fn outcome_at(&self, now: DateTime<Utc>) -> MetricOutcome {
        if self.breached_at(now) {
            MetricOutcome::Breached
        } else if self.met_at.is_some() {
            MetricOutcome::Met
        } else {
            MetricOutcome::Pending
        }
    }
}

/// A ticket is breached when either metric is.
pub fn ticket_breached_at(first_response: &StoredMetric, resolution: &StoredMetric, now: DateTime<Utc>) -> bool {
    first_response.breached_at(now) || resolution.breached_at(now)
}

/// A ticket is at risk when it is not breached and either metric is past its at-risk instant.
pub fn ticket_at_risk_at(first_response: &StoredMetric, resolution: &StoredMetric, now: DateTime<Utc>) -> bool {
    !ticket_breached_at(first_response, resolution, now)
        && [first_response.at_risk_at, resolution.at_risk_at].into_iter().flatten().any(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn instant(offset: Option<i64>) -> Option<DateTime<Utc>> {
        offset.map(|m| DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(m))
    }

    fn any_metric() -> impl Strategy<Value = StoredMetric> {
        (
            any::<bool>(),
            proptest::option::of(-50i64..50),
            proptest::option::of(-50i64..50),
            proptest::option::of(-50i64..0),
        )
            .prop_map(|(breached, due, risk, met)| StoredMetric {
                breached,
                due_at: instant(due),
                at_risk_at: instant(risk),
                met_at: instant(met),
            })
    }

    proptest! {
        #[test]
        fn breached_and_at_risk_never_hold_together(fr in any_metric(), res in any_metric()) {
            let now = DateTime::<Utc>::UNIX_EPOCH;
            prop_assert!(!(ticket_breached_at(&fr, &res, now) && ticket_at_risk_at(&fr, &res, now)));
            prop_assert!(!(fr.breached_at(now) && fr.at_risk_at(now)));
        }

        #[test]
        fn a_stored_breach_is_never_forgotten(mut m in any_metric(), later in 0i64..1000) {
            m.breached = true;
            let now = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(later);
            prop_assert_eq!(m.outcome_at(now), MetricOutcome::Breached);
        }

        #[test]
        fn a_breach_once_seen_stays(m in any_metric(), a in -100i64..100, b in 0i64..100) {
            let t = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(a);
            if m.breached_at(t) {
                prop_assert!(m.breached_at(t + TimeDelta::minutes(b)));
            }
        }
    }
}
