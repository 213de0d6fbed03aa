//! A webhook receiver for the tests: a small HTTP/1.1 server on 127.0.0.1 (keep-alive) that
//! records every request, answers with the status the test sets, or holds it unanswered when told to; and an
//! independent check of the Standard Webhooks signature, computed by Python's `hmac` module.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// The status this request was answered with; 0 for one held unanswered.
    pub status: u16,
    pub arrived: std::time::Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    requests: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    hang: Arc<AtomicBool>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let receiver = Receiver {
            port,
            requests: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            hang: Arc::new(AtomicBool::new(false)),
        };
        let shared = receiver.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = socket.set_nodelay(true);
                    let (read, mut write) = socket.into_split();
                    let mut reader = BufReader::new(read);
                    loop {
                        let mut headers = Vec::new();
                        loop {
                            let mut line = String::new();
                            match reader.read_line(&mut line).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) if line == "\r\n" => break,
                                Ok(_) => headers.push(line.trim_end().to_owned()),
                            }
                        }
                        let header = |name: &str| {
                            headers
                                .iter()
                                .find_map(|h| {
                                    let (k, v) = h.split_once(':')?;
                                    k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                                })
                                .unwrap_or_default()
                        };
                        let length: usize = header("content-length").parse().unwrap_or(0);
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        // A held request was received in full but is never answered: it is
                        // recorded with status 0, as a receiver that acted on it would know it.
                        let hang = shared.hang.load(Ordering::SeqCst);
                        let status = if hang { 0 } else { shared.status.load(Ordering::SeqCst) };
                        shared.requests.lock().unwrap().push(Received {
                            id: header("webhook-id"),
                            timestamp: header("webhook-timestamp"),
                            signature: header("webhook-signature"),
                            body: String::from_utf8_lossy(&body).into_owned(),
                            status,
                            arrived: std::time::Instant::now(),
                        });
                        if hang {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        let answer = format!("status {status}");
                        let response =
                            format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{answer}", answer.len());
                        if write.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        receiver
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn hang(&self, hang: bool) {
        self.hang.store(hang, Ordering::SeqCst);
    }

    /// Every request received, answered or held.
    pub fn all(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests answered with a 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| (200..300).contains(&r.status)).collect()
    }

    /// Waits until `done` holds for the accepted requests; panics after `seconds`.
    pub async fn wait_for(&self, seconds: u64, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..seconds * 20 {
            let accepted = self.accepted();
            if done(&accepted) {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let types: Vec<String> = self.accepted().iter().map(|r| r.json()["type"].to_string()).collect();
        panic!("timed out waiting for {what}; accepted so far: {types:?}");
    }
}

/// How many of `requests` carry a signature that Python's `hmac`/`hashlib` (not our signer)
/// computes from `secret`: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
pub fn verified_by_python(secret: &str, requests: &[Received]) -> usize {
    let script = r#"
import base64, hashlib, hmac, json, sys
data = json.load(sys.stdin)
key = base64.b64decode(data["secret"][len("whsec_"):])
ok = 0
for r in data["requests"]:
    signed = f'{r["id"]}.{r["timestamp"]}.{r["body"]}'.encode()
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if any(hmac.compare_digest(expected, s) for s in r["signature"].split(" ")):
        ok += 1
print(ok)
"#;
    let input = serde_json::json!({
        "secret": secret,
        "requests": requests.iter().map(|r| serde_json::json!({
            "id": r.id, "timestamp": r.timestamp, "body": r.body, "signature": r.signature,
        })).collect::<Vec<_>>(),
    });
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap()
}
