//! Maintenance windows (R12): admins schedule them; customers see the upcoming ones that concern
//! them; the worker asks which apply to a monitor (no alerts while one covers it).

use chrono::{DateTime, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use helpdesk_domain::monitoring::maintenance::{self, MaintenanceWindow, WeeklyWindow, WindowSchedule, WindowScope};
use helpdesk_domain::monitoring::span::Span;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::caller::Caller;
use crate::pagination::{self, PageRequest};
use crate::webhook_events;
use crate::{CoreError, FieldError};
use helpdesk_domain::webhooks::events::MaintenanceScheduled;

/// The most monitors a window may list.
pub const MAX_WINDOW_MONITORS: usize = 500;
/// How far ahead `next_occurrences` looks, and how many it gives.
pub const OCCURRENCE_HORIZON_DAYS: i64 = 35;
pub const MAX_OCCURRENCES: usize = 5;

/// A window as stored, with the monitors it lists (scope `monitors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRecord {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub scope: String,
    pub organization_id: Option<Uuid>,
    pub kind: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub weekly_weekday: Option<i16>,
    pub weekly_start_time: Option<NaiveTime>,
    pub weekly_duration_minutes: Option<i32>,
    pub time_zone: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<Uuid>,
    pub monitor_ids: Vec<Uuid>,
}

fn weekday_from_iso(n: i16) -> Option<Weekday> {
    u8::try_from(n).ok().filter(|n| (1..=7).contains(n)).and_then(|n| Weekday::try_from(n - 1).ok())
}

impl WindowRecord {
    /// The window as the domain reasons about it.
    pub fn to_domain(&self) -> Result<MaintenanceWindow, CoreError> {
        let corrupt = || CoreError::Internal(format!("maintenance window {} is not well-formed", self.id));
        let schedule = match self.kind.as_str() {
            "one_off" => WindowSchedule::OneOff(Span::new(
                self.starts_at.ok_or_else(corrupt)?,
                self.ends_at.ok_or_else(corrupt)?,
            )),
            _ => WindowSchedule::Weekly(WeeklyWindow {
                weekday: self.weekly_weekday.and_then(weekday_from_iso).ok_or_else(corrupt)?,
                start: self.weekly_start_time.ok_or_else(corrupt)?,
                duration_minutes: self
                    .weekly_duration_minutes
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(corrupt)?,
                zone: self.time_zone.parse::<Tz>().map_err(|_| corrupt())?,
            }),
        };
        let scope = match self.scope.as_str() {
            "all" => WindowScope::All,
            "organization" => WindowScope::Organization(self.organization_id.ok_or_else(corrupt)?),
            _ => WindowScope::Monitors(self.monitor_ids.clone()),
        };
        let in_force_from = matches!(schedule, WindowSchedule::Weekly(_)).then_some(self.created_at);
        Ok(MaintenanceWindow { schedule, scope, in_force_from, in_force_until: self.cancelled_at })
    }

    /// The window's next covered spans that end after `now`, within the horizon.
    pub fn next_occurrences(&self, now: DateTime<Utc>) -> Result<Vec<Span>, CoreError> {
        let range = Span::new(now, now + TimeDelta::days(OCCURRENCE_HORIZON_DAYS));
        let mut spans = self.to_domain()?.occurrences(range);
        spans.truncate(MAX_OCCURRENCES);
        Ok(spans)
    }
}

/// When a new window recurs.
#[derive(Debug, Clone, Copy)]
pub enum NewSchedule {
    OneOff { starts_at: DateTime<Utc>, ends_at: DateTime<Utc> },
    Weekly { weekday: Weekday, start_time: NaiveTime, duration_minutes: u32 },
}

/// Which monitors a new window concerns.
#[derive(Debug, Clone)]
pub enum NewScope {
    All,
    Organization(Uuid),
    Monitors(Vec<Uuid>),
}

#[derive(Debug, Clone)]
pub struct NewWindow {
    pub title: String,
    pub description: String,
    pub scope: NewScope,
    pub schedule: NewSchedule,
}

