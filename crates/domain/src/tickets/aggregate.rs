//! What each ticket command does (DESIGN R2–R9). A command takes the ticket's state, the actor and
//! the SLA versions in force, checks the lifecycle rules, and records what happened: the clock
//! events, the timeline entries and the notifications to send. Storage persists them as they are.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::lifecycle::{self as rules, Actor, CloseReason, Status, TicketRuleError};
use super::ticket::{Source, Ticket};
use crate::accounts::Role;
use crate::plans::{Category, Entitlements, MissingEntitlement};
use crate::sla::{ClockEvent, ClockEventKind, ClockPhase, Metric, Severity, SlaClock, SlaError};
use crate::sla_projection::{self, MetricProjection, Projection};
use crate::sla_versions::SlaSnapshot;
use crate::timers::{AlertMarks, MetricTimer, TimerState};

/// A refused command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rule(#[from] TicketRuleError),
    #[error("the plan does not cover this request")]
    NotEntitled(MissingEntitlement),
    /// The policy in force has no targets for the ticket; a validated policy never lacks them.
    #[error("SLA policy {policy_version} has no targets for plan {plan}, severity {}", severity.as_str())]
    NoTargets { policy_version: u32, plan: String, severity: Severity },
    #[error("SLA clock: {0}")]
    Clock(#[from] SlaError),
}

/// One line of the ticket's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// The person who acted; `None` for the system.
    pub actor: Option<Uuid>,
    pub kind: &'static str,
    pub data: Value,
    /// Staff only.
    pub internal: bool,
}

/// Who a notification goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The customer the ticket is for (nobody when the system opened it).
    Requester,
    /// The agent the ticket is assigned to.
    Assignee,
}

/// Why someone hears about the ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Created,
    /// Kadix answered.
    Replied {
        message_id: Uuid,
        body: String,
    },
    /// The customer answered.
    CustomerReplied {
        message_id: Uuid,
        body: String,
    },
    Assigned,
    /// Kadix needs the customer's answer.
    Waiting,
    Closed {
        reason: CloseReason,
    },
    /// R8: the customer has not answered.
    Reminder {
        waiting_since: DateTime<Utc>,
        auto_close_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub to: Audience,
    pub notice: Notice,
}

/// A message added to the ticket.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    pub message_id: Uuid,
    pub body: &'a str,
    /// Staff only: a note customers never see.
    pub internal: bool,
    /// Staff only: the status the ticket moves to with the reply.
    pub then_status: Option<Status>,
}

/// Who opens a ticket (issue 14: three ways in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// A customer, for their own organisation.
    Customer { user: Uuid },
    /// An agent, on behalf of a named customer whose contract decides the entitlement.
    Agent { agent: Uuid, requester: Uuid },
    /// The system, for an organisation (monitoring).
    System { source: Source },
}

/// What the ticket is about.
#[derive(Debug, Clone)]
pub struct OpenTicket {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub subject: String,
    pub description: String,
    pub category: Category,
    pub severity: Severity,
    pub emergency: bool,
    pub references_ticket_id: Option<Uuid>,
}

/// The contract in force for the ticket's organisation.
#[derive(Debug, Clone)]
pub struct PlanInForce<'a> {
    pub code: &'a str,
    pub entitlements: Entitlements,
}

/// A ticket being changed, with everything the change has done so far.
#[derive(Debug, Clone)]
pub struct TicketChange {
    pub ticket: Ticket,
    clock: SlaClock,
    /// Clock events to append to the stored list.
    pub new_clock_events: Vec<ClockEvent>,
    pub timeline: Vec<TimelineEntry>,
    pub notifications: Vec<Notification>,
    /// The ticket did not exist before this change.
    pub created: bool,
}

fn person(user: Uuid, role: Role) -> (Option<Uuid>, Actor) {
    (Some(user), Actor::Person(role))
}

