//! Incidents (R11): downtimes from their first failure to recovery, and TLS expiry warnings,
//! each with the alerts it sent (each kind at most once). Customers see their organisation's.

use crate::auth::Authenticated;
use crate::error::{ApiError, Problem};
use crate::extract::Query;
use crate::preconditions::{content_tag, tagged_read};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use helpdesk_core::monitoring::incidents::{self, Incident, IncidentAlert, IncidentFilter};
use helpdesk_core::pagination::PageRequest;
use helpdesk_domain::monitoring::status::{AlertKind, IncidentKind, ProbeErrorKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    /// `down`, `down_15m`, `down_2h` (emergency ticket and page), `recovered`, `tls_expiring`.
    pub kind: Option<AlertKind>,
    pub sent_at: DateTime<Utc>,
    /// How many e-mails it queued.
    pub recipients: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentView {
    pub id: Uuid,
    pub monitor_id: Uuid,
    pub monitor_name: String,
    pub organization_id: Uuid,
    /// `down` (a downtime) or `tls_expiring` (a warning, never a downtime).
    pub kind: IncidentKind,
    /// The first failed probe.
    pub started_at: DateTime<Utc>,
    /// The second consecutive failure: the monitor was declared DOWN. `null` for a downtime
    /// that was never confirmed (a single failure), which counts for nothing.
    pub confirmed_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Down time so far (open) or in total, in seconds, from the first failure.
    pub duration_seconds: i64,
    /// It happened during a maintenance window: recorded, without alerts.
    pub in_maintenance: bool,
    /// The end of that window, from which the 15-minute and 2-hour timers counted.
    pub maintenance_ended_at: Option<DateTime<Utc>>,
    /// The emergency ticket opened after 2 hours down.
    pub ticket_id: Option<Uuid>,
    pub error_kind: Option<ProbeErrorKind>,
    pub status_code: Option<i32>,
    pub alerts: Vec<AlertView>,
}

fn alert_view(a: IncidentAlert) -> AlertView {
    AlertView { kind: a.alert_kind(), sent_at: a.sent_at, recipients: a.recipients }
}

pub fn incident_view(i: Incident, now: DateTime<Utc>) -> IncidentView {
    IncidentView {
        kind: i.incident_kind(),
        duration_seconds: (i.resolved_at.unwrap_or(now) - i.started_at).num_seconds().max(0),
        error_kind: i.error_kind.as_deref().and_then(ProbeErrorKind::parse),
        id: i.id,
        monitor_id: i.monitor_id,
        monitor_name: i.monitor_name,
        organization_id: i.organization_id,
        started_at: i.started_at,
        confirmed_at: i.confirmed_at,
        resolved_at: i.resolved_at,
        in_maintenance: i.in_maintenance,
        maintenance_ended_at: i.maintenance_ended_at,
        ticket_id: i.ticket_id,
        status_code: i.status_code,
        alerts: i.alerts.into_iter().map(alert_view).collect(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    pub items: Vec<IncidentView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    pub monitor_id: Option<Uuid>,
    /// Staff only; customers always see their own organisation's.
    pub organization_id: Option<Uuid>,
    /// `true`: unresolved only; `false`: resolved only.
    pub open: Option<bool>,
    /// Incidents started at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Incidents started before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Also downtimes a single failure opened and that were never confirmed (default false).
    pub include_unconfirmed: Option<bool>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Incidents, most recent first, each with its alerts.
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), params(IncidentQuery), responses(
    (status = 200, description = "OK", body = IncidentPage),
    (status = 422, description = "Invalid filter (`limit`, `cursor`, `to` before `from`)", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/incidents")]
pub async fn list_incidents(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<IncidentQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    if let (Some(from), Some(to)) = (q.from, q.to)
        && to < from
    {
        return Err(helpdesk_core::CoreError::invalid("to", "must not be before `from`").into());
    }
    let filter = IncidentFilter {
        monitor_id: q.monitor_id,
        organization_id: q.organization_id,
        open: q.open,
        from: q.from,
        to: q.to,
        include_unconfirmed: q.include_unconfirmed.unwrap_or(false),
    };
    let now = state.clock.now();
    let (items, next_cursor) =
        crate::tx::read(&state.pool, async |c| incidents::list(c, &caller.0, filter, page).await).await?;
    Ok(HttpResponse::Ok()
        .json(IncidentPage { items: items.into_iter().map(|i| incident_view(i, now)).collect(), next_cursor }))
}

/// One incident with its alerts.
#[utoipa::path(tag = "monitoring", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, description = "OK", body = IncidentView),
    (status = 404, description = "No such incident, or another organisation's", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/incidents/{id}")]
pub async fn get_incident(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let incident = crate::tx::read(&state.pool, async |c| incidents::get(c, &caller.0, id).await).await?;
    let body = incident_view(incident, state.clock.now());
    Ok(tagged_read(&req, &content_tag(&body), &body))
}
