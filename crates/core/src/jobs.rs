//! Background jobs (DESIGN §3): the payloads the API and the worker exchange through Redis, and
//! [`JobQueue`], the handle both use to push them.
//!
//! A job is only a fast path. Postgres holds the truth (the outbox row, the ticket's due times), a
//! reconciler in the worker re-enqueues whatever is due and unhandled, and every handler re-reads
//! its row and does nothing when the job is stale. So pushing a job may fail without failing the
//! operation that caused it: log the error and carry on.
//!
//! Every queue lives under the deployment's Redis prefix (`{prefix}:email`,
//! `{prefix}:ticket-timers`), so deployments and test runs sharing a Redis never see each other's
//! jobs. Queue names are spelled out here, never derived from Rust type names, so moving a type
//! cannot silently orphan the jobs already queued.

use apalis::prelude::{TaskBuilder, TaskSink, TaskSinkError};
use apalis_redis::{ConnectionManager, RedisStorage};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use uuid::Uuid;

/// A job payload and the queue it travels on.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The queue's name without the deployment prefix.
    const QUEUE: &'static str;
}

/// Deliver outbox rows (`email_outbox.id`): one, or a batch.
///
/// Why batches: each apalis job costs several Redis round trips (fetch, ack, and the idempotency
/// key's), about as much as the SMTP conversation itself, so a burst of e-mails (a thousand
/// reminders) travels as one job per [`EMAIL_BATCH`] rows and its rows are sent side by side.
/// Untagged, so a single row keeps the wire shape `{"outbox_id": …}` that queued jobs of earlier
/// releases have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DeliverEmail {
    One { outbox_id: Uuid },
    Batch { outbox_ids: Vec<Uuid> },
}

/// Most outbox rows one e-mail job carries.
pub const EMAIL_BATCH: usize = 50;

impl DeliverEmail {
    /// The rows to deliver, in the order given.
    pub fn outbox_ids(&self) -> &[Uuid] {
        match self {
            Self::One { outbox_id } => std::slice::from_ref(outbox_id),
            Self::Batch { outbox_ids } => outbox_ids,
        }
    }

    /// The job's dedupe key, for [`Enqueue::once`]: `outbox:{id}` for one row, and for a batch
    /// `outbox-batch:` and a digest of its rows, so that worker replicas announcing the same
    /// burst (each listener hears every commit) queue it once where their batches coincide.
    /// Where they do not, the claim makes the second copy a no-op.
    pub fn dedupe_key(&self) -> String {
        match self {
            Self::One { outbox_id } => format!("outbox:{outbox_id}"),
            Self::Batch { outbox_ids } => {
                digest_key("outbox-batch", outbox_ids.iter().map(|id| id.as_bytes().to_vec()))
            }
        }
    }

    /// The job for these due rows and its dedupe key, which names their due *attempts*:
    /// `outbox:{id}:due:{micros}` for one row, `outbox-due:` and a digest for several. A claim or
    /// a retry moves a row's due instant, and so names a new attempt.
    pub fn for_due(rows: &[crate::outbox::DueEmail]) -> (Self, String) {
        let key = match rows {
            [row] => format!("outbox:{}:due:{}", row.id, row.next_attempt_at.timestamp_micros()),
            rows => digest_key(
                "outbox-due",
                rows.iter().map(|row| {
                    [row.id.as_bytes().as_slice(), &row.next_attempt_at.timestamp_micros().to_be_bytes()].concat()
                }),
            ),
        };
        (Self::of(rows.iter().map(|row| row.id).collect()), key)
    }

    /// A job for these rows (the single-row shape for one).
    pub fn of(mut outbox_ids: Vec<Uuid>) -> Self {
        match outbox_ids.len() {
            1 => Self::One { outbox_id: outbox_ids.remove(0) },
            _ => Self::Batch { outbox_ids },
        }
    }

    /// Jobs of at most [`EMAIL_BATCH`] rows each.
    pub fn batches(ids: &[Uuid]) -> impl Iterator<Item = Self> + '_ {
        ids.chunks(EMAIL_BATCH).map(|chunk| Self::of(chunk.to_vec()))
    }
}

/// `{prefix}:` and the hex SHA-256 of `parts`, in order.
fn digest_key(prefix: &str, parts: impl Iterator<Item = Vec<u8>>) -> String {
    let mut digest = Sha256::new();
    for part in parts {
        digest.update(part);
    }
    format!("{prefix}:{}", hex::encode(digest.finalize()))
}

impl Job for DeliverEmail {
    const QUEUE: &'static str = "email";
}

/// Send the due deliveries of one webhook subscription, in order (issue 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverWebhooks {
    pub subscription_id: Uuid,
}

