//! Name resolution for relay targets.
//!
//! The relay resolves a name once, checks every address, and connects only to those addresses,
//! so a second, different DNS answer (rebinding) can never be used.
//!
//! Lookups are asynchronous (hickory-resolver over UDP and TCP), never getaddrinfo: getaddrinfo
//! runs on tokio's shared blocking pool and cannot be cancelled, so random names under a domain
//! whose name server never answers used to fill that pool, and the web app's file serving,
//! which needs it too, stopped. Here a lookup is a future: it ends when its time is up, and
//! a name server that never answers costs a timer and a socket. On top of that:
//! - a cap on lookups in flight overall and per client (IPv6: per /64), past which a lookup
//!   fails at once;
//! - failures are remembered for a while (negative caching), so repeating a bad name costs
//!   nothing;
//! - names are looked up fully qualified: search domains from `/etc/resolv.conf` are never
//!   appended (a page must not reach `pop.corp.internal` by asking for `pop`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, NameServerConfigGroup, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use tokio::time::Instant;

use crate::limits::client_key;

/// Longest a lookup may take, all retries and name servers included.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Most lookups in flight at once. A lookup costs a timer and a UDP socket or two, so this
/// is set high: filling it takes 256 clients (IPv6: /64s) at [`MAX_LOOKUPS_PER_CLIENT`] each.
pub const MAX_LOOKUPS: usize = 1024;
/// Most lookups in flight at once for one client address (IPv6: one /64).
pub const MAX_LOOKUPS_PER_CLIENT: usize = 4;
/// How long a failed name keeps failing without a new query.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Most failed names remembered.
const MAX_NEGATIVE: usize = 10_000;

/// Why a name could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name has no addresses, or the name servers said so or did not answer.
    #[error("the name did not resolve")]
    NotFound,
    /// The name servers did not answer in time.
    #[error("the name servers did not answer in time")]
    Timeout,
    /// Too many lookups are in flight, overall or for this client.
    #[error("too many name lookups in flight")]
    Busy,
}

impl From<ResolveError> for io::Error {
    fn from(e: ResolveError) -> Self {
        let kind = match e {
            ResolveError::NotFound => io::ErrorKind::NotFound,
            ResolveError::Timeout => io::ErrorKind::TimedOut,
            ResolveError::Busy => io::ErrorKind::WouldBlock,
        };
        io::Error::new(kind, e)
    }
}

/// Resolves host names: through name servers (asynchronously), or through fixed answers.
#[derive(Debug, Clone)]
pub struct Resolver {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Fixed(Arc<HashMap<String, Vec<IpAddr>>>),
    Dns(Arc<Dns>),
}

#[derive(Debug)]
struct Dns {
    resolver: TokioResolver,
    timeout: Duration,
    max_lookups: usize,
    max_per_client: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    per_client: HashMap<IpAddr, usize>,
    /// Failed names and until when they fail without a query.
    negative: HashMap<String, Instant>,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::system()
    }
}

