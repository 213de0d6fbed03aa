//! One HTTP probe of a monitor through the shared guarded client ([`EgressClient`]): status,
//! keyword on a capped body, latency, the certificate's expiry, and why it failed.

use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::egress::EgressRefusal;
use helpdesk_domain::monitoring::probe_state::{ErrorKind, Outcome};
use helpdesk_domain::monitoring::settings::{Keyword, status_expected};
use helpdesk_domain::monitoring::status::KeywordMode;
use std::time::{Duration, Instant};

use crate::egress::{EgressClient, read_capped, refusal_of};

/// Most body bytes read to look for a keyword: a keyword past the first MiB is not looked for.
pub const BODY_CAP: usize = 1024 * 1024;

/// What to probe and what counts as up.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub url: String,
    /// Empty: any 2xx.
    pub expected_statuses: Vec<u16>,
    pub keyword: Option<Keyword>,
    pub latency_threshold: Option<Duration>,
    pub timeout: Duration,
}

/// What a probe found.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub started_at: DateTime<Utc>,
    pub status: Option<u16>,
    pub latency: Duration,
    pub outcome: Outcome,
    /// Why it failed, in words (for the check row and logs).
    pub detail: Option<String>,
    pub certificate_expires_at: Option<DateTime<Utc>>,
}

impl ProbeResult {
    pub fn error(&self) -> Option<ErrorKind> {
        match self.outcome {
            Outcome::Down(kind) => Some(kind),
            _ => None,
        }
    }

    pub fn latency_ms(&self) -> i32 {
        i32::try_from(self.latency.as_millis()).unwrap_or(i32::MAX)
    }
}

/// Probes `target` once. Never fails: every failure is a result with its error kind.
pub async fn probe(client: &EgressClient, target: &ProbeTarget, started_at: DateTime<Utc>) -> ProbeResult {
    let started = Instant::now();
    let mut result = ProbeResult {
        started_at,
        status: None,
        latency: Duration::ZERO,
        outcome: Outcome::Up,
        detail: None,
        certificate_expires_at: None,
    };
    // Literal addresses are refused here, before any connection; names by the resolver.
    let url = match client.check(&target.url) {
        Ok(url) => url,
        Err(refusal) => {
            result.outcome = Outcome::Down(refusal_kind(&refusal));
            result.detail = Some(refusal.to_string());
            return result;
        }
    };
    let response = client.http().get(url).timeout(target.timeout).send().await;
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            result.latency = started.elapsed();
            result.outcome = Outcome::Down(error_kind(&error));
            result.detail = Some(error_chain(&error));
            return result;
        }
    };
    result.status = Some(response.status().as_u16());
    result.certificate_expires_at = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .and_then(certificate_not_after);
    if !status_expected(&target.expected_statuses, response.status().as_u16()) {
        result.latency = started.elapsed();
        result.outcome = Outcome::Down(ErrorKind::Status);
        result.detail = Some(format!("unexpected status {}", response.status().as_u16()));
        return result;
    }
    if let Some(keyword) = &target.keyword {
        let remaining = target.timeout.saturating_sub(started.elapsed());
        let body = match tokio::time::timeout(remaining, read_capped(response, BODY_CAP)).await {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => {
                result.latency = started.elapsed();
                result.outcome = Outcome::Down(error_kind(&error));
                result.detail = Some(error_chain(&error));
                return result;
            }
            Err(_) => {
                result.latency = started.elapsed();
                result.outcome = Outcome::Down(ErrorKind::Timeout);
                result.detail = Some("the body did not arrive in time".to_owned());
                return result;
            }
        };
        if !keyword.satisfied_by(&String::from_utf8_lossy(&body)) {
            result.latency = started.elapsed();
            result.outcome = Outcome::Down(ErrorKind::Keyword);
            result.detail = Some(match keyword.mode {
                KeywordMode::Absent => format!("the keyword {:?} is present", keyword.text),
                KeywordMode::Present => format!("the keyword {:?} is missing", keyword.text),
            });
            return result;
        }
    }
    result.latency = started.elapsed();
    let threshold = target.latency_threshold.and_then(|threshold| TimeDelta::from_std(threshold).ok());
    result.outcome = Outcome::of_success(TimeDelta::from_std(result.latency).unwrap_or(TimeDelta::MAX), threshold);
    result
}

/// A name that resolves to nothing is a DNS failure; every other refusal is the guard's.
fn refusal_kind(refusal: &EgressRefusal) -> ErrorKind {
    match refusal {
        EgressRefusal::Unresolvable => ErrorKind::Dns,
        _ => ErrorKind::Blocked,
    }
}

/// Classifies a failed request. reqwest does not type DNS and TLS failures, so the error chain's
/// text decides between them and a plain connection failure.
fn error_kind(error: &reqwest::Error) -> ErrorKind {
    if let Some(refusal) = refusal_of(error) {
        return refusal_kind(refusal);
    }
    if error.is_timeout() {
        return ErrorKind::Timeout;
    }
    let chain = error_chain(error).to_ascii_lowercase();
    if chain.contains("dns error") || chain.contains("lookup address") || chain.contains("name or service not known") {
        ErrorKind::Dns
    } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("handshake") {
        ErrorKind::Tls
    } else {
        ErrorKind::Connect
    }
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}

/// The notAfter of a DER certificate.
fn certificate_not_after(der: &[u8]) -> Option<DateTime<Utc>> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    DateTime::from_timestamp(certificate.validity().not_after.timestamp(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unresolvable_names_are_dns_failures_other_refusals_blocked() {
        assert_eq!(refusal_kind(&EgressRefusal::Unresolvable), ErrorKind::Dns);
        assert_eq!(refusal_kind(&EgressRefusal::NoHost), ErrorKind::Blocked);
    }
}
