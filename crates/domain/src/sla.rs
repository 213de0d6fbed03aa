//! The SLA clock: targets per plan × severity, and a ticket's clock derived by replaying an
//! append-only list of events.
//!
//! Calendars are looked up by version during replay through [`CalendarSource`]: events carry
//! only `calendar_version`, so stored events stay small and a calendar edit (a new version)
//! never rewrites history. Calendar versions are immutable; the caller supplies every version
//! the events cite (a slice, a map, or a single calendar).
//!
//! Time already consumed stays consumed when a target, policy or calendar changes: the clock
//! keeps `consumed` and only the remaining time is projected with the new settings.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{BusinessCalendar, delta_ns, ns_delta};
use crate::waiting::WaitingPolicy;

/// The at-risk threshold used when the caller has no policy at hand: 80 % of the target.
pub const DEFAULT_AT_RISK_FRACTION: f64 = 0.8;

/// How urgent a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    /// Service down.
    Critical,
    /// Major impact.
    High,
    /// Ordinary request.
    Normal,
    /// Minor or cosmetic.
    Low,
}

impl Severity {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Normal => "normal",
            Severity::Low => "low",
        }
    }
}

/// What an SLA target measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Metric {
    /// Until the first agent reply. Never pauses in the default policy.
    FirstResponse,
    /// Until the ticket is solved. Pauses while waiting for the customer.
    Resolution,
}

impl Metric {
    /// Both metrics, in display order.
    pub const ALL: [Metric; 2] = [Metric::FirstResponse, Metric::Resolution];
}

/// Which clock a target counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ClockMode {
    /// Only the business calendar's open time.
    Business,
    /// Wall time, 24×7.
    Calendar,
}

/// A duration and the clock it is counted on. `duration` serializes as `[seconds, nanos]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// How much time the metric may consume.
    pub duration: TimeDelta,
    /// Business or calendar time.
    pub mode: ClockMode,
}

impl Target {
    /// `hours` of business time.
    pub fn business_hours(hours: i64) -> Self {
        Target { duration: TimeDelta::hours(hours), mode: ClockMode::Business }
    }

    /// `hours` of wall time (24×7).
    pub fn calendar_hours(hours: i64) -> Self {
        Target { duration: TimeDelta::hours(hours), mode: ClockMode::Calendar }
    }
}

/// The targets of both metrics for one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// First-response target.
    pub first_response: Target,
    /// Resolution target.
    pub resolution: Target,
}

impl Targets {
    /// The target of `metric`.
    pub fn get(&self, metric: Metric) -> Target {
        match metric {
            Metric::FirstResponse => self.first_response,
            Metric::Resolution => self.resolution,
        }
    }
}

/// One row of the policy table. `severity: None` matches every severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRow {
    /// Plan code: "essencial", "pro", "premium".
    pub plan: String,
    /// The severity, or `None` for all.
    pub severity: Option<Severity>,
    /// Whether the row is for emergency tickets.
    pub emergency: bool,
    /// The targets.
    pub targets: Targets,
}

/// While a ticket is in `status`, the listed metrics are paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRule {
    /// Ticket status code (e.g. "waiting_customer").
    pub status: String,
    /// Metrics paused in that status.
    pub metrics: Vec<Metric>,
}

/// A versioned SLA policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaPolicy {
    /// Cited by clock events and explanations.
    pub version: u32,
    /// Target table; see [`SlaPolicy::targets`] for matching.
    pub rows: Vec<PolicyRow>,
    /// Which statuses pause which metrics.
    pub pause_rules: Vec<PauseRule>,
    /// At-risk threshold as a fraction of the target (0.8 = 80 %).
    pub at_risk_fraction: f64,
    /// R8's reminder and auto-close delays; versions stored before they were part of the policy
    /// read as the defaults (72 h and 48 h).
    #[serde(default)]
    pub waiting: WaitingPolicy,
}

