//! Staff changes (assignment, severity, status), closing and reopening (R6, R9).

use super::notify;
use super::store::{self, command_error};
use crate::CoreError;
use crate::accounts::Caller;
use crate::sla_store::SlaStore;
use chrono::{DateTime, Utc};
use helpdesk_domain::sla::Severity;
use helpdesk_domain::tickets::{CloseReason, Status, Ticket};
use sqlx::PgConnection;
use uuid::Uuid;

/// Changes staff may make to a ticket.
#[derive(Debug, Default)]
pub struct TicketUpdate {
    pub severity: Option<Severity>,
    pub assignee_id: Option<Option<Uuid>>,
    pub status: Option<Status>,
}

pub async fn update(
    conn: &mut PgConnection,
    store: &SlaStore,
    caller: &Caller,
    id: Uuid,
    update: TicketUpdate,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    caller.require_staff()?;
    let (rules, receivers) = store.snapshot_for_change(&mut *conn).await?;
    let mut change = store::lock(&mut *conn, Some(caller), id, &rules, now).await?;
    let actor = (caller.user_id, caller.role);
    if let Some(assignee) = update.assignee_id {
        if let Some(assignee) = assignee {
            let role = sqlx::query_scalar!("SELECT role FROM users WHERE id = $1 AND disabled_at IS NULL", assignee)
                .fetch_optional(&mut *conn)
                .await?;
            if !matches!(role.as_deref(), Some("agent" | "admin")) {
                return Err(CoreError::invalid("assignee_id", "is not an active agent"));
            }
        }
        change.assign(actor, assignee).map_err(|e| command_error(id, e))?;
    }
    if let Some(severity) = update.severity {
        change.change_severity(&rules, actor, severity, now).map_err(|e| command_error(id, e))?;
    }
    if let Some(status) = update.status {
        change.set_status(&rules, actor, status, now).map_err(|e| command_error(id, e))?;
    }
    let timeline = change.timeline.clone();
    let change = store::save(&mut *conn, change, &rules, now).await?;
    notify::send(&mut *conn, &change, now).await?;
    crate::webhook_events::ticket_change(&mut *conn, &change, &timeline, None, receivers, now).await?;
    Ok(change.ticket)
}

/// Closes a ticket (R9). Closing ends both clocks: resolution is met, and a first response that
/// never came is closed with it.
pub async fn close(
    conn: &mut PgConnection,
    store: &SlaStore,
    caller: &Caller,
    id: Uuid,
    reason: CloseReason,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    let (rules, receivers) = store.snapshot_for_change(&mut *conn).await?;
    let mut change = store::lock(&mut *conn, Some(caller), id, &rules, now).await?;
    change.close(&rules, Some((caller.user_id, caller.role)), reason, now).map_err(|e| command_error(id, e))?;
    let timeline = change.timeline.clone();
    let change = store::save(&mut *conn, change, &rules, now).await?;
    notify::send(&mut *conn, &change, now).await?;
    crate::webhook_events::ticket_change(&mut *conn, &change, &timeline, None, receivers, now).await?;
    Ok(change.ticket)
}

/// Reopens a closed ticket (R9): the resolution clock resumes with the time already consumed.
pub async fn reopen(
    conn: &mut PgConnection,
    store: &SlaStore,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Ticket, CoreError> {
    let (rules, receivers) = store.snapshot_for_change(&mut *conn).await?;
    let mut change = store::lock(&mut *conn, Some(caller), id, &rules, now).await?;
    change.reopen(&rules, (caller.user_id, caller.role), now).map_err(|e| command_error(id, e))?;
    let timeline = change.timeline.clone();
    let change = store::save(&mut *conn, change, &rules, now).await?;
    notify::send(&mut *conn, &change, now).await?;
    crate::webhook_events::ticket_change(&mut *conn, &change, &timeline, None, receivers, now).await?;
    Ok(change.ticket)
}
