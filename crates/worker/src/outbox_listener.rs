//! The fast path for e-mail: every committed outbox row is announced by PostgreSQL (see the
//! `email_outbox_notify` migration) and queued for delivery at once. Best effort by design: while
//! the listener is reconnecting, announcements are missed, and the reconciler delivers those
//! rows within its interval.

use helpdesk_core::jobs::JobQueue;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;
use uuid::Uuid;

pub const CHANNEL: &str = "email_outbox";

/// Listens until the task is dropped, reconnecting after failures.
pub async fn run(pool: PgPool, queue: JobQueue) {
    loop {
        match listen(&pool, &queue).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "outbox notifications interrupted; reconnecting (the reconciler covers the gap)")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(pool: &PgPool, queue: &JobQueue) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // `recv` re-establishes a lost connection by itself; what was announced meanwhile is missed
    // and left to the reconciler.
    loop {
        let notification = listener.recv().await?;
        let Ok(outbox_id) = notification.payload().parse::<Uuid>() else {
            tracing::warn!(payload = notification.payload(), "ignoring a malformed outbox notification");
            continue;
        };
        if let Err(error) = queue.deliver_email(outbox_id).await {
            tracing::warn!(%outbox_id, %error, "cannot queue the e-mail now; the reconciler will");
        }
    }
}
