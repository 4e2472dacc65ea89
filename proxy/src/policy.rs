//! Which targets the relay may connect to: deny by default.
//!
//! A target passes two checks. [`TargetPolicy::check_request`] runs before DNS: the port must be
//! allowed, the name must not be denied and, when an allow list is set, must be on it.
//! [`TargetPolicy::check_address`] runs on every resolved address: addresses in the reserved
//! ranges ([`reserved_range`]) are refused unless the operator re-allowed them
//! (`--allow-private-targets`, or an explicit CIDR in the allow list).
//!
//! An address inside a NAT64 prefix (`64:ff9b::/96`, and any configured with
//! [`TargetPolicy::nat64_prefixes`]) reaches the IPv4 address it embeds through the site's
//! gateway, so every rule judges it by that IPv4 address, as it does IPv4-mapped addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv6Net};
use webpop_shared::relay::Target;

/// The ports allowed when none are configured: POP3 over TLS and POP3 with STLS.
pub const DEFAULT_PORTS: [u16; 2] = [995, 110];

/// A host rule from `--allow-host` or `--deny-host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// One DNS name, matched case-insensitively (`pop.example.com`).
    Exact(String),
    /// Every name below a domain, not the domain itself (`*.example.com`).
    Subdomains(String),
    /// An address range (`192.0.2.0/24`, `2001:db8::/32`, or one address).
    Net(IpNet),
}

/// Why a host pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a host name, `*.domain` wildcard, IP address or CIDR range")]
pub struct PatternError(String);

impl FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PatternError(s.to_owned());
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Self::Net(net.trunc()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Net(IpNet::from(ip)));
        }
        let (wildcard, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        // Same rules as a relay target's host, so a pattern can match what a request names.
        let target = Target::new(name, 1).map_err(|_| bad())?;
        if target.ip().is_some() || name.contains('*') {
            return Err(bad());
        }
        let name = target.host().to_owned();
        Ok(if wildcard {
            Self::Subdomains(name)
        } else {
            Self::Exact(name)
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Subdomains(domain) => write!(f, "*.{domain}"),
            Self::Net(net) => write!(f, "{net}"),
        }
    }
}

impl HostPattern {
    /// Whether this is a name rule matching `host` (a normalised [`Target`] host).
    fn matches_name(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => host == name,
            Self::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            Self::Net(_) => false,
        }
    }

    /// Whether this is an address rule containing `ip` or `embedded`, the IPv4 address that
    /// `ip` stands for (IPv4-mapped or NAT64), if any.
    fn contains(&self, ip: IpAddr, embedded: Option<Ipv4Addr>) -> bool {
        match self {
            Self::Net(net) => {
                net.contains(&ip) || embedded.is_some_and(|v4| net.contains(&IpAddr::V4(v4)))
            }
            _ => false,
        }
    }
}

/// The well-known NAT64 prefix (RFC 6052), always mapped.
const WELL_KNOWN_NAT64: u128 = 0x0064_ff9b << 96;

/// A NAT64 prefix (`--nat64-prefix`): a /96 whose addresses a gateway translates to the IPv4
/// address in their last 32 bits. Other prefix lengths (RFC 6052 allows some) are refused:
/// they spread the IPv4 address around a reserved octet, and sites use /96.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nat64Prefix(Ipv6Net);

/// Why a NAT64 prefix could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IPv6 /96 prefix such as 64:ff9b::/96")]
pub struct Nat64PrefixError(String);

impl FromStr for Nat64Prefix {
    type Err = Nat64PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().parse::<Ipv6Net>() {
            Ok(net) if net.prefix_len() == 96 => Ok(Self(net.trunc())),
            _ => Err(Nat64PrefixError(s.to_owned())),
        }
    }
}

impl fmt::Display for Nat64Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Nat64Prefix {
    /// The IPv4 address `ip` embeds, if it lies in this prefix.
    fn embedded(&self, ip: Ipv6Addr) -> Option<Ipv4Addr> {
        self.0
            .contains(&ip)
            .then(|| Ipv4Addr::from(u128::from(ip) as u32))
    }
}

/// Why the policy refused a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The port is not on the allowed list.
    #[error("port {0} is not allowed")]
    Port(u16),
    /// The host name or address matches a deny rule.
    #[error("{0} is denied")]
    Denied(String),
    /// An allow list is set and the host is not on it.
    #[error("{0} is not on the allow list")]
    NotAllowed(String),
    /// The address is in a reserved range.
    #[error("{ip} is a {range} address")]
    Reserved {
        /// The refused address.
        ip: IpAddr,
        /// The range's name, such as "loopback" or "cloud metadata".
        range: &'static str,
    },
}