impl SlaPolicy {
    /// The seeded policy (version 1): business hours unless noted, first response / resolution —
    /// Essencial 16/40 for every severity; Pro critical 2/8, high 4/16, normal 8/40, low 16/72;
    /// Premium critical 1/4, high 2/8, normal 4/24, low 8/40; Premium emergencies 1/4 in
    /// calendar time (24×7). "waiting_customer" pauses resolution; first response never pauses.
    pub fn default_targets() -> Self {
        let b = Target::business_hours;
        let row = |plan: &str, severity, fr, res| PolicyRow {
            plan: plan.to_owned(),
            severity,
            emergency: false,
            targets: Targets { first_response: b(fr), resolution: b(res) },
        };
        let mut rows = vec![row("essencial", None, 16, 40)];
        for (plan, table) in
            [("pro", [(2, 8), (4, 16), (8, 40), (16, 72)]), ("premium", [(1, 4), (2, 8), (4, 24), (8, 40)])]
        {
            let severities = [Severity::Critical, Severity::High, Severity::Normal, Severity::Low];
            for (sev, (fr, res)) in severities.into_iter().zip(table) {
                rows.push(row(plan, Some(sev), fr, res));
            }
        }
        rows.push(PolicyRow {
            plan: "premium".to_owned(),
            severity: None,
            emergency: true,
            targets: Targets { first_response: Target::calendar_hours(1), resolution: Target::calendar_hours(4) },
        });
        SlaPolicy {
            version: 1,
            rows,
            pause_rules: vec![PauseRule { status: "waiting_customer".to_owned(), metrics: vec![Metric::Resolution] }],
            at_risk_fraction: DEFAULT_AT_RISK_FRACTION,
            waiting: WaitingPolicy::default(),
        }
    }

    /// The targets for a ticket. An exact severity row wins over a `None` one; an emergency
    /// ticket uses an emergency row when the plan has one, otherwise the ordinary row.
    pub fn targets(&self, plan: &str, severity: Severity, emergency: bool) -> Option<Targets> {
        let find = |emergency: bool| {
            let matching = |exact: bool| {
                self.rows.iter().find(|r| {
                    r.plan == plan
                        && r.emergency == emergency
                        && if exact { r.severity == Some(severity) } else { r.severity.is_none() }
                })
            };
            matching(true).or_else(|| matching(false)).map(|r| r.targets)
        };
        if emergency { find(true).or_else(|| find(false)) } else { find(false) }
    }

    /// Whether a ticket in `status` has `metric` paused.
    pub fn pauses(&self, status: &str, metric: Metric) -> bool {
        self.pause_rules.iter().any(|r| r.status == status && r.metrics.contains(&metric))
    }
}

/// What happened to a ticket's clock, at an instant. Stored as JSONB rows, replayed in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: ClockEventKind,
}

/// The kinds of clock events (JSON: `{"type": "paused", "metric": "resolution"}` etc.).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClockEventKind {
    /// Both metrics start running. Must be the first event.
    Started { targets: Targets, calendar_version: u32, policy_version: u32 },
    /// The metric stops counting (it must be running).
    Paused { metric: Metric },
    /// The metric counts again (it must be paused).
    Resumed { metric: Metric },
    /// The metric is satisfied (first reply sent / ticket solved); it must not be met already.
    Met { metric: Metric },
    /// The ticket was reopened: resolution (which must be met) runs again, consumed time kept.
    Reopened,
    /// One metric's target changed (e.g. severity changed).
    TargetChanged { metric: Metric, target: Target, policy_version: u32 },
    /// A new policy version replaced both targets.
    PolicyChanged { targets: Targets, policy_version: u32 },
    /// The organisation's calendar changed; business time from now on uses this version.
    CalendarChanged { calendar_version: u32 },
}

impl ClockEventKind {
    fn name(&self) -> &'static str {
        match self {
            ClockEventKind::Started { .. } => "started",
            ClockEventKind::Paused { .. } => "paused",
            ClockEventKind::Resumed { .. } => "resumed",
            ClockEventKind::Met { .. } => "met",
            ClockEventKind::Reopened => "reopened",
            ClockEventKind::TargetChanged { .. } => "target_changed",
            ClockEventKind::PolicyChanged { .. } => "policy_changed",
            ClockEventKind::CalendarChanged { .. } => "calendar_changed",
        }
    }
}

