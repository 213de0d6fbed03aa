//! Announcing an incident's alerts (R11): the `incident_alerts` row that makes each kind happen
//! once, and in the same transaction the e-mails to the agents and the organisation's customer
//! accounts; at two hours, the emergency ticket and the on-call page (R7: at any hour). Times name
//! the business calendar's zone.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use helpdesk_domain::monitoring::probe_state::AlertKind;
use helpdesk_domain::plans::Category;
use helpdesk_domain::sla::Severity;
use helpdesk_domain::tickets::Source;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::CoreError;
use crate::outbox::{self, NewEmail, templates};
use crate::sla_store::SlaStore;
use crate::ticket_timers::{all_agents, is_english, local_time};
use crate::tickets::notify::Recipient;
use crate::tickets::{self, NewTicket};
use crate::webhook_events;
use helpdesk_domain::webhooks::events::IncidentEvent;

/// What an alert says about its incident.
#[derive(Debug, Clone)]
pub struct AlertFacts {
    pub incident_id: Uuid,
    pub monitor_id: Uuid,
    pub organization_id: Uuid,
    pub monitor_name: String,
    pub url: String,
    pub started_at: DateTime<Utc>,
    /// For a recovery: where the downtime ended.
    pub ended_at: Option<DateTime<Utc>>,
    pub error_kind: Option<String>,
    /// For a TLS warning: when the certificate expires.
    pub certificate_expires_at: Option<DateTime<Utc>>,
}

