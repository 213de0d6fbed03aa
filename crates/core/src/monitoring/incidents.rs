//! Incidents and the alerts each sent. The worker opens, confirms and resolves them; here they
//! are read: per monitor, per organisation, open or in a period.

use chrono::{DateTime, Utc};
use helpdesk_domain::monitoring::status::{AlertKind, IncidentKind};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::CoreError;
use crate::caller::Caller;
use crate::pagination::{self, PageRequest};

/// One alert an incident sent (each kind at most once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentAlert {
    pub incident_id: Uuid,
    pub kind: String,
    pub sent_at: DateTime<Utc>,
    pub recipients: i32,
}

impl IncidentAlert {
    pub fn alert_kind(&self) -> Option<AlertKind> {
        AlertKind::parse(&self.kind)
    }
}

/// An incident as stored, with its monitor's name and its alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: Uuid,
    pub monitor_id: Uuid,
    pub monitor_name: String,
    pub organization_id: Uuid,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub in_maintenance: bool,
    pub maintenance_ended_at: Option<DateTime<Utc>>,
    pub ticket_id: Option<Uuid>,
    pub error_kind: Option<String>,
    pub status_code: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub alerts: Vec<IncidentAlert>,
}

impl Incident {
    pub fn incident_kind(&self) -> IncidentKind {
        IncidentKind::parse(&self.kind).unwrap_or(IncidentKind::Down)
    }
}

/// List filters; every one is optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct IncidentFilter {
    pub monitor_id: Option<Uuid>,
    /// Staff only; customers always see their own organisation's.
    pub organization_id: Option<Uuid>,
    /// `true`: unresolved only; `false`: resolved only.
    pub open: Option<bool>,
    /// Incidents started at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Incidents started before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Also the downtimes a single failure opened and that were never confirmed.
    pub include_unconfirmed: bool,
}

struct Row {
    id: Uuid,
    monitor_id: Uuid,
    monitor_name: String,
    organization_id: Uuid,
    kind: String,
    started_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    in_maintenance: bool,
    maintenance_ended_at: Option<DateTime<Utc>>,
    ticket_id: Option<Uuid>,
    error_kind: Option<String>,
    status_code: Option<i32>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

async fn with_alerts(conn: &mut PgConnection, rows: Vec<Row>) -> Result<Vec<Incident>, CoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let alerts = sqlx::query_as!(
        IncidentAlert,
        "SELECT incident_id, kind, sent_at, recipients FROM incident_alerts WHERE incident_id = ANY($1) ORDER BY sent_at, kind",
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Incident {
            alerts: alerts.iter().filter(|a| a.incident_id == r.id).cloned().collect(),
            id: r.id,
            monitor_id: r.monitor_id,
            monitor_name: r.monitor_name,
            organization_id: r.organization_id,
            kind: r.kind,
            started_at: r.started_at,
            confirmed_at: r.confirmed_at,
            resolved_at: r.resolved_at,
            in_maintenance: r.in_maintenance,
            maintenance_ended_at: r.maintenance_ended_at,
            ticket_id: r.ticket_id,
            error_kind: r.error_kind,
            status_code: r.status_code,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

async fn select(
    conn: &mut PgConnection,
    id: Option<Uuid>,
    organization: Option<Uuid>,
    filter: IncidentFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Incident>, CoreError> {
    let (after_at, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT i.id, i.monitor_id, m.name AS monitor_name, i.organization_id, i.kind, i.started_at, i.confirmed_at,
                  i.resolved_at, i.in_maintenance, i.maintenance_ended_at, i.ticket_id, i.error_kind, i.status_code,
                  i.created_at, i.updated_at
           FROM incidents i JOIN monitors m ON m.id = i.monitor_id
           WHERE ($1::uuid IS NULL OR i.id = $1)
             AND ($2::uuid IS NULL OR i.organization_id = $2)
             AND ($3::uuid IS NULL OR i.monitor_id = $3)
             AND ($4::bool IS NULL OR (i.resolved_at IS NULL) = $4)
             AND ($5::timestamptz IS NULL OR i.started_at >= $5)
             AND ($6::timestamptz IS NULL OR i.started_at < $6)
             AND ($7 OR i.kind <> 'down' OR i.confirmed_at IS NOT NULL)
             AND ($8::timestamptz IS NULL OR (i.started_at, i.id) < ($8, $9))
           ORDER BY i.started_at DESC, i.id DESC
           LIMIT $10"#,
        id,
        organization,
        filter.monitor_id,
        filter.open,
        filter.from,
        filter.to,
        filter.include_unconfirmed || id.is_some(),
        after_at,
        after_id,
        limit,
    )
    .fetch_all(&mut *conn)
    .await?;
    with_alerts(conn, rows).await
}

/// Incidents the caller may see, most recent first, each with its alerts.
pub async fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    filter: IncidentFilter,
    page: PageRequest,
) -> Result<(Vec<Incident>, Option<String>), CoreError> {
    let organization = if caller.role.is_staff() { filter.organization_id } else { caller.organization_id };
    if !caller.role.is_staff() && organization.is_none() {
        return Ok((Vec::new(), None));
    }
    let rows = select(conn, None, organization, filter, page.after, page.fetch_limit()).await?;
    Ok(pagination::finish(rows, &page, |i| (i.started_at, i.id)))
}

/// One incident the caller may see.
pub async fn get(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Incident, CoreError> {
    let found = select(conn, Some(id), None, IncidentFilter::default(), None, 1).await?.into_iter().next();
    match found {
        Some(i) if caller.may_see_organization(i.organization_id) => Ok(i),
        _ => Err(CoreError::NotFound("incident")),
    }
}

/// A monitor's most recent incidents (for its page), confirmed ones and warnings.
pub async fn recent_for_monitor(
    conn: &mut PgConnection,
    monitor_id: Uuid,
    limit: i64,
) -> Result<Vec<Incident>, CoreError> {
    let filter = IncidentFilter { monitor_id: Some(monitor_id), ..IncidentFilter::default() };
    select(conn, None, None, filter, None, limit).await
}
