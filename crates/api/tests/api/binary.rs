//! The real `helpdesk-api` binary: start-up failures and graceful shutdown.
use crate::helpers::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn api_command(vars: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_helpdesk-api"));
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "info");
    for (k, v) in vars {
        command.env(k, v);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

#[test]
fn unreachable_database_is_one_clear_line_and_exit_1() {
    let output = api_command(&[
        ("HELPDESK_DEV_MODE", "true".into()),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/helpdesk".into()),
    ])
    .output()
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("cannot reach PostgreSQL at 127.0.0.1:1/helpdesk"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn refuses_to_start_without_a_jwt_secret_outside_dev_mode() {
    let output = api_command(&[]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("HELPDESK_JWT_SECRET is not set"), "{text}");
}

/// A blocking HTTP/1.1 GET, enough to see that the server answers.
fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let vars: Vec<(&str, String)> = test_vars(&[("HELPDESK_LISTEN", &format!("127.0.0.1:{port}"))])
        .into_iter()
        .filter(|(k, _)| k == "DATABASE_URL" || k == "REDIS_URL" || k.starts_with("HELPDESK_"))
        .map(|(k, v)| (Box::leak(k.into_boxed_str()) as &str, v))
        .collect();
    let mut child = api_command(&vars).spawn().unwrap();
    let started = Instant::now();
    loop {
        if http_ok(port, "/health/live") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the API did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(stopping.elapsed() < Duration::from_secs(35), "the API did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status}");
}

/// A newline smuggled into a query parameter's name (it ends up in the error message the
/// request span records) must not start a forged line, in the text and the JSON log formats.
#[tokio::test]
async fn a_forged_newline_in_a_request_leaves_exactly_one_log_line() {
    for format in ["pretty", "json"] {
        forged_newline_leaves_one_line(format).await;
    }
}

async fn forged_newline_leaves_one_line(format: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut vars: Vec<(&str, String)> = test_vars(&[("HELPDESK_LISTEN", &format!("127.0.0.1:{port}"))])
        .into_iter()
        .filter(|(k, _)| k == "DATABASE_URL" || k == "REDIS_URL" || k.starts_with("HELPDESK_"))
        .map(|(k, v)| (Box::leak(k.into_boxed_str()) as &str, v))
        .collect();
    vars.push(("HELPDESK_LOG_FORMAT", format.into()));
    let child = api_command(&vars).spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/health/live")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the API did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login = client
        .post(format!("{base}/v1/auth/login"))
        .json(&serde_json::json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    let token = login.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let forged = client
        .get(format!("{base}/v1/tickets?%0A2026-01-01T00:00:00Z%20ERROR%20forged=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), reqwest::StatusCode::BAD_REQUEST);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let mentions: Vec<&str> = logs.lines().filter(|line| line.contains("forged")).collect();
    assert_eq!(mentions.len(), 1, "{format}: {logs}");
    assert!(mentions[0].contains(r"\n2026-01-01T00:00:00Z ERROR forged"), "the payload is logged, escaped: {logs}");
    assert!(!logs.lines().any(|line| line.starts_with("2026-01-01T00:00:00Z")), "{logs}");
}
