//! SMTP connections the worker opens and pools itself, over sockets with `TCP_NODELAY` set.
//!
//! Why not lettre's pooled transport: lettre 0.11 leaves Nagle's algorithm on and writes a
//! message's final `.` as a second small write, which then waits for the server's delayed ACK,
//! about 40 ms a message on each connection (633 e-mails/s at 32 sends, measured). Its executor
//! is sealed, so its socket cannot be configured from outside; but it accepts a stream we connect
//! (`AsyncSmtpConnection::connect_with_transport`), and that is enough to speak SMTP over a socket
//! we own. lettre's pool also sends a `NOOP` before every reuse; this pool does not, and instead
//! retries once on a fresh connection when a reused one turns out to be closed.
//!
//! TLS: `STARTTLS` (`?tls=required|opportunistic`) upgrades our own socket, so it keeps
//! `TCP_NODELAY`. Implicit TLS (`smtps://`) goes through lettre's own connect, whose socket keeps
//! Nagle on: prefer submission with STARTTLS (port 587) where throughput matters.

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Where and how to connect, parsed from `SMTP_URL` with lettre's rules: `smtp://host[:port]`
/// (plain, port 25), `smtp://host?tls=required` or `?tls=opportunistic` (STARTTLS, port 587),
/// `smtps://host` (implicit TLS, port 465); `user:password@` for AUTH; a path names the EHLO host.
#[derive(Clone)]
pub struct SmtpEndpoint {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
}

impl std::fmt::Debug for SmtpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpEndpoint").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

impl SmtpEndpoint {
    pub fn parse(smtp_url: &str) -> Result<Self, String> {
        let url = url::Url::parse(smtp_url).map_err(|e| e.to_string())?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("the SMTP host is missing")?;
        // `[::1]` in a URL, `::1` on a socket and in TLS names.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let tls_param = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let tls_for = |host: &str| TlsParameters::new(host.to_owned()).map_err(|e| e.to_string());
        let (port, tls) = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None) => (25, Tls::None),
            ("smtp", Some("required")) => (587, Tls::Required(tls_for(&host)?)),
            ("smtp", Some("opportunistic")) => (587, Tls::Opportunistic(tls_for(&host)?)),
            ("smtps", _) => (465, Tls::Wrapper(tls_for(&host)?)),
            (scheme, tls) => return Err(format!("unknown scheme '{scheme}' or tls parameter '{tls:?}'")),
        };
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let credentials = url.password().map(|password| Credentials::new(decode(url.username()), decode(password)));
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        Ok(Self { port: url.port().unwrap_or(port), host, tls, credentials, hello })
    }

    /// Connects, greets (EHLO), upgrades to TLS and authenticates as configured.
    async fn connect(&self, timeout: Duration) -> Result<AsyncSmtpConnection, SmtpError> {
        let mut conn = match &self.tls {
            Tls::Wrapper(parameters) => {
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(timeout),
                    &self.hello,
                    Some(parameters.clone()),
                    None,
                )
                .await?
            }
            _ => {
                let stream = tokio::time::timeout(timeout, TcpStream::connect((self.host.as_str(), self.port)))
                    .await
                    .map_err(|_| SmtpError::TimedOut("connecting to the SMTP server"))??;
                stream.set_nodelay(true)?;
                let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await?;
                match &self.tls {
                    Tls::Required(parameters) => conn.starttls(parameters.clone(), &self.hello).await?,
                    Tls::Opportunistic(parameters) if conn.can_starttls() => {
                        conn.starttls(parameters.clone(), &self.hello).await?
                    }
                    _ => {}
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await?;
        }
        Ok(conn)
    }
}

/// Why a send did not get a "250 OK".
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// From lettre: the server refused (with its answer), or the session broke.
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("cannot connect to the SMTP server: {0}")]
    Connect(#[from] std::io::Error),
    #[error("timed out {0}")]
    TimedOut(&'static str),
}

impl SmtpError {
    /// A failure without any answer from the server: the connection was closed or broke.
    fn is_broken_connection(&self) -> bool {
        matches!(self, Self::Smtp(error) if error.status().is_none() && !error.is_timeout())
    }
}

/// Idle connections, reused newest first. At most `max_idle` are kept; the rest are closed.
pub struct SmtpPool {
    endpoint: SmtpEndpoint,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<(Instant, AsyncSmtpConnection)>>,
}

/// A connection idle this long is closed rather than reused: servers commonly drop idle clients
/// after a minute or so, and a reused dead connection costs a failed attempt.
const MAX_IDLE: Duration = Duration::from_secs(30);

impl SmtpPool {
    pub fn new(endpoint: SmtpEndpoint, timeout: Duration, max_idle: usize) -> Self {
        Self { endpoint, timeout, max_idle: max_idle.max(1), idle: Mutex::new(Vec::new()) }
    }

    /// Sends one message. A pooled connection the server has closed meanwhile fails before any
    /// message data goes out (no answer at all), so that failure is retried once on a new one.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SmtpError> {
        if let Some(conn) = self.take_idle() {
            match self.send_on(conn, envelope, message).await {
                Err(error) if error.is_broken_connection() => {
                    tracing::debug!(%error, "a pooled SMTP connection was closed; sending on a new one");
                }
                result => return result,
            }
        }
        let conn = tokio::time::timeout(self.timeout, self.endpoint.connect(self.timeout))
            .await
            .map_err(|_| SmtpError::TimedOut("connecting to the SMTP server"))??;
        self.send_on(conn, envelope, message).await
    }

    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), SmtpError> {
        match tokio::time::timeout(self.timeout, conn.send(envelope, message)).await {
            Ok(Ok(_)) => {
                self.give_back(conn);
                Ok(())
            }
            // After a refusal or an I/O error the session's state is unknown: close it.
            Ok(Err(error)) => {
                conn.abort().await;
                Err(error.into())
            }
            Err(_) => Err(SmtpError::TimedOut("waiting for the SMTP server")),
        }
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((since, conn)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !conn.has_broken() {
                return Some(conn);
            }
            // Dropped without QUIT: too old to be worth a round trip.
        }
        None
    }

    fn give_back(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle && !conn.has_broken() {
            idle.push((Instant::now(), conn));
        }
    }
}
