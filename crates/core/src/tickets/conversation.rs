//! Replies and internal notes (R6): what the ticket's conversation holds and who sees it.

use super::notify;
use super::open::check_text;
use super::store::{self, command_error};
use crate::CoreError;
use crate::accounts::Caller;
use crate::sla_store::SlaStore;
use chrono::{DateTime, Utc};
use helpdesk_domain::tickets::aggregate::Reply;
use helpdesk_domain::tickets::{Status, Ticket};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Message {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

pub struct NewMessage {
    pub body: String,
    pub internal: bool,
    /// Staff may hand the ticket to the customer (or back) with the same reply.
    pub then_status: Option<Status>,
}

/// Adds a reply or an internal note. A public agent reply meets first response; a customer's
/// reply to a ticket waiting for them reopens it and resumes the resolution clock (R6).
pub async fn post_message(
    conn: &mut PgConnection,
    store: &SlaStore,
    caller: &Caller,
    id: Uuid,
    input: NewMessage,
    now: DateTime<Utc>,
) -> Result<(Message, Ticket), CoreError> {
    let mut errors = Vec::new();
    let body = check_text("body", &input.body, 20_000, &mut errors);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let (rules, receivers) = store.snapshot_for_change(&mut *conn).await?;
    let mut change = store::lock(&mut *conn, Some(caller), id, &rules, now).await?;
    let message = Message {
        id: Uuid::now_v7(),
        ticket_id: id,
        author_id: caller.user_id,
        body,
        internal: input.internal,
        created_at: now,
    };
    change
        .reply(
            &rules,
            (caller.user_id, caller.role),
            Reply {
                message_id: message.id,
                body: &message.body,
                internal: input.internal,
                then_status: input.then_status,
            },
            now,
        )
        .map_err(|e| command_error(id, e))?;
    sqlx::query!(
        "INSERT INTO ticket_messages (id, ticket_id, author_id, body, internal, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        message.id,
        id,
        caller.user_id,
        message.body,
        message.internal,
        now
    )
    .execute(&mut *conn)
    .await?;
    let timeline = change.timeline.clone();
    let change = store::save(&mut *conn, change, &rules, now).await?;
    notify::send(&mut *conn, &change, now).await?;
    let public_body = (!message.internal).then_some(message.body.as_str());
    crate::webhook_events::ticket_change(&mut *conn, &change, &timeline, public_body, receivers, now).await?;
    Ok((message, change.ticket))
}

/// The messages of a ticket, oldest first; customers never see internal notes.
pub async fn messages(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Vec<Message>, CoreError> {
    store::get(&mut *conn, Some(caller), id).await?;
    let rows = sqlx::query_as!(
        Message,
        "SELECT id, ticket_id, author_id, body, internal, created_at FROM ticket_messages WHERE ticket_id = $1 AND (internal = false OR $2) ORDER BY created_at, id LIMIT 1000",
        id,
        caller.role.is_staff()
    )
    .fetch_all(conn)
    .await?;
    Ok(rows)
}