/// Where replay finds the calendar a version refers to.
pub trait CalendarSource {
    /// The calendar with this version, if known.
    fn calendar(&self, version: u32) -> Option<&BusinessCalendar>;
}

impl CalendarSource for BusinessCalendar {
    fn calendar(&self, version: u32) -> Option<&BusinessCalendar> {
        (self.version() == version).then_some(self)
    }
}

impl CalendarSource for [BusinessCalendar] {
    fn calendar(&self, version: u32) -> Option<&BusinessCalendar> {
        self.iter().find(|c| c.version() == version)
    }
}

impl CalendarSource for Vec<BusinessCalendar> {
    fn calendar(&self, version: u32) -> Option<&BusinessCalendar> {
        self.as_slice().calendar(version)
    }
}

impl CalendarSource for HashMap<u32, BusinessCalendar> {
    fn calendar(&self, version: u32) -> Option<&BusinessCalendar> {
        self.get(&version)
    }
}

impl CalendarSource for BTreeMap<u32, BusinessCalendar> {
    fn calendar(&self, version: u32) -> Option<&BusinessCalendar> {
        self.get(&version)
    }
}

/// Why an event could not be applied. The clock is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaError {
    /// An event other than `started` came first (or there were no events).
    #[error("the SLA clock has not been started")]
    NotStarted,
    /// A second `started` event.
    #[error("the SLA clock was already started")]
    AlreadyStarted,
    /// Events must be in non-decreasing time order.
    #[error("event at {at} is earlier than the previous event at {previous}")]
    OutOfOrder { at: DateTime<Utc>, previous: DateTime<Utc> },
    /// The event does not fit the metric's phase (e.g. resume when not paused).
    #[error("cannot apply {event} to {metric:?} while it is {phase:?}")]
    InvalidTransition { event: &'static str, metric: Metric, phase: ClockPhase },
    /// An event cites a calendar version the source does not have.
    #[error("calendar version {0} is unknown")]
    UnknownCalendar(u32),
}

/// Where a metric's clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ClockPhase {
    /// Counting.
    Running,
    /// Not counting until resumed.
    Paused,
    /// Satisfied; not counting until reopened.
    Met,
}

/// A stretch of time that counted towards a metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountedSegment {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
    /// Time counted inside it (business time for business targets).
    pub counted: TimeDelta,
    /// How it was counted.
    pub mode: ClockMode,
    /// The calendar used (business mode only).
    pub calendar_version: Option<u32>,
}

/// A stretch of time a metric was paused (`to` is `now` when still paused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedSegment {
    /// When the pause began.
    pub from: DateTime<Utc>,
    /// When it ended.
    pub to: DateTime<Utc>,
}

/// A metric's derived state at some instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricState {
    /// Which metric.
    pub metric: Metric,
    /// Its current target.
    pub target: Target,
    /// Running, paused or met.
    pub phase: ClockPhase,
    /// Time counted so far.
    pub consumed: TimeDelta,
    /// `target − consumed`, never negative.
    pub remaining: TimeDelta,
    /// When the target is (or was) reached if the clock keeps running; `None` while paused or
    /// met. Once breached, this is the breach instant.
    pub due_at: Option<DateTime<Utc>>,
    /// When it was met (if met).
    pub met_at: Option<DateTime<Utc>>,
    /// The target was reached before the metric was met (or before now, if not met).
    pub breached: bool,
    /// The instant the target was reached, when breached.
    pub breached_at: Option<DateTime<Utc>>,
    /// Not met, not breached, and `consumed ≥ fraction × target`.
    pub at_risk: bool,
    /// The calendar version currently used.
    pub calendar_version: u32,
    /// The policy version the current target came from.
    pub policy_version: u32,
    /// How many targets the metric has had: 1 at the start, one more each time a severity or
    /// policy change gives it a *different* target. SLA alerts fire once per revision.
    pub target_revision: u32,
}

/// Both metrics' states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaState {
    /// First response.
    pub first_response: MetricState,
    /// Resolution.
    pub resolution: MetricState,
}

