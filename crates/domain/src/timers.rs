//! Ticket timers (DESIGN R5–R8): when a ticket's SLA alerts, its R8 reminder and its auto-close
//! are due, what acting on each leaves behind so that it never acts twice, and who hears of an
//! alert when.
//!
//! A ticket's timers reduce to one instant, [`TimerState::next_at`], which the ticket stores
//! (`tickets.next_timer_at`) so that the worker finds every due ticket through one small index.
//! At or after that instant [`TimerState::due`] lists what acts, and [`TimerState::record`] notes
//! each action. The property tests (`tests/timers.rs`) hold the three together: nothing is due
//! before `next_at`, something is due at and after it, and once what is due has been recorded
//! nothing is due at that instant any more and `next_at` has moved strictly later. That is what
//! makes a duplicate or stale job a no-op.
//!
//! - **SLA alerts** (R5): per metric, an at-risk alert once the at-risk instant has passed, then a
//!   breach alert once the target has run out; each at most once per target revision (a severity
//!   or policy change that gives the metric a different target starts a new revision; a pause, a
//!   calendar change or a reopen does not). A target that ran out before its at-risk alert went
//!   out gets the breach alert alone. Nothing fires while a metric is paused or met.
//! - **Reminder** (R8): waiting for the customer `reminder_after_hours`, one reminder per wait.
//! - **Auto-close** (R8): still waiting `auto_close_after_hours` after that wait's reminder went
//!   out (not after it was due: a late reminder still leaves the customer the full delay).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::BusinessCalendar;
use crate::sla::Metric;
pub use crate::waiting::WaitingPolicy;

/// Which timer acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// The first-response target is at risk.
    FirstResponseAtRisk,
    /// The first-response target ran out.
    FirstResponseBreached,
    /// The resolution target is at risk.
    ResolutionAtRisk,
    /// The resolution target ran out.
    ResolutionBreached,
    /// R8's reminder to a customer who has not answered.
    CustomerReminder,
    /// R8's close of a ticket still waiting after the reminder.
    AutoClose,
}

impl TimerKind {
    /// Every kind, in the order [`TimerState::due`] lists them: alerts first, then R8.
    pub const ALL: [TimerKind; 6] = [
        TimerKind::FirstResponseAtRisk,
        TimerKind::FirstResponseBreached,
        TimerKind::ResolutionAtRisk,
        TimerKind::ResolutionBreached,
        TimerKind::CustomerReminder,
        TimerKind::AutoClose,
    ];

    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::FirstResponseAtRisk => "first_response_at_risk",
            TimerKind::FirstResponseBreached => "first_response_breached",
            TimerKind::ResolutionAtRisk => "resolution_at_risk",
            TimerKind::ResolutionBreached => "resolution_breached",
            TimerKind::CustomerReminder => "customer_reminder",
            TimerKind::AutoClose => "auto_close",
        }
    }

    /// The metric and stage of an SLA alert; `None` for R8's timers.
    pub fn alert(self) -> Option<(Metric, AlertStage)> {
        match self {
            TimerKind::FirstResponseAtRisk => Some((Metric::FirstResponse, AlertStage::AtRisk)),
            TimerKind::FirstResponseBreached => Some((Metric::FirstResponse, AlertStage::Breached)),
            TimerKind::ResolutionAtRisk => Some((Metric::Resolution, AlertStage::AtRisk)),
            TimerKind::ResolutionBreached => Some((Metric::Resolution, AlertStage::Breached)),
            TimerKind::CustomerReminder | TimerKind::AutoClose => None,
        }
    }

    /// The SLA alert of `metric` at `stage`.
    pub fn of_alert(metric: Metric, stage: AlertStage) -> Self {
        match (metric, stage) {
            (Metric::FirstResponse, AlertStage::AtRisk) => TimerKind::FirstResponseAtRisk,
            (Metric::FirstResponse, AlertStage::Breached) => TimerKind::FirstResponseBreached,
            (Metric::Resolution, AlertStage::AtRisk) => TimerKind::ResolutionAtRisk,
            (Metric::Resolution, AlertStage::Breached) => TimerKind::ResolutionBreached,
        }
    }
}

/// How far a metric's alerts have gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStage {
    /// The at-risk alert went out.
    AtRisk,
    /// The breach alert went out (and the at-risk one is no longer due).
    Breached,
}

/// The last alert of a metric, and for which of its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertMark {
    /// The metric's target revision when the alert went out.
    pub target_revision: u32,
    /// Which alert it was.
    pub stage: AlertStage,
}

