//! A deliberately tiny HTTP/1.1 listener for probes and scraping: `GET /health/live`,
//! `GET /health/ready` (PostgreSQL and Redis answer) and `GET /metrics`. One request per
//! connection, no keep-alive, no bodies in: that is all orchestrators and Prometheus need, and it
//! spares the worker a web framework.

use redis::aio::ConnectionManager;
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;
use crate::queues::{self, QueueSpec};

const MAX_REQUEST_HEAD: usize = 8 * 1024;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct HealthState {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub metrics: Arc<Metrics>,
    /// The queue registry, whose job counters `/metrics` reports.
    pub queues: Arc<[QueueSpec]>,
}

/// Serves until the task is aborted.
pub async fn serve(listener: TcpListener, state: HealthState) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let state = state.clone();
                tokio::spawn(async move {
                    // A client that stalls past the timeout is simply dropped.
                    if let Ok(Err(error)) = tokio::time::timeout(CLIENT_TIMEOUT, handle(stream, &state)).await {
                        tracing::debug!(error = %error, "health connection error");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(error = %error, "health listener cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

async fn handle(mut stream: TcpStream, state: &HealthState) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let request_line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|line| String::from_utf8_lossy(line).trim().to_owned())
        .unwrap_or_default();
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let response = route(method, path, state).await;
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(response.body.as_bytes()).await?;
    }
    stream.shutdown().await
}

async fn route(method: &str, path: &str, state: &HealthState) -> Response {
    const JSON: &str = "application/json";
    if method != "GET" && method != "HEAD" {
        return Response {
            status: "405 Method Not Allowed",
            content_type: JSON,
            body: json!({ "error": "method not allowed" }).to_string(),
        };
    }
    match path {
        "/health/live" => {
            Response { status: "200 OK", content_type: JSON, body: json!({ "status": "ok" }).to_string() }
        }
        "/health/ready" => {
            let (postgres, redis) = tokio::join!(check_postgres(&state.pool), check_redis(state.redis.clone()));
            let ready = postgres.is_ok() && redis.is_ok();
            let describe = |check: &Result<(), String>| match check {
                Ok(()) => json!({ "status": "ok" }),
                Err(error) => json!({ "status": "unavailable", "error": error }),
            };
            Response {
                status: if ready { "200 OK" } else { "503 Service Unavailable" },
                content_type: JSON,
                body: json!({ "status": if ready { "ready" } else { "not ready" }, "checks": { "postgres": describe(&postgres), "redis": describe(&redis) } })
                    .to_string(),
            }
        }
        "/metrics" => Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4",
            body: state.metrics.render(&queues::counters(&state.queues, &state.metrics)),
        },
        _ => {
            Response { status: "404 Not Found", content_type: JSON, body: json!({ "error": "not found" }).to_string() }
        }
    }
}

async fn check_postgres(pool: &PgPool) -> Result<(), String> {
    match tokio::time::timeout(DEPENDENCY_TIMEOUT, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

async fn check_redis(mut redis: ConnectionManager) -> Result<(), String> {
    let ping = redis::cmd("PING");
    match tokio::time::timeout(DEPENDENCY_TIMEOUT, ping.query_async::<String>(&mut redis)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}
