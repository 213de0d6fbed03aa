//! The SSRF guard's check at creation: a URL that a monitor will probe or a webhook will be
//! delivered to is refused when it, or any address its name resolves to now, is internal.
//! The worker checks again on every request, since DNS answers change.

use std::net::IpAddr;

use helpdesk_domain::egress::{DestinationHost, EgressPolicy, EgressRefusal};
use url::Url;

/// Parses, checks and resolves `url`; returns the parsed URL when every address is allowed.
pub async fn check_reachable(policy: &EgressPolicy, url: &str) -> Result<Url, EgressRefusal> {
    let (parsed, destination) = policy.check_url_str(url)?;
    if let DestinationHost::Name(name) = &destination.host {
        let addresses: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), destination.port))
            .await
            .map_err(|_| EgressRefusal::Unresolvable)?
            .map(|address| address.ip())
            .collect();
        policy.check_resolved(addresses)?;
    }
    Ok(parsed)
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_allowed() {
        let strict = EgressPolicy::strict();
        assert!(matches!(check_reachable(&strict, "http://localhost:8080/").await, Err(EgressRefusal::Address { .. })));
        let allowing = EgressPolicy::parse("127.0.0.0/8,::1/128").expect("valid list");
        assert!(check_reachable(&allowing, "http://localhost:8080/").await.is_ok());
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_refused() {
        let strict = EgressPolicy::strict();
        assert_eq!(check_reachable(&strict, "http://no-such-host.invalid/").await, Err(EgressRefusal::Unresolvable));
    }
}
