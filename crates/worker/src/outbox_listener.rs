//! The fast path for e-mail: every committed outbox row is announced by PostgreSQL (see the
//! `email_outbox_notify` migration) and queued for delivery at once. Best effort by design: while
//! the listener is reconnecting, announcements are missed, and the reconciler delivers those
//! rows within its interval.

use helpdesk_core::jobs::{DEFAULT_DEDUPE_WINDOW, DeliverEmail, Enqueue, JobQueue};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

use crate::polling::Nudge;

pub const CHANNEL: &str = "email_outbox";

/// Listens until the task is dropped, reconnecting after failures.
/// `nudge` wakes this process's e-mail consumer after each push.
pub async fn run(pool: PgPool, queue: JobQueue, nudge: Nudge) {
    loop {
        match listen(&pool, &queue, &nudge).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "outbox notifications interrupted; reconnecting (the reconciler covers the gap)")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Announcements drained into one Redis round trip at most.
const BATCH: usize = 500;

async fn listen(pool: &PgPool, queue: &JobQueue, nudge: &Nudge) -> Result<(), sqlx::Error> {
    let mut listener = helpdesk_core::db::dedicated_listener(pool).await?;
    listener.listen(CHANNEL).await?;
    // `recv` re-establishes a lost connection by itself; what was announced meanwhile is missed
    // and left to the reconciler.
    loop {
        // One announcement, then whatever else has already arrived: a burst of e-mails (a
        // thousand reminders) costs one Redis round trip, and one job per `EMAIL_BATCH` rows.
        let mut ids = Vec::new();
        let mut next = Some(listener.recv().await?);
        while let Some(notification) = next.take() {
            match notification.payload().parse::<Uuid>() {
                Ok(outbox_id) => ids.push(outbox_id),
                Err(_) => tracing::warn!(payload = notification.payload(), "ignoring a malformed outbox notification"),
            }
            if ids.len() < BATCH {
                next = listener.next_buffered();
            }
        }
        let jobs: Vec<_> = DeliverEmail::batches(&ids)
            .map(|job| {
                let key = job.dedupe_key();
                Enqueue::now(job).once(key, DEFAULT_DEDUPE_WINDOW)
            })
            .collect();
        let count = ids.len();
        match queue.push_all(jobs).await {
            Ok(()) => nudge.signal(),
            Err(error) => tracing::warn!(count, %error, "cannot queue e-mails now; the reconciler will"),
        }
    }
}
