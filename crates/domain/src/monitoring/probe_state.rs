//! The probe-result state machine of a monitor (R11): which probe results make a downtime, when
//! it is confirmed, escalated and over, and which alerts each step sends.
//!
//! - One failure is a suspicion, not a downtime: a confirmation probe follows about
//!   [`CONFIRM_AFTER`] later instead of waiting for the next interval.
//! - Two consecutive failures make the monitor DOWN; the incident starts at the first of them.
//! - Two consecutive successes end it; a failure in between keeps the same incident, so flapping
//!   gives at most one DOWN and one RECOVERY per incident.
//! - Slow answers are *degraded*, not down; an expiring TLS certificate is a warning of its own
//!   ([`super::certificate`]), never a downtime.
//! - While alerts are held (a maintenance window, or a storm of failures that is our own network's
//!   fault) incidents are still recorded, flagged, but announce nothing. A site still down once the
//!   hold ends is announced at the first failed check after it, and its escalation timers count
//!   from the end of the hold.
//!
//! The state is a plain value the caller stores with the monitor; [`step`] is a pure function, so
//! a probe result replayed after a crash gives the same answer, and the set of alerts already
//! announced travels with the state (the database's unique `(incident, kind)` is the second lock).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub use super::status::{AlertKind, ProbeErrorKind as ErrorKind};

/// How long after a first failure (or a first success while down) the confirmation probe runs.
pub const CONFIRM_AFTER: TimeDelta = TimeDelta::seconds(60);
/// Down for this long: the escalation alert.
pub const ESCALATE_AFTER: TimeDelta = TimeDelta::minutes(15);
/// Down for this long: the "intervention" alert, the emergency ticket and the on-call page.
pub const EMERGENCY_AFTER: TimeDelta = TimeDelta::hours(2);

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Up,
    /// Answered correctly but slower than the monitor's latency threshold: not a downtime.
    Degraded,
    Down(ErrorKind),
}

impl Outcome {
    /// Classifies a probe that got an acceptable answer, by its latency.
    pub fn of_success(latency: TimeDelta, threshold: Option<TimeDelta>) -> Self {
        match threshold {
            Some(threshold) if latency > threshold => Outcome::Degraded,
            _ => Outcome::Up,
        }
    }

    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Down(_))
    }
}

/// Why alerts are held back at a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// A maintenance window covers the monitor (R12).
    Maintenance,
    /// Most probes fail and the operator's canary too: our network, not the sites.
    Storm,
}

/// Alerts are held at this probe, until `until` (the end of the maintenance coverage; for a storm,
/// the probe's own instant, since its end is not known in advance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: HoldReason,
    pub until: DateTime<Utc>,
}

/// One probe result as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    pub hold: Option<Hold>,
}

/// Where the monitor stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Up,
    /// One failure, awaiting its confirmation.
    Suspect,
    Down,
    /// Down, then one success, awaiting a second.
    Recovering,
}

/// The open incident of a monitor (from its confirmation to its recovery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The first failure.
    pub started_at: DateTime<Utc>,
    /// Where the 15-minute and 2-hour timers count from: the start, or the end of the last hold
    /// the incident went through.
    pub timers_from: DateTime<Utc>,
    /// Some probe of this incident ran under a maintenance window.
    pub in_maintenance: bool,
    /// Some probe of this incident ran during a storm.
    pub in_storm: bool,
    /// While held: until when (see [`Hold::until`]).
    pub held_until: Option<DateTime<Utc>>,
    /// The alerts already announced, in the order sent.
    pub announced: Vec<AlertKind>,
    /// While recovering: the first success, where the downtime ended if a second one follows.
    #[serde(default)]
    pub first_success_at: Option<DateTime<Utc>>,
}

impl Incident {
    /// Where the downtime ended: its first success of the two that closed it.
    pub fn ended_at(&self, closing_probe: DateTime<Utc>) -> DateTime<Utc> {
        self.first_success_at.unwrap_or(closing_probe)
    }
}

impl Incident {
    pub fn announced(&self, kind: AlertKind) -> bool {
        self.announced.contains(&kind)
    }
}

/// Everything the state machine remembers about a monitor between probes. Stored as JSON with the
/// monitor; `{}` is a monitor never probed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbeState {
    pub phase: Phase,
    /// The failure that made the monitor suspect (kept until confirmed or cleared).
    pub first_failure_at: Option<DateTime<Utc>>,
    pub incident: Option<Incident>,
}

/// What one probe result did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub state: ProbeState,
    /// An incident was confirmed by this probe, starting at this instant (the first failure).
    pub opened: Option<DateTime<Utc>>,
    /// The incident ended at this probe: the closed incident as it stood.
    pub closed: Option<Incident>,
    /// Alerts to send now (and record, so they are never sent again).
    pub alerts: Vec<AlertKind>,
}

