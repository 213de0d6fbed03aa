//! A Redis server of the test's own, so a test can `FLUSHALL` without touching the Redis that
//! the other tests share. It is `redis-server` from PATH (the machine's own, or Debian's
//! `redis-server` package) on a free port, with nothing kept on disk.
//!
//! Without `redis-server` on PATH (a machine whose Redis runs only in Docker), the test gets a
//! database index of the shared server that no other test uses, and "flush all" becomes
//! `FLUSHDB` of that index: everything the worker sees is still wiped, and the shared data stays.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::redis_url;

pub struct PrivateRedis {
    url: String,
    server: Option<Child>,
}

/// The index the fallback uses (the tests' prefixes live in index 0).
const FALLBACK_DB: u8 = 13;

impl PrivateRedis {
    pub async fn start() -> Self {
        let Some(port) = free_port() else { return Self::fallback() };
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(server) = spawned else { return Self::fallback() };
        let redis = Self { url: format!("redis://127.0.0.1:{port}"), server: Some(server) };
        let started = Instant::now();
        while redis.ping().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "the private redis-server did not answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        redis
    }

    fn fallback() -> Self {
        eprintln!("redis-server is not on PATH: using database {FALLBACK_DB} of the shared Redis, wiped with FLUSHDB");
        let base = redis_url();
        Self { url: format!("{}/{FALLBACK_DB}", base.trim_end_matches('/')), server: None }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url.as_str())?.get_multiplexed_async_connection().await
    }

    async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.connection().await?;
        redis::cmd("PING").query_async(&mut conn).await
    }

    /// How many keys the worker's Redis holds.
    pub async fn keys(&self) -> i64 {
        let mut conn = self.connection().await.unwrap();
        redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap()
    }

    /// `FLUSHALL` (or, on the shared fallback, `FLUSHDB` of the test's index).
    pub async fn flush_all(&self) {
        let mut conn = self.connection().await.unwrap();
        let command = if self.server.is_some() { "FLUSHALL" } else { "FLUSHDB" };
        let _: () = redis::cmd(command).query_async(&mut conn).await.unwrap();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

fn free_port() -> Option<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    listener.local_addr().ok().map(|address| address.port())
}
