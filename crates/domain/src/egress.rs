//! Which outbound addresses the server may connect to on a customer's or an integration's
//! behalf (monitor probes, webhook deliveries): the SSRF guard of OWASP API7.
//!
//! The rules are pure so that the API (at creation), the probe and the webhook delivery (after
//! DNS resolution, on every redirect) apply the very same ones. Addresses are refused when they
//! reach our own network or the cloud's metadata service; an operator's allow-list admits some
//! (tests use it for their 127.0.0.1 targets).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use url::{Host, Url};

/// Why an outbound URL or address is refused. The messages name the rule, for problem+json.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressRefusal {
    #[error("the URL is not valid: {0}")]
    InvalidUrl(String),
    #[error("only http and https URLs are allowed, not {0}")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("port {0} is not allowed: use 80, 443 or 1024-65535")]
    Port(u16),
    #[error("the URL must not carry a user name or password")]
    Credentials,
    #[error("{address} is a {kind} address, which is not reachable from this service")]
    Address { address: IpAddr, kind: BlockedKind },
    #[error("the host name resolves to no address")]
    Unresolvable,
}

/// The kind of network an address belongs to, named in refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedKind {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Multicast,
    Broadcast,
    Reserved,
    CloudMetadata,
}

impl std::fmt::Display for BlockedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlockedKind::Unspecified => "unspecified",
            BlockedKind::Loopback => "loopback",
            BlockedKind::Private => "private",
            BlockedKind::LinkLocal => "link-local",
            BlockedKind::SharedCgnat => "carrier-grade NAT",
            BlockedKind::Multicast => "multicast",
            BlockedKind::Broadcast => "broadcast",
            BlockedKind::Reserved => "reserved",
            BlockedKind::CloudMetadata => "cloud metadata",
        })
    }
}

/// A checked URL's destination: the host to resolve (or the literal address) and the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: DestinationHost,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationHost {
    /// A literal address in the URL, already checked.
    Address(IpAddr),
    /// A DNS name, whose addresses must be checked after resolution.
    Name(String),
}

/// The configured exceptions to the guard (`HELPDESK_EGRESS_ALLOW_CIDRS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<IpNet>,
}

/// An allow-list entry that is not a CIDR block or an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR block (e.g. 127.0.0.1/32)")]
pub struct BadAllowEntry(pub String);