/// Which windows a query wants; `None` means no condition.
#[derive(Debug, Clone, Copy, Default)]
struct Select {
    id: Option<Uuid>,
    include_cancelled: bool,
    /// Only one-off windows ending after this instant, and weekly ones.
    ending_after: Option<DateTime<Utc>>,
    /// Only windows concerning this organisation (all, it, or one of its monitors).
    visible_to: Option<Uuid>,
    /// Only windows applying to this monitor of this organisation.
    applies_to: Option<(Uuid, Uuid)>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
}

async fn select(conn: &mut PgConnection, s: Select) -> Result<Vec<WindowRecord>, CoreError> {
    let (after_at, after_id) = s.after.unzip();
    let (monitor, monitor_org) = s.applies_to.unzip();
    Ok(sqlx::query_as!(
        WindowRecord,
        r#"SELECT w.id, w.title, w.description, w.scope, w.organization_id, w.kind, w.starts_at, w.ends_at,
                  w.weekly_weekday, w.weekly_start_time, w.weekly_duration_minutes, w.time_zone, w.created_by,
                  w.created_at, w.cancelled_at, w.cancelled_by,
                  ARRAY(SELECT monitor_id FROM maintenance_window_monitors WHERE window_id = w.id ORDER BY monitor_id)
                      AS "monitor_ids!"
           FROM maintenance_windows w
           WHERE ($1::uuid IS NULL OR w.id = $1)
             AND ($2 OR w.cancelled_at IS NULL)
             AND ($3::timestamptz IS NULL OR w.kind = 'weekly' OR w.ends_at > $3)
             AND ($4::uuid IS NULL
                  OR w.scope = 'all'
                  OR (w.scope = 'organization' AND w.organization_id = $4)
                  OR (w.scope = 'monitors' AND EXISTS (
                        SELECT 1 FROM maintenance_window_monitors wm JOIN monitors m ON m.id = wm.monitor_id
                        WHERE wm.window_id = w.id AND m.organization_id = $4)))
             AND ($5::uuid IS NULL
                  OR w.scope = 'all'
                  OR (w.scope = 'organization' AND w.organization_id = $6)
                  OR (w.scope = 'monitors' AND EXISTS (
                        SELECT 1 FROM maintenance_window_monitors wm WHERE wm.window_id = w.id AND wm.monitor_id = $5)))
             AND ($7::timestamptz IS NULL OR (w.created_at, w.id) < ($7, $8))
           ORDER BY w.created_at DESC, w.id DESC
           LIMIT $9"#,
        s.id,
        s.include_cancelled,
        s.ending_after,
        s.visible_to,
        monitor,
        monitor_org,
        after_at,
        after_id,
        s.limit,
    )
    .fetch_all(&mut *conn)
    .await?)
}

async fn load(conn: &mut PgConnection, id: Uuid) -> Result<Option<WindowRecord>, CoreError> {
    let rows = select(conn, Select { id: Some(id), include_cancelled: true, limit: 1, ..Select::default() }).await?;
    Ok(rows.into_iter().next())
}

/// Whether a window concerns the customer's organisation: all monitors, their organisation, or
/// one of their organisation's monitors.
async fn concerns_organization(
    conn: &mut PgConnection,
    window: &WindowRecord,
    organization_id: Uuid,
) -> Result<bool, CoreError> {
    Ok(match window.scope.as_str() {
        "all" => true,
        "organization" => window.organization_id == Some(organization_id),
        _ => {
            sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM monitors WHERE id = ANY($1) AND organization_id = $2) AS "e!""#,
                &window.monitor_ids,
                organization_id
            )
            .fetch_one(&mut *conn)
            .await?
        }
    })
}

/// A customer sees only their own organisation's monitors in a window's list.
async fn hide_other_monitors(
    conn: &mut PgConnection,
    caller: &Caller,
    windows: &mut [WindowRecord],
) -> Result<(), CoreError> {
    let Some(org) = caller.organization_id.filter(|_| !caller.role.is_staff()) else {
        return Ok(());
    };
    let listed: Vec<Uuid> = windows.iter().flat_map(|w| w.monitor_ids.iter().copied()).collect();
    if listed.is_empty() {
        return Ok(());
    }
    let own = sqlx::query_scalar!("SELECT id FROM monitors WHERE id = ANY($1) AND organization_id = $2", &listed, org)
        .fetch_all(&mut *conn)
        .await?;
    for w in windows {
        w.monitor_ids.retain(|id| own.contains(id));
    }
    Ok(())
}

