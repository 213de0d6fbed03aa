//! Administration of the business calendar (closed days, opening hours) and of the SLA targets.
//! Every edit stores a new immutable version and re-projects the due times of open tickets,
//! keeping the time they have already consumed (DESIGN R5).

use crate::accounts::Caller;
use crate::audit::{self, AuditEntry};
use crate::sla_store::SlaStore;
use crate::{CoreError, FieldError, tickets};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use helpdesk_domain::calendar::{BusinessCalendar, CalendarSpec, DayOverride, OpenInterval, WeeklyHours};
use helpdesk_domain::holidays::ClosedDate;
use helpdesk_domain::sla::{PolicyRow, SlaPolicy};
use helpdesk_domain::sla_validation::validate_policy;
use helpdesk_domain::timers::WaitingPolicy;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

/// Open tickets re-projected inside the admin's request; the worker's reconciler moves the rest
/// (`tickets::reproject`), and every ticket also catches up by itself on its next change.
const REPROJECT_IN_REQUEST: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedDaySource {
    /// A recurring holiday rule (national holidays, Easter-based days).
    Rule,
    /// A one-off date an administrator closed.
    Added,
    /// A date with its own, shorter hours.
    PartialDay,
}

#[derive(Debug, Clone)]
pub struct ClosedDay {
    pub date: NaiveDate,
    pub name: String,
    pub source: ClosedDaySource,
    /// For partial days: when it opens.
    pub opening_hours: Vec<OpenInterval>,
}

/// The closed and partial days of `year`, computed from the rules plus the added dates.
pub async fn closed_days(
    conn: &mut PgConnection,
    store: &SlaStore,
    year: i32,
) -> Result<(u32, Vec<ClosedDay>), CoreError> {
    if !(1970..=2200).contains(&year) {
        return Err(CoreError::invalid("year", "must be between 1970 and 2200"));
    }
    let calendar = store.snapshot(&mut *conn).await?.calendar;
    let spec = calendar.spec();
    let mut days: Vec<ClosedDay> = calendar
        .closed_days_in_year(year)
        .into_iter()
        .map(|(date, name)| {
            let added = spec.closed_dates.iter().any(|c| c.date == date);
            ClosedDay {
                date,
                name,
                source: if added { ClosedDaySource::Added } else { ClosedDaySource::Rule },
                opening_hours: Vec::new(),
            }
        })
        .collect();
    for o in spec.overrides.iter().filter(|o| o.date.year() == year && !o.intervals.is_empty()) {
        days.retain(|d| d.date != o.date);
        days.push(ClosedDay {
            date: o.date,
            name: o.name.clone(),
            source: ClosedDaySource::PartialDay,
            opening_hours: o.intervals.clone(),
        });
    }
    days.sort_by_key(|d| d.date);
    Ok((calendar.version(), days))
}

pub async fn current_calendar(conn: &mut PgConnection, store: &SlaStore) -> Result<CalendarSpec, CoreError> {
    Ok(store.snapshot(&mut *conn).await?.calendar.spec().clone())
}

pub async fn current_policy(conn: &mut PgConnection, store: &SlaStore) -> Result<SlaPolicy, CoreError> {
    Ok(store.snapshot(&mut *conn).await?.policy)
}

/// Applies `edit` to the current calendar and stores the result as the next version.
async fn edit_calendar(
    conn: &mut PgConnection,
    store: &SlaStore,
    actor: &Caller,
    action: &'static str,
    now: DateTime<Utc>,
    edit: impl FnOnce(&mut CalendarSpec) -> Result<(), CoreError>,
) -> Result<CalendarSpec, CoreError> {
    actor.require_admin()?;
    let current = store.snapshot(&mut *conn).await?.calendar;
    let mut spec = current.spec().clone();
    edit(&mut spec)?;
    spec.version = current.version() + 1;
    let calendar = BusinessCalendar::new(spec).map_err(|e| match e {
        helpdesk_domain::calendar::CalendarError::DuplicateDate(date) => {
            CoreError::conflict("date_taken", format!("{date} already has an entry; remove it first"))
        }
        other => CoreError::invalid("calendar", other),
    })?;
    let spec = calendar.spec().clone();
    SlaStore::save_calendar(&mut *conn, &spec, actor.user_id, now).await?;
    audit::record(
        &mut *conn,
        AuditEntry {
            actor_id: Some(actor.user_id),
            action,
            subject_type: "calendar",
            subject_id: None,
            ip: None,
            details: json!({ "version": spec.version }),
        },
        now,
    )
    .await?;
    Ok(spec)
}

