//! The real `helpdesk-worker` binary, killed with SIGKILL in the middle of a burst: every e-mail is
//! still delivered, and the only duplicates are e-mails that were in flight at the kill.
use crate::helpers::{base_database_url, redis_url};
use crate::smtp_server::SmtpServer;
use chrono::Utc;
use helpdesk_core::outbox::{self, NewEmail};
use serde_json::json;
use sqlx::PgPool;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

const EMAILS: i64 = 1000;

/// A worker process that is killed when the test ends, even when it fails.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_worker(vars: &[(&str, String)], name: &str) -> WorkerProcess {
    let log = std::env::temp_dir().join(format!("{name}.log"));
    let log = std::fs::File::create(log).expect("a log file for the worker");
    WorkerProcess(
        Command::new(env!("CARGO_BIN_EXE_helpdesk-worker"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .env("HELPDESK_WORKER_NAME", name)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("the worker binary starts"),
    )
}

/// The environment of a worker process on this test's database, Redis prefix and SMTP server.
fn worker_env(database_url: &str, prefix: &str, smtp: &SmtpServer) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", redis_url()),
        ("HELPDESK_REDIS_PREFIX", prefix.to_owned()),
        ("SMTP_URL", smtp.url()),
        ("HELPDESK_WORKER_LISTEN", "127.0.0.1:0".to_owned()),
        ("HELPDESK_DEV_MODE", "true".to_owned()),
        ("HELPDESK_RECONCILE_SECONDS", "1".to_owned()),
        ("HELPDESK_WORKER_POLL_MS", "50".to_owned()),
        ("RUST_LOG", "info,apalis=warn,apalis_core=warn,apalis_redis=warn".to_owned()),
    ]
}

