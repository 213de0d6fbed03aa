use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use helpdesk_core::jobs::JobQueue;
use helpdesk_core::outbox::{self, NewEmail};
use helpdesk_core::{Clock, Config};
use helpdesk_worker::metrics::Metrics;
use helpdesk_worker::settings::WorkerSettings;
use helpdesk_worker::{RunError, Worker};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::smtp_server::SmtpServer;

pub use helpdesk_test_support::{base_database_url, drop_database, in_tx, redis_url};

/// Settings that make the suite fast: frequent polling and reconciling.
pub fn fast_settings(name: &str) -> WorkerSettings {
    WorkerSettings {
        name: name.to_owned(),
        poll_interval: Duration::from_millis(50),
        reconcile_interval: Duration::from_secs(1),
        smtp_timeout: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(10),
        // Most tests exercise the reconciler's path; `outbox_notifications` tests turn it on.
        outbox_notifications: false,
        // Likewise for ticket timers: the reconciler's sweep, unless a test turns this on.
        ticket_notifications: false,
        ..WorkerSettings::default()
    }
}

pub struct RunningWorker {
    pub metrics: Arc<Metrics>,
    pub health: SocketAddr,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<Result<(), RunError>>,
}

pub struct TestApp {
    pub config: Config,
    pub pool: PgPool,
    pub queue: JobQueue,
    pub smtp: SmtpServer,
    pub clock: Clock,
    pub workers: Vec<RunningWorker>,
    database: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with_workers(1).await
}

/// `count` workers on the same database, queues and SMTP server, as replicas would be.
pub async fn spawn_app_with_workers(count: usize) -> TestApp {
    spawn_app_with_settings(count, |_| {}).await
}

/// Like `spawn_app_with_workers`, with each worker's settings adjusted by `adjust`.
pub async fn spawn_app_with_settings(count: usize, adjust: impl Fn(&mut WorkerSettings)) -> TestApp {
    spawn_app_at(Utc::now(), count, adjust).await
}

/// Like `spawn_app_with_settings`, with the test clock standing at `start` before any worker
/// reads it. A test whose story begins at a fixed date starts there: moving the clock back after
/// the workers have started would let a reconciler round that read the later "now" act on the
/// story's first tickets.
pub async fn spawn_app_at(start: DateTime<Utc>, count: usize, adjust: impl Fn(&mut WorkerSettings)) -> TestApp {
    spawn_app_with_env(start, count, &[], adjust).await
}

/// Like `spawn_app_at`, with extra environment variables for the configuration (the egress
/// allow-list, the probe canary).
pub async fn spawn_app_with_env(
    start: DateTime<Utc>,
    count: usize,
    extra: &[(&str, String)],
    adjust: impl Fn(&mut WorkerSettings),
) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info,helpdesk_worker=debug").with_test_writer().try_init();
    }
    let smtp = SmtpServer::start().await;
    let id = helpdesk_test_support::test_id();
    let database = format!("helpdesk_test_{id}");
    let vars: HashMap<String, String> = [
        ("DATABASE_URL", format!("{}/{database}", base_database_url())),
        ("REDIS_URL", redis_url()),
        ("HELPDESK_REDIS_PREFIX", format!("test:{id}")),
        ("SMTP_URL", smtp.url()),
        ("HELPDESK_MAIL_FROM", "Kadix Atendimento <atendimento@kadix.test>".into()),
        ("HELPDESK_WORKER_LISTEN", "127.0.0.1:0".into()),
        ("HELPDESK_DEV_MODE", "true".into()),
        // Webhook receivers started by the tests listen on 127.0.0.1 (only: 127.0.0.2 stays refused).
        ("HELPDESK_EGRESS_ALLOW_CIDRS", "127.0.0.1/32".into()),
    ]
    .into_iter()
    // Benchmarks may size the worker's pool like a deployment would.
    .chain(std::env::var("BENCH_DB_POOL_SIZE").ok().map(|size| ("HELPDESK_DB_POOL_SIZE", size)))
    .chain(extra.iter().map(|(name, value)| (*name, value.clone())))
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_map(&vars).expect("test config");
    // Stands still unless a test moves it; rows are inserted at its "now", so they are due.
    let clock = Clock::manual(start.trunc_subsecs(6)); // PostgreSQL keeps microseconds

    let mut workers = Vec::new();
    let mut queue = None;
    for index in 0..count {
        let mut settings = fast_settings(&format!("test-{id}-{index}"));
        adjust(&mut settings);
        let (worker, worker_queue) = start_worker(&config, settings, &clock).await;
        queue.get_or_insert(worker_queue);
        workers.push(worker);
    }
    let pool = helpdesk_core::db::connect(&config.database_url, 5).await.expect("test pool");
    TestApp { queue: queue.expect("at least one worker"), config, pool, smtp, clock, workers, database }
}

