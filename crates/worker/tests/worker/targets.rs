//! HTTP targets for the monitoring tests: a small HTTP/1.1 server on 127.0.0.1:0 that a test
//! switches at run time between up, down (a 5xx, or connections refused), slow, wrong keyword
//! and a redirect, and that counts the connections it accepts (the SSRF tests expect zero).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

/// The page an up target serves; monitors look for this keyword.
pub const KEYWORD: &str = "kadix-ok";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// Answers with this status (a 5xx for "down").
    Status(u16),
    /// Connections are refused: nothing listens on the port.
    Refused,
    /// Answers correctly after this delay.
    Slow(Duration),
    /// 200 without the keyword.
    WrongKeyword,
    /// 302 to this URL.
    Redirect(String),
}

pub struct Target {
    pub address: SocketAddr,
    mode: watch::Sender<Mode>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Target {
    pub async fn start(mode: Mode) -> Self {
        Self::start_on([127, 0, 0, 1], mode).await
    }

    /// On another loopback address (127.0.0.2 for a redirector allowed where 127.0.0.1 is not).
    pub async fn start_on(ip: [u8; 4], mode: Mode) -> Self {
        let listener = bind(SocketAddr::from((ip, 0))).expect("bind a target");
        let address = listener.local_addr().expect("target address");
        let (sender, modes) = watch::channel(mode);
        let connections = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(serve(listener, address, modes, connections.clone()));
        Self { address, mode: sender, connections, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Rebinding the same port after a "refused" spell.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

async fn serve(
    listener: TcpListener,
    address: SocketAddr,
    mut modes: watch::Receiver<Mode>,
    connections: Arc<AtomicUsize>,
) {
    let mut listener = Some(listener);
    loop {
        let mode = modes.borrow_and_update().clone();
        if mode == Mode::Refused {
            // Closing the listener makes the kernel refuse connections to the port.
            listener = None;
            if modes.changed().await.is_err() {
                return;
            }
            continue;
        }
        let current = match listener.take() {
            Some(current) => current,
            None => match bind(address) {
                Ok(current) => current,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        tokio::select! {
            accepted = current.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let modes = modes.clone();
                    tokio::spawn(answer(stream, modes));
                }
                listener = Some(current);
            }
            changed = modes.changed() => {
                if changed.is_err() {
                    return;
                }
                listener = Some(current);
            }
        }
    }
}

/// Reads one request and answers it as `modes` says (over TCP, or TLS for [`crate::tls_targets`]).
pub async fn answer(mut stream: impl AsyncRead + AsyncWrite + Unpin, modes: watch::Receiver<Mode>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
        if request.len() > 64 * 1024 {
            return;
        }
    }
    let mode = modes.borrow().clone();
    let (status, headers, body) = match mode {
        Mode::Up | Mode::Refused => (200, String::new(), format!("<html><body>{KEYWORD}</body></html>")),
        Mode::Status(status) => (status, String::new(), "unavailable".to_owned()),
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (200, String::new(), format!("<html><body>{KEYWORD}</body></html>"))
        }
        Mode::WrongKeyword => (200, String::new(), "<html><body>maintenance page</body></html>".to_owned()),
        Mode::Redirect(to) => (302, format!("Location: {to}\r\n"), String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
