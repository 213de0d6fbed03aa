//! A small SMTP server for the tests: enough of RFC 5321 for lettre (EHLO/HELO, MAIL, RCPT, DATA
//! with dot-unstuffing, RSET, NOOP, QUIT), recording every accepted message's raw text. It can be
//! told to answer 451 (transient), 550 (permanent) or to drop every connection (down).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// `451` to MAIL FROM.
    Transient,
    /// `550` to RCPT TO.
    Permanent,
    /// Closes every connection before the greeting.
    Down,
}

pub const PERMANENT_ANSWER: &str = "5.1.1 <nobody@example.com>: Recipient address rejected";

#[derive(Debug)]
struct State {
    mode: Mode,
    messages: Vec<String>,
    /// How long the server takes to accept a message once its data has arrived.
    answer_delay: Duration,
}

#[derive(Clone)]
pub struct SmtpServer {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state =
            Arc::new(Mutex::new(State { mode: Mode::Accept, messages: Vec::new(), answer_delay: Duration::ZERO }));
        let server = Self { address, state };
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let session = accepting.clone();
                tokio::spawn(async move {
                    let _ = session.serve(stream).await;
                });
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Makes every message take `delay` to be accepted (a slow server: sends stay in flight).
    pub fn set_answer_delay(&self, delay: Duration) {
        self.state.lock().unwrap().answer_delay = delay;
    }

    fn mode(&self) -> Mode {
        self.state.lock().unwrap().mode
    }

    pub fn messages(&self) -> Vec<String> {
        self.state.lock().unwrap().messages.clone()
    }

    /// How many messages arrived (cheaper than `messages().len()` while polling).
    pub fn count(&self) -> usize {
        self.state.lock().unwrap().messages.len()
    }

    /// How many messages carried each Message-ID.
    pub fn count_by_message_id(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for message in self.messages() {
            *counts.entry(header(&message, "Message-ID").unwrap_or_default()).or_insert(0) += 1;
        }
        counts
    }

    /// Waits until at least `count` messages arrived; returns them.
    pub async fn wait_for_messages(&self, count: usize) -> Vec<String> {
        for _ in 0..1200 {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {count} message(s), got {}", self.messages().len());
    }

    async fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        if self.mode() == Mode::Down {
            return Ok(());
        }
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 test-smtp ESMTP ready\r\n").await?;
        while let Some(line) = lines.next_line().await? {
            let command = line.to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") {
                b"250-test-smtp greets you\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
            } else if command.starts_with("HELO") {
                b"250 test-smtp\r\n"
            } else if command.starts_with("MAIL FROM") {
                if self.mode() == Mode::Transient {
                    b"451 4.3.0 Temporary failure, try again later\r\n"
                } else {
                    b"250 2.1.0 Ok\r\n"
                }
            } else if command.starts_with("RCPT TO") {
                if self.mode() == Mode::Permanent {
                    write.write_all(format!("550 {PERMANENT_ANSWER}\r\n").as_bytes()).await?;
                    continue;
                }
                b"250 2.1.5 Ok\r\n"
            } else if command == "DATA" {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut message = String::new();
                let mut terminated = false;
                while let Some(data_line) = lines.next_line().await? {
                    if data_line == "." {
                        terminated = true;
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 §4.5.2).
                    let unstuffed = data_line.strip_prefix('.').unwrap_or(&data_line);
                    message.push_str(unstuffed);
                    message.push_str("\r\n");
                }
                if !terminated {
                    // The client went away mid-message (killed): a real server discards it.
                    return Ok(());
                }
                let delay = self.state.lock().unwrap().answer_delay;
                tokio::time::sleep(delay).await;
                self.state.lock().unwrap().messages.push(message);
                b"250 2.0.0 Ok: queued\r\n"
            } else if command == "RSET" || command == "NOOP" {
                b"250 2.0.0 Ok\r\n"
            } else if command == "QUIT" {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            } else {
                b"502 5.5.2 Command not recognized\r\n"
            };
            write.write_all(reply).await?;
        }
        Ok(())
    }
}

/// The value of a top-level header (unfolded), if present.
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next()?;
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(current) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                current.push_str(line.trim_start_matches([' ', '\t']).trim_end());
                continue;
            }
            break;
        }
        if let Some((key, rest)) = line.split_once(':')
            && key.eq_ignore_ascii_case(name)
        {
            value = Some(rest.trim().to_owned());
        }
    }
    value
}
