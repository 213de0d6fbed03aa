use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app;

async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: worker\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_are_served() {
    let app = spawn_app().await;
    let address = app.workers[0].health;

    let (status, body) = get(address, "/health/live").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["status"], "ok");

    let (status, body) = get(address, "/health/ready").await;
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["checks"]["postgres"]["status"], "ok");
    assert_eq!(ready["checks"]["redis"]["status"], "ok");

    let (status, body) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("helpdesk_worker_emails_sent_total 0"), "{body}");
    assert!(body.contains("helpdesk_worker_jobs_processed_total{queue=\"email\"}"), "{body}");

    assert_eq!(get(address, "/nope").await.0, 404);
    app.finish().await;
}