/// Builds and runs one worker until its `stop` is sent.
async fn start_worker(config: &Config, settings: WorkerSettings, clock: &Clock) -> (RunningWorker, JobQueue) {
    let worker = Worker::build(config, settings, clock.clone()).await.expect("worker builds");
    let queue = worker.queue();
    let (stop, stopped) = oneshot::channel();
    let (metrics, health) = (worker.metrics(), worker.health_address());
    let handle = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    (RunningWorker { metrics, health, stop, handle }, queue)
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl TestApp {
    /// Writes an outbox row the way operations do, without pushing any job.
    pub async fn insert_email(&self, template: &'static str, locale: &str, payload: Value) -> Uuid {
        let key = format!("test:{}", Uuid::now_v7());
        self.insert_email_with_key(&key, template, locale, payload).await
    }

    pub async fn insert_email_with_key(&self, key: &str, template: &'static str, locale: &str, payload: Value) -> Uuid {
        let mut conn = self.pool.acquire().await.unwrap();
        let email = NewEmail {
            idempotency_key: key.to_owned(),
            to_address: "ana@example.com",
            to_name: Some("Ana Souza"),
            locale,
            template,
            payload,
        };
        outbox::enqueue_returning_id(&mut conn, email, self.clock.now()).await.unwrap().expect("a new row")
    }

    pub async fn row(&self, id: Uuid) -> OutboxRow {
        let row = sqlx::query!(
            "SELECT status, attempts, last_error, next_attempt_at, message_id, sent_at FROM email_outbox WHERE id = $1",
            id
        )
        .fetch_one(&self.pool)
        .await
        .unwrap();
        OutboxRow {
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error,
            next_attempt_at: row.next_attempt_at,
            message_id: row.message_id,
            sent_at: row.sent_at,
        }
    }

    /// Polls the row until `done` holds (or fails the test after 30 s: generous, since the suite
    /// runs many workers at once on few cores).
    pub async fn wait_for_row(&self, id: Uuid, what: &str, done: impl Fn(&OutboxRow) -> bool) -> OutboxRow {
        let mut row = self.row(id).await;
        for _ in 0..1200 {
            if done(&row) {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            row = self.row(id).await;
        }
        panic!("outbox row {id} never became {what}: {row:?}");
    }

    pub async fn count_with_status(&self, status: &str) -> i64 {
        sqlx::query_scalar!("SELECT count(*) AS \"count!\" FROM email_outbox WHERE status = $1", status)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub fn advance_clock(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    /// Sum of a counter over all workers.
    pub fn total(&self, counter: impl Fn(&Metrics) -> u64) -> u64 {
        self.workers.iter().map(|w| counter(&w.metrics)).sum()
    }

    /// Waits until a counter summed over all workers reaches `expected` (counters move just after
    /// the database does); returns its final value.
    pub async fn wait_for_total(&self, expected: u64, counter: impl Fn(&Metrics) -> u64) -> u64 {
        for _ in 0..600 {
            if self.total(&counter) >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.total(&counter)
    }

    /// Stops every worker gracefully and starts as many new ones (new names) on the same
    /// database, queues, SMTP server and clock: a deployment restarting its workers.
    pub async fn restart_workers(&mut self, adjust: impl Fn(&mut WorkerSettings)) {
        let count = self.workers.len();
        for worker in self.workers.drain(..) {
            let _ = worker.stop.send(());
            let result =
                tokio::time::timeout(Duration::from_secs(15), worker.handle).await.expect("worker stops in time");
            result.expect("worker task").expect("worker exits cleanly");
        }
        for index in 0..count {
            let mut settings = fast_settings(&format!("restarted-{}-{index}", Uuid::now_v7().simple()));
            adjust(&mut settings);
            let (worker, _) = start_worker(&self.config, settings, &self.clock).await;
            self.workers.push(worker);
        }
    }

    /// Kills every worker abruptly (its tasks are dropped mid-flight, nothing is finished or
    /// recorded) and starts as many new ones: a crash and a restart.
    pub async fn kill_and_restart_workers(&mut self, adjust: impl Fn(&mut WorkerSettings)) {
        let count = self.workers.len();
        for worker in self.workers.drain(..) {
            worker.handle.abort();
            let _ = worker.handle.await;
        }
        for index in 0..count {
            let mut settings = fast_settings(&format!("revived-{}-{index}", Uuid::now_v7().simple()));
            adjust(&mut settings);
            let (worker, _) = start_worker(&self.config, settings, &self.clock).await;
            self.workers.push(worker);
        }
    }

    /// Stops the workers gracefully (asserting they exit cleanly), then deletes this test's Redis
    /// keys and database.
    pub async fn finish(self) {
        for worker in self.workers {
            let _ = worker.stop.send(());
            let result =
                tokio::time::timeout(Duration::from_secs(15), worker.handle).await.expect("worker stops in time");
            result.expect("worker task").expect("worker exits cleanly");
        }
        let mut redis = helpdesk_core::redis_conn::connect(&self.config.redis_url).await.unwrap();
        // SCAN, not KEYS or FLUSHALL: other tests share this Redis.
        let pattern = format!("{}:*", self.config.redis_prefix);
        let mut cursor = 0_u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut redis)
                .await
                .unwrap();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.pool.close().await;
        drop_database(&self.database).await;
    }
}

pub fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

/// An organisation with a contract on `plan`, one customer and some agents, written straight to
/// the database (no password hashing: nobody logs in), plus the calendar and SLA policy seeds
/// that tickets need.
pub struct Desk {
    pub customer: helpdesk_core::accounts::Caller,
    pub agents: Vec<helpdesk_core::accounts::Caller>,
}

/// One e-mail of the outbox, as the timer tests look at it.
#[derive(Debug, Clone)]
pub struct SentRow {
    pub to_address: String,
    pub status: String,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub message_id: Option<String>,
}

/// An organisation on `plan` with one customer, and `agents` agents, in `pool`'s database.
pub async fn desk(pool: &PgPool, plan: &str, agents: usize) -> Desk {
    use helpdesk_core::accounts::Caller;
    use helpdesk_domain::accounts::Role;
    helpdesk_core::sla_store::SlaStore::ensure_seeded(pool).await.unwrap();
    let organization_id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO organizations (id, name) VALUES ($1, $2)",
        organization_id,
        format!("Org {organization_id}")
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query!(
        "INSERT INTO contracts (id, organization_id, plan_id, starts_on, signup_code) SELECT $1, $2, id, '2020-01-01', $3 FROM plans WHERE code = $4",
        Uuid::now_v7(),
        organization_id,
        format!("code-{organization_id}"),
        plan
    )
    .execute(pool)
    .await
    .unwrap();
    let customer = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO users (id, email, name, password_hash, role, organization_id, locale, terms_version, terms_accepted_at) VALUES ($1, $2, 'Ana Cliente', 'x', 'customer', $3, 'pt-BR', '2026-01', now())",
        customer,
        format!("customer-{customer}@example.com"),
        organization_id
    )
    .execute(pool)
    .await
    .unwrap();
    let mut staff = Vec::new();
    for index in 0..agents {
        let agent = Uuid::now_v7();
        sqlx::query!(
            "INSERT INTO users (id, email, name, password_hash, role, locale) VALUES ($1, $2, $3, 'x', 'agent', 'en')",
            agent,
            format!("agent{index}-{agent}@kadix.test"),
            format!("Agent {index}")
        )
        .execute(pool)
        .await
        .unwrap();
        staff.push(Caller { user_id: agent, role: Role::Agent, organization_id: None });
    }
    Desk {
        customer: Caller { user_id: customer, role: Role::Customer, organization_id: Some(organization_id) },
        agents: staff,
    }
}

impl TestApp {
    pub async fn desk(&self, plan: &str, agents: usize) -> Desk {
        desk(&self.pool, plan, agents).await
    }

    /// The outbox rows of one template about one ticket, oldest first.
    pub async fn emails(&self, template: &str, ticket: Uuid) -> Vec<SentRow> {
        sqlx::query_as!(
            SentRow,
            "SELECT to_address, status, next_attempt_at, created_at, message_id FROM email_outbox WHERE template = $1 AND payload->>'ticket_id' = $2 ORDER BY created_at, to_address",
            template,
            ticket.to_string()
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Polls until `count` e-mails of `template` about `ticket` are sent; returns them.
    pub async fn wait_for_sent(&self, template: &str, ticket: Uuid, count: usize) -> Vec<SentRow> {
        let mut rows = self.emails(template, ticket).await;
        for _ in 0..1200 {
            if rows.iter().filter(|r| r.status == "sent").count() >= count {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            rows = self.emails(template, ticket).await;
        }
        panic!("expected {count} sent '{template}' e-mail(s) about {ticket}, got {rows:?}");
    }

    /// Polls until at least `count` e-mails of `template` about `ticket` are in the outbox.
    pub async fn wait_for_queued(&self, template: &str, ticket: Uuid, count: usize) -> Vec<SentRow> {
        let mut rows = self.emails(template, ticket).await;
        for _ in 0..1200 {
            if rows.len() >= count {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            rows = self.emails(template, ticket).await;
        }
        panic!("expected {count} queued '{template}' e-mail(s) about {ticket}, got {rows:?}");
    }

    /// How many messages with this Message-ID the SMTP server received.
    pub fn received(&self, message_id: &str) -> usize {
        let wanted = format!("<{}>", message_id.trim_matches(['<', '>']));
        self.smtp
            .count_by_message_id()
            .into_iter()
            .filter(|(id, _)| id.trim() == wanted || id.trim() == message_id)
            .map(|(_, n)| n)
            .sum()
    }
}
