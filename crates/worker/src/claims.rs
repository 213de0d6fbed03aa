//! The e-mail jobs' claims on outbox rows: claimed and marked sent in batches, and kept alive by a
//! heartbeat while the send is in flight.
//!
//! **Batches.** Each job still claims its own row, but through one task that gathers every claim
//! (and every "sent") waiting at that moment into one statement. Nothing waits for a batch to fill:
//! while one statement runs, the next requests queue up, so an idle worker pays one round trip and
//! a busy one (32 sends at once) pays one statement for many e-mails instead of one each.
//!
//! **Heartbeats.** A claim is a short lease (`DeliveryPolicy::lease`, 30 s) on the row. While the
//! send runs, this process extends the lease of every row it holds every third of a lease, in one
//! statement. A slow live send therefore keeps its row as long as it takes, and a dead worker's
//! rows are due again within one lease, when the outbox sweep queues them for another worker.

use chrono::TimeDelta;
use helpdesk_core::Clock;
use helpdesk_core::outbox::{self, ClaimedEmail};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Most rows one statement claims or marks.
const MAX_BATCH: usize = 500;

type Reply<T> = oneshot::Sender<Result<T, Arc<sqlx::Error>>>;

/// The handle jobs use; cheap to clone. The batching tasks end when the last handle is dropped.
#[derive(Clone)]
pub struct Claims {
    claims: mpsc::UnboundedSender<(Uuid, Reply<Option<ClaimedEmail>>)>,
    sent: mpsc::UnboundedSender<((Uuid, String), Reply<bool>)>,
    /// Rows this process holds, with the attempt that holds each.
    held: Arc<Mutex<HashMap<Uuid, i32>>>,
}

/// Why a claim or a mark could not be made: the database failed (shared by the whole batch).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub Arc<sqlx::Error>);

impl Claims {
    /// Starts the two batching tasks. Call inside a Tokio runtime.
    pub fn start(pool: PgPool, clock: Clock, lease: TimeDelta) -> Self {
        let (claims, claim_requests) = mpsc::unbounded_channel();
        let (sent, sent_requests) = mpsc::unbounded_channel();
        tokio::spawn(claim_batches(pool.clone(), clock.clone(), lease, claim_requests));
        tokio::spawn(sent_batches(pool, clock, sent_requests));
        Self { claims, sent, held: Arc::default() }
    }

    /// Claims the row for one attempt; `None` when it is sent, failed, not due or held by another
    /// attempt. The returned guard holds the claim (its lease is extended) until dropped.
    pub async fn claim(&self, id: Uuid) -> Result<Option<(ClaimedEmail, Held)>, BatchError> {
        let (reply, answer) = oneshot::channel();
        self.claims.send((id, reply)).map_err(|_| stopped())?;
        let Some(email) = answer.await.map_err(|_| stopped())?.map_err(BatchError)? else {
            return Ok(None);
        };
        self.lock().insert(email.id, email.attempts);
        let held = Held { id: email.id, held: self.held.clone() };
        Ok(Some((email, held)))
    }

    /// Records that the server accepted the message; false when the row was no longer pending.
    pub async fn mark_sent(&self, id: Uuid, message_id: &str) -> Result<bool, BatchError> {
        let (reply, answer) = oneshot::channel();
        self.sent.send(((id, message_id.to_owned()), reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(BatchError)
    }

    /// The rows held right now, with their attempts.
    pub fn held(&self) -> Vec<(Uuid, i32)> {
        self.lock().iter().map(|(id, attempt)| (*id, *attempt)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, i32>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Extends the lease of every row held, every third of a lease, until the task is aborted.
    pub async fn heartbeat_forever(self, pool: PgPool, clock: Clock, lease: TimeDelta) {
        let every = lease.to_std().unwrap_or(Duration::from_secs(30)) / 3;
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(100)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let held = self.held();
            if held.is_empty() {
                continue;
            }
            let extended = async {
                let mut conn = pool.acquire().await?;
                outbox::extend_leases(&mut conn, &held, clock.now() + lease).await
            };
            match extended.await {
                Ok(count) => tracing::debug!(count, "extended the leases of e-mails in flight"),
                // The leases run out unless a later beat gets through; the sends carry on, and a
                // row that falls due meanwhile may be sent twice (with the same Message-ID).
                Err(error) => tracing::warn!(%error, "cannot extend the leases of e-mails in flight"),
            }
        }
    }
}

/// A claim this process holds; dropping it (whatever the outcome) stops its heartbeat.
pub struct Held {
    id: Uuid,
    held: Arc<Mutex<HashMap<Uuid, i32>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

fn stopped() -> BatchError {
    BatchError(Arc::new(sqlx::Error::PoolClosed))
}

async fn claim_batches(
    pool: PgPool,
    clock: Clock,
    lease: TimeDelta,
    mut requests: mpsc::UnboundedReceiver<(Uuid, Reply<Option<ClaimedEmail>>)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        let claimed = async {
            let mut conn = pool.acquire().await?;
            outbox::claim_batch(&mut conn, &ids, clock.now(), lease).await
        };
        match claimed.await {
            Ok(rows) => {
                let mut by_id: HashMap<Uuid, ClaimedEmail> = rows.into_iter().map(|row| (row.id, row)).collect();
                // A row asked for twice in one batch is claimed once: the first asker gets it.
                for (id, reply) in batch.drain(..) {
                    let _ = reply.send(Ok(by_id.remove(&id)));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

async fn sent_batches(
    pool: PgPool,
    clock: Clock,
    mut requests: mpsc::UnboundedReceiver<((Uuid, String), Reply<bool>)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let sent: Vec<(Uuid, String)> = batch.iter().map(|(sent, _)| sent.clone()).collect();
        let marked = async {
            let mut conn = pool.acquire().await?;
            outbox::mark_sent_batch(&mut conn, &sent, clock.now()).await
        };
        match marked.await {
            Ok(ids) => {
                let ids: HashSet<Uuid> = ids.into_iter().collect();
                for ((id, _), reply) in batch.drain(..) {
                    let _ = reply.send(Ok(ids.contains(&id)));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