/// Announces `kind` for the incident unless it already was; returns the emergency ticket opened.
pub async fn announce(
    conn: &mut PgConnection,
    store: &SlaStore,
    facts: &AlertFacts,
    kind: AlertKind,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, CoreError> {
    let key = format!("incident:{}:{}", facts.incident_id, kind.as_str());
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO incident_alerts (id, incident_id, kind, sent_at, outbox_key, created_at)
           VALUES ($1, $2, $3, $4, $5, $4)
           ON CONFLICT (incident_id, kind) DO NOTHING RETURNING id"#,
        Uuid::now_v7(),
        facts.incident_id,
        kind.as_str(),
        now,
        key,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(alert_id) = inserted else { return Ok(None) };
    let zone = store.snapshot(&mut *conn).await?.calendar.time_zone();
    let mut recipients = all_agents(&mut *conn).await?;
    recipients.extend(organization_customers(&mut *conn, facts.organization_id).await?);
    let emails = recipients.iter().map(|to| (alert_email(facts, kind, to, &key, zone, now), now)).collect::<Vec<_>>();
    let count = i32::try_from(emails.len()).unwrap_or(i32::MAX);
    outbox::enqueue_all(&mut *conn, emails, now).await?;
    sqlx::query!("UPDATE incident_alerts SET recipients = $2 WHERE id = $1", alert_id, count)
        .execute(&mut *conn)
        .await?;
    if kind != AlertKind::Down2h {
        integrations_hear_of(conn, facts, kind, None, now).await?;
        return Ok(None);
    }
    let ticket = emergency_ticket(conn, store, facts, zone, now).await?;
    page_on_call(conn, facts, ticket.as_ref().map(|(_, number)| *number), zone, now).await?;
    let ticket_id = ticket.map(|(id, _)| id);
    integrations_hear_of(conn, facts, kind, ticket_id, now).await?;
    Ok(ticket_id)
}

/// The webhook event of an announced alert (issue 13), in the same transaction, so integrations
/// hear of exactly what people were told: `incident.down`, `incident.escalated` (15 minutes, and
/// 2 hours with the emergency ticket) and `incident.recovered`.
async fn integrations_hear_of(
    conn: &mut PgConnection,
    facts: &AlertFacts,
    kind: AlertKind,
    ticket_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let in_maintenance = sqlx::query_scalar!(
        r#"SELECT in_maintenance AS "in_maintenance!" FROM incidents WHERE id = $1"#,
        facts.incident_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let event = IncidentEvent {
        incident_id: facts.incident_id,
        monitor_id: facts.monitor_id,
        organization_id: facts.organization_id,
        url: facts.url.clone(),
        started_at: facts.started_at,
        resolved_at: facts.ended_at,
        in_maintenance,
        ticket_id,
        reason: facts.error_kind.clone(),
    };
    match kind {
        AlertKind::Down => webhook_events::incident_down(conn, event, now).await?,
        AlertKind::Down15m | AlertKind::Down2h => webhook_events::incident_escalated(conn, event, now).await?,
        AlertKind::Recovered => webhook_events::incident_recovered(conn, event, now).await?,
        _ => return Ok(()),
    };
    Ok(())
}

/// The organisation's active customer accounts.
async fn organization_customers(conn: &mut PgConnection, organization_id: Uuid) -> Result<Vec<Recipient>, sqlx::Error> {
    sqlx::query_as!(
        Recipient,
        r#"SELECT id, email, name, locale FROM users
           WHERE organization_id = $1 AND role = 'customer' AND disabled_at IS NULL ORDER BY id"#,
        organization_id
    )
    .fetch_all(conn)
    .await
}

fn alert_email<'a>(
    facts: &AlertFacts,
    kind: AlertKind,
    to: &'a Recipient,
    key: &str,
    zone: Tz,
    now: DateTime<Utc>,
) -> NewEmail<'a> {
    let en = is_english(&to.locale);
    let since = local_time(facts.started_at, zone, &to.locale);
    let (headline, detail) = match (kind, en) {
        (AlertKind::Down, false) => ("Site fora do ar".to_owned(), format!("Fora do ar desde {since}.")),
        (AlertKind::Down, true) => ("Site down".to_owned(), format!("Down since {since}.")),
        (AlertKind::Down15m, false) => (
            "Fora do ar há mais de 15 minutos".to_owned(),
            format!("Fora do ar desde {since}; escalado para a equipe."),
        ),
        (AlertKind::Down15m, true) => {
            ("Down for more than 15 minutes".to_owned(), format!("Down since {since}; escalated to the team."))
        }
        (AlertKind::Down2h, false) => (
            "2 horas fora do ar: intervenção".to_owned(),
            format!("Fora do ar desde {since}. Abrimos um chamado de emergência e acionamos o plantão."),
        ),
        (AlertKind::Down2h, true) => (
            "Down for 2 hours: intervention".to_owned(),
            format!("Down since {since}. An emergency ticket was opened and on-call was paged."),
        ),
        (AlertKind::TlsExpiring, _) => {
            let expires = facts.certificate_expires_at.unwrap_or(now);
            let on = local_time(expires, zone, &to.locale);
            let days = (expires - now).num_days().max(0);
            if en {
                (
                    format!("TLS certificate expires in {days} days"),
                    format!(
                        "The site's certificate expires on {on}. The site is up; renew the certificate before then."
                    ),
                )
            } else {
                (
                    format!("Certificado TLS expira em {days} dias"),
                    format!(
                        "O certificado do site expira em {on}. O site está no ar; renove o certificado antes disso."
                    ),
                )
            }
        }
        (_, _) => {
            let ended = facts.ended_at.unwrap_or(now);
            let until = local_time(ended, zone, &to.locale);
            let took = duration_text(ended - facts.started_at);
            if en {
                ("Site back up".to_owned(), format!("It was down from {since} to {until} ({took})."))
            } else {
                ("Site restabelecido".to_owned(), format!("Ficou fora do ar de {since} a {until} ({took})."))
            }
        }
    };
    NewEmail {
        idempotency_key: format!("{key}:{}", to.id),
        to_address: &to.email,
        to_name: Some(&to.name),
        locale: &to.locale,
        template: templates::MONITOR_ALERT,
        payload: json!({
            "name": to.name, "monitor": facts.monitor_name, "url": facts.url, "headline": headline,
            "detail": detail, "kind": kind.as_str(), "incident_id": facts.incident_id,
            "monitor_id": facts.monitor_id, "error_kind": facts.error_kind.clone().unwrap_or_default(),
        }),
    }
}