/// After an edit has committed: moves up to [`REPROJECT_IN_REQUEST`] open tickets onto the new
/// versions, a batch per transaction of its own (so the edit never holds thousands of ticket
/// locks), and returns how many; the worker moves the rest. The one operation here that owns its
/// transactions, because it is many.
pub async fn reproject_in_request(pool: &PgPool, store: &SlaStore, now: DateTime<Utc>) -> Result<usize, CoreError> {
    let mut done = 0;
    while done < REPROJECT_IN_REQUEST {
        let mut tx = pool.begin().await?;
        let moved = tickets::reproject_batch(&mut tx, store, now).await?;
        tx.commit().await?;
        if moved == 0 {
            break;
        }
        done += moved;
    }
    Ok(done)
}

/// Closes a date (no `opening_hours`) or gives it shorter hours (a partial day).
pub async fn add_closed_day(
    conn: &mut PgConnection,
    store: &SlaStore,
    actor: &Caller,
    date: NaiveDate,
    name: &str,
    opening_hours: Vec<OpenInterval>,
    now: DateTime<Utc>,
) -> Result<CalendarSpec, CoreError> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CoreError::invalid("name", "must have between 1 and 100 characters"));
    }
    edit_calendar(conn, store, actor, "calendar.closed_day_added", now, |spec| {
        if opening_hours.is_empty() {
            spec.closed_dates.push(ClosedDate { date, name });
        } else {
            spec.overrides.push(DayOverride { date, intervals: opening_hours, name });
        }
        Ok(())
    })
    .await
}

/// Removes an added closed date or partial day. Rule-based holidays are not removed by date; to
/// open on one, add a partial day with the usual hours.
pub async fn remove_closed_day(
    conn: &mut PgConnection,
    store: &SlaStore,
    actor: &Caller,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<CalendarSpec, CoreError> {
    edit_calendar(conn, store, actor, "calendar.closed_day_removed", now, |spec| {
        let before = spec.closed_dates.len() + spec.overrides.len();
        spec.closed_dates.retain(|c| c.date != date);
        spec.overrides.retain(|o| o.date != date);
        if spec.closed_dates.len() + spec.overrides.len() == before {
            return Err(CoreError::NotFound("added closed day"));
        }
        Ok(())
    })
    .await
}

pub async fn set_weekly_hours(
    conn: &mut PgConnection,
    store: &SlaStore,
    actor: &Caller,
    hours: WeeklyHours,
    now: DateTime<Utc>,
) -> Result<CalendarSpec, CoreError> {
    edit_calendar(conn, store, actor, "calendar.opening_hours_changed", now, |spec| {
        spec.weekly_hours = hours;
        Ok(())
    })
    .await
}

/// An edit of the SLA policy; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct PolicyEdit {
    /// The whole target table.
    pub rows: Option<Vec<PolicyRow>>,
    pub at_risk_fraction: Option<f64>,
    /// R8: hours waiting for the customer before the reminder.
    pub reminder_after_hours: Option<u32>,
    /// R8: hours after the reminder before the ticket is closed.
    pub auto_close_after_hours: Option<u32>,
}

/// Writes a new SLA policy version: targets, at-risk threshold, R8's delays. Open tickets are then
/// re-projected onto it (their due instants and next timer instants move).
pub async fn set_policy(
    conn: &mut PgConnection,
    store: &SlaStore,
    actor: &Caller,
    edit: PolicyEdit,
    now: DateTime<Utc>,
) -> Result<SlaPolicy, CoreError> {
    actor.require_admin()?;
    let current = store.snapshot(&mut *conn).await?.policy;
    let policy = SlaPolicy {
        version: current.version + 1,
        rows: edit.rows.unwrap_or(current.rows),
        pause_rules: current.pause_rules,
        at_risk_fraction: edit.at_risk_fraction.unwrap_or(current.at_risk_fraction),
        waiting: WaitingPolicy {
            reminder_after_hours: edit.reminder_after_hours.unwrap_or(current.waiting.reminder_after_hours),
            auto_close_after_hours: edit.auto_close_after_hours.unwrap_or(current.waiting.auto_close_after_hours),
        },
    };
    // Every plan × severity must keep targets, so no ticket creation ever meets a gap (R5).
    let plans = sqlx::query_scalar!("SELECT code FROM plans ORDER BY code").fetch_all(&mut *conn).await?;
    let plans: Vec<&str> = plans.iter().map(String::as_str).collect();
    let problems = validate_policy(&policy, &plans);
    if !problems.is_empty() {
        return Err(CoreError::Validation(problems.into_iter().map(|p| FieldError::new(p.field, p.message)).collect()));
    }
    SlaStore::save_policy(&mut *conn, &policy, actor.user_id, now).await?;
    audit::record(
        &mut *conn,
        AuditEntry {
            actor_id: Some(actor.user_id),
            action: "sla_policy.changed",
            subject_type: "sla_policy",
            subject_id: None,
            ip: None,
            details: json!({ "version": policy.version }),
        },
        now,
    )
    .await?;
    Ok(policy)
}
