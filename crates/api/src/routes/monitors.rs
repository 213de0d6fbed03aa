//! Uptime monitors (R11): agents and admins manage them; customers read their organisation's,
//! with current state, last check, uptime over 24 h / 7 d / 30 d and incidents. Another
//! organisation's monitor is a 404 on every route. URLs pass the egress guard at creation and
//! change: a refusal is a 422 on `url` naming the reason.

use crate::auth::Authenticated;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::preconditions::{content_tag, tagged_read};
use crate::routes::dto::double_option;
use crate::routes::incidents::{IncidentView, incident_view};
use crate::state::AppState;
use crate::tx::{in_tx, read};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use helpdesk_core::monitoring::monitors::{self, Monitor, MonitorFilter, MonitorPatch};
use helpdesk_core::monitoring::{incidents, uptime};
use helpdesk_core::pagination::PageRequest;
use helpdesk_domain::monitoring::settings::{Keyword, MonitorSettings};
use helpdesk_domain::monitoring::status::{KeywordMode, MonitorStatus, ProbeErrorKind};
use helpdesk_domain::monitoring::uptime::Uptime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// How many recent incidents a monitor's page shows.
const RECENT_INCIDENTS: i64 = 10;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMonitor {
    pub organization_id: Uuid,
    #[schema(min_length = 1, max_length = 200, example = "Loja virtual")]
    pub name: String,
    /// http or https, port 80, 443 or 1024–65535, no credentials; the host must not be (or
    /// resolve to) a private, loopback, link-local, CGNAT, multicast or metadata address.
    #[schema(max_length = 2048, example = "https://loja.example.com/health")]
    pub url: String,
    /// Status codes that count as up, each 100–599, at most 50. Empty or absent: any 2xx.
    #[schema(example = json!([200, 204]))]
    pub expected_status_codes: Option<Vec<u16>>,
    /// A keyword the body must contain (or, with `keyword_mode: absent`, must not).
    #[schema(min_length = 1, max_length = 200)]
    pub keyword: Option<String>,
    /// Default `present`.
    pub keyword_mode: Option<KeywordMode>,
    /// A success slower than this is `degraded`, not down; 1–120000.
    #[schema(minimum = 1, maximum = 120000)]
    pub latency_threshold_ms: Option<u32>,
    /// 30–86400, default 300.
    #[schema(minimum = 30, maximum = 86400, example = 300)]
    pub interval_seconds: Option<u32>,
    /// 1–60 and below the interval, default 15.
    #[schema(minimum = 1, maximum = 60, example = 15)]
    pub timeout_seconds: Option<u32>,
    /// Warn when the TLS certificate expires within this many days; 0–365, default 14, 0 = off.
    #[schema(minimum = 0, maximum = 365, example = 14)]
    pub tls_warning_days: Option<u32>,
    /// Create it paused (default false).
    pub paused: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMonitor {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// Empty: any 2xx.
    pub expected_status_codes: Option<Vec<u16>>,
    /// `null` removes the keyword rule.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(min_length = 1, max_length = 200, value_type = Option<String>)]
    pub keyword: Option<Option<String>>,
    /// With `keyword`; default `present`.
    pub keyword_mode: Option<KeywordMode>,
    /// `null` removes the latency rule.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(minimum = 1, maximum = 120000, value_type = Option<u32>)]
    pub latency_threshold_ms: Option<Option<u32>>,
    #[schema(minimum = 30, maximum = 86400)]
    pub interval_seconds: Option<u32>,
    #[schema(minimum = 1, maximum = 60)]
    pub timeout_seconds: Option<u32>,
    #[schema(minimum = 0, maximum = 365)]
    pub tls_warning_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastCheckView {
    /// The planned instant of the probe.
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub status_code: Option<i32>,
    pub latency_ms: Option<i32>,
    /// `null` when the probe succeeded.
    pub error_kind: Option<ProbeErrorKind>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub url: String,
    /// Empty: any 2xx.
    pub expected_status_codes: Vec<i32>,
    pub keyword: Option<String>,
    pub keyword_mode: Option<KeywordMode>,
    pub latency_threshold_ms: Option<i32>,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub tls_warning_days: i32,
    pub paused: bool,
    /// `unknown` (not probed yet), `up`, `degraded` (slow) or `down` (confirmed).
    pub state: MonitorStatus,
    pub state_changed_at: Option<DateTime<Utc>>,
    /// The next planned probe (meaningless while paused).
    pub next_check_at: DateTime<Utc>,
    /// `null` before the first probe.
    pub last_check: Option<LastCheckView>,
    pub tls_expires_at: Option<DateTime<Utc>>,
    pub open_incident_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn monitor_view(m: Monitor) -> MonitorView {
    let last_check = m.last_check_started_at.map(|started_at| LastCheckView {
        scheduled_at: m.last_check_scheduled_at,
        started_at: Some(started_at),
        status_code: m.last_check_status_code,
        latency_ms: m.last_check_latency_ms,
        error_kind: m.last_error_kind(),
    });
    MonitorView {
        state: m.status(),
        keyword_mode: m.keyword_mode.as_deref().and_then(KeywordMode::parse),
        last_check,
        id: m.id,
        organization_id: m.organization_id,
        name: m.name,
        url: m.url,
        expected_status_codes: m.expected_status_codes,
        keyword: m.keyword,
        latency_threshold_ms: m.latency_threshold_ms,
        interval_seconds: m.interval_seconds,
        timeout_seconds: m.timeout_seconds,
        tls_warning_days: m.tls_warning_days,
        paused: m.paused,
        state_changed_at: m.state_changed_at,
        next_check_at: m.next_check_at,
        tls_expires_at: m.tls_expires_at,
        open_incident_id: m.open_incident_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

/// Uptime over one period: the share of observed time the monitor was not down.
#[derive(Debug, Serialize, ToSchema)]
pub struct UptimeView {
    /// 0–100, rounded to three decimals; `null` when nothing was observed (all maintenance or
    /// no data, or too new).
    #[schema(example = 99.95)]
    pub percent: Option<f64>,
    /// The period minus maintenance, "no data" gaps and time before the monitor existed.
    pub observed_seconds: i64,
    /// Confirmed down time within the observed time.
    pub down_seconds: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UptimeSummary {
    #[serde(rename = "24h")]
    pub last_24h: UptimeView,
    #[serde(rename = "7d")]
    pub last_7d: UptimeView,
    #[serde(rename = "30d")]
    pub last_30d: UptimeView,
}

fn uptime_view(u: Option<&Uptime>) -> UptimeView {
    UptimeView {
        percent: u.and_then(|u| u.percent).map(|p| (p * 1000.0).round() / 1000.0),
        observed_seconds: u.map(|u| u.observed.num_seconds()).unwrap_or(0),
        down_seconds: u.map(|u| u.down.num_seconds()).unwrap_or(0),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorDetail {
    #[serde(flatten)]
    pub monitor: MonitorView,
    /// Weighted by time from incidents; maintenance and "no data" time are left out.
    pub uptime: UptimeSummary,
    /// The downtime in progress, if any.
    pub open_incident: Option<IncidentView>,
    /// The 10 most recent incidents (confirmed downtimes and TLS warnings).
    pub recent_incidents: Vec<IncidentView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorPage {
    pub items: Vec<MonitorView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MonitorQuery {
    /// Staff only; customers always see their own organisation's.
    pub organization_id: Option<Uuid>,
    pub state: Option<MonitorStatus>,
    pub paused: Option<bool>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn keyword(text: Option<String>, mode: Option<KeywordMode>) -> Option<Keyword> {
    text.map(|text| Keyword { text, mode: mode.unwrap_or(KeywordMode::Present) })
}

/// Create a monitor (agents and admins). Its first probe is at its next slot.
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), request_body = CreateMonitor, responses(
    (status = 201, description = "Created", body = MonitorView),
    (status = 403, description = "`staff_only`: customers cannot create monitors", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input, each field named; `url` refused by the egress guard says why (scheme, port, credentials, a blocked address kind, or a name that does not resolve)", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/monitors")]
pub async fn create_monitor(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: Json<CreateMonitor>,
) -> Result<HttpResponse, ApiError> {
    caller.0.require_staff()?;
    let b = body.0;
    let mut settings = MonitorSettings::new(b.name, b.url);
    settings.expected_status_codes = b.expected_status_codes.unwrap_or_default();
    settings.keyword = keyword(b.keyword, b.keyword_mode);
    settings.latency_threshold_ms = b.latency_threshold_ms;
    settings.interval_seconds = b.interval_seconds.unwrap_or(settings.interval_seconds);
    settings.timeout_seconds = b.timeout_seconds.unwrap_or(settings.timeout_seconds);
    settings.tls_warning_days = b.tls_warning_days.unwrap_or(settings.tls_warning_days);
    let policy = &state.config.egress;
    // DNS is slow I/O: resolve before the transaction opens.
    monitors::check_new(policy, &settings).await?;
    let now = state.clock.now();
    let paused = b.paused.unwrap_or(false);
    let monitor = in_tx(&state.pool, async |c| {
        monitors::create(c, &caller.0, policy, b.organization_id, settings, paused, now).await
    })
    .await?;
    Ok(HttpResponse::Created().json(monitor_view(monitor)))
}

/// Monitors the caller may see, newest first.
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), params(MonitorQuery), responses(
    (status = 200, description = "OK", body = MonitorPage),
    (status = 422, description = "Invalid `limit` or `cursor`", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/monitors")]
pub async fn list_monitors(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<MonitorQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let filter = MonitorFilter { organization_id: q.organization_id, state: q.state, paused: q.paused };
    let (items, next_cursor) = read(&state.pool, async |c| monitors::list(c, &caller.0, filter, page).await).await?;
    Ok(HttpResponse::Ok().json(MonitorPage { items: items.into_iter().map(monitor_view).collect(), next_cursor }))
}

/// One monitor: current state, last check, uptime over 24 h / 7 d / 30 d, the open incident and
/// recent incidents.
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "OK", body = MonitorDetail),
    (status = 404, description = "No such monitor, or another organisation's", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/monitors/{id}")]
pub async fn get_monitor(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let now = state.clock.now();
    let (monitor, uptimes, recent) = read(&state.pool, async |c| {
        let monitor = monitors::get(c, &caller.0, id).await?;
        let uptimes = uptime::for_monitor(c, &monitor, now).await?;
        let recent = incidents::recent_for_monitor(c, id, RECENT_INCIDENTS).await?;
        Ok((monitor, uptimes, recent))
    })
    .await?;
    let period = |name: &str| uptime_view(uptimes.iter().find(|(n, _)| *n == name).map(|(_, u)| u));
    let open_incident = monitor
        .open_incident_id
        .and_then(|open| recent.iter().find(|i| i.id == open).cloned())
        .map(|i| incident_view(i, now));
    let body = MonitorDetail {
        uptime: UptimeSummary { last_24h: period("24h"), last_7d: period("7d"), last_30d: period("30d") },
        open_incident,
        recent_incidents: recent.into_iter().map(|i| incident_view(i, now)).collect(),
        monitor: monitor_view(monitor),
    };
    Ok(tagged_read(&req, &content_tag(&body), &body))
}

/// Change a monitor's settings (agents and admins). A new interval re-plans the next check on
/// the monitor's new phase.
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = UpdateMonitor, responses(
    (status = 200, description = "Changed", body = MonitorView),
    (status = 403, description = "`staff_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid input, each field named (`url` as at creation)", body = Problem, content_type = "application/problem+json")))]
#[patch("/v1/monitors/{id}")]
pub async fn update_monitor(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
    body: Json<UpdateMonitor>,
) -> Result<HttpResponse, ApiError> {
    caller.0.require_staff()?;
    let b = body.0;
    let policy = &state.config.egress;
    if let Some(url) = &b.url {
        monitors::check_url(policy, url).await?;
    }
    let patch = MonitorPatch {
        name: b.name,
        url: b.url,
        expected_status_codes: b.expected_status_codes,
        keyword: b.keyword.map(|k| keyword(k, b.keyword_mode)),
        latency_threshold_ms: b.latency_threshold_ms,
        interval_seconds: b.interval_seconds,
        timeout_seconds: b.timeout_seconds,
        tls_warning_days: b.tls_warning_days,
    };
    let (id, now) = (id.into_inner(), state.clock.now());
    let monitor = in_tx(&state.pool, async |c| monitors::update(c, &caller.0, policy, id, patch, now).await).await?;
    Ok(HttpResponse::Ok().json(monitor_view(monitor)))
}

/// Delete a monitor (agents and admins): it is no longer probed or listed; its incidents stay.
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "`staff_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json")))]
#[delete("/v1/monitors/{id}")]
pub async fn delete_monitor(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (id, now) = (id.into_inner(), state.clock.now());
    in_tx(&state.pool, async |c| monitors::delete(c, &caller.0, id, now).await).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Pause probing (agents and admins); idempotent.
#[utoipa::path(tag = "monitoring", path = "/v1/monitors/{id}/pause", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "Paused", body = MonitorView),
    (status = 403, description = "`staff_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/monitors/{id}/pause")]
pub async fn pause_monitor(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (id, now) = (id.into_inner(), state.clock.now());
    let monitor = in_tx(&state.pool, async |c| monitors::pause(c, &caller.0, id, now).await).await?;
    Ok(HttpResponse::Ok().json(monitor_view(monitor)))
}

/// Resume probing (agents and admins) at the monitor's next slot on its phase; idempotent.
#[utoipa::path(tag = "monitoring", path = "/v1/monitors/{id}/resume", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "Resumed", body = MonitorView),
    (status = 403, description = "`staff_only`", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such monitor", body = Problem, content_type = "application/problem+json")))]
#[post("/v1/monitors/{id}/resume")]
pub async fn resume_monitor(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (id, now) = (id.into_inner(), state.clock.now());
    let monitor = in_tx(&state.pool, async |c| monitors::resume(c, &caller.0, id, now).await).await?;
    Ok(HttpResponse::Ok().json(monitor_view(monitor)))
}