/// "1 h 05 min", "12 min", "45 s".
pub fn duration_text(duration: TimeDelta) -> String {
    let seconds = duration.num_seconds().max(0);
    match (seconds / 3600, (seconds % 3600) / 60) {
        (0, 0) => format!("{seconds} s"),
        (0, minutes) => format!("{minutes} min"),
        (hours, minutes) => format!("{hours} h {minutes:02} min"),
    }
}

/// Opens the organisation's emergency ticket under its plan and links it to the incident. A
/// refusal (no active contract) is logged and does not stop the alert or the page: the agents
/// still hear of the downtime.
async fn emergency_ticket(
    conn: &mut PgConnection,
    store: &SlaStore,
    facts: &AlertFacts,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, i64)>, CoreError> {
    let input = NewTicket {
        subject: format!("Site fora do ar há 2 horas: {}", facts.monitor_name),
        description: format!(
            "O monitor {} ({}) está fora do ar desde {}. Chamado aberto automaticamente pelo monitoramento (incidente {}).",
            facts.monitor_name,
            facts.url,
            local_time(facts.started_at, zone, "pt-BR"),
            facts.incident_id
        ),
        category: Category::Technical,
        severity: Severity::Critical,
        emergency: true,
        references_ticket_id: None,
        on_behalf_of: None,
    };
    // A savepoint: a refused ticket must not undo the alert already written.
    let mut savepoint = conn.begin().await?;
    match tickets::open_for_organization(&mut savepoint, store, facts.organization_id, Source::Monitoring, input, now)
        .await
    {
        Ok(ticket) => {
            sqlx::query!("UPDATE incidents SET ticket_id = $2 WHERE id = $1", facts.incident_id, ticket.id)
                .execute(&mut *savepoint)
                .await?;
            savepoint.commit().await?;
            Ok(Some((ticket.id, ticket.number)))
        }
        Err(error @ (CoreError::Database(_) | CoreError::Redis(_) | CoreError::Internal(_))) => Err(error),
        Err(refused) => {
            savepoint.rollback().await?;
            tracing::warn!(incident = %facts.incident_id, error = %refused, "cannot open the emergency ticket");
            Ok(None)
        }
    }
}

/// Pages on-call at once (R7): every active agent gets the page, whatever the hour.
async fn page_on_call(
    conn: &mut PgConnection,
    facts: &AlertFacts,
    ticket_number: Option<i64>,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let payload = json!({
        "monitor": facts.monitor_name, "url": facts.url,
        "since": local_time(facts.started_at, zone, "pt-BR"),
        "ticket_number": ticket_number.map_or_else(|| "-".to_owned(), |n| n.to_string()),
        "incident_id": facts.incident_id, "monitor_id": facts.monitor_id,
    });
    let key = format!("incident:{}:page", facts.incident_id);
    tell_agents(conn, &key, templates::MONITOR_PAGE, payload, now).await?;
    Ok(())
}

/// One e-mail to every agent, once per `key` (storm and self-check alerts).
pub async fn tell_agents(
    conn: &mut PgConnection,
    key: &str,
    template: &'static str,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<usize, CoreError> {
    let agents = all_agents(&mut *conn).await?;
    let emails = agents
        .iter()
        .map(|to| {
            let mut payload = payload.clone();
            if let Some(object) = payload.as_object_mut() {
                object.insert("name".to_owned(), json!(to.name));
            }
            let email = NewEmail {
                idempotency_key: format!("{key}:{}", to.id),
                to_address: &to.email,
                to_name: Some(&to.name),
                locale: &to.locale,
                template,
                payload,
            };
            (email, now)
        })
        .collect();
    Ok(outbox::enqueue_all(&mut *conn, emails, now).await?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration_text(TimeDelta::seconds(45)), "45 s");
        assert_eq!(duration_text(TimeDelta::minutes(12)), "12 min");
        assert_eq!(duration_text(TimeDelta::minutes(65)), "1 h 05 min");
    }
}
