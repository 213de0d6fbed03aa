//! Composing messages with lettre, sending them over the worker's own SMTP connections
//! (`smtp_pool`), and sorting failures into the ones worth retrying and the ones that are final.

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use sha2::{Digest, Sha256};
use std::error::Error as _;
use std::time::Duration;

use crate::invite::CalendarInvite;
use crate::smtp_pool::{SmtpEndpoint, SmtpError, SmtpPool};
use crate::templates::Rendered;

#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    /// `smtp://host:port` (plain), `smtp://host?tls=required` (STARTTLS) or `smtps://host` (TLS).
    #[error("SMTP_URL is invalid: {0}")]
    BadUrl(String),
    #[error("HELPDESK_MAIL_FROM is not a valid mailbox ('Name <address>'): {0}")]
    BadFrom(lettre::address::AddressError),
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendFailure {
    /// Worth another try later: the server is unreachable, timed out, or answered 4xx.
    #[error("{0}")]
    Transient(String),
    /// The server refused the message for good (5xx); carries the server's answer.
    #[error("{0}")]
    Permanent(String),
}

/// Why a message could not be built. Permanent: the row's data is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("invalid recipient address '{address}': {source}")]
    BadRecipient { address: String, source: lettre::address::AddressError },
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("cannot attach the calendar invite: {0}")]
    BadInvite(String),
}

/// The `Message-ID` for an outbox row: derived from its idempotency key, so every copy of the
/// same e-mail carries the same id and a duplicate delivery is recognisable by mail systems and
/// by people.
pub fn message_id_for(idempotency_key: &str) -> String {
    format!("<{}@helpdesk>", hex::encode(Sha256::digest(idempotency_key.as_bytes())))
}

pub struct Mailer {
    pool: SmtpPool,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks the configuration; connects lazily, on the first message, and keeps up to
    /// `pool_size` idle connections (one per concurrent send, so none is closed and reopened).
    pub fn new(smtp_url: &str, mail_from: &str, timeout: Duration, pool_size: u32) -> Result<Self, SmtpConfigError> {
        let endpoint = SmtpEndpoint::parse(smtp_url).map_err(SmtpConfigError::BadUrl)?;
        let from = mail_from.parse().map_err(SmtpConfigError::BadFrom)?;
        let max_idle = usize::try_from(pool_size).unwrap_or(usize::MAX);
        Ok(Self { pool: SmtpPool::new(endpoint, timeout, max_idle), from })
    }

    /// A `multipart/alternative` message (text first, HTML preferred by clients that can); with
    /// an invite, that inside a `multipart/mixed` whose second part is the `.ics`.
    pub fn compose(
        &self,
        to_address: &str,
        to_name: Option<&str>,
        message_id: &str,
        rendered: Rendered,
        invite: Option<CalendarInvite>,
    ) -> Result<Message, ComposeError> {
        let address = to_address
            .parse()
            .map_err(|source| ComposeError::BadRecipient { address: to_address.to_owned(), source })?;
        let to = Mailbox::new(to_name.map(str::to_owned), address);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(message_id.to_owned()));
        let body = MultiPart::alternative_plain_html(rendered.text, rendered.html);
        let body = match invite {
            None => body,
            Some(invite) => {
                let content_type =
                    ContentType::parse(&invite.content_type()).map_err(|e| ComposeError::BadInvite(e.to_string()))?;
                MultiPart::mixed()
                    .multipart(body)
                    .singlepart(Attachment::new("invite.ics".to_owned()).body(invite.ics, content_type))
            }
        };
        Ok(message.multipart(body)?)
    }

    pub async fn send(&self, message: Message) -> Result<(), SendFailure> {
        let bytes = message.formatted();
        self.pool.send(message.envelope(), &bytes).await.map_err(classify)
    }
}

/// Only an explicit 5xx answer is final. Everything else (refused connection, timeout, TLS
/// trouble, 4xx) may pass, and the attempt limit stops a retry loop that never does.
fn classify(error: SmtpError) -> SendFailure {
    let error = match error {
        SmtpError::Smtp(error) => error,
        other => return SendFailure::Transient(other.to_string()),
    };
    let detail = error.source().map(ToString::to_string).unwrap_or_default();
    match error.status() {
        Some(code) if error.is_permanent() => SendFailure::Permanent(format!("{code} {detail}").trim_end().to_owned()),
        Some(code) => SendFailure::Transient(format!("{code} {detail}").trim_end().to_owned()),
        None => SendFailure::Transient(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_per_idempotency_key() {
        let id = message_id_for("welcome:42");
        assert_eq!(id, message_id_for("welcome:42"));
        assert_ne!(id, message_id_for("welcome:43"));
        assert!(id.starts_with('<') && id.ends_with("@helpdesk>"));
        assert_eq!(id.len(), 1 + 64 + "@helpdesk>".len());
    }

    #[tokio::test]
    async fn rejects_bad_configuration_with_the_variable_named() {
        assert!(matches!(Mailer::new("ftp://x", "a@b.c", Duration::from_secs(1), 1), Err(SmtpConfigError::BadUrl(_))));
        let err = Mailer::new("smtp://127.0.0.1:1025", "not a mailbox", Duration::from_secs(1), 1).err();
        assert!(err.is_some_and(|e| e.to_string().contains("HELPDESK_MAIL_FROM")));
        assert!(Mailer::new("smtps://smtp.example.com", "Kadix <a@b.c>", Duration::from_secs(1), 1).is_ok());
        assert!(Mailer::new("smtp://smtp.example.com:587?tls=required", "a@b.c", Duration::from_secs(1), 1).is_ok());
    }
}