impl TicketChange {
    /// Opens a ticket: the entitlement check (R2; the system's own tickets need none, since
    /// monitoring is Kadix's duty to every monitored site), the targets for plan × severity, and
    /// the started clock (R5).
    pub fn open(
        input: OpenTicket,
        opener: Opener,
        plan: PlanInForce<'_>,
        rules: &SlaSnapshot,
        now: DateTime<Utc>,
    ) -> Result<Self, CommandError> {
        if !matches!(opener, Opener::System { .. }) {
            plan.entitlements.check_ticket(input.category, input.emergency).map_err(CommandError::NotEntitled)?;
        }
        let targets = rules.policy.targets(plan.code, input.severity, input.emergency).ok_or_else(|| {
            CommandError::NoTargets {
                policy_version: rules.policy.version,
                plan: plan.code.to_owned(),
                severity: input.severity,
            }
        })?;
        let (requester_id, opened_by, source) = match opener {
            Opener::Customer { user } => (Some(user), Some(user), Source::Portal),
            Opener::Agent { agent, requester } => (Some(requester), Some(agent), Source::Agent),
            Opener::System { source } => (None, None, source),
        };
        let ticket = Ticket {
            id: input.id,
            number: 0,
            organization_id: input.organization_id,
            requester_id,
            opened_by,
            source,
            assignee_id: None,
            subject: input.subject,
            description: input.description,
            category: input.category,
            severity: input.severity,
            emergency: input.emergency,
            plan_code: plan.code.to_owned(),
            status: Status::Open,
            close_reason: None,
            closed_at: None,
            waiting_since: None,
            references_ticket_id: input.references_ticket_id,
            first_response_due_at: None,
            first_response_at_risk_at: None,
            first_response_met_at: None,
            first_response_breached: false,
            resolution_due_at: None,
            resolution_at_risk_at: None,
            resolution_met_at: None,
            resolution_breached: false,
            next_due_at: sla_projection::NOTHING_DUE,
            next_timer_at: None,
            reminder_sent_at: None,
            sla_alerts: AlertMarks::default(),
            calendar_version: rules.calendar.version() as i32,
            policy_version: rules.policy.version as i32,
            version: 1,
            created_at: now,
            updated_at: now,
            sla_events: Vec::new(),
        };
        let mut change = TicketChange {
            ticket,
            clock: SlaClock::default(),
            new_clock_events: Vec::new(),
            timeline: Vec::new(),
            notifications: Vec::new(),
            created: true,
        };
        let mut data = json!({ "category": input.category, "severity": input.severity, "emergency": input.emergency, "plan": plan.code, "source": source });
        if let (Some(agent), Some(requester), Value::Object(map)) = (opened_by, requester_id, &mut data)
            && agent != requester
        {
            map.insert("on_behalf_of".into(), json!(requester));
        }
        change.log(opened_by, "created", data, false);
        change.clock_event(
            rules,
            ClockEvent {
                at: now,
                kind: ClockEventKind::Started {
                    targets,
                    calendar_version: rules.calendar.version(),
                    policy_version: rules.policy.version,
                },
            },
        )?;
        change.notify(Audience::Requester, Notice::Created);
        Ok(change)
    }

    /// A stored ticket, ready for change: its clock replayed and brought onto the calendar and
    /// policy in force (time consumed so far stays consumed; only what remains is projected on
    /// the new versions).
    pub fn load(ticket: Ticket, rules: &SlaSnapshot, now: DateTime<Utc>) -> Result<Self, CommandError> {
        let clock = SlaClock::replay(&ticket.sla_events, &rules.calendars)?;
        let mut change = TicketChange {
            ticket,
            clock,
            new_clock_events: Vec::new(),
            timeline: Vec::new(),
            notifications: Vec::new(),
            created: false,
        };
        change.catch_up(rules, now)?;
        Ok(change)
    }

    fn catch_up(&mut self, rules: &SlaSnapshot, now: DateTime<Utc>) -> Result<(), CommandError> {
        let last = self.ticket.sla_events.last().map_or(now, |e| e.at);
        let calendar_version = rules.calendar.version() as i32;
        if self.ticket.calendar_version < calendar_version {
            let at = rules.calendar_created_at.clamp(last, now.max(last));
            self.clock_event(
                rules,
                ClockEvent { at, kind: ClockEventKind::CalendarChanged { calendar_version: calendar_version as u32 } },
            )?;
            self.ticket.calendar_version = calendar_version;
        }
        let policy_version = rules.policy.version as i32;
        if self.ticket.policy_version < policy_version {
            if let Some(targets) =
                rules.policy.targets(&self.ticket.plan_code, self.ticket.severity, self.ticket.emergency)
            {
                let at = rules.policy_created_at.clamp(last, now.max(last));
                self.clock_event(
                    rules,
                    ClockEvent {
                        at,
                        kind: ClockEventKind::PolicyChanged { targets, policy_version: rules.policy.version },
                    },
                )?;
            }
            self.ticket.policy_version = policy_version;
        }
        Ok(())
    }

    /// A reply or an internal note by `author`. A public staff reply meets first response; a
    /// customer's reply to a ticket waiting for them hands it back and resumes the clock (R6).
    pub fn reply(
        &mut self,
        rules: &SlaSnapshot,
        author: (Uuid, Role),
        reply: Reply<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        let (user, role) = author;
        let Reply { message_id, body, internal, then_status } = reply;
        let effect = rules::reply(self.ticket.status, role, internal, then_status)?;
        self.log(
            Some(user),
            if internal { "note_added" } else { "reply_added" },
            json!({ "message_id": message_id, "author_role": role }),
            internal,
        );
        if effect.counts_as_first_response && self.phase(rules, Metric::FirstResponse, now)? != ClockPhase::Met {
            self.clock_event(
                rules,
                ClockEvent { at: now, kind: ClockEventKind::Met { metric: Metric::FirstResponse } },
            )?;
        }
        if let Some(status) = effect.new_status {
            self.move_to(rules, status, Some(user), now)?;
        }
        if !internal {
            let body = body.to_owned();
            if role.is_staff() {
                self.notify(Audience::Requester, Notice::Replied { message_id, body });
            } else {
                self.notify(Audience::Assignee, Notice::CustomerReplied { message_id, body });
            }
        }
        Ok(())
    }

