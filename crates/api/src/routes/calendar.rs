//! The business calendar and SLA targets (admin). Every change is a new version; open tickets'
//! due times are re-projected with the time they already consumed kept.

use crate::auth::{AdminOnly, Authenticated};
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::state::AppState;
use actix_web::{HttpResponse, delete, get, post, put, web};
use chrono::{Datelike, NaiveDate, TimeDelta};
use helpdesk_core::CoreError;
use helpdesk_core::calendar_admin::{self, ClosedDay, ClosedDaySource, PolicyEdit};
use helpdesk_domain::calendar::{CalendarSpec, OpenInterval, WeeklyHours};
use helpdesk_domain::sla::{ClockMode, PolicyRow, Severity, SlaPolicy, Target, Targets};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An opening interval, local time, `HH:MM`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    #[schema(example = "09:00")]
    pub start: String,
    #[schema(example = "18:00")]
    pub end: String,
}

fn to_interval(i: &Interval, field: &str) -> Result<OpenInterval, CoreError> {
    let parse = |t: &str, which: &str| {
        t.parse().map_err(|_| CoreError::invalid(&format!("{field}.{which}"), "must be a time as HH:MM"))
    };
    Ok(OpenInterval::new(parse(&i.start, "start")?, parse(&i.end, "end")?))
}

