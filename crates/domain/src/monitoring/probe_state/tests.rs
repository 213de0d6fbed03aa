#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn probe(at: DateTime<Utc>, outcome: Outcome) -> Probe {
    Probe { at, outcome, hold: None }
}

const FAIL: Outcome = Outcome::Down(ErrorKind::Connect);

/// Runs probes, returning the final state and every step.
fn run(probes: &[Probe]) -> (ProbeState, Vec<Step>) {
    let mut state = ProbeState::default();
    let mut steps = Vec::new();
    for probe in probes {
        let step = step(&state, probe);
        state = step.state.clone();
        steps.push(step);
    }
    (state, steps)
}

#[test]
fn one_failure_is_a_suspicion_with_a_confirmation_a_minute_later() {
    let (state, steps) = run(&[probe(t0(), FAIL)]);
    assert_eq!(state.phase, Phase::Suspect);
    assert!(steps[0].alerts.is_empty());
    assert!(steps[0].opened.is_none());
    let planned = t0() + TimeDelta::minutes(5);
    assert_eq!(next_probe_at(&state, t0(), planned), t0() + CONFIRM_AFTER);
}

#[test]
fn two_failures_are_down_from_the_first() {
    let (state, steps) = run(&[probe(t0(), FAIL), probe(t0() + CONFIRM_AFTER, FAIL)]);
    assert_eq!(state.phase, Phase::Down);
    assert_eq!(steps[1].opened, Some(t0()));
    assert_eq!(steps[1].alerts, vec![AlertKind::Down]);
    assert_eq!(state.incident.unwrap().started_at, t0());
}

#[test]
fn escalations_come_at_15_minutes_and_2_hours_from_the_first_failure() {
    let (state, _) = run(&[probe(t0(), FAIL), probe(t0() + CONFIRM_AFTER, FAIL)]);
    let after_confirm = t0() + CONFIRM_AFTER;
    let escalation = next_probe_at(&state, after_confirm, t0() + TimeDelta::hours(1));
    assert_eq!(escalation, t0() + ESCALATE_AFTER);
    let at_15 = step(&state, &probe(escalation, FAIL));
    assert_eq!(at_15.alerts, vec![AlertKind::Down15m]);
    let emergency = next_probe_at(&at_15.state, escalation, t0() + TimeDelta::hours(3));
    assert_eq!(emergency, t0() + EMERGENCY_AFTER);
    let at_2h = step(&at_15.state, &probe(emergency, FAIL));
    assert_eq!(at_2h.alerts, vec![AlertKind::Down2h]);
    let later = step(&at_2h.state, &probe(emergency + TimeDelta::hours(1), FAIL));
    assert!(later.alerts.is_empty());
}

#[test]
fn recovery_needs_two_successes_and_is_announced_once() {
    let start = [probe(t0(), FAIL), probe(t0() + CONFIRM_AFTER, FAIL)];
    let one_up = t0() + TimeDelta::minutes(5);
    let (state, steps) = run(&[start[0], start[1], probe(one_up, Outcome::Up)]);
    assert_eq!(state.phase, Phase::Recovering);
    assert!(steps[2].alerts.is_empty());
    assert_eq!(next_probe_at(&state, one_up, one_up + TimeDelta::minutes(5)), one_up + CONFIRM_AFTER);
    let done = step(&state, &probe(one_up + CONFIRM_AFTER, Outcome::Up));
    assert_eq!(done.alerts, vec![AlertKind::Recovered]);
    assert_eq!(done.closed.as_ref().map(|incident| incident.started_at), Some(t0()));
    assert_eq!(done.closed.as_ref().map(|incident| incident.ended_at(one_up + CONFIRM_AFTER)), Some(one_up));
    assert!(done.state.incident.is_none());
}

#[test]
fn slow_is_degraded_not_down() {
    let threshold = Some(TimeDelta::milliseconds(500));
    assert_eq!(Outcome::of_success(TimeDelta::seconds(2), threshold), Outcome::Degraded);
    assert_eq!(Outcome::of_success(TimeDelta::milliseconds(100), threshold), Outcome::Up);
    let (state, steps) = run(&[probe(t0(), Outcome::Degraded), probe(t0() + CONFIRM_AFTER, Outcome::Degraded)]);
    assert_eq!(state.phase, Phase::Up);
    assert!(steps.iter().all(|step| step.alerts.is_empty()));
}

#[test]
fn down_and_up_inside_a_window_records_the_incident_without_alerts() {
    let hold = Some(Hold { reason: HoldReason::Maintenance, until: t0() + TimeDelta::hours(4) });
    let held = |at, outcome| Probe { at, outcome, hold };
    let (_, steps) = run(&[
        held(t0(), FAIL),
        held(t0() + CONFIRM_AFTER, FAIL),
        held(t0() + TimeDelta::hours(3), FAIL),
        held(t0() + TimeDelta::hours(3) + CONFIRM_AFTER, Outcome::Up),
        held(t0() + TimeDelta::hours(3) + CONFIRM_AFTER * 2, Outcome::Up),
    ]);
    assert!(steps.iter().all(|step| step.alerts.is_empty()));
    assert_eq!(steps[1].opened, Some(t0()));
    let closed = steps[4].closed.as_ref().unwrap();
    assert!(closed.in_maintenance);
}

