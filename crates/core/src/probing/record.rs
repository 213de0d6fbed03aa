//! Recording one probe result (DESIGN §3.4): in one transaction the check row, the "no data" gap
//! a worker outage left, the state machine's step, the incident it opens or closes, the alerts
//! it announces (each once per incident), the TLS expiry warning, and the monitor's next planned
//! instant. A job replayed after a crash finds its slot no longer claimed and records nothing.

use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::monitoring::certificate::CertificateStep;
use helpdesk_domain::monitoring::probe_state::{
    self, AlertKind, Hold, HoldReason, Incident, Outcome, Phase, Probe, ProbeState,
};
use helpdesk_domain::monitoring::schedule;
use helpdesk_domain::monitoring::status::MonitorStatus;
use sqlx::PgConnection;
use uuid::Uuid;

use super::alerts::{self, AlertFacts};
use super::certificate::{self, CertificateWatch};
use super::holds;
use crate::CoreError;
use crate::sla_store::SlaStore;

/// What a probe found, as the worker hands it over.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub monitor_id: Uuid,
    /// The planned instant this probe was claimed for.
    pub slot: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency_ms: Option<i32>,
    pub outcome: Outcome,
    pub certificate_expires_at: Option<DateTime<Utc>>,
}

/// What recording did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The slot was no longer claimed (a duplicate or late job): nothing was written.
    pub stale: bool,
    pub alerts: Vec<AlertKind>,
    /// The emergency ticket opened by this result.
    pub ticket_id: Option<Uuid>,
    pub next_check_at: Option<DateTime<Utc>>,
}

struct MonitorRow {
    organization_id: Uuid,
    name: String,
    url: String,
    interval_seconds: i32,
    phase_offset_seconds: i32,
    claimed_slot: Option<DateTime<Utc>>,
    probe_state: serde_json::Value,
    paused: bool,
    consecutive_failures: i32,
    consecutive_successes: i32,
    open_incident_id: Option<Uuid>,
    tls_warning_days: i32,
    tls_incident_id: Option<Uuid>,
}