impl SlaState {
    /// The state of `metric`.
    pub fn get(&self, metric: Metric) -> &MetricState {
        match metric {
            Metric::FirstResponse => &self.first_response,
            Metric::Resolution => &self.resolution,
        }
    }
}

/// A closed day the clock's business time skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedDay {
    /// Local date.
    pub date: chrono::NaiveDate,
    /// Holiday or closure name.
    pub name: String,
}

/// Why a metric stands where it does, for `GET /v1/tickets/{id}/sla`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricExplanation {
    /// The state at `now`.
    pub state: MetricState,
    /// Spans that counted.
    pub counted: Vec<CountedSegment>,
    /// Spans that were paused.
    pub paused: Vec<PausedSegment>,
    /// Closed days inside business-time spans that counted.
    pub closed_days_skipped: Vec<SkippedDay>,
    /// Closed days between now and the due instant that the running clock will skip: why a due
    /// instant lies further away than the target suggests.
    #[serde(default)]
    pub closed_days_ahead: Vec<SkippedDay>,
    /// Calendar versions used, in order of use.
    pub calendar_versions: Vec<u32>,
    /// Policy versions used, in order of use.
    pub policy_versions: Vec<u32>,
}

/// Both metrics explained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaExplanation {
    /// First response.
    pub first_response: MetricExplanation,
    /// Resolution.
    pub resolution: MetricExplanation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    Running { since: DateTime<Utc> },
    Paused { since: DateTime<Utc> },
    Met { at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MetricClock {
    metric: Metric,
    target: Target,
    calendar_version: u32,
    policy_version: u32,
    /// See [`MetricState::target_revision`]; absent from snapshots stored before it existed.
    #[serde(default = "first_revision")]
    target_revision: u32,
    consumed: TimeDelta,
    phase: Phase,
    /// When consumed time reached the target; breached if that precedes met/now.
    target_reached_at: Option<DateTime<Utc>>,
    counted: Vec<CountedSegment>,
    paused: Vec<PausedSegment>,
    calendar_versions: Vec<u32>,
    policy_versions: Vec<u32>,
}

fn first_revision() -> u32 {
    1
}

fn push_new(list: &mut Vec<u32>, v: u32) {
    if list.last() != Some(&v) {
        list.push(v);
    }
}

fn add_delta(a: TimeDelta, b: TimeDelta) -> TimeDelta {
    ns_delta(delta_ns(a) + delta_ns(b))
}

impl MetricClock {
    fn phase(&self) -> ClockPhase {
        match self.phase {
            Phase::Running { .. } => ClockPhase::Running,
            Phase::Paused { .. } => ClockPhase::Paused,
            Phase::Met { .. } => ClockPhase::Met,
        }
    }

    fn calendar<'c, C: CalendarSource + ?Sized>(&self, calendars: &'c C) -> Result<&'c BusinessCalendar, SlaError> {
        calendars.calendar(self.calendar_version).ok_or(SlaError::UnknownCalendar(self.calendar_version))
    }

    fn measure<C: CalendarSource + ?Sized>(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        calendars: &C,
    ) -> Result<TimeDelta, SlaError> {
        Ok(match self.target.mode {
            ClockMode::Calendar => (to - from).max(TimeDelta::zero()),
            ClockMode::Business => self.calendar(calendars)?.business_time_between(from, to),
        })
    }

    fn project<C: CalendarSource + ?Sized>(
        &self,
        from: DateTime<Utc>,
        amount: TimeDelta,
        calendars: &C,
    ) -> Result<DateTime<Utc>, SlaError> {
        Ok(match self.target.mode {
            ClockMode::Calendar => {
                from.checked_add_signed(amount.max(TimeDelta::zero())).unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
            ClockMode::Business => self.calendar(calendars)?.add_business_time(from, amount),
        })
    }

    /// Counts running time up to `to`, noting when the target is reached.
    fn advance<C: CalendarSource + ?Sized>(&mut self, to: DateTime<Utc>, calendars: &C) -> Result<(), SlaError> {
        let Phase::Running { since } = self.phase else {
            return Ok(());
        };
        if to <= since {
            return Ok(());
        }
        let counted = self.measure(since, to, calendars)?;
        let before = self.consumed;
        self.consumed = add_delta(before, counted);
        if self.target_reached_at.is_none() && self.consumed >= self.target.duration {
            let left = ns_delta(delta_ns(self.target.duration) - delta_ns(before));
            self.target_reached_at = Some(self.project(since, left, calendars)?);
        }
        let calendar_version = (self.target.mode == ClockMode::Business).then_some(self.calendar_version);
        self.counted.push(CountedSegment { from: since, to, counted, mode: self.target.mode, calendar_version });
        self.phase = Phase::Running { since: to };
        Ok(())
    }

    fn set_target(&mut self, target: Target, policy_version: u32, at: DateTime<Utc>) {
        if target != self.target {
            self.target_revision += 1;
        }
        self.target = target;
        self.policy_version = policy_version;
        push_new(&mut self.policy_versions, policy_version);
        // The breach is judged against the current target; a lowered target already exceeded
        // is reached at the moment of the change.
        self.target_reached_at =
            if self.consumed >= target.duration { self.target_reached_at.or(Some(at)) } else { None };
    }

    fn transition_error(&self, event: &'static str) -> SlaError {
        SlaError::InvalidTransition { event, metric: self.metric, phase: self.phase() }
    }

    fn state<C: CalendarSource + ?Sized>(
        &self,
        now: DateTime<Utc>,
        calendars: &C,
        fraction: f64,
    ) -> Result<MetricState, SlaError> {
        let target_ns = delta_ns(self.target.duration);
        let consumed_ns = delta_ns(self.consumed);
        let remaining = ns_delta((target_ns - consumed_ns).max(0));
        let reference = match self.phase {
            Phase::Met { at } => at,
            _ => now,
        };
        let breached_at = self.target_reached_at.filter(|&t| t < reference);
        let due_at = match self.phase {
            Phase::Running { since } => match self.target_reached_at {
                Some(t) => Some(t),
                None => Some(self.project(since, remaining, calendars)?),
            },
            _ => None,
        };
        let threshold = (target_ns as f64 * fraction.clamp(0.0, 1.0)) as i128;
        let met = matches!(self.phase, Phase::Met { .. });
        Ok(MetricState {
            metric: self.metric,
            target: self.target,
            phase: self.phase(),
            consumed: self.consumed,
            remaining,
            due_at,
            met_at: if let Phase::Met { at } = self.phase { Some(at) } else { None },
            breached: breached_at.is_some(),
            breached_at,
            at_risk: !met && breached_at.is_none() && consumed_ns >= threshold,
            calendar_version: self.calendar_version,
            policy_version: self.policy_version,
            target_revision: self.target_revision,
        })
    }
}

