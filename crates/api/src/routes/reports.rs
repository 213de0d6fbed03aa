//! SLA attainment reports (R10), as JSON or CSV. Each figure comes with the `/v1/tickets` list
//! that shows its tickets one by one.

use crate::auth::Authenticated;
use crate::error::{ApiError, Problem};
use crate::extract::Query;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use helpdesk_core::CoreError;
use helpdesk_core::reports::{self, GroupBy, GroupFigures, MetricCounts, Period, SlaReport};
use helpdesk_domain::attainment::{BAND_HIGH_PER_MILLE, BAND_LOW_PER_MILLE, Band};
use helpdesk_domain::calendar::BusinessCalendar;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The one written formula, also in docs/architecture.md ("SLA attainment").
pub const FORMULA: &str = "share met = met / (met + breached), per metric. breached: the stored breach flag, or a running due instant already passed; met: the target was met and not breached. Tickets still open and not yet due (pending) are left out. Tickets auto-closed for lack of the customer's answer count as abandoned, never as met; a breach before the auto-close still counts as breached. Paused time (waiting for the customer) is not counted by the SLA clock. Band: below 85 %, inside 85–95 % (bounds included), above 95 %.";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// First local day of the period (in the business calendar's zone), inclusive.
    #[param(example = "2026-11-01")]
    pub from: NaiveDate,
    /// Last local day of the period, inclusive; at most 366 days after `from`.
    #[param(example = "2026-11-30")]
    pub to: NaiveDate,
    /// `plan` (default), `severity`, `agent`, `organization` or `month`.
    #[param(example = "plan", pattern = "^(plan|severity|agent|organization|month)$")]
    pub group_by: Option<String>,
    /// `json` (default) or `csv` (`text/csv`, same figures, one row per group and a `total` row).
    #[param(example = "csv", pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// One metric's figures in a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricAttainment {
    pub met: u64,
    pub breached: u64,
    /// Auto-closed tickets without a breach: neither met nor breached.
    pub abandoned: u64,
    /// Open and not yet due: left out of the share.
    pub pending: u64,
    /// met / (met + breached), 0–1; null when nothing is decided yet.
    pub share: Option<f64>,
    /// Against the policy's 85–95 % band; null with the share.
    #[schema(value_type = Option<String>, example = "inside")]
    pub band: Option<Band>,
    /// The met tickets, as a ticket list.
    pub met_tickets_url: String,
    /// The breached tickets, as a ticket list.
    pub breached_tickets_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttainmentRow {
    /// Plan code, severity, agent id (`unassigned`), organisation id or local month `YYYY-MM`;
    /// `total` for the sum of all groups.
    #[schema(example = "pro")]
    pub key: String,
    /// The agent's or organisation's name.
    pub label: Option<String>,
    /// Tickets opened in the period in this group.
    pub tickets: u64,
    /// Of them, auto-closed for lack of the customer's answer (R8): the abandoned tickets.
    pub auto_closed: u64,
    pub first_response: MetricAttainment,
    pub resolution: MetricAttainment,
    /// This row's tickets, as a ticket list.
    pub tickets_url: String,
    pub auto_closed_tickets_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BandView {
    #[schema(example = 0.85)]
    pub low: f64,
    #[schema(example = 0.95)]
    pub high: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlaReportView {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The zone of the period's local days.
    #[schema(example = "America/Sao_Paulo")]
    pub time_zone: String,
    /// The period as UTC instants: opened at or after `starts_at` and before `ends_at`.
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[schema(example = "plan")]
    pub group_by: &'static str,
    /// Set for customers: the report covers their organisation only.
    pub organization_id: Option<Uuid>,
    /// Verdicts of open tickets are as of this instant.
    pub generated_at: DateTime<Utc>,
    pub formula: &'static str,
    pub band: BandView,
    pub groups: Vec<AttainmentRow>,
    pub total: AttainmentRow,
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The ticket-list filters that select one row's tickets.
fn row_filter(report: &SlaReport, calendar: &BusinessCalendar, key: Option<&str>) -> String {
    let (mut from, mut to) = (report.period.starts_at, report.period.ends_at);
    let mut group = String::new();
    if let Some(key) = key {
        match report.group_by {
            GroupBy::Plan => group = format!("&plan={}", encode(key)),
            GroupBy::Severity => group = format!("&severity={}", encode(key)),
            GroupBy::Agent if key == "unassigned" => group = "&assignee=none".into(),
            GroupBy::Agent => group = format!("&assignee={}", encode(key)),
            GroupBy::Organization => group = format!("&organization_id={}", encode(key)),
            GroupBy::Month => {
                if let Ok(first) = NaiveDate::parse_from_str(&format!("{key}-01"), "%Y-%m-%d") {
                    let (start, end) = calendar.month_of(first);
                    from = from.max(start);
                    to = to.min(end);
                }
            }
        }
    }
    format!("/v1/tickets?created_from={}&created_to={}{group}", encode(&instant(from)), encode(&instant(to)))
}

fn metric(counts: &MetricCounts, base: &str, name: &str) -> MetricAttainment {
    let tally = counts.tally();
    MetricAttainment {
        met: counts.met,
        breached: counts.breached,
        abandoned: counts.abandoned,
        pending: counts.pending,
        share: tally.share(),
        band: tally.band(),
        met_tickets_url: format!("{base}&{name}=met"),
        breached_tickets_url: format!("{base}&{name}=breached"),
    }
}

fn row(report: &SlaReport, calendar: &BusinessCalendar, figures: &GroupFigures, is_total: bool) -> AttainmentRow {
    let base = row_filter(report, calendar, (!is_total).then_some(figures.key.as_str()));
    AttainmentRow {
        key: figures.key.clone(),
        label: figures.label.clone(),
        tickets: figures.tickets,
        auto_closed: figures.auto_closed,
        first_response: metric(&figures.first_response, &base, "first_response"),
        resolution: metric(&figures.resolution, &base, "resolution"),
        auto_closed_tickets_url: format!("{base}&close_reason=auto_closed"),
        tickets_url: base,
    }
}

fn view(report: &SlaReport, calendar: &BusinessCalendar) -> SlaReportView {
    SlaReportView {
        from: report.period.from,
        to: report.period.to,
        time_zone: report.time_zone.clone(),
        starts_at: report.period.starts_at,
        ends_at: report.period.ends_at,
        group_by: report.group_by.as_str(),
        organization_id: report.organization_id,
        generated_at: report.generated_at,
        formula: FORMULA,
        band: BandView { low: BAND_LOW_PER_MILLE as f64 / 1000.0, high: BAND_HIGH_PER_MILLE as f64 / 1000.0 },
        groups: report.groups.iter().map(|g| row(report, calendar, g, false)).collect(),
        total: row(report, calendar, &report.total, true),
    }
}

const CSV_HEADER: &[&str] = &[
    "group_by",
    "key",
    "label",
    "tickets",
    "auto_closed",
    "first_response_met",
    "first_response_breached",
    "first_response_abandoned",
    "first_response_pending",
    "first_response_share",
    "first_response_band",
    "resolution_met",
    "resolution_breached",
    "resolution_abandoned",
    "resolution_pending",
    "resolution_share",
    "resolution_band",
    "tickets_url",
];

/// The same figures as the JSON, one line per group and a last `total` line. Shares are written
/// as the JSON writes them (shortest decimal that reads back to the same number).
fn csv(report: &SlaReportView) -> Result<Vec<u8>, CoreError> {
    let failed = |e: csv::Error| CoreError::Internal(format!("writing the CSV report: {e}"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_HEADER).map_err(failed)?;
    let opt = |share: Option<f64>| share.map(|s| s.to_string()).unwrap_or_default();
    let band = |band: Option<Band>| band.map(|b| b.as_str()).unwrap_or_default().to_owned();
    for r in report.groups.iter().chain(std::iter::once(&report.total)) {
        let (fr, res) = (&r.first_response, &r.resolution);
        out.write_record([
            report.group_by.to_owned(),
            r.key.clone(),
            r.label.clone().unwrap_or_default(),
            r.tickets.to_string(),
            r.auto_closed.to_string(),
            fr.met.to_string(),
            fr.breached.to_string(),
            fr.abandoned.to_string(),
            fr.pending.to_string(),
            opt(fr.share),
            band(fr.band),
            res.met.to_string(),
            res.breached.to_string(),
            res.abandoned.to_string(),
            res.pending.to_string(),
            opt(res.share),
            band(res.band),
            r.tickets_url.clone(),
        ])
        .map_err(failed)?;
    }
    out.into_inner().map_err(|e| CoreError::Internal(format!("writing the CSV report: {e}")))
}

/// SLA attainment of the tickets opened in a period, per group (R10).
///
/// share met = met / (met + breached), per metric (first response, resolution). A metric is
/// breached when its stored breach flag is set or its running due instant has passed; met when it
/// was met without a breach. Tickets still open and not yet due (pending) are left out of the
/// share. Tickets auto-closed for lack of the customer's answer are counted apart as abandoned,
/// never as met; a breach before the auto-close still counts as breached. Paused time is not
/// counted. The band compares the share with the policy's 85–95 % (bounds inside). Periods are
/// local days in the business calendar's zone. Customers get their own organisation's figures;
/// agents and admins every organisation's. Each row carries `/v1/tickets` links that list the
/// tickets behind its figures.
#[utoipa::path(tag = "reports", security(("bearer" = [])), params(ReportQuery), responses(
    (status = 200, description = "The report", content(
        (SlaReportView = "application/json"),
        (String = "text/csv", example = "group_by,key,label,tickets,...")
    )),
    (status = 400, description = "Malformed query (a date that is not YYYY-MM-DD, an unknown parameter)", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "`to` before `from`, a period longer than 366 days, an unknown `group_by` or `format`", body = Problem, content_type = "application/problem+json")))]
#[get("/v1/reports/sla")]
pub async fn sla_report(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let group_by = GroupBy::parse(q.group_by.as_deref().unwrap_or("plan"))?;
    let as_csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(CoreError::invalid("format", "must be json or csv").into()),
    };
    let mut tx = state.pool.begin().await.map_err(CoreError::from)?;
    let snapshot = state.sla.snapshot(&mut tx).await?;
    let calendar = snapshot.calendar;
    let period = Period::new(&calendar, q.from, q.to)?;
    let report = reports::sla_attainment(&mut tx, &caller.0, &calendar, period, group_by, state.clock.now()).await?;
    tx.commit().await.map_err(CoreError::from)?;
    let view = view(&report, &calendar);
    if as_csv {
        let filename = format!("sla-{}-{}-{}.csv", view.from, view.to, view.group_by);
        Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")))
            .body(csv(&view)?))
    } else {
        Ok(HttpResponse::Ok().json(view))
    }
}
