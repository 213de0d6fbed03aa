//! Uptime over a period, weighted by time: the share of *observed* time a monitor was not down.
//!
//! Down time comes from confirmed downtime incidents, each from its first failure to its
//! recovery (or now). Observed time is the period minus maintenance and "no data" gaps, and
//! minus any time before the monitor existed; down time inside excluded time does not count
//! either. A period with no observed time has no uptime (`None`), rather than a made-up 100 %.

use chrono::{DateTime, TimeDelta, Utc};

use super::span::{Span, intersect, measure, subtract, union};

/// The periods the API reports.
pub const PERIODS: [(&str, TimeDelta); 3] =
    [("24h", TimeDelta::hours(24)), ("7d", TimeDelta::days(7)), ("30d", TimeDelta::days(30))];

/// The facts uptime is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UptimeInputs {
    /// Confirmed downtimes, `[first failure, recovery or now)`.
    pub down: Vec<Span>,
    /// Maintenance coverage.
    pub maintenance: Vec<Span>,
    /// "No data" gaps (worker outages).
    pub no_data: Vec<Span>,
}

/// What uptime over one period found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uptime {
    /// 0–100; `None` when nothing was observed.
    pub percent: Option<f64>,
    pub observed: TimeDelta,
    pub down: TimeDelta,
}

/// Uptime over `period`, with the monitor observed from `observed_from` (its creation).
pub fn uptime(period: Span, observed_from: DateTime<Utc>, inputs: &UptimeInputs) -> Uptime {
    let window = Span::new(period.start.max(observed_from), period.end);
    if window.is_empty() {
        return Uptime { percent: None, observed: TimeDelta::zero(), down: TimeDelta::zero() };
    }
    let excluded = union(inputs.maintenance.iter().chain(&inputs.no_data).copied().collect());
    let observed = subtract(&[window], &excluded);
    let down = intersect(&observed, &union(inputs.down.clone()));
    let (observed, down) = (measure(&observed), measure(&down));
    let percent = (observed > TimeDelta::zero()).then(|| {
        let share = 1.0 - down.num_milliseconds() as f64 / observed.num_milliseconds().max(1) as f64;
        (share * 100.0).clamp(0.0, 100.0)
    });
    Uptime { percent, observed, down }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap_or_default()
    }

    fn span(a: i64, b: i64) -> Span {
        Span::new(at(a), at(b))
    }

    #[test]
    fn weighted_by_time() {
        let inputs = UptimeInputs { down: vec![span(2, 8)], ..Default::default() };
        let u = uptime(span(0, 24), at(-100), &inputs);
        assert_eq!(u.percent, Some(75.0));
        assert_eq!(u.down, TimeDelta::hours(6));
    }

    #[test]
    fn maintenance_and_gaps_are_left_out() {
        let inputs =
            UptimeInputs { down: vec![span(2, 8)], maintenance: vec![span(0, 6)], no_data: vec![span(20, 24)] };
        // Observed 6..20 (14 h), down 6..8 (2 h).
        let u = uptime(span(0, 24), at(-100), &inputs);
        assert_eq!(u.observed, TimeDelta::hours(14));
        assert_eq!(u.down, TimeDelta::hours(2));
        let pct = u.percent.unwrap_or_default();
        assert!((pct - 100.0 * 12.0 / 14.0).abs() < 1e-9);
    }

    #[test]
    fn nothing_observed_has_no_uptime() {
        let inputs = UptimeInputs { maintenance: vec![span(0, 24)], ..Default::default() };
        assert_eq!(uptime(span(0, 24), at(-100), &inputs).percent, None);
        assert_eq!(uptime(span(0, 24), at(30), &UptimeInputs::default()).percent, None);
        // A monitor created 12 h ago, down 6 h: 50 %.
        let inputs = UptimeInputs { down: vec![span(18, 24)], ..Default::default() };
        assert_eq!(uptime(span(0, 24), at(12), &inputs).percent, Some(50.0));
    }

    fn spans() -> impl Strategy<Value = Vec<Span>> {
        proptest::collection::vec((-10i64..40, 0i64..20), 0..6)
            .prop_map(|v| v.into_iter().map(|(s, l)| span(s, s + l)).collect())
    }

    proptest! {
        #[test]
        fn uptime_stays_within_0_and_100(down in spans(), maintenance in spans(), no_data in spans(), created in -20i64..30) {
            let inputs = UptimeInputs { down, maintenance, no_data };
            let u = uptime(span(0, 24), at(created), &inputs);
            if let Some(p) = u.percent {
                prop_assert!((0.0..=100.0).contains(&p));
            }
            prop_assert!(u.down <= u.observed);
            prop_assert!(u.observed <= TimeDelta::hours(24));
        }

        /// Downtime inside maintenance changes nothing.
        #[test]
        fn downtime_inside_maintenance_is_excluded(down in spans(), maintenance in spans(), pick in any::<prop::sample::Index>()) {
            let base = UptimeInputs { down: down.clone(), maintenance: maintenance.clone(), no_data: vec![] };
            let before = uptime(span(0, 24), at(-100), &base);
            let mut more = base.clone();
            if !maintenance.is_empty() {
                more.down.push(*pick.get(&maintenance));
            }
            prop_assert_eq!(uptime(span(0, 24), at(-100), &more), before);
        }
    }
}
