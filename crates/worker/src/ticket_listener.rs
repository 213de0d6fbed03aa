//! The fast path for ticket timers: PostgreSQL announces every committed change of a ticket's
//! next timer instant (the `tickets_notify_timer` trigger, payload `<ticket id> <Unix µs>`), and a
//! delayed job is scheduled for that instant without reading the ticket. Best effort, like the
//! outbox listener: what is missed while reconnecting is found by the reconciler's sweep within its
//! interval.

use chrono::DateTime;
use helpdesk_core::Clock;
use helpdesk_core::jobs::{JobQueue, TicketTimer};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

use crate::jobs::ticket_timer::schedule;

pub const CHANNEL: &str = "ticket_timer";

/// Notifications drained into one Redis round trip at most.
const BATCH: usize = 500;

/// Listens until the task is dropped, reconnecting after failures.
pub async fn run(pool: PgPool, queue: JobQueue, clock: Clock) {
    loop {
        match listen(&pool, &queue, &clock).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "ticket notifications interrupted; reconnecting (the reconciler covers the gap)")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `<ticket id> <instant in Unix microseconds>`.
pub fn parse(payload: &str) -> Option<TicketTimer> {
    let (id, micros) = payload.split_once(' ')?;
    let ticket_id = id.parse::<Uuid>().ok()?;
    let due_at = DateTime::from_timestamp_micros(micros.trim().parse().ok()?)?;
    Some(TicketTimer { ticket_id, due_at })
}

async fn listen(pool: &PgPool, queue: &JobQueue, clock: &Clock) -> Result<(), sqlx::Error> {
    let mut listener = helpdesk_core::db::dedicated_listener(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        // Wait for one announcement, then take whatever else has already arrived, so a burst (a
        // re-projection, a bulk import) costs one Redis round trip per batch, not per ticket.
        let mut timers = Vec::new();
        let mut next = Some(listener.recv().await?);
        while let Some(notification) = next.take() {
            match parse(notification.payload()) {
                Some(timer) => timers.push(timer),
                None => tracing::warn!(payload = notification.payload(), "ignoring a malformed ticket notification"),
            }
            if timers.len() < BATCH {
                next = listener.next_buffered();
            }
        }
        if timers.is_empty() {
            continue;
        }
        let count = timers.len();
        if let Err(error) = schedule(queue, clock, timers).await {
            tracing::warn!(count, %error, "cannot schedule ticket timers now; the reconciler will run them when due");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_trigger_sends() {
        let timer = parse("0190f2a4-7b1e-7c3d-8e9f-0123456789ab 1764594000123456");
        let timer = timer.unwrap_or_else(|| panic!("not parsed"));
        assert_eq!(timer.ticket_id.to_string(), "0190f2a4-7b1e-7c3d-8e9f-0123456789ab");
        assert_eq!(timer.due_at.timestamp_micros(), 1_764_594_000_123_456);
        assert_eq!(parse("0190f2a4-7b1e-7c3d-8e9f-0123456789ab"), None);
        assert_eq!(parse("not-a-uuid 17"), None);
    }
}
