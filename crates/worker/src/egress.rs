//! The one outbound HTTP client of the worker (monitor probes, webhook deliveries), with the
//! SSRF guard built in: every name is resolved by [`GuardedResolver`], which refuses the whole
//! answer if any address is internal, and the connection goes to the addresses it checked, so a
//! second DNS answer cannot swap them (DNS rebinding). Literal addresses are checked before the
//! request and on every redirect; proxies from the environment are ignored, since a proxy would
//! reach the target on our behalf unchecked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use helpdesk_domain::egress::{EgressPolicy, EgressRefusal};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

/// Timeouts and limits of the shared client; a request may set a shorter total timeout.
#[derive(Debug, Clone)]
pub struct EgressOptions {
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub max_redirects: usize,
    pub user_agent: String,
    /// Roots trusted besides the system's (`HELPDESK_EGRESS_CA_FILE`).
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl Default for EgressOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            max_redirects: 5,
            user_agent: format!("kadix-helpdesk/{}", env!("CARGO_PKG_VERSION")),
            extra_roots: Vec::new(),
        }
    }
}

/// The worker's shared outbound client. Cheap to clone.
#[derive(Clone)]
pub struct EgressClient {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl EgressClient {
    pub fn new(policy: EgressPolicy, options: &EgressOptions) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let redirect_policy = Arc::clone(&policy);
        let max_redirects = options.max_redirects;
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(GuardedResolver { policy: Arc::clone(&policy) })
            .connect_timeout(options.connect_timeout)
            .timeout(options.total_timeout)
            .user_agent(options.user_agent.clone())
            .tls_info(true)
            .tls_certs_merge(options.extra_roots.iter().cloned())
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= max_redirects {
                    return attempt.error(TooManyRedirects(max_redirects));
                }
                match redirect_policy.check_url(attempt.url()) {
                    Ok(_) => attempt.follow(),
                    Err(refusal) => attempt.error(refusal),
                }
            }))
            .build()?;
        Ok(Self { client, policy })
    }

    /// Checks `url` before a request: scheme, port and a literal address. Names are checked by
    /// the resolver when the request connects.
    pub fn check(&self, url: &str) -> Result<Url, EgressRefusal> {
        self.policy.check_url_str(url).map(|(url, _)| url)
    }

    /// The underlying client, for building requests to URLs that went through [`Self::check`].
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }
}

#[derive(Debug, thiserror::Error)]
#[error("more than {0} redirects")]
pub struct TooManyRedirects(pub usize);

/// Reads a PEM bundle of extra root certificates (`HELPDESK_EGRESS_CA_FILE`); a file that holds
/// no certificate is an error, not a silent no-op.
pub fn read_roots(path: &str) -> Result<Vec<reqwest::Certificate>, RootsError> {
    let pem = std::fs::read(path).map_err(|source| RootsError::Read { path: path.to_owned(), source })?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|source| RootsError::Parse { path: path.to_owned(), reason: source.to_string() })?;
    if roots.is_empty() {
        return Err(RootsError::Parse { path: path.to_owned(), reason: "no CERTIFICATE in it".to_owned() });
    }
    Ok(roots)
}

#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("cannot read HELPDESK_EGRESS_CA_FILE={path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("HELPDESK_EGRESS_CA_FILE={path} is not a PEM bundle of certificates: {reason}")]
    Parse { path: String, reason: String },
}

/// The guard's refusal inside a failed request, if that is why it failed.
pub fn refusal_of(error: &reqwest::Error) -> Option<&EgressRefusal> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refusal) = current.downcast_ref::<EgressRefusal>() {
            return Some(refusal);
        }
        source = current.source();
    }
    None
}

/// Reads at most `cap` bytes of a response body; the rest is never read, so a huge or endless
/// body costs neither memory nor time.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while body.len() < cap {
        match response.chunk().await? {
            Some(chunk) => {
                let room = cap - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok(body)
}

struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            policy.check_resolved(addresses.iter().map(SocketAddr::ip))?;
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}