impl Job for DeliverWebhooks {
    const QUEUE: &'static str = "webhooks";
}

/// Look at a ticket's timers: due at `due_at`, the ticket's `next_timer_at` when the job was
/// scheduled. The job names no timer and no version: the handler asks the domain what is due when
/// it runs, so a job that is early, late, duplicated or stale does the right thing (usually
/// nothing) without being cancelled. Payloads of the earlier shape (with `kind` and `version`)
/// still decode; the extra fields are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketTimer {
    pub ticket_id: Uuid,
    pub due_at: DateTime<Utc>,
}

impl TicketTimer {
    /// One job per ticket and instant, however many times it is scheduled or swept.
    pub fn idempotency_key(&self) -> String {
        format!("ticket-timer:{}:{}", self.ticket_id, self.due_at.timestamp_micros())
    }
}

impl Job for TicketTimer {
    const QUEUE: &'static str = "ticket-timers";
}

/// Probe a batch of claimed monitors (issue 10): each with the planned slot it was claimed for.
/// One job per batch rather than per probe: 333 probes a second at 100,000 monitors would
/// otherwise be 333 Redis round trips a second for nothing but bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeBatch {
    pub monitors: Vec<crate::probing::claim::Claimed>,
}

impl Job for ProbeBatch {
    const QUEUE: &'static str = "monitor-probes";
}

/// The full Redis name of a queue: `{prefix}:{queue}`.
pub fn queue_name(prefix: &str, queue: &str) -> String {
    format!("{prefix}:{queue}")
}

/// The apalis-redis settings of a queue; the worker adds its consumer settings (batch size,
/// heartbeat) on top.
pub fn storage_config(prefix: &str, queue: &str) -> apalis_redis::Config {
    apalis_redis::Config::default().queue(queue_name(prefix, queue))
}

/// Jobs moved per Redis call by [`JobQueue::promote_due`]: well under Lua's `unpack` limit.
pub const PROMOTE_CHUNK: usize = 1000;

/// Moves up to ARGV[2] jobs due at ARGV[1] (Unix seconds, the scores apalis-redis gives them)
/// from the scheduled set (KEYS[1]) to the end of the ready list (KEYS[2]), and raises the
/// consumers' signal (KEYS[3]) as apalis-redis's own fetch does.
static PROMOTE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local ids = redis.call('zrangebyscore', KEYS[1], 0, ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
        if #ids > 0 then
            redis.call('rpush', KEYS[2], unpack(ids))
            redis.call('zrem', KEYS[1], unpack(ids))
            redis.call('del', KEYS[3])
            redis.call('lpush', KEYS[3], 1)
        end
        return #ids
        ",
    )
});

/// How long a key deduplicates a job pushed for "now" ([`JobQueue::deliver_email`]).
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(60 * 60);

/// A job to push: now or at an instant, optionally at most once per idempotency key.
#[derive(Debug, Clone)]
pub struct Enqueue<J> {
    job: J,
    run_at: Option<DateTime<Utc>>,
    once: Option<(String, Duration)>,
}

impl<J: Job> Enqueue<J> {
    /// Run as soon as a worker is free.
    pub fn now(job: J) -> Self {
        Self { job, run_at: None, once: None }
    }

    /// Run at `at` (wall-clock time; Redis promotes it when due). An instant in the past runs now.
    pub fn at(job: J, at: DateTime<Utc>) -> Self {
        Self { job, run_at: Some(at), once: None }
    }

    /// Pushes of the same `key` on this queue are dropped until `window` after the run time
    /// (`window` after now for a job that runs now). The window keeps Redis from accumulating
    /// keys forever; make it longer than the job could wait in the queue.
    pub fn once(mut self, key: impl Into<String>, window: Duration) -> Self {
        self.once = Some((key.into(), window));
        self
    }

    /// How long the idempotency key must live, counted from now.
    fn key_lifetime(&self, now: DateTime<Utc>) -> Duration {
        let Some((_, window)) = &self.once else { return Duration::ZERO };
        let until_run = self.run_at.map(|at| (at - now).to_std().unwrap_or(Duration::ZERO)).unwrap_or(Duration::ZERO);
        until_run + *window
    }