/// Schedules a window (admins). Weekly windows are read in `zone`, the business calendar's.
pub async fn create(
    conn: &mut PgConnection,
    caller: &Caller,
    zone: Tz,
    input: NewWindow,
    now: DateTime<Utc>,
) -> Result<WindowRecord, CoreError> {
    caller.require_admin()?;
    let mut errors = Vec::new();
    let title = input.title.trim().to_owned();
    if title.is_empty() || title.chars().count() > 200 {
        errors.push(FieldError::new("title", "must be 1 to 200 characters"));
    }
    if input.description.chars().count() > 2000 {
        errors.push(FieldError::new("description", "must be at most 2000 characters"));
    }
    let checked = match input.schedule {
        NewSchedule::OneOff { starts_at, ends_at } => maintenance::validate_one_off(Span::new(starts_at, ends_at), now),
        NewSchedule::Weekly { start_time, duration_minutes, .. } => {
            maintenance::validate_weekly(start_time, duration_minutes)
        }
    };
    if let Err(e) = checked {
        errors.push(FieldError::new(e.field, e.message));
    }
    let (organization_id, monitor_ids) = match &input.scope {
        NewScope::All => (None, Vec::new()),
        NewScope::Organization(org) => (Some(*org), Vec::new()),
        NewScope::Monitors(ids) => {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() || ids.len() > MAX_WINDOW_MONITORS {
                errors.push(FieldError::new("monitor_ids", format!("list 1 to {MAX_WINDOW_MONITORS} monitors")));
            }
            (None, ids)
        }
    };
    if let Some(org) = organization_id {
        let exists = sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1) AS "e!""#, org)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            errors.push(FieldError::new("organization_id", "no such organisation"));
        }
    }
    if !monitor_ids.is_empty() {
        let found = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM monitors WHERE id = ANY($1) AND deleted_at IS NULL"#,
            &monitor_ids
        )
        .fetch_one(&mut *conn)
        .await?;
        if usize::try_from(found).ok() != Some(monitor_ids.len()) {
            errors.push(FieldError::new("monitor_ids", "names a monitor that does not exist"));
        }
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let scope = match input.scope {
        NewScope::All => "all",
        NewScope::Organization(_) => "organization",
        NewScope::Monitors(_) => "monitors",
    };
    let (kind, starts_at, ends_at, weekday, start_time, duration) = match input.schedule {
        NewSchedule::OneOff { starts_at, ends_at } => ("one_off", Some(starts_at), Some(ends_at), None, None, None),
        NewSchedule::Weekly { weekday, start_time, duration_minutes } => (
            "weekly",
            None,
            None,
            i16::try_from(weekday.number_from_monday()).ok(),
            Some(start_time),
            i32::try_from(duration_minutes).ok(),
        ),
    };
    let id = Uuid::now_v7();
    sqlx::query!(
        r#"INSERT INTO maintenance_windows (id, title, description, scope, organization_id, kind, starts_at, ends_at,
               weekly_weekday, weekly_start_time, weekly_duration_minutes, time_zone, created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"#,
        id,
        title,
        input.description,
        scope,
        organization_id,
        kind,
        starts_at,
        ends_at,
        weekday,
        start_time,
        duration,
        zone.name(),
        caller.user_id,
        now,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO maintenance_window_monitors (window_id, monitor_id) SELECT $1, unnest($2::uuid[])",
        id,
        &monitor_ids
    )
    .execute(&mut *conn)
    .await?;
    let window = load(conn, id).await?.ok_or(CoreError::NotFound("maintenance window"))?;
    announce_to_integrations(conn, &window, now).await?;
    Ok(window)
}

