//! Maintenance windows (R12): admins schedule them, one-off or weekly on the business
//! calendar's wall clock; customers list the upcoming ones that concern them. During a window
//! probes go on and incidents are recorded, flagged, without alerts.

use crate::auth::Authenticated;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::preconditions::{content_tag, tagged_read};
use crate::state::AppState;
use crate::tx::{in_tx, read};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveTime, Utc, Weekday};
use helpdesk_core::monitoring::windows::{self, NewSchedule, NewScope, NewWindow, WindowFilter, WindowRecord};
use helpdesk_core::pagination::PageRequest;
use helpdesk_core::{CoreError, FieldError};
use helpdesk_domain::monitoring::maintenance::WeeklyWindow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowScopeName {
    /// Every monitor.
    All,
    /// One organisation's monitors (`organization_id`).
    Organization,
    /// The monitors listed in `monitor_ids`.
    Monitors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// `[starts_at, ends_at)`, at most 31 days.
    OneOff,
    /// Every week, from `weekday` `start_time` for `duration_minutes` (or until `end_weekday`
    /// `end_time`), on the business calendar's wall clock.
    Weekly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WeekdayName {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<WeekdayName> for Weekday {
    fn from(d: WeekdayName) -> Weekday {
        match d {
            WeekdayName::Monday => Weekday::Mon,
            WeekdayName::Tuesday => Weekday::Tue,
            WeekdayName::Wednesday => Weekday::Wed,
            WeekdayName::Thursday => Weekday::Thu,
            WeekdayName::Friday => Weekday::Fri,
            WeekdayName::Saturday => Weekday::Sat,
            WeekdayName::Sunday => Weekday::Sun,
        }
    }
}

impl From<Weekday> for WeekdayName {
    fn from(d: Weekday) -> WeekdayName {
        match d {
            Weekday::Mon => WeekdayName::Monday,
            Weekday::Tue => WeekdayName::Tuesday,
            Weekday::Wed => WeekdayName::Wednesday,
            Weekday::Thu => WeekdayName::Thursday,
            Weekday::Fri => WeekdayName::Friday,
            Weekday::Sat => WeekdayName::Saturday,
            Weekday::Sun => WeekdayName::Sunday,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWindow {
    #[schema(min_length = 1, max_length = 200, example = "Atualização do servidor de banco de dados")]
    pub title: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    pub scope: WindowScopeName,
    /// Required with scope `organization`.
    pub organization_id: Option<Uuid>,
    /// Required with scope `monitors`: 1 to 500 monitors.
    pub monitor_ids: Option<Vec<Uuid>>,
    pub kind: WindowKind,
    /// One-off: the start.
    pub starts_at: Option<DateTime<Utc>>,
    /// One-off: the end (excluded), in the future.
    pub ends_at: Option<DateTime<Utc>>,
    /// Weekly: the local weekday it starts on.
    pub weekday: Option<WeekdayName>,
    /// Weekly: the local start time, `HH:MM`.
    #[schema(example = "22:00")]
    pub start_time: Option<String>,
    /// Weekly: 1 to 10080 minutes (a week). Or give `end_weekday` and `end_time`.
    #[schema(minimum = 1, maximum = 10080)]
    pub duration_minutes: Option<u32>,
    /// Weekly: the local weekday it ends on (e.g. `monday` for a weekend window).
    pub end_weekday: Option<WeekdayName>,
    /// Weekly: the local end time, `HH:MM` (excluded).
    #[schema(example = "06:00")]
    pub end_time: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Occurrence {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WeeklyView {
    pub weekday: WeekdayName,
    #[schema(example = "22:00")]
    pub start_time: String,
    pub duration_minutes: i32,
    pub end_weekday: WeekdayName,
    #[schema(example = "06:00")]
    pub end_time: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WindowView {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub scope: WindowScopeName,
    pub organization_id: Option<Uuid>,
    /// Scope `monitors`: the monitors (a customer sees only their organisation's).
    pub monitor_ids: Vec<Uuid>,
    pub kind: WindowKind,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Weekly windows: the local wall-clock schedule.
    pub weekly: Option<WeeklyView>,
    /// The zone of the wall-clock times (the business calendar's when created).
    #[schema(example = "America/Sao_Paulo")]
    pub time_zone: String,
    /// The next covered spans (the one in progress first), up to 5 within 35 days.
    pub next_occurrences: Vec<Occurrence>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

fn window_view(w: WindowRecord, now: DateTime<Utc>) -> Result<WindowView, CoreError> {
    let next_occurrences = if w.cancelled_at.is_some() {
        Vec::new()
    } else {
        w.next_occurrences(now)?.into_iter().map(|s| Occurrence { starts_at: s.start, ends_at: s.end }).collect()
    };
    let weekly = match w.to_domain()?.schedule {
        helpdesk_domain::monitoring::maintenance::WindowSchedule::Weekly(weekly) => Some(weekly_view(&weekly)),
        helpdesk_domain::monitoring::maintenance::WindowSchedule::OneOff(_) => None,
    };
    Ok(WindowView {
        scope: match w.scope.as_str() {
            "all" => WindowScopeName::All,
            "organization" => WindowScopeName::Organization,
            _ => WindowScopeName::Monitors,
        },
        kind: if weekly.is_some() { WindowKind::Weekly } else { WindowKind::OneOff },
        weekly,
        next_occurrences,
        id: w.id,
        title: w.title,
        description: w.description,
        organization_id: w.organization_id,
        monitor_ids: w.monitor_ids,
        starts_at: w.starts_at,
        ends_at: w.ends_at,
        time_zone: w.time_zone,
        created_at: w.created_at,
        cancelled_at: w.cancelled_at,
    })
}

fn weekly_view(w: &WeeklyWindow) -> WeeklyView {
    let minutes = i64::from(w.duration_minutes);
    let start_minute = i64::from(w.weekday.num_days_from_monday()) * 1440
        + i64::from(chrono::Timelike::num_seconds_from_midnight(&w.start) / 60);
    let end_minute = (start_minute + minutes).rem_euclid(7 * 1440);
    let end_day = Weekday::try_from(u8::try_from(end_minute / 1440).unwrap_or(0)).unwrap_or(Weekday::Mon);
    let end_of_day = end_minute % 1440;
    WeeklyView {
        weekday: w.weekday.into(),
        start_time: w.start.format("%H:%M").to_string(),
        duration_minutes: i32::try_from(minutes).unwrap_or(i32::MAX),
        end_weekday: end_day.into(),
        end_time: format!("{:02}:{:02}", end_of_day / 60, end_of_day % 60),
    }
}

fn parse_time(field: &'static str, value: &str, errors: &mut Vec<FieldError>) -> Option<NaiveTime> {
    let parsed = NaiveTime::parse_from_str(value, "%H:%M").ok();
    if parsed.is_none() {
        errors.push(FieldError::new(field, "must be a local time HH:MM"));
    }
    parsed
}

/// Turns the request's optional fields into a scope and a schedule, naming each one missing,
/// out of place or unreadable.
fn new_window(b: CreateWindow) -> Result<NewWindow, CoreError> {
    let mut errors = Vec::new();
    let mut require = |present: bool, field: &'static str, why: &str| {
        if !present {
            errors.push(FieldError::new(field, why));
        }
    };
    let scope = match b.scope {
        WindowScopeName::All => NewScope::All,
        WindowScopeName::Organization => {
            require(b.organization_id.is_some(), "organization_id", "is required with scope `organization`");
            NewScope::Organization(b.organization_id.unwrap_or_default())
        }
        WindowScopeName::Monitors => {
            require(b.monitor_ids.is_some(), "monitor_ids", "is required with scope `monitors`");
            NewScope::Monitors(b.monitor_ids.clone().unwrap_or_default())
        }
    };
    if b.scope != WindowScopeName::Organization {
        require(b.organization_id.is_none(), "organization_id", "only goes with scope `organization`");
    }
    if b.scope != WindowScopeName::Monitors {
        require(b.monitor_ids.is_none(), "monitor_ids", "only goes with scope `monitors`");
    }
    let weekly_fields = [
        ("weekday", b.weekday.is_some()),
        ("start_time", b.start_time.is_some()),
        ("duration_minutes", b.duration_minutes.is_some()),
        ("end_weekday", b.end_weekday.is_some()),
        ("end_time", b.end_time.is_some()),
    ];
    let schedule = match b.kind {
        WindowKind::OneOff => {
            require(b.starts_at.is_some(), "starts_at", "is required for a one-off window");
            require(b.ends_at.is_some(), "ends_at", "is required for a one-off window");
            for (field, present) in weekly_fields {
                require(!present, field, "only goes with a weekly window");
            }
            NewSchedule::OneOff { starts_at: b.starts_at.unwrap_or_default(), ends_at: b.ends_at.unwrap_or_default() }
        }
        WindowKind::Weekly => {
            require(b.starts_at.is_none(), "starts_at", "only goes with a one-off window");
            require(b.ends_at.is_none(), "ends_at", "only goes with a one-off window");
            require(b.weekday.is_some(), "weekday", "is required for a weekly window");
            require(b.start_time.is_some(), "start_time", "is required for a weekly window");
            let by_end = b.end_weekday.is_some() || b.end_time.is_some();
            require(
                b.duration_minutes.is_some() != by_end,
                "duration_minutes",
                "give either duration_minutes or end_weekday and end_time",
            );
            if by_end {
                require(
                    b.end_weekday.is_some() && b.end_time.is_some(),
                    "end_time",
                    "give both end_weekday and end_time",
                );
            }
            let start_time = b.start_time.as_deref().and_then(|t| parse_time("start_time", t, &mut errors));
            let end_time = b.end_time.as_deref().and_then(|t| parse_time("end_time", t, &mut errors));
            let weekday: Weekday = b.weekday.unwrap_or(WeekdayName::Monday).into();
            let start = start_time.unwrap_or_default();
            let duration_minutes = match (b.duration_minutes, b.end_weekday, end_time) {
                (Some(minutes), _, _) => minutes,
                (None, Some(end_day), Some(end)) => WeeklyWindow::minutes_until(weekday, start, end_day.into(), end)
                    .unwrap_or_else(|| {
                        errors.push(FieldError::new(
                            "end_time",
                            "the window must end at another instant of the week than it starts",
                        ));
                        0
                    }),
                _ => 0,
            };
            NewSchedule::Weekly { weekday, start_time: start, duration_minutes }
        }
    };
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    Ok(NewWindow { title: b.title, description: b.description.unwrap_or_default(), scope, schedule })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WindowPage {
    pub items: Vec<WindowView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// Only windows in progress or to come (always so for customers). Default false for staff.
    pub upcoming: Option<bool>,
    /// Staff only: include cancelled windows (default false).
    pub include_cancelled: Option<bool>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Schedule a maintenance window (admins).
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), request_body = CreateWindow, responses(
    (status = 201, description = "Scheduled", body = WindowView),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input, each field named: a missing or misplaced field for the scope or kind, `ends_at` not after `starts_at` or in the past or more than 31 days on, a weekly duration outside 1–10080 minutes, an unknown organisation or monitor", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/maintenance-windows")]
pub async fn create_window(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: Json<CreateWindow>,
) -> Result<HttpResponse, ApiError> {
    caller.0.require_admin()?;
    let input = new_window(body.0)?;
    let now = state.clock.now();
    let window = in_tx(&state.pool, async |c| {
        let zone = state.sla.snapshot(c).await?.calendar.time_zone();
        windows::create(c, &caller.0, zone, input, now).await
    })
    .await?;
    Ok(HttpResponse::Created().json(window_view(window, now)?))
}

/// Maintenance windows, newest first: staff see all; customers the upcoming ones that concern
/// them (all monitors, their organisation, or one of their monitors).
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), params(WindowQuery), responses(
    (status = 200, description = "OK", body = WindowPage),
    (status = 422, description = "Invalid `limit` or `cursor`", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/maintenance-windows")]
pub async fn list_windows(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<WindowQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let filter =
        WindowFilter { upcoming: q.upcoming.unwrap_or(false), include_cancelled: q.include_cancelled.unwrap_or(false) };
    let now = state.clock.now();
    let (items, next_cursor) =
        read(&state.pool, async |c| windows::list(c, &caller.0, filter, page, now).await).await?;
    let items = items.into_iter().map(|w| window_view(w, now)).collect::<Result<_, _>>()?;
    Ok(HttpResponse::Ok().json(WindowPage { items, next_cursor }))
}

/// One maintenance window.
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "OK", body = WindowView),
    (status = 404, description = "No such window, or one that does not concern the customer", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/maintenance-windows/{id}")]
pub async fn get_window(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let window = read(&state.pool, async |c| windows::get(c, &caller.0, id).await).await?;
    let body = window_view(window, state.clock.now())?;
    Ok(tagged_read(&req, &content_tag(&body), &body))
}

/// Cancel a maintenance window (admins): from now on it covers nothing; what it covered before
/// stays excluded from uptime.
#[utoipa::path(tag = "monitoring", path = "/v1/maintenance-windows/{id}/cancel", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "Cancelled", body = WindowView),
    (status = 403, description = "`admin_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such window", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "`window_cancelled`: already cancelled", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/maintenance-windows/{id}/cancel")]
pub async fn cancel_window(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (id, now) = (id.into_inner(), state.clock.now());
    let window = in_tx(&state.pool, async |c| windows::cancel(c, &caller.0, id, now).await).await?;
    Ok(HttpResponse::Ok().json(window_view(window, now)?))
}