/// What the SLA alerts have done, stored with the ticket (`tickets.sla_alerts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertMarks {
    /// First response's last alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response: Option<AlertMark>,
    /// Resolution's last alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<AlertMark>,
}

impl AlertMarks {
    /// The last alert of `metric`.
    pub fn get(&self, metric: Metric) -> Option<AlertMark> {
        match metric {
            Metric::FirstResponse => self.first_response,
            Metric::Resolution => self.resolution,
        }
    }

    fn set(&mut self, metric: Metric, mark: AlertMark) {
        match metric {
            Metric::FirstResponse => self.first_response = Some(mark),
            Metric::Resolution => self.resolution = Some(mark),
        }
    }
}

/// One SLA metric as the timers see it: its projected instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricTimer {
    /// When the target runs out (or ran out); `None` while the metric is paused or met.
    pub due_at: Option<DateTime<Utc>>,
    /// When the at-risk threshold is (or was) crossed; `None` while paused or met.
    pub at_risk_at: Option<DateTime<Utc>>,
    /// Which of the metric's targets this is.
    pub target_revision: u32,
}

impl MetricTimer {
    /// A metric with nothing due: paused or met.
    pub const IDLE: MetricTimer = MetricTimer { due_at: None, at_risk_at: None, target_revision: 1 };
}

/// Everything the timers of one ticket depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerState {
    /// A closed ticket has no timers.
    pub closed: bool,
    /// First response, as projected.
    pub first_response: MetricTimer,
    /// Resolution, as projected.
    pub resolution: MetricTimer,
    /// The alerts already sent.
    pub alerts: AlertMarks,
    /// Since when the ticket waits for the customer, if it does.
    pub waiting_since: Option<DateTime<Utc>>,
    /// When a reminder last went out. It belongs to the current wait only if it is not earlier
    /// than `waiting_since`.
    pub reminder_sent_at: Option<DateTime<Utc>>,
}

fn later(at: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(by).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl TimerState {
    /// The metric's projected instants.
    pub fn metric(&self, metric: Metric) -> &MetricTimer {
        match metric {
            Metric::FirstResponse => &self.first_response,
            Metric::Resolution => &self.resolution,
        }
    }

    /// How far the alerts of the metric's *current* target have gone.
    pub fn alerted(&self, metric: Metric) -> Option<AlertStage> {
        let revision = self.metric(metric).target_revision;
        self.alerts.get(metric).filter(|mark| mark.target_revision == revision).map(|mark| mark.stage)
    }

    /// When the reminder of the current wait went out, if it did.
    pub fn reminder_of_wait(&self) -> Option<DateTime<Utc>> {
        let since = self.waiting_since?;
        self.reminder_sent_at.filter(|at| *at >= since)
    }

    /// When the ticket closes by itself if the customer stays silent: the reminder's instant (sent,
    /// or due) plus the auto-close delay. `None` unless the ticket waits for the customer.
    pub fn auto_close_at(&self, policy: &WaitingPolicy) -> Option<DateTime<Utc>> {
        if self.closed {
            return None;
        }
        let since = self.waiting_since?;
        let reminder = self.reminder_of_wait().unwrap_or_else(|| later(since, policy.reminder_after()));
        Some(later(reminder, policy.auto_close_after()))
    }

    /// Every timer that has not acted, with the instant it acts at.
    fn pending(&self, policy: &WaitingPolicy) -> Vec<(TimerKind, DateTime<Utc>)> {
        let mut pending = Vec::with_capacity(3);
        if self.closed {
            return pending;
        }
        for metric in Metric::ALL {
            let timer = self.metric(metric);
            let Some(due_at) = timer.due_at else { continue };
            match self.alerted(metric) {
                Some(AlertStage::Breached) => {}
                Some(AlertStage::AtRisk) => pending.push((TimerKind::of_alert(metric, AlertStage::Breached), due_at)),
                None => {
                    let at_risk_at = timer.at_risk_at.map_or(due_at, |at| at.min(due_at));
                    pending.push((TimerKind::of_alert(metric, AlertStage::AtRisk), at_risk_at));
                    pending.push((TimerKind::of_alert(metric, AlertStage::Breached), due_at));
                }
            }
        }
        if let Some(since) = self.waiting_since {
            match self.reminder_of_wait() {
                None => pending.push((TimerKind::CustomerReminder, later(since, policy.reminder_after()))),
                Some(sent) => pending.push((TimerKind::AutoClose, later(sent, policy.auto_close_after()))),
            }
        }
        pending
    }

    /// The earliest instant at which a timer acts; `None` when none is pending.
    pub fn next_at(&self, policy: &WaitingPolicy) -> Option<DateTime<Utc>> {
        self.pending(policy).into_iter().map(|(_, at)| at).min()
    }

    /// What acts at `now`, alerts first. An at-risk alert whose target has run out meanwhile
    /// gives way to the breach alert.
    pub fn due(&self, policy: &WaitingPolicy, now: DateTime<Utc>) -> Vec<TimerKind> {
        let due: Vec<TimerKind> =
            self.pending(policy).into_iter().filter(|(_, at)| *at <= now).map(|(kind, _)| kind).collect();
        let superseded = |kind: TimerKind| match kind.alert() {
            Some((metric, AlertStage::AtRisk)) => due.contains(&TimerKind::of_alert(metric, AlertStage::Breached)),
            _ => false,
        };
        let mut due: Vec<TimerKind> = due.iter().copied().filter(|kind| !superseded(*kind)).collect();
        due.sort_unstable();
        due
    }

    /// Notes that `kind` acted at `now`.
    pub fn record(&mut self, kind: TimerKind, now: DateTime<Utc>) {
        match kind.alert() {
            Some((metric, stage)) => {
                let target_revision = self.metric(metric).target_revision;
                self.alerts.set(metric, AlertMark { target_revision, stage });
            }
            None if kind == TimerKind::CustomerReminder => self.reminder_sent_at = Some(now),
            None => {
                self.closed = true;
                self.waiting_since = None;
            }
        }
    }
}

/// R7: when an alert raised at `raised_at` reaches people. An emergency pages at once, any hour;
/// any other alert raised while the desk is closed waits for its next opening.
pub fn alert_delivery_at(emergency: bool, raised_at: DateTime<Utc>, calendar: &BusinessCalendar) -> DateTime<Utc> {
    if emergency { raised_at } else { calendar.next_business_instant(raised_at).max(raised_at) }
}

/// Who hears of an SLA alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAudience<Id> {
    /// The agent the ticket is assigned to.
    Assignee(Id),
    /// Every active agent: the on-call list (R7), and who hears of an unassigned ticket.
    AllAgents,
}

