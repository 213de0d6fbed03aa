//! Turning a ticket command's notifications into outbox e-mails, in the recipient's language,
//! each once per cause (its idempotency key).

use crate::CoreError;
use crate::outbox::{self, NewEmail, templates};
use chrono::{DateTime, Utc};
use helpdesk_domain::tickets::{Audience, Notice, Ticket, TicketChange};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

/// Someone an e-mail goes to.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) locale: String,
}

/// The active users among `ids`.
pub(crate) async fn recipients(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Recipient>, sqlx::Error> {
    sqlx::query_as!(
        Recipient,
        "SELECT id, email, name, locale FROM users WHERE id = ANY($1) AND disabled_at IS NULL",
        ids
    )
    .fetch_all(conn)
    .await
}

/// An e-mail about a ticket to one user, in the user's language, once per `cause`.
pub(crate) fn ticket_email<'a>(
    ticket: &Ticket,
    to: &'a Recipient,
    template: &'static str,
    cause: &str,
    extra: Value,
) -> NewEmail<'a> {
    let mut payload = json!({ "name": to.name, "ticket_id": ticket.id, "ticket_number": ticket.number, "subject": ticket.subject, "status": ticket.status, "severity": ticket.severity });
    if let (Value::Object(payload), Value::Object(extra)) = (&mut payload, extra) {
        payload.extend(extra);
    }
    NewEmail {
        idempotency_key: format!("ticket:{}:{cause}:{}", ticket.id, to.id),
        to_address: &to.email,
        to_name: Some(&to.name),
        locale: &to.locale,
        template,
        payload,
    }
}

/// Who an audience is on this ticket.
pub(crate) fn audience_of(ticket: &Ticket, audience: Audience) -> Option<Uuid> {
    match audience {
        Audience::Requester => ticket.requester_id,
        Audience::Assignee => ticket.assignee_id,
    }
}

/// The e-mail a notice becomes for one recipient; `ticket` is the ticket as saved.
pub(crate) fn notice_email<'a>(ticket: &Ticket, to: &'a Recipient, notice: &Notice) -> NewEmail<'a> {
    let version = ticket.version;
    match notice {
        Notice::Created => ticket_email(
            ticket,
            to,
            templates::TICKET_CREATED,
            "created",
            json!({ "first_response_due_at": ticket.first_response_due_at, "resolution_due_at": ticket.resolution_due_at }),
        ),
        Notice::Replied { message_id, body } => ticket_email(
            ticket,
            to,
            templates::TICKET_REPLIED,
            &format!("message:{message_id}"),
            json!({ "body": body }),
        ),
        Notice::CustomerReplied { message_id, body } => ticket_email(
            ticket,
            to,
            templates::TICKET_CUSTOMER_REPLIED,
            &format!("message:{message_id}"),
            json!({ "body": body }),
        ),
        Notice::Assigned => {
            ticket_email(ticket, to, templates::TICKET_ASSIGNED, &format!("assigned:{version}"), json!({}))
        }
        Notice::Waiting => {
            ticket_email(ticket, to, templates::TICKET_WAITING, &format!("waiting:{version}"), json!({}))
        }
        Notice::Closed { reason } => ticket_email(
            ticket,
            to,
            templates::TICKET_CLOSED,
            &format!("closed:{version}"),
            json!({ "reason": reason }),
        ),
        Notice::Reminder { waiting_since, auto_close_at } => NewEmail {
            idempotency_key: format!("ticket:{}:reminder:{}:{}", ticket.id, waiting_since.timestamp_micros(), to.id),
            to_address: &to.email,
            to_name: Some(&to.name),
            locale: &to.locale,
            template: templates::TICKET_REMINDER,
            payload: json!({
                "name": to.name, "ticket_id": ticket.id, "ticket_number": ticket.number, "subject": ticket.subject,
                "status": ticket.status, "severity": ticket.severity,
                "waiting_since": waiting_since, "auto_close_at": auto_close_at,
            }),
        },
    }
}

/// Queues the e-mails of a saved change's notifications, to active accounts only.
pub(crate) async fn send(conn: &mut PgConnection, change: &TicketChange, now: DateTime<Utc>) -> Result<(), CoreError> {
    let wanted: Vec<Uuid> = change.notifications.iter().filter_map(|n| audience_of(&change.ticket, n.to)).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let directory = recipients(&mut *conn, &wanted).await?;
    for n in &change.notifications {
        let Some(user) = audience_of(&change.ticket, n.to) else { continue };
        if let Some(to) = directory.iter().find(|r| r.id == user) {
            outbox::enqueue(&mut *conn, notice_email(&change.ticket, to, &n.notice), now).await?;
        }
    }
    Ok(())
}
