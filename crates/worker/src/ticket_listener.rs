//! The fast path for ticket timers: every committed ticket change is announced by PostgreSQL (the
//! `tickets_notify_changed` trigger) and the ticket's pending timers are scheduled as delayed jobs
//! at their instants. Best effort, like the outbox listener: what is missed while reconnecting is
//! found by the reconciler's sweep within its interval.

use helpdesk_core::Clock;
use helpdesk_core::jobs::JobQueue;
use helpdesk_core::ticket_timers::{self, TimerPolicy};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;
use uuid::Uuid;

use crate::jobs::ticket_timer::schedule;

pub const CHANNEL: &str = "ticket_changed";

/// Listens until the task is dropped, reconnecting after failures.
pub async fn run(pool: PgPool, queue: JobQueue, clock: Clock, policy: TimerPolicy) {
    loop {
        match listen(&pool, &queue, &clock, &policy).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "ticket notifications interrupted; reconnecting (the reconciler covers the gap)")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(pool: &PgPool, queue: &JobQueue, clock: &Clock, policy: &TimerPolicy) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let notification = listener.recv().await?;
        let Ok(ticket) = notification.payload().parse::<Uuid>() else {
            tracing::warn!(payload = notification.payload(), "ignoring a malformed ticket notification");
            continue;
        };
        let mut conn = pool.acquire().await?;
        let timers = match ticket_timers::pending_timers(&mut conn, ticket, policy).await {
            Ok(timers) => timers,
            Err(error) => {
                tracing::warn!(%ticket, %error, "cannot read the ticket's timers; the reconciler will run them when due");
                continue;
            }
        };
        drop(conn);
        if let Err(error) = schedule(queue, clock, timers).await {
            tracing::warn!(%ticket, %error, "cannot schedule the ticket's timers now; the reconciler will run them when due");
        }
    }
}
