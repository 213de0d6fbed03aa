//! The fast path for webhooks: every committed delivery is announced by PostgreSQL (the
//! `webhook_deliveries_notify` trigger, payload: the subscription) and a run is queued for its
//! subscription at once. Best effort: what is missed while reconnecting, the sweep finds.

use helpdesk_core::jobs::{DeliverWebhooks, Enqueue, JobQueue};
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

use crate::polling::Nudge;

pub const CHANNEL: &str = "webhook_deliveries";

const BATCH: usize = 500;

/// `nudge` wakes this process's webhook consumer after each push.
pub async fn run(pool: PgPool, queue: JobQueue, nudge: Nudge) {
    loop {
        match listen(&pool, &queue, &nudge).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "webhook notifications interrupted; reconnecting (the sweep covers the gap)")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(pool: &PgPool, queue: &JobQueue, nudge: &Nudge) -> Result<(), sqlx::Error> {
    let mut listener = helpdesk_core::db::dedicated_listener(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        // A burst of announcements for the same subscriptions becomes one run each.
        let mut subscriptions = HashSet::new();
        let mut next = Some(listener.recv().await?);
        let mut seen = 0;
        while let Some(notification) = next.take() {
            seen += 1;
            match notification.payload().parse::<Uuid>() {
                Ok(id) => {
                    subscriptions.insert(id);
                }
                Err(_) => tracing::warn!(payload = notification.payload(), "ignoring a malformed webhook notification"),
            }
            if seen < BATCH {
                next = listener.next_buffered();
            }
        }
        let jobs: Vec<_> = subscriptions
            .into_iter()
            .map(|subscription_id| Enqueue::now(DeliverWebhooks { subscription_id }))
            .collect();
        match queue.push_all(jobs).await {
            Ok(()) => nudge.signal(),
            Err(error) => tracing::warn!(%error, "cannot queue webhook runs now; the sweep will"),
        }
    }
}
