//! SLA attainment reports (DESIGN R10): per group of tickets opened in a period, how many met or
//! breached each target, and where the share met stands against the policy's 85–95 % band.
//!
//! The verdict per ticket and metric is the database function `sla_outcome` (the SQL copy of
//! `helpdesk_domain::attainment::Outcome::of`, and of `Ticket::breached_at`): the report and the
//! ticket list's `first_response=` / `resolution=` filters both use it, so every figure can be
//! listed ticket by ticket. One aggregate over the period's tickets, read on the caller's
//! connection (a replica's, past one machine).

use crate::CoreError;
use crate::accounts::Caller;
use chrono::{DateTime, NaiveDate, Utc};
use helpdesk_domain::attainment::Tally;
use helpdesk_domain::calendar::BusinessCalendar;
use sqlx::PgConnection;
use uuid::Uuid;

/// The longest period one report covers; longer ones are several reports (or months grouped).
pub const MAX_PERIOD_DAYS: i64 = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Plan,
    Severity,
    Agent,
    Organization,
    Month,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Plan => "plan",
            GroupBy::Severity => "severity",
            GroupBy::Agent => "agent",
            GroupBy::Organization => "organization",
            GroupBy::Month => "month",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        Ok(match raw {
            "plan" => GroupBy::Plan,
            "severity" => GroupBy::Severity,
            "agent" => GroupBy::Agent,
            "organization" => GroupBy::Organization,
            "month" => GroupBy::Month,
            _ => return Err(CoreError::invalid("group_by", "must be plan, severity, agent, organization or month")),
        })
    }
}

/// Tickets opened from the start of local day `from` to the end of local day `to`, in the
/// business calendar's zone.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub starts_at: DateTime<Utc>,
    /// Exclusive: the start of the local day after `to`.
    pub ends_at: DateTime<Utc>,
}

impl Period {
    pub fn new(calendar: &BusinessCalendar, from: NaiveDate, to: NaiveDate) -> Result<Self, CoreError> {
        if to < from {
            return Err(CoreError::invalid("to", "must not be before from"));
        }
        if (to - from).num_days() >= MAX_PERIOD_DAYS {
            return Err(CoreError::invalid("to", format!("a report covers at most {MAX_PERIOD_DAYS} days")));
        }
        let next = to.succ_opt().ok_or_else(|| CoreError::invalid("to", "is out of range"))?;
        Ok(Period { from, to, starts_at: calendar.start_of_day(from), ends_at: calendar.start_of_day(next) })
    }
}

/// One metric's counts in a group. `met + breached + abandoned + pending` = the group's tickets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricCounts {
    pub met: u64,
    pub breached: u64,
    pub abandoned: u64,
    pub pending: u64,
}

impl MetricCounts {
    pub fn tally(&self) -> Tally {
        Tally { met: self.met, breached: self.breached }
    }