impl Resolver {
    /// The name servers of `/etc/resolv.conf` (without its search domains, see
    /// [`config_from_resolv_conf`]); 127.0.0.1:53, as for the C library, when it cannot be read.
    pub fn system() -> Self {
        let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read {RESOLV_CONF}; asking 127.0.0.1:53");
            String::new()
        });
        let (config, options) = config_from_resolv_conf(&text, LOOKUP_TIMEOUT);
        Self::from_config(
            config,
            options,
            LOOKUP_TIMEOUT,
            MAX_LOOKUPS,
            MAX_LOOKUPS_PER_CLIENT,
        )
    }

    /// These name servers (UDP, then TCP for long answers), with the default timeout and caps.
    pub fn name_servers(servers: impl IntoIterator<Item = SocketAddr>) -> Self {
        Self::with_limits(servers, LOOKUP_TIMEOUT, MAX_LOOKUPS, MAX_LOOKUPS_PER_CLIENT)
    }

    /// These name servers, a lookup taking at most `timeout`, and at most `max_lookups` in
    /// flight (`max_per_client` for one client).
    pub fn with_limits(
        servers: impl IntoIterator<Item = SocketAddr>,
        timeout: Duration,
        max_lookups: usize,
        max_per_client: usize,
    ) -> Self {
        let (config, options) = resolver_config(servers, timeout);
        Self::from_config(config, options, timeout, max_lookups, max_per_client)
    }

    fn from_config(
        config: ResolverConfig,
        options: ResolverOpts,
        timeout: Duration,
        max_lookups: usize,
        max_per_client: usize,
    ) -> Self {
        let mut builder =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
        *builder.options_mut() = options;
        Self {
            inner: Inner::Dns(Arc::new(Dns {
                resolver: builder.build(),
                timeout,
                max_lookups,
                max_per_client,
                state: Mutex::default(),
            })),
        }
    }

    /// Fixed answers: names in `answers` resolve to their addresses, any other name fails.
    /// Lets tests try names that resolve to forbidden ranges without a DNS server.
    pub fn fixed(answers: HashMap<String, Vec<IpAddr>>) -> Self {
        Self {
            inner: Inner::Fixed(Arc::new(answers)),
        }
    }

    /// The addresses for `host` (a normalised DNS name), without duplicates, in resolver order,
    /// for a session of `client`.
    ///
    /// # Errors
    /// When the name does not resolve in time, or too many lookups are in flight.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        client: IpAddr,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        let ips = match &self.inner {
            Inner::Fixed(answers) => answers.get(host).cloned().unwrap_or_default(),
            Inner::Dns(dns) => dns.lookup(host, client).await?,
        };
        let addrs = dedup(ips.into_iter().map(|ip| SocketAddr::new(ip, port)));
        if addrs.is_empty() {
            return Err(ResolveError::NotFound);
        }
        Ok(addrs)
    }

    /// Lookups in flight now (0 for fixed answers).
    pub fn in_flight(&self) -> usize {
        match &self.inner {
            Inner::Fixed(_) => 0,
            Inner::Dns(dns) => dns.state().in_flight,
        }
    }
}

impl Dns {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn lookup(
        self: &Arc<Self>,
        host: &str,
        client: IpAddr,
    ) -> Result<Vec<IpAddr>, ResolveError> {
        let key = client_key(client);
        {
            let mut state = self.state();
            let now = Instant::now();
            if let Some(until) = state.negative.get(host) {
                if *until > now {
                    return Err(ResolveError::NotFound);
                }
                state.negative.remove(host);
            }
            let mine = state.per_client.get(&key).copied().unwrap_or(0);
            if state.in_flight >= self.max_lookups || mine >= self.max_per_client {
                return Err(ResolveError::Busy);
            }
            state.in_flight += 1;
            *state.per_client.entry(key).or_default() += 1;
        }
        let _slot = Slot { dns: self, key };
        // The trailing dot makes the name fully qualified: no search domain is ever tried.
        let fqdn = format!("{host}.");
        let result = match tokio::time::timeout(self.timeout, self.resolver.lookup_ip(fqdn)).await {
            Ok(Ok(found)) => Ok(found.iter().collect::<Vec<_>>()),
            Ok(Err(e)) => {
                tracing::debug!(host, error = %e, "lookup failed");
                Err(ResolveError::NotFound)
            }
            Err(_) => Err(ResolveError::Timeout),
        };
        if !matches!(&result, Ok(ips) if !ips.is_empty()) {
            self.remember_failure(host);
        }
        result
    }

    fn remember_failure(&self, host: &str) {
        let mut state = self.state();
        let now = Instant::now();
        if state.negative.len() >= MAX_NEGATIVE {
            state.negative.retain(|_, until| *until > now);
        }
        if state.negative.len() < MAX_NEGATIVE {
            state.negative.insert(host.to_owned(), now + NEGATIVE_TTL);
        }
    }
}

/// A lookup's place under the caps; dropping it (the lookup ended or was cancelled) frees it.
struct Slot<'a> {
    dns: &'a Dns,
    key: IpAddr,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.dns.state();
        state.in_flight -= 1;
        if let Some(count) = state.per_client.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                state.per_client.remove(&self.key);
            }
        }
    }
}