fn from_interval(i: &OpenInterval) -> Interval {
    Interval { start: i.start.to_string(), end: i.end.to_string() }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClosedDayView {
    pub date: NaiveDate,
    #[schema(example = "Carnaval")]
    pub name: String,
    /// `rule` (recurring holiday), `added` (one-off closure) or `partial_day`.
    #[schema(value_type = String, example = "rule")]
    pub source: ClosedDaySource,
    /// For partial days: when it opens.
    pub opening_hours: Vec<Interval>,
}

impl From<ClosedDay> for ClosedDayView {
    fn from(d: ClosedDay) -> Self {
        ClosedDayView {
            date: d.date,
            name: d.name,
            source: d.source,
            opening_hours: d.opening_hours.iter().map(from_interval).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClosedDays {
    pub year: i32,
    pub calendar_version: u32,
    pub days: Vec<ClosedDayView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct YearQuery {
    /// Defaults to the current year.
    #[param(minimum = 1970, maximum = 2200)]
    pub year: Option<i32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddClosedDay {
    pub date: NaiveDate,
    #[schema(min_length = 1, max_length = 100, example = "Recesso de fim de ano")]
    pub name: String,
    /// Omit to close the whole day; give intervals for a partial day (e.g. opens at 14:00).
    #[serde(default)]
    pub opening_hours: Vec<Interval>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarChange {
    pub calendar: CalendarView,
    /// Open tickets whose due times were re-projected in this request.
    pub tickets_reprojected: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHoursView {
    #[serde(default)]
    pub monday: Vec<Interval>,
    #[serde(default)]
    pub tuesday: Vec<Interval>,
    #[serde(default)]
    pub wednesday: Vec<Interval>,
    #[serde(default)]
    pub thursday: Vec<Interval>,
    #[serde(default)]
    pub friday: Vec<Interval>,
    #[serde(default)]
    pub saturday: Vec<Interval>,
    #[serde(default)]
    pub sunday: Vec<Interval>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarView {
    pub version: u32,
    #[schema(example = "America/Sao_Paulo")]
    pub time_zone: String,
    pub weekly_hours: WeeklyHoursView,
}

impl From<CalendarSpec> for CalendarView {
    fn from(spec: CalendarSpec) -> Self {
        CalendarView {
            version: spec.version,
            time_zone: spec.time_zone.name().to_owned(),
            weekly_hours: WeeklyHoursView::from(&spec.weekly_hours),
        }
    }
}

impl From<&WeeklyHours> for WeeklyHoursView {
    fn from(w: &WeeklyHours) -> Self {
        let map = |v: &Vec<OpenInterval>| v.iter().map(from_interval).collect();
        WeeklyHoursView {
            monday: map(&w.monday),
            tuesday: map(&w.tuesday),
            wednesday: map(&w.wednesday),
            thursday: map(&w.thursday),
            friday: map(&w.friday),
            saturday: map(&w.saturday),
            sunday: map(&w.sunday),
        }
    }
}

impl WeeklyHoursView {
    /// The hours as the domain holds them; a bad time names its field under `prefix`.
    pub fn to_hours(&self, prefix: &str) -> Result<WeeklyHours, CoreError> {
        let day = |v: &Vec<Interval>, name: &str| {
            v.iter()
                .enumerate()
                .map(|(i, h)| to_interval(h, &format!("{prefix}{name}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(WeeklyHours {
            monday: day(&self.monday, "monday")?,
            tuesday: day(&self.tuesday, "tuesday")?,
            wednesday: day(&self.wednesday, "wednesday")?,
            thursday: day(&self.thursday, "thursday")?,
            friday: day(&self.friday, "friday")?,
            saturday: day(&self.saturday, "saturday")?,
            sunday: day(&self.sunday, "sunday")?,
        })
    }
}

/// One row of the SLA target table.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRowView {
    #[schema(example = "pro")]
    pub plan: String,
    /// Absent: every severity of the plan.
    pub severity: Option<Severity>,
    /// Rows for Premium emergency tickets.
    #[serde(default)]
    pub emergency: bool,
    /// `business` (opening hours) or `calendar` (24×7).
    pub mode: ClockMode,
    pub first_response_minutes: i64,
    pub resolution_minutes: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    pub version: u32,
    /// Fraction of a target after which a ticket is at risk and its at-risk alert goes out.
    pub at_risk_fraction: f64,
    /// R8: hours a ticket may wait for the customer before the reminder e-mail.
    pub reminder_after_hours: u32,
    /// R8: hours after the reminder before a still-waiting ticket is closed as `auto_closed`.
    pub auto_close_after_hours: u32,
    pub rows: Vec<PolicyRowView>,
}

impl From<SlaPolicy> for PolicyView {
    fn from(p: SlaPolicy) -> Self {
        PolicyView {
            version: p.version,
            at_risk_fraction: p.at_risk_fraction,
            reminder_after_hours: p.waiting.reminder_after_hours,
            auto_close_after_hours: p.waiting.auto_close_after_hours,
            rows: p
                .rows
                .into_iter()
                .map(|r| PolicyRowView {
                    plan: r.plan,
                    severity: r.severity,
                    emergency: r.emergency,
                    mode: r.targets.resolution.mode,
                    first_response_minutes: r.targets.first_response.duration.num_minutes(),
                    resolution_minutes: r.targets.resolution.duration.num_minutes(),
                })
                .collect(),
        }
    }
}

/// A new policy version; every field left out keeps its current value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPolicy {
    /// The whole target table.
    pub rows: Option<Vec<PolicyRowView>>,
    /// Fraction of a target after which a ticket is at risk (0.05–1).
    pub at_risk_fraction: Option<f64>,
    /// R8: hours waiting for the customer before the reminder (1–2160).
    pub reminder_after_hours: Option<u32>,
    /// R8: hours after the reminder before the ticket is closed (1–2160).
    pub auto_close_after_hours: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyChange {
    pub policy: PolicyView,
    pub tickets_reprojected: usize,
}

/// Closed and partial days of a year: holidays from the rules plus dates an admin added.
#[utoipa::path(tag = "calendar", security(("bearer" = [])), params(YearQuery), responses((status = 200, description = "OK", body = ClosedDays), (status = 400, description = "Malformed request", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/holidays")]
pub async fn list_holidays(
    state: web::Data<AppState>,
    _caller: Authenticated,
    query: Query<YearQuery>,
) -> Result<HttpResponse, ApiError> {
    let year = query.0.year.unwrap_or_else(|| state.clock.now().year());
    let (calendar_version, days) =
        crate::tx::read(&state.pool, async |c| calendar_admin::closed_days(c, &state.sla, year).await).await?;
    Ok(HttpResponse::Ok().json(ClosedDays { year, calendar_version, days: days.into_iter().map(Into::into).collect() }))
}

/// Close a date, or give it shorter hours (admin). Open tickets' due times move.
#[utoipa::path(tag = "calendar", security(("bearer" = [])), request_body = AddClosedDay, responses(
    (status = 201, description = "Created", body = CalendarChange),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/holidays")]
pub async fn add_holiday(
    state: web::Data<AppState>,
    caller: AdminOnly,
    body: Json<AddClosedDay>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let hours = b
        .opening_hours
        .iter()
        .enumerate()
        .map(|(i, h)| to_interval(h, &format!("opening_hours[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = crate::tx::in_tx(&state.pool, async |c| {
        calendar_admin::add_closed_day(c, &state.sla, &caller.0, b.date, &b.name, hours, state.clock.now()).await
    })
    .await?;
    let tickets_reprojected = calendar_admin::reproject_in_request(&state.pool, &state.sla, state.clock.now()).await?;
    Ok(HttpResponse::Created().json(CalendarChange { calendar: spec.into(), tickets_reprojected }))
}

/// Remove a date an admin added (admin).
#[utoipa::path(tag = "calendar", path = "/v1/holidays/{date}", security(("bearer" = [])), responses(
    (status = 200, description = "OK", body = CalendarChange),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")))]
#[delete("/v1/holidays/{date}")]
pub async fn remove_holiday(
    state: web::Data<AppState>,
    caller: AdminOnly,
    date: web::Path<NaiveDate>,
) -> Result<HttpResponse, ApiError> {
    let spec = crate::tx::in_tx(&state.pool, async |c| {
        calendar_admin::remove_closed_day(c, &state.sla, &caller.0, *date, state.clock.now()).await
    })
    .await?;
    let tickets_reprojected = calendar_admin::reproject_in_request(&state.pool, &state.sla, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(CalendarChange { calendar: spec.into(), tickets_reprojected }))
}

/// The calendar in force: time zone and weekly opening hours.
#[utoipa::path(tag = "calendar", security(("bearer" = [])), responses((status = 200, description = "OK", body = CalendarView)))]
#[get("/v1/calendar")]
pub async fn get_calendar(state: web::Data<AppState>, _caller: Authenticated) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(CalendarView::from(
        crate::tx::read(&state.pool, async |c| calendar_admin::current_calendar(c, &state.sla).await).await?,
    )))
}

/// Replace the weekly opening hours (admin); several intervals a day are allowed.
#[utoipa::path(tag = "calendar", path = "/v1/calendar/opening-hours", security(("bearer" = [])), request_body = WeeklyHoursView, responses(
    (status = 200, description = "OK", body = CalendarChange),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[put("/v1/calendar/opening-hours")]
pub async fn set_opening_hours(
    state: web::Data<AppState>,
    caller: AdminOnly,
    body: Json<WeeklyHoursView>,
) -> Result<HttpResponse, ApiError> {
    let hours = body.0.to_hours("")?;
    let spec = crate::tx::in_tx(&state.pool, async |c| {
        calendar_admin::set_weekly_hours(c, &state.sla, &caller.0, hours, state.clock.now()).await
    })
    .await?;
    let tickets_reprojected = calendar_admin::reproject_in_request(&state.pool, &state.sla, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(CalendarChange { calendar: spec.into(), tickets_reprojected }))
}

/// The SLA targets in force, per plan × severity.
#[utoipa::path(tag = "calendar", path = "/v1/sla-policy", security(("bearer" = [])), responses((status = 200, description = "OK", body = PolicyView)))]
#[get("/v1/sla-policy")]
pub async fn get_policy(state: web::Data<AppState>, _caller: Authenticated) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(PolicyView::from(
        crate::tx::read(&state.pool, async |c| calendar_admin::current_policy(c, &state.sla).await).await?,
    )))
}

/// Change the SLA policy (admin): the target table, the at-risk threshold, R8's reminder and
/// auto-close delays. Writes a new version; open tickets are re-targeted with consumed time kept,
/// and their alert, reminder and auto-close instants move.
#[utoipa::path(tag = "calendar", path = "/v1/sla-policy", security(("bearer" = [])), request_body = SetPolicy, responses(
    (status = 200, description = "OK", body = PolicyChange),
    (status = 403, description = "`admin_only`: the caller is not an administrator (checked before the input)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json")))]
#[put("/v1/sla-policy")]
pub async fn set_policy(
    state: web::Data<AppState>,
    caller: AdminOnly,
    body: Json<SetPolicy>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let rows = b.rows.map(|rows| {
        rows.into_iter()
            .map(|r| {
                // `TimeDelta::minutes` panics past about 1.5e14 minutes; such a target is simply
                // too long, which the domain's validation says with a 422.
                let target = |minutes: i64| Target {
                    duration: TimeDelta::try_minutes(minutes).unwrap_or(TimeDelta::MAX),
                    mode: r.mode,
                };
                PolicyRow {
                    plan: r.plan,
                    severity: r.severity,
                    emergency: r.emergency,
                    targets: Targets {
                        first_response: target(r.first_response_minutes),
                        resolution: target(r.resolution_minutes),
                    },
                }
            })
            .collect()
    });
    let edit = PolicyEdit {
        rows,
        at_risk_fraction: b.at_risk_fraction,
        reminder_after_hours: b.reminder_after_hours,
        auto_close_after_hours: b.auto_close_after_hours,
    };
    let policy = crate::tx::in_tx(&state.pool, async |c| {
        calendar_admin::set_policy(c, &state.sla, &caller.0, edit, state.clock.now()).await
    })
    .await?;
    let tickets_reprojected = calendar_admin::reproject_in_request(&state.pool, &state.sla, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(PolicyChange { policy: policy.into(), tickets_reprojected }))
}
