//! Opening tickets, three ways (R2, R3, R5): a customer for their own organisation, an agent on
//! behalf of a named customer (that customer's contract decides the entitlement), and the system
//! for an organisation (monitoring).

use super::notify;
use super::store::{self, command_error};
use crate::accounts::Caller;
use crate::organizations;
use crate::sla_store::SlaStore;
use crate::{CoreError, FieldError};
use chrono::{DateTime, Utc};
use helpdesk_domain::accounts::Role;
use helpdesk_domain::plans::{Category, MissingEntitlement};
use helpdesk_domain::sla::Severity;
use helpdesk_domain::tickets::aggregate::PlanInForce;
use helpdesk_domain::tickets::{OpenTicket, Opener, Source, Ticket, TicketChange};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct NewTicket {
    pub subject: String,
    pub description: String,
    pub category: Category,
    pub severity: Severity,
    pub emergency: bool,
    pub references_ticket_id: Option<Uuid>,
    /// Staff only: the customer the ticket is opened for.
    pub on_behalf_of: Option<Uuid>,
}

pub(crate) fn check_text(field: &str, raw: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let text = raw.trim().to_owned();
    if text.is_empty() || text.chars().count() > max {
        errors.push(FieldError::new(field, format!("must have between 1 and {max} characters")));
    }
    text
}

/// Opens a ticket as the caller: a customer for their organisation, or staff on behalf of
/// `on_behalf_of`, an active customer account.
pub async fn open(
    conn: &mut PgConnection,
    store: &SlaStore,
    caller: &Caller,
    input: NewTicket,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    let (opener, organization_id) = match (caller.role, input.on_behalf_of) {
        (Role::Customer, None) => {
            let Some(org) = caller.organization_id else {
                return Err(CoreError::forbidden("customers_only", "tickets are opened for an organisation"));
            };
            (Opener::Customer { user: caller.user_id }, org)
        }
        (Role::Customer, Some(_)) => {
            return Err(CoreError::forbidden("staff_only", "only agents open tickets on behalf of a customer"));
        }
        (_, None) => {
            return Err(CoreError::forbidden(
                "customers_only",
                "customers open tickets for their organisation; staff open them on behalf of a customer (on_behalf_of)",
            ));
        }
        (_, Some(requester)) => {
            let org = sqlx::query_scalar!(
                "SELECT organization_id FROM users WHERE id = $1 AND role = 'customer' AND disabled_at IS NULL",
                requester
            )
            .fetch_optional(&mut *conn)
            .await?
            .flatten()
            .ok_or_else(|| CoreError::invalid("on_behalf_of", "is not an active customer account"))?;
            (Opener::Agent { agent: caller.user_id, requester }, org)
        }
    };
    open_as(conn, store, opener, organization_id, input, now).await
}

/// The system opens a ticket for an organisation (R11: monitoring's two-hour intervention). No
/// requester: the organisation's contract still sets the plan and targets.
pub async fn open_for_organization(
    conn: &mut PgConnection,
    store: &SlaStore,
    organization_id: Uuid,
    source: Source,
    input: NewTicket,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    open_as(conn, store, Opener::System { source }, organization_id, input, now).await
}

async fn open_as(
    conn: &mut PgConnection,
    store: &SlaStore,
    opener: Opener,
    organization_id: Uuid,
    input: NewTicket,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    let mut errors = Vec::new();
    let subject = check_text("subject", &input.subject, 200, &mut errors);
    let description = check_text("description", &input.description, 20_000, &mut errors);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let (rules, receivers) = store.snapshot_for_change(&mut *conn).await?;
    let plan = organizations::active_plan(&mut *conn, organization_id, rules.calendar.today(now))
        .await?
        .ok_or(CoreError::NotEntitled(MissingEntitlement::NoActiveContract))?;
    if let Some(referenced) = input.references_ticket_id {
        let same_org = sqlx::query_scalar!("SELECT organization_id FROM tickets WHERE id = $1", referenced)
            .fetch_optional(&mut *conn)
            .await?;
        if same_org != Some(organization_id) {
            return Err(CoreError::invalid("references_ticket_id", "is not a ticket of this organisation"));
        }
    }
    let id = Uuid::now_v7();
    let change = TicketChange::open(
        OpenTicket {
            id,
            organization_id,
            subject,
            description,
            category: input.category,
            severity: input.severity,
            emergency: input.emergency,
            references_ticket_id: input.references_ticket_id,
        },
        opener,
        PlanInForce { code: &plan.code, entitlements: plan.entitlements },
        &rules,
        now,
    )
    .map_err(|e| command_error(id, e))?;
    let timeline = change.timeline.clone();
    let change = store::insert(&mut *conn, change, &rules, now).await?;
    notify::send(&mut *conn, &change, now).await?;
    crate::webhook_events::ticket_change(&mut *conn, &change, &timeline, None, receivers, now).await?;
    Ok(change.ticket)
}