/// Where the system's name servers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The resolver's configuration for the name servers a resolv.conf (`text`) lists, and
/// nothing else from it: its `search` list, its `domain` and its options (`ndots`, timeouts)
/// are dropped, so a page can never reach `pop.corp.example` by asking for `pop`. With no
/// usable name server in it, 127.0.0.1:53, as for the C library.
pub fn config_from_resolv_conf(text: &str, timeout: Duration) -> (ResolverConfig, ResolverOpts) {
    let servers = match hickory_resolver::system_conf::parse_resolv_conf(text) {
        Ok((config, _)) => config
            .name_servers()
            .iter()
            .map(|ns| ns.socket_addr)
            .collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(error = %e, "no name server in {RESOLV_CONF}; asking 127.0.0.1:53");
            Vec::new()
        }
    };
    let mut servers = dedup(servers);
    if servers.is_empty() {
        servers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
    }
    resolver_config(servers, timeout)
}

/// The resolver's configuration for these name servers (UDP, then TCP for long answers):
/// no domain, no search list, `ndots` 0, a lookup taking at most `timeout`.
fn resolver_config(
    servers: impl IntoIterator<Item = SocketAddr>,
    timeout: Duration,
) -> (ResolverConfig, ResolverOpts) {
    let mut group = NameServerConfigGroup::new();
    for addr in servers {
        group.push(NameServerConfig::new(addr, Protocol::Udp));
        group.push(NameServerConfig::new(addr, Protocol::Tcp));
    }
    // No domain and no search list: every name is looked up as given.
    let config = ResolverConfig::from_parts(None, Vec::new(), group);
    let mut options = ResolverOpts::default();
    options.ndots = 0;
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    // Two tries of a third of the budget each leave room for a second server.
    options.timeout = (timeout / 3).max(Duration::from_millis(100));
    options.attempts = 2;
    options.negative_max_ttl = Some(NEGATIVE_TTL);
    options.positive_max_ttl = Some(Duration::from_secs(300));
    (config, options)
}

/// Without duplicates, first occurrence kept.
fn dedup<T: Eq + std::hash::Hash + Copy>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().filter(|i| seen.insert(*i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolv.conf's `search`, `domain` and `ndots` would turn `pop` into
    /// `pop.corp.example`, a name inside the relay host's network that a page never named.
    #[test]
    fn a_resolv_conf_gives_its_name_servers_and_never_its_search_domains() {
        let text = "# generated by the network manager\n\
                    domain corp.example\n\
                    search corp.example other.example\n\
                    nameserver 192.0.2.53\n\
                    nameserver 2001:db8::53\n\
                    nameserver 192.0.2.53\n\
                    options ndots:5 timeout:30 attempts:5\n";
        let (config, options) = config_from_resolv_conf(text, LOOKUP_TIMEOUT);
        let servers: Vec<(SocketAddr, Protocol)> = config
            .name_servers()
            .iter()
            .map(|ns| (ns.socket_addr, ns.protocol))
            .collect();
        let v4: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::53]:53".parse().unwrap();
        assert_eq!(
            servers,
            [
                (v4, Protocol::Udp),
                (v4, Protocol::Tcp),
                (v6, Protocol::Udp),
                (v6, Protocol::Tcp)
            ]
        );
        assert_eq!(config.domain(), None);
        assert!(config.search().is_empty(), "{:?}", config.search());
        assert_eq!(options.ndots, 0);
        // Its own timeouts, not the file's.
        assert_eq!(options.timeout, LOOKUP_TIMEOUT / 3);
        assert_eq!(options.attempts, 2);
    }

    /// Only `domain`, or nothing usable at all: still no search domain, and 127.0.0.1:53.
    #[test]
    fn a_resolv_conf_without_name_servers_asks_the_local_one() {
        for text in ["domain corp.example\n", "", "this is not a resolv.conf"] {
            let (config, options) = config_from_resolv_conf(text, LOOKUP_TIMEOUT);
            let servers: Vec<SocketAddr> = config
                .name_servers()
                .iter()
                .map(|ns| ns.socket_addr)
                .collect();
            let local: SocketAddr = "127.0.0.1:53".parse().unwrap();
            assert_eq!(servers, [local, local], "{text:?}");
            assert_eq!(config.domain(), None, "{text:?}");
            assert!(config.search().is_empty(), "{text:?}");
            assert_eq!(options.ndots, 0);
        }
    }
}
