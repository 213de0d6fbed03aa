//! The instants a ticket's clock implies, flattened for storage: what the agents' queue sorts
//! by and what the worker's timers fire at. Derived from the clock, never edited by hand.

use crate::sla::{CalendarSource, ClockMode, ClockPhase, MetricState, SlaState};
use chrono::{DateTime, TimeDelta, Utc};

/// Stands for "nothing due" in the stored queue key, so the index needs no NULLs.
pub const NOTHING_DUE: DateTime<Utc> = match DateTime::from_timestamp(253_402_214_400, 0) {
    Some(at) => at,
    None => DateTime::<Utc>::MAX_UTC,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricProjection {
    /// When the target is reached if the clock keeps running; `None` while paused or met.
    pub due_at: Option<DateTime<Utc>>,
    /// When the at-risk threshold is (or was) crossed; `None` while paused or met.
    pub at_risk_at: Option<DateTime<Utc>>,
    pub met_at: Option<DateTime<Utc>>,
    pub breached: bool,
    /// Which of the metric's targets this is (see `MetricState::target_revision`).
    pub target_revision: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projection {
    pub first_response: MetricProjection,
    pub resolution: MetricProjection,
    /// The earliest pending due instant, or [`NOTHING_DUE`].
    pub next_due_at: DateTime<Utc>,
}

/// Flattens a clock state at `now`. The at-risk instant is found by adding the time left before
/// the threshold on the metric's own clock (business or calendar time).
pub fn project<C: CalendarSource + ?Sized>(
    state: &SlaState,
    now: DateTime<Utc>,
    calendars: &C,
    at_risk_fraction: f64,
) -> Projection {
    let first_response = metric(&state.first_response, now, calendars, at_risk_fraction);
    let resolution = metric(&state.resolution, now, calendars, at_risk_fraction);
    let next_due_at = [first_response.due_at, resolution.due_at].into_iter().flatten().min().unwrap_or(NOTHING_DUE);
    Projection { first_response, resolution, next_due_at }
}

fn metric<C: CalendarSource + ?Sized>(
    state: &MetricState,
    now: DateTime<Utc>,
    calendars: &C,
    fraction: f64,
) -> MetricProjection {
    let running = state.phase == ClockPhase::Running;
    let at_risk_at = running.then(|| {
        let target = state.target.duration;
        let threshold = TimeDelta::nanoseconds(
            ((target.num_nanoseconds().unwrap_or(i64::MAX) as f64) * fraction.clamp(0.0, 1.0)) as i64,
        );
        let left = threshold - state.consumed;
        if left <= TimeDelta::zero() {
            return now;
        }
        match state.target.mode {
            ClockMode::Calendar => now + left,
            ClockMode::Business => {
                calendars.calendar(state.calendar_version).map_or(now + left, |c| c.add_business_time(now, left))
            }
        }
    });
    MetricProjection {
        due_at: if running { state.due_at } else { None },
        at_risk_at,
        met_at: state.met_at,
        breached: state.breached,
        target_revision: state.target_revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::BusinessCalendar;
    use crate::sla::{ClockEvent, ClockEventKind, Metric, Severity, SlaPolicy, evaluate};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    #[test]
    fn at_risk_is_eighty_percent_of_business_time() {
        let calendar = BusinessCalendar::brazil_default();
        let policy = SlaPolicy::default_targets();
        let Some(targets) = policy.targets("pro", Severity::Critical, false) else { panic!("pro critical targets") };
        // Tuesday 2026-03-10 10:00 São Paulo (13:00Z): first response 2 h business → 12:00 local.
        let opened = at("2026-03-10T13:00:00Z");
        let events = [ClockEvent {
            at: opened,
            kind: ClockEventKind::Started {
                targets,
                calendar_version: calendar.version(),
                policy_version: policy.version,
            },
        }];
        let state = evaluate(&events, &calendar, opened, 0.8).unwrap_or_else(|e| panic!("{e}"));
        let projection = project(&state, opened, &calendar, 0.8);
        assert_eq!(projection.first_response.due_at, Some(at("2026-03-10T15:00:00Z")));
        assert_eq!(projection.first_response.at_risk_at, Some(at("2026-03-10T14:36:00Z")));
        assert_eq!(projection.next_due_at, at("2026-03-10T15:00:00Z"));
        // Resolution: 8 h business from Tue 10:00 runs out exactly at 18:00 the same day.
        assert_eq!(projection.resolution.due_at, Some(at("2026-03-10T21:00:00Z")));
    }

    #[test]
    fn paused_and_met_metrics_have_nothing_due() {
        let calendar = BusinessCalendar::brazil_default();
        let policy = SlaPolicy::default_targets();
        let Some(targets) = policy.targets("pro", Severity::Normal, false) else { panic!("targets") };
        let opened = at("2026-03-10T13:00:00Z");
        let events = [
            ClockEvent {
                at: opened,
                kind: ClockEventKind::Started { targets, calendar_version: 1, policy_version: 1 },
            },
            ClockEvent { at: opened, kind: ClockEventKind::Met { metric: Metric::FirstResponse } },
            ClockEvent { at: opened, kind: ClockEventKind::Paused { metric: Metric::Resolution } },
        ];
        let state = evaluate(&events, &calendar, opened, 0.8).unwrap_or_else(|e| panic!("{e}"));
        let projection = project(&state, opened, &calendar, 0.8);
        assert_eq!(projection.first_response.met_at, Some(opened));
        assert_eq!((projection.resolution.due_at, projection.resolution.at_risk_at), (None, None));
        assert_eq!(projection.next_due_at, NOTHING_DUE);
    }
}