/// Applies one probe result.
pub fn step(state: &ProbeState, probe: &Probe) -> Step {
    let mut next = state.clone();
    let mut opened = None;
    let mut closed = None;
    let mut alerts = Vec::new();
    if let Some(incident) = next.incident.as_mut() {
        note_hold(incident, probe);
    }
    match (state.phase, probe.outcome.is_failure()) {
        (Phase::Up, false) => {}
        (Phase::Up, true) => {
            next.phase = Phase::Suspect;
            next.first_failure_at = Some(probe.at);
        }
        (Phase::Suspect, false) => {
            next.phase = Phase::Up;
            next.first_failure_at = None;
        }
        (Phase::Suspect, true) => {
            let started_at = state.first_failure_at.unwrap_or(probe.at);
            let mut incident = Incident {
                started_at,
                timers_from: started_at,
                in_maintenance: false,
                in_storm: false,
                held_until: None,
                announced: Vec::new(),
                first_success_at: None,
            };
            note_hold(&mut incident, probe);
            next.phase = Phase::Down;
            next.first_failure_at = None;
            next.incident = Some(incident);
            opened = Some(started_at);
        }
        (Phase::Down, false) => {
            next.phase = Phase::Recovering;
            if let Some(incident) = next.incident.as_mut() {
                incident.first_success_at = Some(probe.at);
            }
        }
        (Phase::Recovering, true) => {
            next.phase = Phase::Down;
            if let Some(incident) = next.incident.as_mut() {
                incident.first_success_at = None;
            }
        }
        (Phase::Down, true) => {}
        (Phase::Recovering, false) => {
            next.phase = Phase::Up;
            if let Some(incident) = next.incident.take() {
                if probe.hold.is_none() && incident.announced(AlertKind::Down) {
                    alerts.push(AlertKind::Recovered);
                }
                closed = Some(incident);
            }
        }
    }
    if next.phase == Phase::Down
        && probe.hold.is_none()
        && let Some(incident) = next.incident.as_mut()
    {
        for kind in [AlertKind::Down, AlertKind::Down15m, AlertKind::Down2h] {
            if !incident.announced(kind) && due(incident, kind, probe.at) {
                incident.announced.push(kind);
                alerts.push(kind);
            }
        }
    }
    if let Some(incident) = closed.as_mut()
        && alerts.contains(&AlertKind::Recovered)
    {
        incident.announced.push(AlertKind::Recovered);
    }
    Step { state: next, opened, closed, alerts }
}

/// Records a hold on the incident, or its end: the first probe after a hold restarts the
/// escalation timers from the hold's end.
fn note_hold(incident: &mut Incident, probe: &Probe) {
    match probe.hold {
        Some(hold) => {
            match hold.reason {
                HoldReason::Maintenance => incident.in_maintenance = true,
                HoldReason::Storm => incident.in_storm = true,
            }
            incident.held_until = Some(incident.held_until.map_or(hold.until, |until| until.max(hold.until)));
        }
        None => {
            if let Some(until) = incident.held_until.take() {
                // A window's end may lie after this probe only if the caller's windows changed
                // meanwhile; the timers never count from the future.
                incident.timers_from = incident.timers_from.max(until.min(probe.at));
            }
        }
    }
}

fn due(incident: &Incident, kind: AlertKind, at: DateTime<Utc>) -> bool {
    match kind {
        AlertKind::Down => true,
        AlertKind::Down15m => at - incident.timers_from >= ESCALATE_AFTER,
        AlertKind::Down2h => at - incident.timers_from >= EMERGENCY_AFTER,
        AlertKind::Recovered | AlertKind::TlsExpiring => false,
    }
}

/// When to probe next, given the monitor's next planned slot (`schedule::next_planned`): sooner
/// when a confirmation is pending or an escalation falls due before that slot.
pub fn next_probe_at(state: &ProbeState, last_probe_at: DateTime<Utc>, planned: DateTime<Utc>) -> DateTime<Utc> {
    let mut next = planned;
    if matches!(state.phase, Phase::Suspect | Phase::Recovering) {
        next = next.min(last_probe_at + CONFIRM_AFTER);
    }
    if state.phase == Phase::Down
        && let Some(incident) = &state.incident
    {
        for kind in [AlertKind::Down15m, AlertKind::Down2h] {
            if !incident.announced(kind) {
                let at =
                    incident.timers_from + if kind == AlertKind::Down15m { ESCALATE_AFTER } else { EMERGENCY_AFTER };
                if at > last_probe_at {
                    next = next.min(at);
                    break;
                }
            }
        }
    }
    next
}

#[cfg(test)]
mod tests;