/// The target policy. [`TargetPolicy::default`] allows ports 995 and 110 on any public address.
#[derive(Debug, Clone)]
pub struct TargetPolicy {
    ports: Vec<u16>,
    allow: Vec<HostPattern>,
    deny: Vec<HostPattern>,
    allow_reserved: bool,
    exceptions: Vec<std::net::SocketAddr>,
    nat64: Vec<Nat64Prefix>,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        Self {
            ports: DEFAULT_PORTS.to_vec(),
            allow: Vec::new(),
            deny: Vec::new(),
            allow_reserved: false,
            exceptions: Vec::new(),
            nat64: Vec::new(),
        }
    }
}

impl TargetPolicy {
    /// Replaces the allowed ports.
    pub fn ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.ports = ports.into_iter().collect();
        self
    }

    /// Adds allow rules. Once any is set, only matching targets pass. An address range listed
    /// here is allowed even where it is reserved (an explicit choice, such as a LAN mail server).
    pub fn allow(mut self, patterns: impl IntoIterator<Item = HostPattern>) -> Self {
        self.allow.extend(patterns);
        self
    }

    /// Adds deny rules; they win over allow rules.
    pub fn deny(mut self, patterns: impl IntoIterator<Item = HostPattern>) -> Self {
        self.deny.extend(patterns);
        self
    }

    /// Re-allows every reserved range: loopback, private, link-local and the rest. For tests and
    /// the local demo; never on a relay reachable by others.
    pub fn allow_reserved_ranges(mut self, yes: bool) -> Self {
        self.allow_reserved = yes;
        self
    }

    /// Adds the site's own NAT64 prefixes; `64:ff9b::/96` is always known. An address inside
    /// one is judged by the IPv4 address it embeds, even where the prefix itself lies in a
    /// reserved IPv6 range (a ULA).
    pub fn nat64_prefixes(mut self, prefixes: impl IntoIterator<Item = Nat64Prefix>) -> Self {
        self.nat64.extend(prefixes);
        self
    }

    /// The IPv4 address `ip` stands for: itself, the one an IPv4-mapped address carries, or
    /// the one a NAT64 address carries.
    fn ipv4_behind(&self, ip: IpAddr) -> Option<Ipv4Addr> {
        match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped().or_else(|| {
                if u128::from(v6) >> 32 == WELL_KNOWN_NAT64 >> 32 {
                    return Some(Ipv4Addr::from(u128::from(v6) as u32));
                }
                self.nat64.iter().find_map(|p| p.embedded(v6))
            }),
        }
    }

    /// Allows exactly `addr` (address and port), whatever the other rules say: the relay's own
    /// demo mailbox on 127.0.0.1.
    pub fn also_allow(mut self, addr: std::net::SocketAddr) -> Self {
        self.exceptions.push(addr);
        self
    }

    fn is_exception(&self, ip: IpAddr, port: u16) -> bool {
        self.exceptions
            .iter()
            .any(|e| e.port() == port && canonical(e.ip()) == canonical(ip))
    }

    /// Whether reserved ranges are re-allowed.
    pub fn allows_reserved_ranges(&self) -> bool {
        self.allow_reserved
    }

    /// The checks that need no DNS: the port, and name rules against the host as requested.
    pub fn check_request(&self, target: &Target) -> Result<(), Refusal> {
        if target
            .ip()
            .is_some_and(|ip| self.is_exception(ip, target.port()))
        {
            return Ok(());
        }
        if !self.ports.contains(&target.port()) {
            return Err(Refusal::Port(target.port()));
        }
        let host = target.host();
        if target.ip().is_some() {
            return Ok(());
        }
        if self.deny.iter().any(|p| p.matches_name(host)) {
            return Err(Refusal::Denied(host.to_owned()));
        }
        // With an allow list of names only, a name off the list is refused before any DNS query.
        let has_net_rules = self.allow.iter().any(|p| matches!(p, HostPattern::Net(_)));
        if !self.allow.is_empty()
            && !has_net_rules
            && !self.allow.iter().any(|p| p.matches_name(host))
        {
            return Err(Refusal::NotAllowed(host.to_owned()));
        }
        Ok(())
    }

    /// The checks on one resolved address (or the literal address the request named). The
    /// relay refuses the whole target if any of its addresses fails.
    pub fn check_address(&self, target: &Target, ip: IpAddr) -> Result<(), Refusal> {
        if target.ip() == Some(ip) && self.is_exception(ip, target.port()) {
            return Ok(());
        }
        let v4 = self.ipv4_behind(ip);
        if self.deny.iter().any(|p| p.contains(ip, v4)) {
            return Err(Refusal::Denied(ip.to_string()));
        }
        let explicitly_allowed = self.allow.iter().any(|p| p.contains(ip, v4));
        if !self.allow.is_empty()
            && !explicitly_allowed
            && !self.allow.iter().any(|p| p.matches_name(target.host()))
        {
            return Err(Refusal::NotAllowed(target.host().to_owned()));
        }
        // Judged by the IPv4 address behind it: a site prefix may lie in a reserved IPv6 range.
        let range = match v4 {
            Some(v4) => reserved_v4(v4),
            None => reserved_range(ip),
        };
        if let Some(range) = range {
            if !self.allow_reserved && !explicitly_allowed {
                return Err(Refusal::Reserved { ip, range });
            }
        }
        Ok(())
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for; others unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

const V4_RESERVED: &[(u32, u8, &str)] = &[
    // Cloud metadata services first, so a refusal names them.
    (0xA9FE_A9FE, 32, "cloud metadata"), // 169.254.169.254
    (0xA9FE_A9FD, 32, "cloud metadata"), // 169.254.169.253
    (0xA9FE_AA02, 32, "cloud metadata"), // 169.254.170.2
    (0x6464_64C8, 32, "cloud metadata"), // 100.100.100.200
    (0x0000_0000, 8, "unspecified"),     // 0.0.0.0/8
    (0x0A00_0000, 8, "private"),         // 10.0.0.0/8
    (0x6440_0000, 10, "CGNAT"),          // 100.64.0.0/10
    (0x7F00_0000, 8, "loopback"),        // 127.0.0.0/8
    (0xA9FE_0000, 16, "link-local"),     // 169.254.0.0/16
    (0xAC10_0000, 12, "private"),        // 172.16.0.0/12
    (0xC000_0000, 24, "IETF protocol assignment"), // 192.0.0.0/24
    (0xC000_0200, 24, "documentation"),  // 192.0.2.0/24
    (0xC058_6300, 24, "6to4 relay"),     // 192.88.99.0/24
    (0xC0A8_0000, 16, "private"),        // 192.168.0.0/16
    (0xC612_0000, 15, "benchmarking"),   // 198.18.0.0/15
    (0xC633_6400, 24, "documentation"),  // 198.51.100.0/24
    (0xCB00_7100, 24, "documentation"),  // 203.0.113.0/24
    (0xE000_0000, 4, "multicast"),       // 224.0.0.0/4
    (0xF000_0000, 4, "reserved"),        // 240.0.0.0/4, broadcast included
];

const V6_RESERVED: &[(u128, u8, &str)] = &[
    (
        0xfd00_0ec2_0000_0000_0000_0000_0000_0254,
        128,
        "cloud metadata",
    ), // fd00:ec2::254
    (0, 128, "unspecified"),                         // ::
    (1, 128, "loopback"),                            // ::1
    (0, 96, "IPv4-compatible"),                      // ::/96
    (0x0064_ff9b_0001 << 80, 48, "local NAT64"),     // 64:ff9b:1::/48
    (0x0100 << 112, 64, "discard-only"),             // 100::/64
    (0x2001 << 112, 23, "IETF protocol assignment"), // 2001::/23, Teredo too
    (0x2001_0db8 << 96, 32, "documentation"),        // 2001:db8::/32
    (0x2002 << 112, 16, "6to4"),                     // 2002::/16
    (0x3fff << 112, 20, "documentation"),            // 3fff::/20
    (0xfc00 << 112, 7, "private"),                   // fc00::/7 (ULA)
    (0xfe80 << 112, 10, "link-local"),               // fe80::/10
    (0xfec0 << 112, 10, "site-local"),               // fec0::/10
    (0xff00 << 112, 8, "multicast"),                 // ff00::/8
];

/// The name of the reserved range `ip` lies in, or `None` for a public address.
///
/// IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) addresses are judged by the
/// IPv4 address they carry.
pub fn reserved_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return reserved_v4(v4);
            }
            let bits = u128::from(v6);
            if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
                return reserved_v4(Ipv4Addr::from(bits as u32));
            }
            reserved_v6(v6)
        }
    }
}

fn reserved_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    V4_RESERVED
        .iter()
        .find(|(net, len, _)| same_prefix(u128::from(bits) << 96, u128::from(*net) << 96, *len))
        .map(|(_, _, name)| *name)
}

fn reserved_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    V6_RESERVED
        .iter()
        .find(|(net, len, _)| same_prefix(bits, *net, *len))
        .map(|(_, _, name)| *name)
}

/// Whether two 128-bit values agree in their first `len` bits.
fn same_prefix(a: u128, b: u128, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    a & mask == b & mask
}

#[cfg(test)]
mod tests;