impl EgressPolicy {
    /// Refuses every blocked address: the production default.
    pub fn strict() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list of CIDR blocks or bare addresses.
    pub fn parse(list: &str) -> Result<Self, BadAllowEntry> {
        let allowed = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| BadAllowEntry(entry.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Checks one address, as resolved or as written in the URL.
    pub fn check_address(&self, address: IpAddr) -> Result<(), EgressRefusal> {
        let address = canonical(address);
        match blocked_kind(address) {
            Some(kind) if !self.allowed.iter().any(|net| net.contains(&address)) => {
                Err(EgressRefusal::Address { address, kind })
            }
            _ => Ok(()),
        }
    }

    /// Checks every address a name resolved to: one bad address refuses them all, so a DNS
    /// answer cannot smuggle an internal address beside a public one.
    pub fn check_resolved(&self, addresses: impl IntoIterator<Item = IpAddr>) -> Result<(), EgressRefusal> {
        let mut any = false;
        for address in addresses {
            any = true;
            self.check_address(address)?;
        }
        if any { Ok(()) } else { Err(EgressRefusal::Unresolvable) }
    }

    /// Checks what can be known of a URL before resolution: scheme, port, credentials and a
    /// literal address (the WHATWG parser already turned decimal, octal and hex IPv4 forms into
    /// addresses, so `http://2130706433/` is seen as 127.0.0.1).
    pub fn check_url(&self, url: &Url) -> Result<Destination, EgressRefusal> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(EgressRefusal::Scheme(scheme.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressRefusal::Credentials);
        }
        let port = url.port_or_known_default().ok_or(EgressRefusal::NoHost)?;
        if !port_allowed(port) {
            return Err(EgressRefusal::Port(port));
        }
        let host = match url.host() {
            None => return Err(EgressRefusal::NoHost),
            Some(Host::Ipv4(address)) => DestinationHost::Address(IpAddr::V4(address)),
            Some(Host::Ipv6(address)) => DestinationHost::Address(IpAddr::V6(address)),
            Some(Host::Domain(name)) => match IpAddr::from_str(name) {
                Ok(address) => DestinationHost::Address(address),
                Err(_) if name.is_empty() => return Err(EgressRefusal::NoHost),
                Err(_) => DestinationHost::Name(name.trim_end_matches('.').to_owned()),
            },
        };
        if let DestinationHost::Address(address) = host {
            self.check_address(address)?;
        }
        Ok(Destination { host, port })
    }

    /// Parses and checks a URL given as text.
    pub fn check_url_str(&self, url: &str) -> Result<(Url, Destination), EgressRefusal> {
        let parsed = Url::parse(url).map_err(|error| EgressRefusal::InvalidUrl(error.to_string()))?;
        let destination = self.check_url(&parsed)?;
        Ok((parsed, destination))
    }
}

/// 80, 443 and the unprivileged ports; the other privileged ports are internal services
/// (SSH, SMTP, databases' admin ports) a probe has no business reaching.
pub fn port_allowed(port: u16) -> bool {
    port == 80 || port == 443 || port >= 1024
}

/// IPv4 addresses carried inside IPv6 ones (mapped, compatible, NAT64, 6to4) are judged as the
/// IPv4 address they reach.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => embedded_v4(v6).map_or(address, IpAddr::V4),
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = v6.segments();
    let octets = v6.octets();
    let tail = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    match segments {
        // ::ffff:a.b.c.d (mapped)
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        // ::a.b.c.d (deprecated compatible form), but not :: and ::1 themselves
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        // 64:ff9b::a.b.c.d (NAT64 well-known prefix)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        // 2002:AABB:CCDD::/48 (6to4)
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

/// The kind of a blocked address, or `None` for a public one.
pub fn blocked_kind(address: IpAddr) -> Option<BlockedKind> {
    match canonical(address) {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn blocked_v4(v4: Ipv4Addr) -> Option<BlockedKind> {
    let [a, b, c, d] = v4.octets();
    Some(match (a, b, c, d) {
        // AWS, GCP, Azure and OpenStack metadata (inside link-local) and Alibaba's (inside CGNAT).
        (169, 254, 169, 254) | (100, 100, 100, 200) => BlockedKind::CloudMetadata,
        (0, ..) => BlockedKind::Unspecified,
        (127, ..) => BlockedKind::Loopback,
        (10, ..) | (192, 168, ..) => BlockedKind::Private,
        (172, b, ..) if (16..32).contains(&b) => BlockedKind::Private,
        (169, 254, ..) => BlockedKind::LinkLocal,
        (100, b, ..) if (64..128).contains(&b) => BlockedKind::SharedCgnat,
        (255, 255, 255, 255) => BlockedKind::Broadcast,
        (224..=239, ..) => BlockedKind::Multicast,
        // IETF protocol assignments, benchmarking, documentation and the old class E.
        (192, 0, 0, _) | (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => BlockedKind::Reserved,
        (198, 18 | 19, ..) | (240..=255, ..) => BlockedKind::Reserved,
        _ => return None,
    })
}

fn blocked_v6(v6: Ipv6Addr) -> Option<BlockedKind> {
    let first = v6.segments()[0];
    Some(if v6.is_unspecified() {
        BlockedKind::Unspecified
    } else if v6.is_loopback() {
        BlockedKind::Loopback
    } else if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        BlockedKind::CloudMetadata
    } else if first & 0xfe00 == 0xfc00 {
        BlockedKind::Private
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        BlockedKind::LinkLocal
    } else if first & 0xff00 == 0xff00 {
        BlockedKind::Multicast
    } else if first == 0x2001 && v6.segments()[1] == 0x0db8 || first & 0xfff0 == 0x3ff0 {
        // documentation prefixes
        BlockedKind::Reserved
    } else if first == 0x0100 && v6.segments()[1..4] == [0, 0, 0] {
        // discard-only prefix 100::/64
        BlockedKind::Reserved
    } else {
        return None;
    })
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refused(url: &str) -> EgressRefusal {
        match EgressPolicy::strict().check_url_str(url) {
            Err(refusal) => refusal,
            Ok(destination) => panic!("{url} was accepted: {destination:?}"),
        }
    }

    #[test]
    fn literal_internal_addresses_are_refused_in_every_spelling() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://10.1.2.3:8080/",
            "http://172.20.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://[fe80::1]/",
            "http://[fc00::1]/",
            "http://224.0.0.1/",
        ] {
            assert!(matches!(refused(url), EgressRefusal::Address { .. }), "{url} must be refused as an address");
        }
    }

    #[test]
    fn schemes_ports_and_credentials_are_refused() {
        assert_eq!(refused("ftp://example.com/"), EgressRefusal::Scheme("ftp".into()));
        assert_eq!(refused("file:///etc/passwd"), EgressRefusal::Scheme("file".into()));
        assert_eq!(refused("http://example.com:22/"), EgressRefusal::Port(22));
        assert_eq!(refused("https://example.com:0/"), EgressRefusal::Port(0));
        assert_eq!(refused("http://user:pw@example.com/"), EgressRefusal::Credentials);
        assert!(matches!(refused("not a url"), EgressRefusal::InvalidUrl(_)));
    }

    #[test]
    fn public_urls_pass_with_their_destination() {
        let policy = EgressPolicy::strict();
        let (_, destination) = policy.check_url_str("https://Example.COM./status").expect("public name");
        assert_eq!(destination.host, DestinationHost::Name("example.com".into()));
        assert_eq!(destination.port, 443);
        let (_, destination) = policy.check_url_str("http://93.184.216.34:8080/").expect("public address");
        assert_eq!(destination.host, DestinationHost::Address("93.184.216.34".parse().expect("address")));
    }

    #[test]
    fn the_allow_list_admits_exactly_its_blocks() {
        let policy = EgressPolicy::parse("127.0.0.1/32, ::1").expect("valid list");
        assert!(policy.check_url_str("http://127.0.0.1:8080/").is_ok());
        assert!(policy.check_url_str("http://[::1]:8080/").is_ok());
        assert!(policy.check_url_str("http://[::ffff:127.0.0.1]:8080/").is_ok());
        assert!(policy.check_url_str("http://127.0.0.2:8080/").is_err());
        assert_eq!(EgressPolicy::parse("127.0.0.1/33"), Err(BadAllowEntry("127.0.0.1/33".into())));
        assert_eq!(EgressPolicy::parse(""), Ok(EgressPolicy::strict()));
    }

    #[test]
    fn a_resolution_with_one_internal_address_is_refused_whole() {
        let policy = EgressPolicy::strict();
        let public: IpAddr = "93.184.216.34".parse().expect("address");
        let internal: IpAddr = "10.0.0.1".parse().expect("address");
        assert!(policy.check_resolved([public]).is_ok());
        assert!(policy.check_resolved([public, internal]).is_err());
        assert_eq!(policy.check_resolved([]), Err(EgressRefusal::Unresolvable));
    }

    proptest! {
        /// An IPv4 address and its IPv4-mapped IPv6 form always get the same verdict.
        #[test]
        fn mapped_addresses_are_judged_as_their_ipv4(octets in any::<[u8; 4]>()) {
            let v4 = Ipv4Addr::from(octets);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            prop_assert_eq!(blocked_kind(IpAddr::V4(v4)), blocked_kind(mapped));
        }

        /// Every private, loopback or link-local IPv4 address is blocked, whatever its host part.
        #[test]
        fn standard_internal_ranges_are_blocked(octets in any::<[u8; 4]>()) {
            let v4 = Ipv4Addr::from(octets);
            if v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_multicast()
                || v4.is_unspecified() || v4.is_broadcast()
            {
                prop_assert!(blocked_kind(IpAddr::V4(v4)).is_some());
            }
        }
    }
}