/// A ticket's clock, built by replaying events. `Serialize` so a snapshot can be stored and
/// further events applied to it later with the same result as a full replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    last_event_at: Option<DateTime<Utc>>,
    metrics: Option<[MetricClock; 2]>,
}

impl SlaClock {
    /// A clock with no events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replays `events` in one go.
    pub fn replay<C: CalendarSource + ?Sized>(events: &[ClockEvent], calendars: &C) -> Result<Self, SlaError> {
        let mut clock = Self::new();
        clock.apply_all(events, calendars)?;
        Ok(clock)
    }

    /// Applies events in order; stops at the first error (earlier events stay applied).
    pub fn apply_all<C: CalendarSource + ?Sized>(
        &mut self,
        events: &[ClockEvent],
        calendars: &C,
    ) -> Result<(), SlaError> {
        events.iter().try_for_each(|e| self.apply(e, calendars))
    }

    /// Applies one event. On error the clock is unchanged.
    pub fn apply<C: CalendarSource + ?Sized>(&mut self, event: &ClockEvent, calendars: &C) -> Result<(), SlaError> {
        let mut next = self.clone();
        next.apply_in_place(event, calendars)?;
        *self = next;
        Ok(())
    }

    /// The events that a status change to `status` implies under `policy`: a pause for each
    /// running metric the status pauses, a resume for each paused metric it does not.
    pub fn status_change_events(&self, policy: &SlaPolicy, status: &str, at: DateTime<Utc>) -> Vec<ClockEvent> {
        let Some(metrics) = &self.metrics else {
            return Vec::new();
        };
        metrics
            .iter()
            .filter_map(|m| {
                let pause = policy.pauses(status, m.metric);
                let kind = match m.phase {
                    Phase::Running { .. } if pause => ClockEventKind::Paused { metric: m.metric },
                    Phase::Paused { .. } if !pause => ClockEventKind::Resumed { metric: m.metric },
                    _ => return None,
                };
                Some(ClockEvent { at, kind })
            })
            .collect()
    }