/// Records `report`, holding alerts when `storm` says the failure is our network's.
pub async fn record(
    conn: &mut PgConnection,
    store: &SlaStore,
    report: &ProbeReport,
    storm: bool,
    now: DateTime<Utc>,
) -> Result<Recorded, CoreError> {
    let Some(monitor) = sqlx::query_as!(
        MonitorRow,
        r#"SELECT m.organization_id, m.name, m.url, m.interval_seconds, m.phase_offset_seconds, p.claimed_slot,
                  COALESCE(p.state, '{}') AS "probe_state!", m.paused, m.consecutive_failures, m.consecutive_successes,
                  m.open_incident_id, m.tls_warning_days, m.tls_incident_id
           FROM monitors m LEFT JOIN monitor_probe_states p ON p.monitor_id = m.id
           WHERE m.id = $1 FOR UPDATE OF m"#,
        report.monitor_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(Recorded { stale: true, ..Recorded::default() });
    };
    if monitor.claimed_slot != Some(report.slot) {
        return Ok(Recorded { stale: true, ..Recorded::default() });
    }
    if monitor.paused {
        sqlx::query!("UPDATE monitor_probe_states SET claimed_slot = NULL WHERE monitor_id = $1", report.monitor_id)
            .execute(&mut *conn)
            .await?;
        return Ok(Recorded { stale: true, ..Recorded::default() });
    }
    let interval = u32::try_from(monitor.interval_seconds).unwrap_or(300);
    let phase = u32::try_from(monitor.phase_offset_seconds).unwrap_or(0);
    let at = report.started_at;

    // A worker outage: every slot missed is coalesced into this one probe, and the time they
    // covered is "no data", neither up nor down.
    let missed = schedule::slots_between(report.slot, at, interval, phase);
    if missed >= 1 {
        sqlx::query!(
            "INSERT INTO monitor_gaps (id, monitor_id, from_at, to_at, missed_slots, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            Uuid::now_v7(),
            report.monitor_id,
            report.slot,
            at,
            i32::try_from(missed).unwrap_or(i32::MAX),
            now,
        )
        .execute(&mut *conn)
        .await?;
    }
    let on_grid = schedule::next_planned(report.slot - TimeDelta::seconds(1), interval, phase) == report.slot;
    let error_kind = match report.outcome {
        Outcome::Down(kind) => Some(kind.as_str()),
        _ => None,
    };
    sqlx::query!(
        r#"INSERT INTO monitor_checks (monitor_id, scheduled_at, started_at, confirmation, status_code, latency_ms, error_kind, degraded)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"#,
        report.monitor_id,
        report.slot,
        at,
        !on_grid,
        report.status_code.map(i32::from),
        report.latency_ms,
        error_kind,
        report.outcome == Outcome::Degraded,
    )
    .execute(&mut *conn)
    .await?;

    let hold = match holds::maintenance_hold(conn, report.monitor_id, monitor.organization_id, at).await? {
        Some(hold) => Some(hold),
        None => storm.then_some(Hold { reason: HoldReason::Storm, until: at }),
    };
    let state: ProbeState = serde_json::from_value(monitor.probe_state).unwrap_or_default();
    let step = probe_state::step(&state, &Probe { at, outcome: report.outcome, hold });

    let mut incident_id = monitor.open_incident_id;
    if let (Some(started_at), Some(incident)) = (step.opened, step.state.incident.as_ref()) {
        let id = Uuid::now_v7();
        sqlx::query!(
            r#"INSERT INTO incidents (id, monitor_id, organization_id, kind, started_at, confirmed_at, in_maintenance, in_storm,
                                      error_kind, status_code, created_at, updated_at)
               VALUES ($1, $2, $3, 'down', $4, $5, $6, $7, $8, $9, $10, $10)"#,
            id,
            report.monitor_id,
            monitor.organization_id,
            started_at,
            at,
            incident.in_maintenance,
            incident.in_storm,
            error_kind,
            report.status_code.map(i32::from),
            now,
        )
        .execute(&mut *conn)
        .await?;
        incident_id = Some(id);
    }
    let facts = incident_id.map(|id| AlertFacts {
        incident_id: id,
        monitor_id: report.monitor_id,
        organization_id: monitor.organization_id,
        monitor_name: monitor.name.clone(),
        url: monitor.url.clone(),
        started_at: step.state.incident.as_ref().or(step.closed.as_ref()).map_or(at, |incident| incident.started_at),
        ended_at: step.closed.as_ref().map(|incident| incident.ended_at(at)),
        error_kind: error_kind.map(str::to_owned),
        certificate_expires_at: None,
    });
    let mut recorded = Recorded::default();
    if let (Some(id), Some(incident)) = (incident_id, step.state.incident.as_ref().or(step.closed.as_ref())) {
        update_incident(conn, id, incident, step.closed.as_ref().map(|closed| closed.ended_at(at)), now).await?;
    }
    if let Some(facts) = &facts {
        for kind in &step.alerts {
            if let Some(ticket) = alerts::announce(conn, store, facts, *kind, now).await? {
                recorded.ticket_id = Some(ticket);
            }
        }
    }
    recorded.alerts = step.alerts.clone();
    let watch = CertificateWatch {
        monitor_id: report.monitor_id,
        organization_id: monitor.organization_id,
        monitor_name: monitor.name.clone(),
        url: monitor.url.clone(),
        warning_days: u32::try_from(monitor.tls_warning_days).unwrap_or(0),
        open_incident: monitor.tls_incident_id,
    };
    if let CertificateStep::Warn { .. } =
        certificate::observe(conn, store, &watch, report.certificate_expires_at, hold.is_some(), at, now).await?
    {
        recorded.alerts.push(AlertKind::TlsExpiring);
    }

    let planned = schedule::next_planned(report.slot.max(at), interval, phase);
    let next = probe_state::next_probe_at(&step.state, at, planned);
    let status = match (step.state.phase, report.outcome) {
        (Phase::Down | Phase::Recovering, _) => MonitorStatus::Down,
        (_, Outcome::Degraded) => MonitorStatus::Degraded,
        _ => MonitorStatus::Up,
    };
    let (failures, successes) = if report.outcome.is_failure() {
        (monitor.consecutive_failures.saturating_add(1), 0)
    } else {
        (0, monitor.consecutive_successes.saturating_add(1))
    };
    let state_json = serde_json::to_value(&step.state).map_err(|e| CoreError::Internal(e.to_string()))?;
    sqlx::query!(
        r#"UPDATE monitors SET
               next_check_at = $2,
               state = $3, state_changed_at = CASE WHEN state = $3 THEN state_changed_at ELSE $4 END,
               consecutive_failures = $5, consecutive_successes = $6, confirming = $7,
               open_incident_id = $8,
               last_check_scheduled_at = $9, last_check_started_at = $4, last_check_status_code = $10,
               last_check_latency_ms = $11, last_check_error_kind = $12,
               tls_expires_at = COALESCE($13, tls_expires_at)
           WHERE id = $1"#,
        report.monitor_id,
        next,
        status.as_str(),
        at,
        failures,
        successes,
        matches!(step.state.phase, Phase::Suspect | Phase::Recovering),
        step.state.incident.as_ref().and(incident_id),
        report.slot,
        report.status_code.map(i32::from),
        report.latency_ms,
        error_kind,
        report.certificate_expires_at,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE monitor_probe_states SET state = $2, claimed_slot = NULL WHERE monitor_id = $1",
        report.monitor_id,
        state_json
    )
    .execute(&mut *conn)
    .await?;
    recorded.next_check_at = Some(next);
    Ok(recorded)
}

async fn update_incident(
    conn: &mut PgConnection,
    id: Uuid,
    incident: &Incident,
    resolved_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let maintenance_ended_at = (incident.timers_from > incident.started_at).then_some(incident.timers_from);
    sqlx::query!(
        r#"UPDATE incidents SET in_maintenance = in_maintenance OR $2, in_storm = in_storm OR $3,
                  maintenance_ended_at = COALESCE($4, maintenance_ended_at), resolved_at = COALESCE($5, resolved_at),
                  updated_at = $6
           WHERE id = $1"#,
        id,
        incident.in_maintenance,
        incident.in_storm,
        maintenance_ended_at,
        resolved_at,
        now,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
