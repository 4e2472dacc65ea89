//! The client's address: the TCP peer, or, behind trusted reverse proxies, the address they
//! put in `X-Forwarded-For`.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// Which peers may speak for the client through `X-Forwarded-For`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts proxies in `nets`. Empty (the default) trusts none: the header is ignored.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address for a request from `peer` with `headers`.
    ///
    /// If `peer` is trusted, `X-Forwarded-For` is read from the right (the entry the nearest
    /// proxy added) and the first address not itself a trusted proxy is the client. Entries a
    /// client wrote itself sit further left and are never reached past an untrusted hop. A
    /// malformed entry stops the walk at the last good hop.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port, IPv6 with or without
/// brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_claim_another_address() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("192.0.2.7"), &headers(&["198.51.100.1"])),
            ip("192.0.2.7")
        );
        let some = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(
            some.client_ip(ip("192.0.2.7"), &headers(&["198.51.100.1"])),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn trusted_proxies_are_walked_from_the_right() {
        let trusted = TrustedProxies::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap(),
        ]);
        let peer = ip("127.0.0.1");
        // The client forged the first entry; the proxy appended the real address.
        assert_eq!(
            trusted.client_ip(peer, &headers(&["6.6.6.6, 198.51.100.1"])),
            ip("198.51.100.1")
        );
        // Two proxies in a row, and repeated headers.
        assert_eq!(
            trusted.client_ip(peer, &headers(&["198.51.100.1", "10.1.1.1"])),
            ip("198.51.100.1")
        );
        // No header: the proxy itself.
        assert_eq!(trusted.client_ip(peer, &headers(&[])), peer);
        // Garbage stops at the last good hop.
        assert_eq!(
            trusted.client_ip(peer, &headers(&["198.51.100.1, junk, 10.2.2.2"])),
            ip("10.2.2.2")
        );
        // Entries with ports or brackets, as some proxies write them.
        assert_eq!(
            trusted.client_ip(peer, &headers(&["203.0.113.5:4711"])),
            ip("203.0.113.5")
        );
        assert_eq!(
            trusted.client_ip(peer, &headers(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            trusted.client_ip(peer, &headers(&["[2001:db8::2]"])),
            ip("2001:db8::2")
        );
        // A mapped peer address is trusted like its IPv4 form.
        assert_eq!(
            trusted.client_ip(ip("::ffff:127.0.0.1"), &headers(&["2001:db8::5"])),
            ip("2001:db8::5")
        );
    }
}