    fn into_task(self) -> apalis::prelude::Task<J> {
        let mut builder = TaskBuilder::new(self.job);
        if let Some(at) = self.run_at {
            builder = builder.run_at_timestamp(u64::try_from(at.timestamp()).unwrap_or(0));
        }
        if let Some((key, _)) = self.once {
            builder = builder.idempotency_key(key);
        }
        builder.build()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot push {count} job(s) onto queue {queue}: {source}")]
pub struct EnqueueError {
    queue: String,
    count: usize,
    #[source]
    source: TaskSinkError<apalis_redis::Error>,
}

/// The cloneable handle through which operations push jobs. Cheap to clone: one multiplexed
/// Redis connection underneath.
#[derive(Clone)]
pub struct JobQueue {
    conn: ConnectionManager,
    prefix: Arc<str>,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl JobQueue {
    /// `conn` from [`crate::redis_conn::connect`]; `prefix` is `Config::redis_prefix`.
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self { conn, prefix: Arc::from(prefix) }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis storage of `J`'s queue, for a worker to consume or for tests to inspect.
    pub fn storage<J: Job>(&self) -> RedisStorage<J> {
        RedisStorage::new(self.conn.clone()).with_config(storage_config(&self.prefix, J::QUEUE))
    }

    /// Pushes one job.
    pub async fn push<J: Job>(&self, job: Enqueue<J>) -> Result<(), EnqueueError> {
        self.push_all(vec![job]).await
    }

    /// Pushes several jobs of one kind in one Redis round trip, then moves whatever is due onto
    /// the consumers' list (see [`JobQueue::promote_due`]).
    pub async fn push_all<J: Job>(&self, jobs: Vec<Enqueue<J>>) -> Result<(), EnqueueError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let count = jobs.len();
        let now = Utc::now();
        // apalis-redis sets the key lifetime per push, not per job: take the longest needed.
        let key_lifetime = jobs.iter().map(|job| job.key_lifetime(now)).max().unwrap_or(Duration::ZERO);
        let config = storage_config(&self.prefix, J::QUEUE)
            .idempotency_ttl((!key_lifetime.is_zero()).then_some(key_lifetime.max(Duration::from_secs(1))));
        let mut storage = RedisStorage::<J>::new(self.conn.clone()).with_config(config);
        let tasks = futures_util::stream::iter(jobs.into_iter().map(Enqueue::into_task));
        storage.push_all(tasks).await.map_err(|source| EnqueueError {
            queue: queue_name(&self.prefix, J::QUEUE),
            count,
            source,
        })?;
        if let Err(error) = self.promote_due::<J>().await {
            // The worker's own promoter, and its consumers, will move them.
            tracing::warn!(queue = J::QUEUE, %error, "cannot move due jobs onto the queue now");
        }
        Ok(())
    }

    /// Moves due jobs of `J`'s queue from apalis-redis's scheduled set onto its list of jobs ready
    /// to run, at most [`PROMOTE_CHUNK`] per Redis call; returns how many moved.
    ///
    /// Why: apalis-redis 1.0 keeps every job, even one pushed for "now", in the scheduled set, and
    /// its fetch moves *all* due jobs in one Lua `unpack`, which Redis refuses beyond about 8,000
    /// values ("too many results to unpack"). With more due at once (a reconciler round after an
    /// outage, a burst of timers falling due while the worker was down) every fetch fails and the
    /// queue stops. Moving them here, in chunks, keeps the due part of the scheduled set small: the
    /// worker calls this after every push and on a short interval.
    pub async fn promote_due<J: Job>(&self) -> Result<usize, redis::RedisError> {
        let config = storage_config(&self.prefix, J::QUEUE);
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
        let mut conn = self.conn.clone();
        let mut moved = 0;
        loop {
            let chunk: usize = PROMOTE_SCRIPT
                .key(config.scheduled_jobs_set())
                .key(config.active_jobs_list())
                .key(config.signal_list())
                .arg(now)
                .arg(PROMOTE_CHUNK)
                .invoke_async(&mut conn)
                .await?;
            moved += chunk;
            if chunk < PROMOTE_CHUNK {
                return Ok(moved);
            }
        }
    }

    /// Asks the worker to deliver an outbox row now. Call it after the transaction that wrote the
    /// row has committed (before, the worker could look for a row it cannot see yet). On error,
    /// log and carry on: the reconciler delivers the row within about a minute anyway.
    pub async fn deliver_email(&self, outbox_id: Uuid) -> Result<(), EnqueueError> {
        let job = DeliverEmail::One { outbox_id };
        let key = job.dedupe_key();
        self.push(Enqueue::now(job).once(key, DEFAULT_DEDUPE_WINDOW)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn queue_names_carry_the_prefix_and_never_the_type_name() {
        assert_eq!(queue_name("helpdesk", DeliverEmail::QUEUE), "helpdesk:email");
        assert_eq!(queue_name("t1", TicketTimer::QUEUE), "t1:ticket-timers");
        assert_eq!(storage_config("t1", "email").queue.as_ref(), "t1:email");
    }

    #[test]
    fn a_scheduled_jobs_key_outlives_its_run_time() {
        let now = Utc::now();
        let job = || DeliverEmail::One { outbox_id: Uuid::nil() };
        let scheduled = Enqueue::at(job(), now + TimeDelta::hours(2)).once("k", Duration::from_secs(60));
        let lifetime = scheduled.key_lifetime(now);
        assert!(lifetime >= Duration::from_secs(2 * 3600 + 59) && lifetime <= Duration::from_secs(2 * 3600 + 60));
        assert_eq!(Enqueue::now(job()).key_lifetime(now), Duration::ZERO);
        assert_eq!(
            Enqueue::at(job(), now - TimeDelta::hours(1)).once("k", Duration::from_secs(5)).key_lifetime(now),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn e_mail_batches_carry_every_row_once_in_order() {
        let ids: Vec<Uuid> = (0..121).map(|_| Uuid::now_v7()).collect();
        let jobs: Vec<_> = DeliverEmail::batches(&ids).collect();
        assert_eq!(jobs.iter().map(|j| j.outbox_ids().len()).collect::<Vec<_>>(), [50, 50, 21]);
        assert_eq!(jobs.iter().flat_map(|j| j.outbox_ids().to_vec()).collect::<Vec<_>>(), ids);
        assert_eq!(DeliverEmail::batches(&ids[..1]).collect::<Vec<_>>(), [DeliverEmail::One { outbox_id: ids[0] }]);
        assert_eq!(DeliverEmail::batches(&[]).count(), 0);
        assert_eq!(jobs[0].dedupe_key(), DeliverEmail::of(ids[..50].to_vec()).dedupe_key());
        assert_ne!(jobs[0].dedupe_key(), jobs[1].dedupe_key());
        assert_eq!(DeliverEmail::One { outbox_id: ids[0] }.dedupe_key(), format!("outbox:{}", ids[0]));
    }

    #[test]
    fn due_keys_name_the_attempts() {
        let at = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(1);
        let rows: Vec<crate::outbox::DueEmail> = [Uuid::nil(), Uuid::max()]
            .into_iter()
            .map(|id| crate::outbox::DueEmail { id, next_attempt_at: at })
            .collect();
        let (one, key) = DeliverEmail::for_due(&rows[..1]);
        assert_eq!(one, DeliverEmail::One { outbox_id: Uuid::nil() });
        assert_eq!(key, format!("outbox:{}:due:86400000000", Uuid::nil()));
        let (both, key) = DeliverEmail::for_due(&rows);
        assert_eq!(both.outbox_ids(), [Uuid::nil(), Uuid::max()]);
        assert!(key.starts_with("outbox-due:"));
        assert_eq!(key, DeliverEmail::for_due(&rows).1, "the same attempts, the same key");
        let moved: Vec<_> = rows
            .iter()
            .map(|r| crate::outbox::DueEmail { next_attempt_at: at + TimeDelta::seconds(1), ..*r })
            .collect();
        assert_ne!(key, DeliverEmail::for_due(&moved).1, "a moved due instant is a new attempt");
    }

    #[test]
    fn timer_keys_name_the_ticket_and_the_instant() {
        let timer = TicketTimer { ticket_id: Uuid::nil(), due_at: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(1) };
        let moved = TicketTimer { due_at: timer.due_at + TimeDelta::microseconds(1), ..timer };
        assert_ne!(timer.idempotency_key(), moved.idempotency_key());
        assert_eq!(timer.idempotency_key(), format!("ticket-timer:{}:86400000000", Uuid::nil()));
    }

    #[test]
    fn payloads_have_a_stable_wire_format() -> Result<(), serde_json::Error> {
        let json = serde_json::to_value(DeliverEmail::One { outbox_id: Uuid::nil() })?;
        assert_eq!(json, serde_json::json!({ "outbox_id": Uuid::nil() }));
        let batch: DeliverEmail =
            serde_json::from_value(serde_json::json!({ "outbox_ids": [Uuid::nil(), Uuid::max()] }))?;
        assert_eq!(batch.outbox_ids(), [Uuid::nil(), Uuid::max()]);
        let one: DeliverEmail = serde_json::from_value(json)?;
        assert_eq!(one.outbox_ids(), [Uuid::nil()]);
        let old_shape = serde_json::json!({
            "ticket_id": Uuid::nil(), "kind": "auto_close", "due_at": "2026-12-01T13:00:00Z", "version": 3
        });
        let timer: TicketTimer = serde_json::from_value(old_shape)?;
        assert_eq!(timer.due_at.to_rfc3339(), "2026-12-01T13:00:00+00:00");
        Ok(())
    }
}