    /// Staff move a ticket between open and waiting for the customer.
    pub fn set_status(
        &mut self,
        rules: &SlaSnapshot,
        actor: (Uuid, Role),
        to: Status,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        let (user, actor) = person(actor.0, actor.1);
        rules::set_status(self.ticket.status, to, actor)?;
        self.move_to(rules, to, user, now)?;
        if to == Status::WaitingCustomer {
            self.notify(Audience::Requester, Notice::Waiting);
        }
        Ok(())
    }

    /// Hands the ticket to an agent (or to nobody). The caller has checked that the assignee is an
    /// active agent. Returns whether anything changed.
    pub fn assign(&mut self, actor: (Uuid, Role), assignee: Option<Uuid>) -> Result<bool, CommandError> {
        if !actor.1.is_staff() {
            return Err(TicketRuleError::StaffOnly("assign tickets").into());
        }
        if self.ticket.assignee_id == assignee {
            return Ok(false);
        }
        self.log(Some(actor.0), "assigned", json!({ "from": self.ticket.assignee_id, "to": assignee }), false);
        self.ticket.assignee_id = assignee;
        if assignee.is_some() {
            self.notify(Audience::Assignee, Notice::Assigned);
        }
        Ok(true)
    }

    /// Re-targets both metrics for a new severity; time already consumed stays consumed.
    pub fn change_severity(
        &mut self,
        rules: &SlaSnapshot,
        actor: (Uuid, Role),
        severity: Severity,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        if !actor.1.is_staff() {
            return Err(TicketRuleError::StaffOnly("change the severity").into());
        }
        if severity == self.ticket.severity {
            return Ok(());
        }
        let targets =
            rules.policy.targets(&self.ticket.plan_code, severity, self.ticket.emergency).ok_or_else(|| {
                CommandError::NoTargets {
                    policy_version: rules.policy.version,
                    plan: self.ticket.plan_code.clone(),
                    severity,
                }
            })?;
        self.log(Some(actor.0), "severity_changed", json!({ "from": self.ticket.severity, "to": severity }), false);
        self.ticket.severity = severity;
        for metric in Metric::ALL {
            self.clock_event(
                rules,
                ClockEvent {
                    at: now,
                    kind: ClockEventKind::TargetChanged {
                        metric,
                        target: targets.get(metric),
                        policy_version: rules.policy.version,
                    },
                },
            )?;
        }
        Ok(())
    }

    /// Closes the ticket (R9): both clocks end (a first response that never came is closed with
    /// it). `actor = None` is the system.
    pub fn close(
        &mut self,
        rules: &SlaSnapshot,
        actor: Option<(Uuid, Role)>,
        reason: CloseReason,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        let (user, who) = actor.map_or((None, Actor::System), |(u, r)| person(u, r));
        rules::close(self.ticket.status, reason, who)?;
        for metric in Metric::ALL {
            if self.phase(rules, metric, now)? != ClockPhase::Met {
                self.clock_event(rules, ClockEvent { at: now, kind: ClockEventKind::Met { metric } })?;
            }
        }
        let from = self.ticket.status;
        self.ticket.status = Status::Closed;
        self.ticket.close_reason = Some(reason);
        self.ticket.closed_at = Some(now);
        self.ticket.waiting_since = None;
        self.log(user, "closed", json!({ "from": from, "reason": reason }), false);
        self.notify(Audience::Requester, Notice::Closed { reason });
        Ok(())
    }

    /// Reopens a closed ticket (R9): the resolution clock resumes with the time already consumed.
    pub fn reopen(&mut self, rules: &SlaSnapshot, actor: (Uuid, Role), now: DateTime<Utc>) -> Result<(), CommandError> {
        rules::reopen(self.ticket.status, self.ticket.closed_at, Actor::Person(actor.1), now)?;
        self.clock_event(rules, ClockEvent { at: now, kind: ClockEventKind::Reopened })?;
        self.ticket.status = Status::Open;
        self.ticket.close_reason = None;
        self.ticket.closed_at = None;
        self.log(Some(actor.0), "reopened", json!({}), false);
        Ok(())
    }