async fn count(pool: &PgPool, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE status = $1")
        .bind(status)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_delivery_loses_nothing_and_duplicates_only_what_was_in_flight() {
    let smtp = SmtpServer::start().await;
    let id = Uuid::now_v7().simple().to_string();
    let database_url = format!("{}/helpdesk_test_{id}", base_database_url());
    let pool = helpdesk_core::db::connect_and_migrate(&database_url, 5).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..EMAILS {
        let email = NewEmail {
            idempotency_key: format!("bulk:{i}"),
            to_address: "ana@example.com",
            to_name: Some("Ana"),
            locale: "pt-BR",
            template: "welcome",
            payload: json!({ "name": "Ana" }),
        };
        outbox::enqueue(&mut tx, email, Utc::now()).await.unwrap();
    }
    tx.commit().await.unwrap();

    let vars = worker_env(&database_url, &format!("test:{id}"), &smtp);
    let mut first = spawn_worker(&vars, &format!("first-{id}"));
    wait_until("the first deliveries", Duration::from_secs(60), async || smtp.messages().len() >= 200).await;
    first.kill(); // SIGKILL: no chance to finish anything

    let delivered_before_kill = smtp.messages().len() as i64;
    assert!(delivered_before_kill < EMAILS, "the kill must land mid-burst to prove anything");
    // Claimed by the dead worker but never marked sent: the most that may arrive twice.
    let in_flight: i64 =
        sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE status = 'pending' AND attempts > 0")
            .fetch_one(&pool)
            .await
            .unwrap();
    // The dead worker's leases would expire after 5 minutes; let that time pass now.
    sqlx::query("UPDATE email_outbox SET next_attempt_at = now() WHERE status = 'pending'")
        .execute(&pool)
        .await
        .unwrap();

    let mut second = spawn_worker(&vars, &format!("second-{id}"));
    wait_until("every e-mail to be sent", Duration::from_secs(120), async || count(&pool, "sent").await == EMAILS)
        .await;
    // Give stragglers a moment to show up as duplicates before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.kill();

    let by_message_id = smtp.count_by_message_id();
    assert_eq!(by_message_id.len() as i64, EMAILS, "every e-mail arrived");
    let duplicates: i64 = by_message_id.values().map(|n| *n as i64 - 1).sum();
    eprintln!(
        "delivered before the kill: {delivered_before_kill}; in flight at the kill: {in_flight}; duplicates: {duplicates}"
    );
    assert!(
        duplicates <= in_flight,
        "{duplicates} duplicates, but only {in_flight} e-mails were in flight at the kill"
    );
    assert_eq!(count(&pool, "failed").await, 0);
}

/// A TCP proxy the test can cut and restore, standing in for a PostgreSQL restart without
/// disturbing the other tests that share the server.
struct CuttableProxy {
    address: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl CuttableProxy {
    async fn start(upstream: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0_u64);
        let (accepting_up, watcher) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting_up.load(Ordering::SeqCst) {
                    continue; // refused: dropped at once
                }
                let mut cut = watcher.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { address, up, generation }
    }

    /// Drops every open connection and refuses new ones, as a stopped server would.
    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_rides_out_an_smtp_outage_and_a_database_restart_without_restarting() {
    use crate::smtp_server::Mode;
    let smtp = SmtpServer::start().await;
    let id = Uuid::now_v7().simple().to_string();
    let database = format!("helpdesk_test_{id}");
    let direct_url = format!("{}/{database}", base_database_url());
    let pool = helpdesk_core::db::connect_and_migrate(&direct_url, 5).await.unwrap();
    let upstream = base_database_url().rsplit('@').next().unwrap_or("127.0.0.1:5432").trim_end_matches('/').to_owned();
    let proxy = CuttableProxy::start(upstream).await;
    let proxied_url = format!("postgres://postgres@{}/{database}", proxy.address);
    let vars = worker_env(&proxied_url, &format!("test:{id}"), &smtp);
    let insert = |key: String| {
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            let email = NewEmail {
                idempotency_key: key,
                to_address: "ana@example.com",
                to_name: None,
                locale: "en",
                template: "welcome",
                payload: json!({ "name": "Ana" }),
            };
            outbox::enqueue(&mut conn, email, Utc::now()).await.unwrap();
        }
    };
    let mut worker = spawn_worker(&vars, &format!("outage-{id}"));

    // 1. SMTP is down: the attempt fails, the e-mail stays pending with the error recorded.
    smtp.set_mode(Mode::Down);
    insert("outage:smtp".to_owned()).await;
    wait_until("a failed attempt", Duration::from_secs(30), async || {
        sqlx::query_scalar::<_, i32>("SELECT attempts FROM email_outbox WHERE idempotency_key = 'outage:smtp'")
            .fetch_one(&pool)
            .await
            .unwrap()
            >= 1
            && sqlx::query_scalar::<_, Option<String>>(
                "SELECT last_error FROM email_outbox WHERE idempotency_key = 'outage:smtp'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    assert_eq!(count(&pool, "pending").await, 1, "a transient failure is retried, not given up");
    // SMTP returns; the back-off (30 s) is let run out.
    smtp.set_mode(Mode::Accept);
    sqlx::query("UPDATE email_outbox SET next_attempt_at = now() WHERE status = 'pending'")
        .execute(&pool)
        .await
        .unwrap();
    wait_until("delivery after the SMTP outage", Duration::from_secs(30), async || count(&pool, "sent").await == 1)
        .await;

    // 2. PostgreSQL goes away (every connection dropped, new ones refused) while e-mails are
    //    written through another route; then it comes back.
    proxy.cut();
    for i in 0..20 {
        insert(format!("outage:db:{i}")).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&pool, "sent").await, 1, "nothing can be delivered while the database is unreachable");
    assert!(worker.is_running(), "the worker keeps running through the outage");
    proxy.restore();
    wait_until("delivery after the database returns", Duration::from_secs(60), async || {
        count(&pool, "sent").await == 21
    })
    .await;
    assert!(worker.is_running(), "recovered without a restart");
    worker.kill();
    assert_eq!(smtp.count_by_message_id().len(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiping_redis_with_retries_pending_loses_no_email() {
    use crate::smtp_server::Mode;
    let smtp = SmtpServer::start().await;
    let id = Uuid::now_v7().simple().to_string();
    let database_url = format!("{}/helpdesk_test_{id}", base_database_url());
    let pool = helpdesk_core::db::connect_and_migrate(&database_url, 5).await.unwrap();
    let prefix = format!("test:{id}");
    let vars = worker_env(&database_url, &prefix, &smtp);
    let mut worker = spawn_worker(&vars, &format!("flush-{id}"));
    smtp.set_mode(Mode::Down);
    {
        let mut tx = pool.begin().await.unwrap();
        for i in 0..20 {
            let email = NewEmail {
                idempotency_key: format!("flush:{i}"),
                to_address: "ana@example.com",
                to_name: None,
                locale: "en",
                template: "welcome",
                payload: json!({ "name": "Ana" }),
            };
            outbox::enqueue(&mut tx, email, Utc::now()).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    // Every e-mail fails once; each now waits for its retry, a delayed job in Redis.
    wait_until("a failed attempt on every e-mail", Duration::from_secs(30), async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM email_outbox WHERE attempts >= 1 AND last_error IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 20
    })
    .await;

    // FLUSHALL, for this deployment: every key under its prefix (tests share one Redis).
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut redis).await.unwrap();
    assert!(!keys.is_empty(), "the retries were queued in Redis");
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await.unwrap();

    // SMTP comes back and the back-off runs out; only PostgreSQL remembers the e-mails now.
    smtp.set_mode(Mode::Accept);
    sqlx::query("UPDATE email_outbox SET next_attempt_at = now() WHERE status = 'pending'")
        .execute(&pool)
        .await
        .unwrap();
    wait_until("every e-mail after the wipe", Duration::from_secs(60), async || count(&pool, "sent").await == 20).await;
    worker.kill();
    assert_eq!(smtp.count_by_message_id().len(), 20);
}