    fn add(&mut self, other: &MetricCounts) {
        self.met += other.met;
        self.breached += other.breached;
        self.abandoned += other.abandoned;
        self.pending += other.pending;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFigures {
    /// The plan code, severity, agent id (`unassigned` for none), organisation id, or local month
    /// (`YYYY-MM`).
    pub key: String,
    /// The agent's or organisation's name, when the group is one.
    pub label: Option<String>,
    pub tickets: u64,
    /// Tickets auto-closed for lack of the customer's answer (R8), whatever their verdicts.
    pub auto_closed: u64,
    pub first_response: MetricCounts,
    pub resolution: MetricCounts,
}

#[derive(Debug, Clone)]
pub struct SlaReport {
    pub period: Period,
    pub group_by: GroupBy,
    /// The calendar zone the period's dates are in.
    pub time_zone: String,
    /// Customers' reports cover their own organisation only.
    pub organization_id: Option<Uuid>,
    pub generated_at: DateTime<Utc>,
    pub groups: Vec<GroupFigures>,
    pub total: GroupFigures,
}

fn count(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

/// The report of the tickets the caller may see, opened in `period`, with verdicts at `now`.
pub async fn sla_attainment(
    conn: &mut PgConnection,
    caller: &Caller,
    calendar: &BusinessCalendar,
    period: Period,
    group_by: GroupBy,
    now: DateTime<Utc>,
) -> Result<SlaReport, CoreError> {
    let organization_id =
        if caller.role.is_staff() { None } else { Some(caller.organization_id.unwrap_or_else(Uuid::nil)) };
    let time_zone = calendar.time_zone().name().to_owned();
    let rows = sqlx::query!(
        r#"WITH verdicts AS (
               SELECT CASE $3::text
                          WHEN 'plan' THEN plan_code
                          WHEN 'severity' THEN severity
                          WHEN 'agent' THEN coalesce(assignee_id::text, 'unassigned')
                          WHEN 'organization' THEN organization_id::text
                          ELSE to_char(created_at AT TIME ZONE $4::text, 'YYYY-MM')
                      END AS key,
                      close_reason = 'auto_closed' AS auto_closed,
                      sla_outcome(first_response_breached, first_response_due_at, first_response_met_at, close_reason, $5) AS fr,
                      sla_outcome(resolution_breached, resolution_due_at, resolution_met_at, close_reason, $5) AS res
               FROM tickets
               WHERE created_at >= $1 AND created_at < $2
                 AND ($6::uuid IS NULL OR organization_id = $6)
           ), groups AS (
               SELECT key,
                      count(*) AS tickets,
                      count(*) FILTER (WHERE auto_closed) AS auto_closed,
                      count(*) FILTER (WHERE fr = 'met') AS fr_met,
                      count(*) FILTER (WHERE fr = 'breached') AS fr_breached,
                      count(*) FILTER (WHERE fr = 'abandoned') AS fr_abandoned,
                      count(*) FILTER (WHERE fr = 'pending') AS fr_pending,
                      count(*) FILTER (WHERE res = 'met') AS res_met,
                      count(*) FILTER (WHERE res = 'breached') AS res_breached,
                      count(*) FILTER (WHERE res = 'abandoned') AS res_abandoned,
                      count(*) FILTER (WHERE res = 'pending') AS res_pending
               FROM verdicts GROUP BY key
           )
           SELECT g.key AS "key!", g.tickets, g.auto_closed, g.fr_met, g.fr_breached, g.fr_abandoned, g.fr_pending,
                  g.res_met, g.res_breached, g.res_abandoned, g.res_pending,
                  CASE $3::text WHEN 'agent' THEN u.name WHEN 'organization' THEN o.name END AS label
           FROM groups g
           LEFT JOIN users u ON $3::text = 'agent' AND u.id::text = g.key
           LEFT JOIN organizations o ON $3::text = 'organization' AND o.id::text = g.key
           ORDER BY g.key"#,
        period.starts_at,
        period.ends_at,
        group_by.as_str(),
        time_zone,
        now,
        organization_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let groups: Vec<GroupFigures> = rows
        .into_iter()
        .map(|r| GroupFigures {
            key: r.key,
            label: r.label,
            tickets: count(r.tickets),
            auto_closed: count(r.auto_closed),
            first_response: MetricCounts {
                met: count(r.fr_met),
                breached: count(r.fr_breached),
                abandoned: count(r.fr_abandoned),
                pending: count(r.fr_pending),
            },
            resolution: MetricCounts {
                met: count(r.res_met),
                breached: count(r.res_breached),
                abandoned: count(r.res_abandoned),
                pending: count(r.res_pending),
            },
        })
        .collect();
    let mut total = GroupFigures {
        key: "total".into(),
        label: None,
        tickets: 0,
        auto_closed: 0,
        first_response: MetricCounts::default(),
        resolution: MetricCounts::default(),
    };
    for g in &groups {
        total.tickets += g.tickets;
        total.auto_closed += g.auto_closed;
        total.first_response.add(&g.first_response);
        total.resolution.add(&g.resolution);
    }
    Ok(SlaReport { period, group_by, time_zone, organization_id, generated_at: now, groups, total })
}