/// An emergency pages every agent, assigned or not (R7); otherwise the assignee hears of it, or
/// every agent when nobody is assigned.
pub fn alert_audience<Id>(emergency: bool, assignee: Option<Id>) -> AlertAudience<Id> {
    match assignee {
        Some(agent) if !emergency => AlertAudience::Assignee(agent),
        _ => AlertAudience::AllAgents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// Premium critical opened Tuesday 2026-12-01 10:00 São Paulo: first response due 11:00, at
    /// risk 10:48; resolution paused.
    fn open_ticket() -> TimerState {
        TimerState {
            closed: false,
            first_response: MetricTimer {
                due_at: Some(at("2026-12-01T14:00:00Z")),
                at_risk_at: Some(at("2026-12-01T13:48:00Z")),
                target_revision: 1,
            },
            resolution: MetricTimer::IDLE,
            alerts: AlertMarks::default(),
            waiting_since: None,
            reminder_sent_at: None,
        }
    }

    #[test]
    fn the_at_risk_alert_comes_first_then_the_breach() {
        let policy = WaitingPolicy::default();
        let mut state = open_ticket();
        assert_eq!(state.next_at(&policy), Some(at("2026-12-01T13:48:00Z")));
        assert!(state.due(&policy, at("2026-12-01T13:47:59Z")).is_empty());
        assert_eq!(state.due(&policy, at("2026-12-01T13:50:00Z")), vec![TimerKind::FirstResponseAtRisk]);
        state.record(TimerKind::FirstResponseAtRisk, at("2026-12-01T13:50:00Z"));
        assert!(state.due(&policy, at("2026-12-01T13:50:00Z")).is_empty(), "recorded: a duplicate does nothing");
        assert_eq!(state.next_at(&policy), Some(at("2026-12-01T14:00:00Z")));
        assert_eq!(state.due(&policy, at("2026-12-01T14:00:00Z")), vec![TimerKind::FirstResponseBreached]);
        state.record(TimerKind::FirstResponseBreached, at("2026-12-01T14:00:00Z"));
        assert_eq!(state.next_at(&policy), None, "nothing more for this target");
    }

    #[test]
    fn a_target_that_ran_out_unnoticed_gets_the_breach_alert_alone() {
        let policy = WaitingPolicy::default();
        let state = open_ticket();
        assert_eq!(state.due(&policy, at("2026-12-01T23:00:00Z")), vec![TimerKind::FirstResponseBreached]);
    }

    #[test]
    fn a_new_target_revision_alerts_again_but_a_moved_due_instant_does_not() {
        let policy = WaitingPolicy::default();
        let mut state = open_ticket();
        state.record(TimerKind::FirstResponseBreached, at("2026-12-01T14:00:00Z"));
        // The calendar changed (same target, later due instant): still alerted.
        state.first_response.due_at = Some(at("2026-12-01T15:00:00Z"));
        assert_eq!(state.next_at(&policy), None);
        // The severity changed: a different target, a new revision.
        state.first_response.target_revision = 2;
        assert_eq!(state.next_at(&policy), Some(at("2026-12-01T13:48:00Z")));
        assert_eq!(state.alerted(Metric::FirstResponse), None);
    }

    #[test]
    fn reminder_then_auto_close_follow_the_wait() {
        let policy = WaitingPolicy::default();
        let mut state = open_ticket();
        state.first_response = MetricTimer::IDLE;
        state.waiting_since = Some(at("2026-12-01T13:00:00Z"));
        assert_eq!(state.next_at(&policy), Some(at("2026-12-04T13:00:00Z")));
        assert_eq!(state.auto_close_at(&policy), Some(at("2026-12-06T13:00:00Z")));
        // The worker was down: the reminder goes out late, and the customer still gets 48 h.
        let late = at("2026-12-05T09:00:00Z");
        assert_eq!(state.due(&policy, late), vec![TimerKind::CustomerReminder]);
        state.record(TimerKind::CustomerReminder, late);
        assert!(state.due(&policy, late).is_empty());
        assert_eq!(state.next_at(&policy), Some(at("2026-12-07T09:00:00Z")));
        assert_eq!(state.due(&policy, at("2026-12-07T09:00:00Z")), vec![TimerKind::AutoClose]);
        state.record(TimerKind::AutoClose, at("2026-12-07T09:00:00Z"));
        assert_eq!(state.next_at(&policy), None);
    }

    #[test]
    fn a_new_wait_earns_a_new_reminder() {
        let policy = WaitingPolicy { reminder_after_hours: 24, auto_close_after_hours: 12 };
        let mut state = open_ticket();
        state.first_response = MetricTimer::IDLE;
        state.reminder_sent_at = Some(at("2026-12-02T13:00:00Z"));
        state.waiting_since = Some(at("2026-12-03T13:00:00Z"));
        assert_eq!(state.reminder_of_wait(), None, "that reminder belonged to an earlier wait");
        assert_eq!(state.next_at(&policy), Some(at("2026-12-04T13:00:00Z")));
    }

    #[test]
    fn a_closed_ticket_has_no_timers() {
        let mut state = open_ticket();
        state.closed = true;
        state.waiting_since = Some(at("2026-12-01T13:00:00Z"));
        assert_eq!(state.next_at(&WaitingPolicy::default()), None);
        assert!(state.due(&WaitingPolicy::default(), DateTime::<Utc>::MAX_UTC).is_empty());
    }

    #[test]
    fn out_of_hours_alerts_wait_for_the_opening_unless_it_is_an_emergency() {
        let calendar = BusinessCalendar::brazil_default();
        let friday_night = at("2026-12-04T23:00:00Z");
        assert_eq!(alert_delivery_at(false, friday_night, &calendar), at("2026-12-07T12:00:00Z"));
        assert_eq!(alert_delivery_at(true, friday_night, &calendar), friday_night);
        let tuesday_morning = at("2026-12-01T13:30:00Z");
        assert_eq!(alert_delivery_at(false, tuesday_morning, &calendar), tuesday_morning);
    }

    #[test]
    fn emergencies_page_everyone_and_others_go_to_the_assignee() {
        assert_eq!(alert_audience(false, Some(7)), AlertAudience::Assignee(7));
        assert_eq!(alert_audience(true, Some(7)), AlertAudience::AllAgents);
        assert_eq!(alert_audience::<u8>(false, None), AlertAudience::AllAgents);
    }

    #[test]
    fn marks_and_policy_have_a_stable_stored_form() -> Result<(), serde_json::Error> {
        let mut marks = AlertMarks::default();
        assert_eq!(serde_json::to_string(&marks)?, "{}");
        marks.set(Metric::Resolution, AlertMark { target_revision: 2, stage: AlertStage::AtRisk });
        assert_eq!(serde_json::to_string(&marks)?, r#"{"resolution":{"target_revision":2,"stage":"at_risk"}}"#);
        assert_eq!(serde_json::from_str::<AlertMarks>("{}")?, AlertMarks::default());
        assert_eq!(
            serde_json::to_string(&WaitingPolicy::default())?,
            r#"{"reminder_after_hours":72,"auto_close_after_hours":48}"#
        );
        Ok(())
    }
}