#[test]
fn still_down_after_a_window_is_announced_once_with_timers_from_its_end() {
    let end = t0() + TimeDelta::hours(4);
    let hold = Some(Hold { reason: HoldReason::Maintenance, until: end });
    let held = |at, outcome| Probe { at, outcome, hold };
    let (state, steps) =
        run(&[held(t0(), FAIL), held(t0() + CONFIRM_AFTER, FAIL), probe(end + TimeDelta::seconds(30), FAIL)]);
    assert_eq!(steps[2].alerts, vec![AlertKind::Down]);
    let incident = state.incident.clone().unwrap();
    assert_eq!(incident.timers_from, end);
    assert_eq!(next_probe_at(&state, end + TimeDelta::seconds(30), end + TimeDelta::hours(1)), end + ESCALATE_AFTER);
    let before = step(&state, &probe(end + TimeDelta::minutes(10), FAIL));
    assert!(before.alerts.is_empty());
    let at_15 = step(&before.state, &probe(end + ESCALATE_AFTER, FAIL));
    assert_eq!(at_15.alerts, vec![AlertKind::Down15m]);
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Up),
        Just(Outcome::Degraded),
        Just(Outcome::Down(ErrorKind::Timeout)),
        Just(Outcome::Down(ErrorKind::Status)),
    ]
}

/// Probe sequences with gaps of 1 to 400 s, some of them held.
fn probes() -> impl Strategy<Value = Vec<Probe>> {
    prop::collection::vec((outcome(), 1i64..400, prop::option::weighted(0.2, any::<bool>())), 1..80).prop_map(|items| {
        let mut at = t0();
        items
            .into_iter()
            .map(|(outcome, gap, hold)| {
                at += TimeDelta::seconds(gap);
                let hold = hold.map(|storm| Hold {
                    reason: if storm { HoldReason::Storm } else { HoldReason::Maintenance },
                    until: at + TimeDelta::seconds(30),
                });
                Probe { at, outcome, hold }
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn each_alert_kind_at_most_once_per_incident_and_recovery_only_after_down(probes in probes()) {
        let (_, steps) = run(&probes);
        let mut current: Vec<AlertKind> = Vec::new();
        for (probe, step) in probes.iter().zip(&steps) {
            if step.opened.is_some() {
                current.clear();
            }
            for kind in &step.alerts {
                prop_assert!(!current.contains(kind), "{kind:?} twice in one incident");
                prop_assert!(probe.hold.is_none(), "alert while held");
                if *kind == AlertKind::Recovered {
                    prop_assert!(current.contains(&AlertKind::Down));
                }
                current.push(*kind);
            }
        }
    }

    #[test]
    fn incidents_start_at_the_first_of_two_consecutive_failures(probes in probes()) {
        let (_, steps) = run(&probes);
        for (index, step) in steps.iter().enumerate() {
            if let Some(started) = step.opened {
                prop_assert!(index >= 1);
                prop_assert!(probes[index].outcome.is_failure() && probes[index - 1].outcome.is_failure());
                prop_assert_eq!(started, probes[index - 1].at);
            }
        }
    }

    #[test]
    fn no_incident_without_two_consecutive_failures(probes in probes()) {
        let two_in_a_row = probes.windows(2).any(|pair| pair[0].outcome.is_failure() && pair[1].outcome.is_failure());
        let (_, steps) = run(&probes);
        prop_assert_eq!(steps.iter().any(|step| step.opened.is_some()), two_in_a_row);
    }

    #[test]
    fn incidents_close_only_after_two_consecutive_successes(probes in probes()) {
        let (_, steps) = run(&probes);
        for (index, step) in steps.iter().enumerate() {
            if step.closed.is_some() {
                prop_assert!(!probes[index].outcome.is_failure() && !probes[index - 1].outcome.is_failure());
            }
        }
    }

    #[test]
    fn flapping_gives_at_most_one_pair_per_incident(probes in probes()) {
        let (_, steps) = run(&probes);
        let opened = steps.iter().filter(|step| step.opened.is_some()).count();
        let downs = steps.iter().flat_map(|step| &step.alerts).filter(|kind| **kind == AlertKind::Down).count();
        let recoveries = steps.iter().flat_map(|step| &step.alerts).filter(|kind| **kind == AlertKind::Recovered).count();
        prop_assert!(downs <= opened);
        prop_assert!(recoveries <= downs);
    }

    #[test]
    fn escalations_never_before_their_time(probes in probes()) {
        let mut state = ProbeState::default();
        for probe in &probes {
            let step = step(&state, probe);
            if let Some(incident) = &step.state.incident {
                for kind in &step.alerts {
                    match kind {
                        AlertKind::Down15m => prop_assert!(probe.at - incident.timers_from >= ESCALATE_AFTER),
                        AlertKind::Down2h => prop_assert!(probe.at - incident.timers_from >= EMERGENCY_AFTER),
                        _ => {}
                    }
                }
            }
            state = step.state;
        }
    }

    #[test]
    fn the_next_probe_is_never_later_than_the_plan(probes in probes(), planned_in in 1i64..600) {
        let (state, _) = run(&probes);
        let last = probes.last().unwrap().at;
        let planned = last + TimeDelta::seconds(planned_in);
        prop_assert!(next_probe_at(&state, last, planned) <= planned);
    }
}
