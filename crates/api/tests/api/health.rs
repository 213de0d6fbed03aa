use crate::helpers::*;
use reqwest::StatusCode;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[tokio::test]
async fn liveness_readiness_and_metrics() {
    let app = spawn_app().await;
    let live = ok_json(app.get("/health/live", None).await, StatusCode::OK).await;
    assert_eq!(live["status"], "ok");
    let ready = ok_json(app.get("/health/ready", None).await, StatusCode::OK).await;
    assert_eq!((ready["postgres"].as_str(), ready["redis"].as_str()), (Some("up"), Some("up")));

    app.get("/v1/plans", Some(&app.admin_token)).await;
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains(r#"http_requests_total{method="GET",route="/v1/plans",status="200"} 1"#), "{metrics}");
    assert!(
        metrics.contains(r#"http_request_duration_seconds_count{method="POST",route="/v1/auth/login",status="200"} 1"#),
        "{metrics}"
    );
}

/// A TCP proxy to the real Redis that the test can cut, as a network failure would.
async fn cuttable_redis_proxy() -> (String, Arc<Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let upstream = redis_url().trim_start_matches("redis://").trim_end_matches('/').to_owned();
    let cut = Arc::new(Notify::new());
    let cut_signal = cut.clone();
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut client, _)) = accepted else { break };
                    let upstream = upstream.clone();
                    connections.spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
                () = cut_signal.notified() => break,
            }
        }
        // Dropping the listener and aborting every piped connection takes "Redis" off the network.
        connections.abort_all();
    });
    (format!("redis://{address}"), cut)
}

#[tokio::test]
async fn readiness_is_503_naming_redis_when_redis_is_unreachable() {
    let (proxy_url, cut) = cuttable_redis_proxy().await;
    let app = spawn_app_with(&[("REDIS_URL", &proxy_url)]).await;
    ok_json(app.get("/health/ready", None).await, StatusCode::OK).await;

    cut.notify_one();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let response = app.get("/health/ready", None).await;
    let body = assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable").await;
    assert_eq!(body["redis"], "down");
    assert_eq!(body["postgres"], "up");
    assert!(body["detail"].as_str().unwrap().contains("redis"));
    // Liveness does not depend on Redis: the process itself is fine.
    ok_json(app.get("/health/live", None).await, StatusCode::OK).await;
}
