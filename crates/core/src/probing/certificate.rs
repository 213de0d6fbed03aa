//! The TLS expiry warning of a probe result (R11), in the transaction that records the result:
//! the domain's [`certificate::step`] decides; this opens the `tls_expiring` incident and
//! announces it once (the unique `(incident, kind)` again), or resolves it once the certificate
//! is renewed. It never touches the downtime state, status or uptime.

use chrono::{DateTime, Utc};
use helpdesk_domain::monitoring::certificate::{self, CertificateStep};
use helpdesk_domain::monitoring::probe_state::AlertKind;
use sqlx::PgConnection;
use uuid::Uuid;

use super::alerts::{self, AlertFacts};
use crate::CoreError;
use crate::sla_store::SlaStore;

/// The monitor as the warning needs it.
#[derive(Debug, Clone)]
pub struct CertificateWatch {
    pub monitor_id: Uuid,
    pub organization_id: Uuid,
    pub monitor_name: String,
    pub url: String,
    pub warning_days: u32,
    /// The open warning, if any.
    pub open_incident: Option<Uuid>,
}

/// Applies what a probe at `at` saw (`not_after`, when it saw a certificate); `held` while a
/// maintenance window or a storm holds alerts. Returns the step taken.
pub async fn observe(
    conn: &mut PgConnection,
    store: &SlaStore,
    watch: &CertificateWatch,
    not_after: Option<DateTime<Utc>>,
    held: bool,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<CertificateStep, CoreError> {
    let step = certificate::step(not_after, at, watch.warning_days, watch.open_incident.is_some(), held);
    match (step, not_after) {
        (CertificateStep::Warn { .. }, Some(not_after)) => {
            let id = Uuid::now_v7();
            sqlx::query!(
                r#"INSERT INTO incidents (id, monitor_id, organization_id, kind, started_at, confirmed_at, created_at, updated_at)
                   VALUES ($1, $2, $3, 'tls_expiring', $4, $4, $5, $5)"#,
                id,
                watch.monitor_id,
                watch.organization_id,
                at,
                now,
            )
            .execute(&mut *conn)
            .await?;
            sqlx::query!("UPDATE monitors SET tls_incident_id = $2 WHERE id = $1", watch.monitor_id, id)
                .execute(&mut *conn)
                .await?;
            let facts = AlertFacts {
                incident_id: id,
                monitor_id: watch.monitor_id,
                organization_id: watch.organization_id,
                monitor_name: watch.monitor_name.clone(),
                url: watch.url.clone(),
                started_at: at,
                ended_at: None,
                error_kind: None,
                certificate_expires_at: Some(not_after),
            };
            alerts::announce(conn, store, &facts, AlertKind::TlsExpiring, now).await?;
        }
        (CertificateStep::Resolve, _) => {
            if let Some(id) = watch.open_incident {
                sqlx::query!("UPDATE incidents SET resolved_at = $2, updated_at = $3 WHERE id = $1", id, at, now)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query!("UPDATE monitors SET tls_incident_id = NULL WHERE id = $1", watch.monitor_id)
                .execute(&mut *conn)
                .await?;
        }
        _ => {}
    }
    Ok(step)
}