/// `maintenance.scheduled` webhook events (issue 13), in the creating transaction: one for a
/// window over every site or one organisation, and one per monitor for chosen monitors, so that
/// each organisation's subscriptions hear of what concerns them.
async fn announce_to_integrations(
    conn: &mut PgConnection,
    window: &WindowRecord,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let Some(next) = window.next_occurrences(now)?.into_iter().next() else { return Ok(()) };
    let recurrence = window.weekly_weekday.and_then(weekday_from_iso).map(|day| {
        let byday = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][day.num_days_from_monday() as usize];
        format!("FREQ=WEEKLY;BYDAY={byday}")
    });
    let event = |organization_id, monitor_id| MaintenanceScheduled {
        window_id: window.id,
        organization_id,
        monitor_id,
        starts_at: next.start,
        ends_at: next.end,
        recurrence: recurrence.clone(),
        description: if window.description.is_empty() {
            window.title.clone()
        } else {
            format!("{}: {}", window.title, window.description)
        },
    };
    if window.monitor_ids.is_empty() {
        webhook_events::maintenance_scheduled(&mut *conn, event(window.organization_id, None), now).await?;
        return Ok(());
    }
    let monitors = sqlx::query!("SELECT id, organization_id FROM monitors WHERE id = ANY($1)", &window.monitor_ids)
        .fetch_all(&mut *conn)
        .await?;
    for monitor in monitors {
        webhook_events::maintenance_scheduled(&mut *conn, event(Some(monitor.organization_id), Some(monitor.id)), now)
            .await?;
    }
    Ok(())
}

/// One window: staff see any; a customer only one that concerns their organisation.
pub async fn get(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<WindowRecord, CoreError> {
    let window = load(conn, id).await?.ok_or(CoreError::NotFound("maintenance window"))?;
    if caller.role.is_staff() {
        return Ok(window);
    }
    match caller.organization_id {
        Some(org) if concerns_organization(conn, &window, org).await? => {
            let mut windows = [window];
            hide_other_monitors(conn, caller, &mut windows).await?;
            let [window] = windows;
            Ok(window)
        }
        _ => Err(CoreError::NotFound("maintenance window")),
    }
}

/// Cancels a window (admins): from now on it covers nothing. Cancelling twice is a conflict.
pub async fn cancel(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<WindowRecord, CoreError> {
    caller.require_admin()?;
    let cancelled = sqlx::query_scalar!("SELECT cancelled_at FROM maintenance_windows WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CoreError::NotFound("maintenance window"))?;
    if cancelled.is_some() {
        return Err(CoreError::conflict("window_cancelled", "the maintenance window is already cancelled"));
    }
    sqlx::query!(
        "UPDATE maintenance_windows SET cancelled_at = $2, cancelled_by = $3 WHERE id = $1",
        id,
        now,
        caller.user_id
    )
    .execute(&mut *conn)
    .await?;
    load(conn, id).await?.ok_or(CoreError::NotFound("maintenance window"))
}

/// List filters.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowFilter {
    /// Only windows still to come or in progress (forced for customers).
    pub upcoming: bool,
    /// Include cancelled windows (staff only).
    pub include_cancelled: bool,
}

/// Windows, newest first: staff see all; customers the upcoming ones that concern them.
pub async fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    filter: WindowFilter,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<(Vec<WindowRecord>, Option<String>), CoreError> {
    let staff = caller.role.is_staff();
    let organization = if staff { None } else { caller.organization_id };
    if !staff && organization.is_none() {
        return Ok((Vec::new(), None));
    }
    let mut rows = select(
        conn,
        Select {
            include_cancelled: filter.include_cancelled && staff,
            ending_after: (filter.upcoming || !staff).then_some(now),
            visible_to: organization,
            after: page.after,
            limit: page.fetch_limit(),
            ..Select::default()
        },
    )
    .await?;
    hide_other_monitors(conn, caller, &mut rows).await?;
    Ok(pagination::finish(rows, &page, |w| (w.created_at, w.id)))
}

/// The windows that concern a monitor, as the domain reasons about them, including cancelled
/// ones (they still covered the time before their cancellation, which uptime needs). The worker
/// asks `maintenance::any_covers` / `coverage_end` of them.
pub async fn for_monitor(
    conn: &mut PgConnection,
    monitor_id: Uuid,
    organization_id: Uuid,
) -> Result<Vec<MaintenanceWindow>, CoreError> {
    let rows = select(
        conn,
        Select {
            include_cancelled: true,
            applies_to: Some((monitor_id, organization_id)),
            limit: i64::MAX,
            ..Select::default()
        },
    )
    .await?;
    rows.iter().map(WindowRecord::to_domain).collect()
}
