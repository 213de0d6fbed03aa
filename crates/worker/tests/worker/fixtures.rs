//! Tickets whose timers fall due at chosen wall-clock instants, for the tests (and benchmarks) that
//! run the real worker binary, which reads the system clock.

use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::tickets::{self, NewMessage, NewTicket};
use helpdesk_domain::plans::Category;
use helpdesk_domain::sla::Severity;
use helpdesk_domain::tickets::Status;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::Desk;
use helpdesk_test_support::in_tx;

pub fn new_ticket(severity: Severity, emergency: bool) -> NewTicket {
    NewTicket {
        subject: "Site fora do ar".into(),
        description: "Nada carrega desde as 15h.".into(),
        category: Category::Technical,
        severity,
        emergency,
        references_ticket_id: None,
        on_behalf_of: None,
    }
}

/// `count` tickets waiting for their customer whose R8 reminder falls due at `due`. One is made by
/// the core operations (opened, then answered and handed to the customer by an agent at
/// `due − 72 h`); the others are copies of its row, so that thousands take a moment. Every copy
/// carries the same clock, projection and timer instant as the original; only the id differs.
pub async fn waiting_tickets(pool: &PgPool, desk: &Desk, due: DateTime<Utc>, count: i64) -> Vec<Uuid> {
    let store = SlaStore::default();
    let since = due - TimeDelta::hours(72);
    let opened = in_tx(pool, async |c| {
        tickets::open(c, &store, &desk.customer, new_ticket(Severity::Low, false), since - TimeDelta::minutes(5)).await
    })
    .await
    .unwrap();
    let reply =
        NewMessage { body: "Pode testar agora?".into(), internal: false, then_status: Some(Status::WaitingCustomer) };
    let (_, waiting) =
        in_tx(pool, async |c| tickets::post_message(c, &store, &desk.agents[0], opened.id, reply, since).await)
            .await
            .unwrap();
    assert_eq!(waiting.next_timer_at, Some(due), "the reminder is the ticket's next timer");
    let mut ids = vec![opened.id];
    ids.extend(copy_ticket(pool, opened.id, count - 1).await);
    ids
}

/// Copies a ticket's row `count` times under new ids; returns them.
pub async fn copy_ticket(pool: &PgPool, template: Uuid, count: i64) -> Vec<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO tickets (id, organization_id, requester_id, opened_by, source, assignee_id, subject, description, category, severity, emergency,
                              plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, sla_events,
                              calendar_version, policy_version, first_response_due_at, first_response_at_risk_at,
                              first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at,
                              resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at,
                              sla_alerts, version, created_at, updated_at)
         SELECT gen_random_uuid(), organization_id, requester_id, opened_by, source, assignee_id, subject, description, category, severity, emergency,
                plan_code, status, close_reason, closed_at, waiting_since, references_ticket_id, sla_events,
                calendar_version, policy_version, first_response_due_at, first_response_at_risk_at,
                first_response_met_at, first_response_breached, resolution_due_at, resolution_at_risk_at,
                resolution_met_at, resolution_breached, next_due_at, next_timer_at, reminder_sent_at,
                sla_alerts, version, created_at, updated_at
         FROM tickets, generate_series(1, $2) WHERE id = $1
         RETURNING id",
    )
    .bind(template)
    .bind(count)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A Premium emergency (first response 1 h of calendar time, R5) opened so that its first
/// response is breached at `breach_at`; its at-risk instant (80 %) is 12 minutes earlier.
pub async fn emergency_ticket(pool: &PgPool, desk: &Desk, breach_at: DateTime<Utc>) -> Uuid {
    let store = SlaStore::default();
    let opened_at = breach_at - TimeDelta::hours(1);
    in_tx(pool, async |c| {
        tickets::open(c, &store, &desk.customer, new_ticket(Severity::Critical, true), opened_at).await
    })
    .await
    .unwrap()
    .id
}

/// How many of `tickets` have had their reminder sent (recorded on the ticket).
pub async fn reminded(pool: &PgPool, tickets: &[Uuid]) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tickets WHERE id = ANY($1) AND reminder_sent_at IS NOT NULL")
        .bind(tickets)
        .fetch_one(pool)
        .await
        .unwrap()
}
