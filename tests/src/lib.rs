//! The system under test, as it is deployed: the `helpdesk-api` and `helpdesk-worker` binaries
//! the workspace build made, started as processes with a fresh PostgreSQL database, a Redis
//! prefix of their own and the SMTP listener of `helpdesk-test-support`, reached only over HTTP
//! and SMTP. Time moves as it does for a deployment: both processes are restarted with
//! `HELPDESK_CLOCK_OFFSET_SECONDS`, running ahead of the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use helpdesk_test_support::smtp::SmtpServer;
use helpdesk_test_support::{base_database_url, drop_database, redis_url, test_id};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ADMIN_EMAIL: &str = "admin@system.test";
pub const PASSWORD: &str = "system-test-password-2026";
pub const TERMS: &str = "2026-01";

/// Where cargo put the workspace's binaries: beside the `deps/` folder this test runs from, or
/// `HELPDESK_BIN_DIR` when set (binaries built elsewhere).
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("HELPDESK_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        let deps = exe.parent().expect("deps/");
        if deps.ends_with("deps") { deps.parent().expect("the profile folder").to_owned() } else { deps.to_owned() }
    });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (`cargo build --workspace` or `scripts/test`)",
        path.display()
    );
    path
}

/// A port the OS says is free now; the process started next binds it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One deployment: the database, Redis prefix and mail catcher survive restarts of its processes.
pub struct System {
    id: String,
    pub smtp: SmtpServer,
    pub api_url: String,
    api_port: u16,
    worker_port: u16,
    offset: Duration,
    processes: Vec<Child>,
    pub http: reqwest::Client,
    extra_env: Vec<(String, String)>,
}

impl System {
    /// Starts the API and the worker on the wall clock.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts them with extra environment variables for the API (e.g. `HELPDESK_CORS_ORIGINS`).
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let mut system = System {
            id: test_id(),
            smtp: SmtpServer::start().await,
            api_url: String::new(),
            api_port: free_port(),
            worker_port: free_port(),
            offset: Duration::ZERO,
            processes: Vec::new(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
            extra_env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        };
        system.api_url = format!("http://127.0.0.1:{}", system.api_port);
        system.launch().await;
        system
    }

    pub fn database_name(&self) -> String {
        format!("helpdesk_test_{}", self.id)
    }

    fn common_env(&self) -> Vec<(String, String)> {
        let offset = self.offset.as_secs();
        let mut env = vec![
            ("DATABASE_URL".into(), format!("{}/{}", base_database_url(), self.database_name())),
            ("REDIS_URL".into(), redis_url()),
            ("HELPDESK_REDIS_PREFIX".into(), format!("test:{}", self.id)),
            ("HELPDESK_DEV_MODE".into(), "true".into()),
            ("HELPDESK_DB_POOL_SIZE".into(), "3".into()),
            ("RUST_LOG".into(), "warn".into()),
        ];
        if offset > 0 {
            env.push(("HELPDESK_CLOCK_OFFSET_SECONDS".into(), offset.to_string()));
        }
        env
    }

    /// Starts the API, waits for it to be ready (it creates and migrates the database), then the
    /// worker, and waits for that too.
    async fn launch(&mut self) {
        let mut api = Command::new(binary("helpdesk-api"));
        api.envs(self.common_env())
            .env("HELPDESK_LISTEN", format!("127.0.0.1:{}", self.api_port))
            .env("HELPDESK_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("HELPDESK_ADMIN_PASSWORD", PASSWORD)
            .env("HELPDESK_AUTH_RATE_LIMIT", "1000")
            .env("HELPDESK_AUTH_IP_RATE_LIMIT", "1000")
            .envs(self.extra_env.clone());
        self.processes.push(spawn(api));
        self.wait_ready(&format!("{}/health/ready", self.api_url)).await;

        let mut worker = Command::new(binary("helpdesk-worker"));
        worker
            .envs(self.common_env())
            .env("SMTP_URL", self.smtp.url())
            .env("HELPDESK_WORKER_LISTEN", format!("127.0.0.1:{}", self.worker_port))
            .env("HELPDESK_WORKER_NAME", format!("system-{}-{}", self.id, self.offset.as_secs()))
            .env("HELPDESK_WORKER_POLL_MS", "100")
            .env("HELPDESK_RECONCILE_SECONDS", "1");
        self.processes.push(spawn(worker));
        self.wait_ready(&format!("http://127.0.0.1:{}/health/ready", self.worker_port)).await;
    }

    async fn wait_ready(&mut self, url: &str) {
        for _ in 0..600 {
            if let Ok(response) = self.http.get(url).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            for child in &mut self.processes {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("a helpdesk process exited during start-up: {status}");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{url} did not become ready in 60 s");
    }

    /// Stops both processes (SIGTERM, then the drain) and starts them again with their clocks
    /// `ahead` of the wall clock: days pass for the deployment in a second of the test's.
    pub async fn restart_ahead(&mut self, ahead: Duration) {
        self.stop().await;
        self.offset = ahead;
        self.launch().await;
    }

    async fn stop(&mut self) {
        for mut child in self.processes.drain(..).rev() {
            // SIGTERM: what an orchestrator sends; both binaries drain and exit.
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            for _ in 0..400 {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.api_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A call that must answer `expected`; returns the JSON body.
    pub async fn expect(
        &self,
        expected: StatusCode,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (status, answer) = self.call(method.clone(), path, token, body.as_ref()).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        answer
    }

    pub async fn login(&self, email: &str) -> String {
        let session = self
            .expect(
                StatusCode::OK,
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({ "email": email, "password": PASSWORD })),
            )
            .await;
        session["access_token"].as_str().unwrap().to_owned()
    }

    /// Waits until an e-mail to `to` whose raw text contains `needle` has arrived; returns it.
    pub async fn mail(&self, to: &str, needle: &str) -> String {
        for _ in 0..300 {
            if let Some(found) = self.smtp.messages().into_iter().find(|m| addressed_to(m, to) && m.contains(needle)) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let subjects: Vec<String> = self
            .smtp
            .messages()
            .iter()
            .flat_map(|m| {
                m.lines()
                    .filter(|l| l.starts_with("Subject:") || l.starts_with("To:"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        panic!("no e-mail to {to} containing {needle:?} in 30 s; arrived: {subjects:#?}");
    }
}

/// Whether the message's `To:` header names `address` (bare or as `Name <address>`).
fn addressed_to(message: &str, address: &str) -> bool {
    message.lines().any(|line| line.starts_with("To:") && line.contains(address))
}

fn spawn(mut command: Command) -> Child {
    // The processes' own logs go where the test's output goes (nextest shows them on failure).
    command.stdin(Stdio::null()).spawn().expect("start a helpdesk binary")
}

impl Drop for System {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
        let name = self.database_name();
        // Drop the database from a thread of its own: Drop cannot await on the test's runtime.
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                std::thread::sleep(Duration::from_millis(200));
                runtime.block_on(drop_database(&name));
            }
        })
        .join();
    }
}
