//! Caps on concurrent relay sessions, overall and per client.
//!
//! A [`Permit`] is held for a session's whole life and gives its slot back when dropped.
//! IPv6 clients are counted per /64, the block one subscriber usually gets, so rotating
//! addresses within it does not escape the cap.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// Which cap a refused session hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// The relay's overall cap.
    Global,
    /// The cap for one client address.
    PerClient,
}

/// Concurrent-session caps.
#[derive(Debug)]
pub struct Limits {
    max_total: usize,
    max_per_client: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

impl Limits {
    /// Caps of `max_total` sessions overall and `max_per_client` per client.
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_client,
            open: Mutex::default(),
        })
    }

    /// Takes a slot for `client`, or says which cap is reached.
    pub fn acquire(self: &Arc<Self>, client: IpAddr) -> Result<Permit, LimitHit> {
        let key = client_key(client);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_total {
            return Err(LimitHit::Global);
        }
        let count = open.per_client.entry(key).or_default();
        if *count >= self.max_per_client {
            return Err(LimitHit::PerClient);
        }
        *count += 1;
        open.total += 1;
        Ok(Permit {
            limits: Arc::clone(self),
            key,
        })
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// One session's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<Limits>,
    key: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        if let Some(count) = open.per_client.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.per_client.remove(&self.key);
            }
        }
    }
}

/// The address a client is counted under: IPv4 as is (mapped IPv6 included), IPv6 by /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !0u128 << 64)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_count_per_client_and_overall_and_free_on_drop() {
        let limits = Limits::new(3, 2);
        let a1 = limits.acquire(ip("192.0.2.1")).unwrap();
        let _a2 = limits.acquire(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(
            limits.acquire(ip("192.0.2.1")).unwrap_err(),
            LimitHit::PerClient
        );
        let _b = limits.acquire(ip("2001:db8::1")).unwrap();
        assert_eq!(
            limits.acquire(ip("192.0.2.9")).unwrap_err(),
            LimitHit::Global
        );
        drop(a1);
        assert_eq!(limits.open(), 2);
        let _a3 = limits.acquire(ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let limits = Limits::new(10, 1);
        let _a = limits.acquire(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            limits.acquire(ip("2001:db8:1:2:ffff::9")).unwrap_err(),
            LimitHit::PerClient
        );
        let _b = limits.acquire(ip("2001:db8:1:3::1")).unwrap();
    }
}