    fn apply_in_place<C: CalendarSource + ?Sized>(
        &mut self,
        event: &ClockEvent,
        calendars: &C,
    ) -> Result<(), SlaError> {
        let at = event.at;
        if let Some(previous) = self.last_event_at
            && at < previous
        {
            return Err(SlaError::OutOfOrder { at, previous });
        }
        if let ClockEventKind::Started { targets, calendar_version, policy_version } = &event.kind {
            if self.metrics.is_some() {
                return Err(SlaError::AlreadyStarted);
            }
            let clock = |metric| MetricClock {
                metric,
                target: targets.get(metric),
                calendar_version: *calendar_version,
                policy_version: *policy_version,
                target_revision: first_revision(),
                consumed: TimeDelta::zero(),
                phase: Phase::Running { since: at },
                target_reached_at: None,
                counted: Vec::new(),
                paused: Vec::new(),
                calendar_versions: vec![*calendar_version],
                policy_versions: vec![*policy_version],
            };
            self.metrics = Some([clock(Metric::FirstResponse), clock(Metric::Resolution)]);
            self.last_event_at = Some(at);
            return Ok(());
        }
        let Some(metrics) = &mut self.metrics else {
            return Err(SlaError::NotStarted);
        };
        for m in metrics.iter_mut() {
            m.advance(at, calendars)?;
        }
        let [fr, res] = metrics;
        let pick = |metric: Metric| -> usize { if metric == Metric::FirstResponse { 0 } else { 1 } };
        let name = event.kind.name();
        match &event.kind {
            ClockEventKind::Started { .. } => return Err(SlaError::AlreadyStarted),
            ClockEventKind::Paused { metric } => {
                let m = metrics_mut(fr, res, pick(*metric));
                let Phase::Running { .. } = m.phase else {
                    return Err(m.transition_error(name));
                };
                m.phase = Phase::Paused { since: at };
            }
            ClockEventKind::Resumed { metric } => {
                let m = metrics_mut(fr, res, pick(*metric));
                let Phase::Paused { since } = m.phase else {
                    return Err(m.transition_error(name));
                };
                m.paused.push(PausedSegment { from: since, to: at });
                m.phase = Phase::Running { since: at };
            }
            ClockEventKind::Met { metric } => {
                let m = metrics_mut(fr, res, pick(*metric));
                match m.phase {
                    Phase::Met { .. } => return Err(m.transition_error(name)),
                    Phase::Paused { since } => m.paused.push(PausedSegment { from: since, to: at }),
                    Phase::Running { .. } => {}
                }
                m.phase = Phase::Met { at };
            }
            ClockEventKind::Reopened => {
                let Phase::Met { .. } = res.phase else {
                    return Err(res.transition_error(name));
                };
                res.phase = Phase::Running { since: at };
            }
            ClockEventKind::TargetChanged { metric, target, policy_version } => {
                metrics_mut(fr, res, pick(*metric)).set_target(*target, *policy_version, at);
            }
            ClockEventKind::PolicyChanged { targets, policy_version } => {
                fr.set_target(targets.first_response, *policy_version, at);
                res.set_target(targets.resolution, *policy_version, at);
            }
            ClockEventKind::CalendarChanged { calendar_version } => {
                if calendars.calendar(*calendar_version).is_none() {
                    return Err(SlaError::UnknownCalendar(*calendar_version));
                }
                for m in [fr, res] {
                    m.calendar_version = *calendar_version;
                    push_new(&mut m.calendar_versions, *calendar_version);
                }
            }
        }
        self.last_event_at = Some(at);
        Ok(())
    }

