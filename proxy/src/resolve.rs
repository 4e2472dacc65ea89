//! Name resolution for relay targets.
//!
//! The relay resolves a name once, checks every address, and connects only to those addresses,
//! so a second, different DNS answer (rebinding) can never be used.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Resolves host names: through the system resolver, or through fixed answers.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    fixed: Option<Arc<HashMap<String, Vec<IpAddr>>>>,
}

impl Resolver {
    /// The system resolver (getaddrinfo, on a blocking thread).
    pub fn system() -> Self {
        Self::default()
    }

    /// Fixed answers: names in `answers` resolve to their addresses, any other name fails.
    /// Lets tests try names that resolve to forbidden ranges without a DNS server.
    pub fn fixed(answers: HashMap<String, Vec<IpAddr>>) -> Self {
        Self {
            fixed: Some(Arc::new(answers)),
        }
    }

    /// The addresses for `host` (a normalised DNS name), without duplicates, in resolver order.
    pub async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let mut addrs: Vec<SocketAddr> = match &self.fixed {
            Some(answers) => answers
                .get(host)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))?
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect(),
            None => tokio::net::lookup_host((host, port)).await?.collect(),
        };
        let mut seen = std::collections::HashSet::new();
        addrs.retain(|a| seen.insert(*a));
        if addrs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
        }
        Ok(addrs)
    }
}
