//! Consultants (R13): agents or admins flagged to take consultancy meetings, each with weekly
//! hours inside the business calendar (default: all of its opening hours) and time off.

use crate::accounts::Caller;
use crate::{CoreError, FieldError};
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::accounts::Role;
use helpdesk_domain::calendar::{OpenInterval, WeeklyHours};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Consultant {
    pub user_id: Uuid,
    pub name: String,
    pub active: bool,
    /// `None`: all of the calendar's opening hours.
    pub weekly_hours: Option<WeeklyHours>,
    pub time_off: Vec<TimeOff>,
}

#[derive(Debug, Clone)]
pub struct TimeOff {
    pub id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
}

/// What an admin sets on a consultant.
#[derive(Debug, Clone)]
pub struct ConsultantUpdate {
    pub active: bool,
    pub weekly_hours: Option<WeeklyHours>,
}

fn parse_hours(user: Uuid, value: Option<serde_json::Value>) -> Result<Option<WeeklyHours>, CoreError> {
    value
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| CoreError::Internal(format!("consultant {user}: stored weekly hours unreadable: {e}")))
}

fn validate_hours(hours: &WeeklyHours) -> Result<(), CoreError> {
    let days = [
        ("monday", &hours.monday),
        ("tuesday", &hours.tuesday),
        ("wednesday", &hours.wednesday),
        ("thursday", &hours.thursday),
        ("friday", &hours.friday),
        ("saturday", &hours.saturday),
        ("sunday", &hours.sunday),
    ];
    let mut errors = Vec::new();
    for (day, intervals) in days {
        let ordered = intervals.iter().all(|i: &OpenInterval| i.start < i.end && i.end.seconds() <= 86_400)
            && intervals.windows(2).all(|w| w[0].end <= w[1].start);
        if !ordered || intervals.len() > 8 {
            errors.push(FieldError::new(
                format!("weekly_hours.{day}"),
                "intervals must be sorted, non-overlapping, each start before its end (at most 8)",
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(CoreError::Validation(errors)) }
}

/// Flags (or updates, or unflags with `active: false`) a staff user as a consultant (admin).
pub async fn set(
    conn: &mut PgConnection,
    caller: &Caller,
    user_id: Uuid,
    update: ConsultantUpdate,
    now: DateTime<Utc>,
) -> Result<Consultant, CoreError> {
    caller.require_admin()?;
    if let Some(hours) = &update.weekly_hours {
        validate_hours(hours)?;
    }
    let role = sqlx::query_scalar!("SELECT role FROM users WHERE id = $1", user_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CoreError::NotFound("user"))?;
    if role.parse::<Role>().map_or(true, |r| !r.is_staff()) {
        return Err(CoreError::invalid("user_id", "only agents and admins can be consultants"));
    }
    let hours = update
        .weekly_hours
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    sqlx::query!(
        r#"INSERT INTO consultants (user_id, active, weekly_hours, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
           ON CONFLICT (user_id) DO UPDATE SET active = $2, weekly_hours = $3, updated_at = $4"#,
        user_id,
        update.active,
        hours,
        now
    )
    .execute(&mut *conn)
    .await?;
    get(conn, user_id, now).await
}

/// One consultant with their time off from `now` on.
pub async fn get(conn: &mut PgConnection, user_id: Uuid, now: DateTime<Utc>) -> Result<Consultant, CoreError> {
    let row = sqlx::query!(
        "SELECT c.user_id, u.name, c.active, c.weekly_hours FROM consultants c JOIN users u ON u.id = c.user_id WHERE c.user_id = $1",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound("consultant"))?;
    let time_off = sqlx::query_as!(
        TimeOff,
        "SELECT id, starts_at, ends_at, reason FROM consultant_time_off WHERE consultant_id = $1 AND ends_at > $2 ORDER BY starts_at, id",
        user_id,
        now
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Consultant {
        weekly_hours: parse_hours(row.user_id, row.weekly_hours)?,
        user_id: row.user_id,
        name: row.name,
        active: row.active,
        time_off,
    })
}

/// Active consultants (any signed-in user: customers pick one when booking), by name.
pub async fn list_active(conn: &mut PgConnection) -> Result<Vec<Consultant>, CoreError> {
    let rows = sqlx::query!(
        "SELECT c.user_id, u.name, c.weekly_hours FROM consultants c JOIN users u ON u.id = c.user_id WHERE c.active AND u.disabled_at IS NULL ORDER BY u.name, c.user_id"
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Consultant {
                weekly_hours: parse_hours(r.user_id, r.weekly_hours)?,
                user_id: r.user_id,
                name: r.name,
                active: true,
                time_off: Vec::new(),
            })
        })
        .collect()
}

/// Records time off (admin, or the consultant themself). Meetings already booked then stay:
/// only new bookings are kept out.
pub async fn add_time_off(
    conn: &mut PgConnection,
    caller: &Caller,
    consultant: Uuid,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    reason: String,
) -> Result<TimeOff, CoreError> {
    may_manage(caller, consultant)?;
    if ends_at <= starts_at {
        return Err(CoreError::invalid("ends_at", "must be after starts_at"));
    }
    if ends_at - starts_at > TimeDelta::days(366) {
        return Err(CoreError::invalid("ends_at", "time off lasts at most a year"));
    }
    if reason.chars().count() > 200 {
        return Err(CoreError::invalid("reason", "at most 200 characters"));
    }
    let exists = sqlx::query_scalar!("SELECT true AS \"x!\" FROM consultants WHERE user_id = $1", consultant)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Err(CoreError::NotFound("consultant"));
    }
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO consultant_time_off (id, consultant_id, starts_at, ends_at, reason) VALUES ($1, $2, $3, $4, $5)",
        id,
        consultant,
        starts_at,
        ends_at,
        reason
    )
    .execute(&mut *conn)
    .await?;
    Ok(TimeOff { id, starts_at, ends_at, reason })
}

pub async fn remove_time_off(
    conn: &mut PgConnection,
    caller: &Caller,
    consultant: Uuid,
    id: Uuid,
) -> Result<(), CoreError> {
    may_manage(caller, consultant)?;
    let deleted = sqlx::query!("DELETE FROM consultant_time_off WHERE id = $1 AND consultant_id = $2", id, consultant)
        .execute(&mut *conn)
        .await?;
    if deleted.rows_affected() == 0 { Err(CoreError::NotFound("time off")) } else { Ok(()) }
}

fn may_manage(caller: &Caller, consultant: Uuid) -> Result<(), CoreError> {
    if caller.role == Role::Admin || (caller.role.is_staff() && caller.user_id == consultant) {
        Ok(())
    } else {
        Err(CoreError::forbidden("admin_only", "only an administrator or the consultant may change their time off"))
    }
}