    /// R8: the reminder to a customer who has not answered; the timers decided it is due.
    pub fn send_reminder(&mut self, waiting_since: DateTime<Utc>, auto_close_at: DateTime<Utc>, now: DateTime<Utc>) {
        self.ticket.reminder_sent_at = Some(now);
        self.log(
            None,
            "reminder_sent",
            json!({ "waiting_since": waiting_since, "auto_close_at": auto_close_at }),
            false,
        );
        self.notify(Audience::Requester, Notice::Reminder { waiting_since, auto_close_at });
    }

    /// R8: closes a ticket still waiting after its reminder, as the system.
    pub fn auto_close(
        &mut self,
        rules: &SlaSnapshot,
        reminder_sent_at: Option<DateTime<Utc>>,
        waiting_since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        self.close(rules, None, CloseReason::AutoClosed, now)?;
        self.log(
            None,
            "auto_closed",
            json!({ "reminder_sent_at": reminder_sent_at, "waiting_since": waiting_since, "reason": CloseReason::AutoClosed }),
            false,
        );
        Ok(())
    }

    /// Adds a line to the timeline.
    pub fn log(&mut self, actor: Option<Uuid>, kind: &'static str, data: Value, internal: bool) {
        self.timeline.push(TimelineEntry { actor, kind, data, internal });
    }

    fn notify(&mut self, to: Audience, notice: Notice) {
        self.notifications.push(Notification { to, notice });
    }

    /// The stored instants the clock implies now: what the queue sorts by and timers fire at.
    pub fn projection(&self, rules: &SlaSnapshot, now: DateTime<Utc>) -> Result<Projection, CommandError> {
        let state = self.clock.state(now, &rules.calendars, rules.policy.at_risk_fraction)?;
        Ok(sla_projection::project(&state, now, &rules.calendars, rules.policy.at_risk_fraction))
    }

    /// Applies the projection at `now` to the ticket: its stored SLA instants, next timer and
    /// clock events. What storage writes.
    pub fn settle(&mut self, rules: &SlaSnapshot, now: DateTime<Utc>) -> Result<Projection, CommandError> {
        let p = self.projection(rules, now)?;
        let t = &mut self.ticket;
        t.next_timer_at = timer_state(t, &p).next_at(&rules.policy.waiting);
        t.sla_events.extend(self.new_clock_events.iter().cloned());
        t.first_response_due_at = p.first_response.due_at;
        t.first_response_at_risk_at = p.first_response.at_risk_at;
        t.first_response_met_at = p.first_response.met_at;
        t.first_response_breached = p.first_response.breached;
        t.resolution_due_at = p.resolution.due_at;
        t.resolution_at_risk_at = p.resolution.at_risk_at;
        t.resolution_met_at = p.resolution.met_at;
        t.resolution_breached = p.resolution.breached;
        t.next_due_at = p.next_due_at;
        t.updated_at = now;
        Ok(p)
    }

    fn clock_event(&mut self, rules: &SlaSnapshot, event: ClockEvent) -> Result<(), CommandError> {
        self.clock.apply(&event, &rules.calendars)?;
        self.log(None, "sla", serde_json::to_value(&event).unwrap_or_default(), false);
        self.new_clock_events.push(event);
        Ok(())
    }

    fn phase(&self, rules: &SlaSnapshot, metric: Metric, now: DateTime<Utc>) -> Result<ClockPhase, CommandError> {
        let state = self.clock.state(now, &rules.calendars, rules.policy.at_risk_fraction)?;
        Ok(state.get(metric).phase)
    }

    fn move_to(
        &mut self,
        rules: &SlaSnapshot,
        status: Status,
        actor: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        let from = self.ticket.status;
        self.ticket.status = status;
        self.ticket.waiting_since = (status == Status::WaitingCustomer).then_some(now);
        // A reminder belongs to one wait: a reply, or any other move, ends it (R8).
        self.ticket.reminder_sent_at = None;
        self.log(actor, "status_changed", json!({ "from": from, "to": status }), false);
        for event in self.clock.status_change_events(&rules.policy, status.as_str(), now) {
            self.clock_event(rules, event)?;
        }
        Ok(())
    }
}

fn metric_timer(m: &MetricProjection) -> MetricTimer {
    MetricTimer { due_at: m.due_at, at_risk_at: m.at_risk_at, target_revision: m.target_revision }
}

/// What the timers of a ticket depend on, as of the projection `p` (DESIGN R5–R8).
pub fn timer_state(t: &Ticket, p: &Projection) -> TimerState {
    TimerState {
        closed: t.status == Status::Closed,
        first_response: metric_timer(&p.first_response),
        resolution: metric_timer(&p.resolution),
        alerts: t.sla_alerts,
        waiting_since: t.waiting_since.filter(|_| t.status == Status::WaitingCustomer),
        reminder_sent_at: t.reminder_sent_at,
    }
}