    /// Both metrics' state at `now` (a `now` before the last event is treated as that event's
    /// instant, so clock skew never fails a read).
    pub fn state<C: CalendarSource + ?Sized>(
        &self,
        now: DateTime<Utc>,
        calendars: &C,
        at_risk_fraction: f64,
    ) -> Result<SlaState, SlaError> {
        let now = self.last_event_at.map_or(now, |l| now.max(l));
        let [fr, res] = self.advanced_to(now, calendars)?;
        Ok(SlaState {
            first_response: fr.state(now, calendars, at_risk_fraction)?,
            resolution: res.state(now, calendars, at_risk_fraction)?,
        })
    }

    /// The state plus the segments, pauses, skipped closed days and versions behind it.
    pub fn explain<C: CalendarSource + ?Sized>(
        &self,
        now: DateTime<Utc>,
        calendars: &C,
        at_risk_fraction: f64,
    ) -> Result<SlaExplanation, SlaError> {
        let now = self.last_event_at.map_or(now, |l| now.max(l));
        let [fr, res] = self.advanced_to(now, calendars)?;
        let explain = |m: MetricClock| -> Result<MetricExplanation, SlaError> {
            let state = m.state(now, calendars, at_risk_fraction)?;
            let mut paused = m.paused.clone();
            if let Phase::Paused { since } = m.phase {
                paused.push(PausedSegment { from: since, to: now });
            }
            let mut closed_days_skipped: Vec<SkippedDay> = Vec::new();
            for seg in &m.counted {
                let Some(cal) = seg.calendar_version.and_then(|v| calendars.calendar(v)) else {
                    continue;
                };
                for (date, name) in cal.closed_days_skipped(seg.from, seg.to) {
                    if !closed_days_skipped.iter().any(|d| d.date == date) {
                        closed_days_skipped.push(SkippedDay { date, name });
                    }
                }
            }
            let mut closed_days_ahead = Vec::new();
            if let (Phase::Running { .. }, Some(due_at), Some(cal)) =
                (m.phase, state.due_at, calendars.calendar(m.calendar_version))
                && m.target.mode == ClockMode::Business
            {
                closed_days_ahead = cal
                    .closed_days_skipped(now, due_at)
                    .into_iter()
                    .map(|(date, name)| SkippedDay { date, name })
                    .collect();
            }
            Ok(MetricExplanation {
                state,
                closed_days_ahead,
                counted: m.counted,
                paused,
                closed_days_skipped,
                calendar_versions: m.calendar_versions,
                policy_versions: m.policy_versions,
            })
        };
        Ok(SlaExplanation { first_response: explain(fr)?, resolution: explain(res)? })
    }

    fn advanced_to<C: CalendarSource + ?Sized>(
        &self,
        now: DateTime<Utc>,
        calendars: &C,
    ) -> Result<[MetricClock; 2], SlaError> {
        let mut metrics = self.metrics.clone().ok_or(SlaError::NotStarted)?;
        let now = self.last_event_at.map_or(now, |l| now.max(l));
        for m in &mut metrics {
            m.advance(now, calendars)?;
        }
        Ok(metrics)
    }
}

fn metrics_mut<'a>(fr: &'a mut MetricClock, res: &'a mut MetricClock, index: usize) -> &'a mut MetricClock {
    if index == 0 { fr } else { res }
}

/// Replays `events` and returns both metrics' state at `now`.
pub fn evaluate<C: CalendarSource + ?Sized>(
    events: &[ClockEvent],
    calendars: &C,
    now: DateTime<Utc>,
    at_risk_fraction: f64,
) -> Result<SlaState, SlaError> {
    SlaClock::replay(events, calendars)?.state(now, calendars, at_risk_fraction)
}

/// Replays `events` and explains both metrics at `now`.
pub fn explain<C: CalendarSource + ?Sized>(
    events: &[ClockEvent],
    calendars: &C,
    now: DateTime<Utc>,
    at_risk_fraction: f64,
) -> Result<SlaExplanation, SlaError> {
    SlaClock::replay(events, calendars)?.explain(now, calendars, at_risk_fraction)
}
