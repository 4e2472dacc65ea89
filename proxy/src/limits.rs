//! Caps on concurrent relay sessions, overall and per client.
//!
//! A [`Permit`] is held for a session's whole life and gives its slot back when dropped.
//! IPv6 clients are counted per /64, the block one subscriber usually gets, so rotating
//! addresses within it does not escape the cap.
//!
//! [`Rate`] caps how many sessions one client may start per minute, so that one client cannot
//! try passwords through the relay fast enough to get the relay's shared address banned by mail
//! providers.
//!
//! [`Pending`] caps HTTP connections not yet upgraded, and when full makes room by evicting the
//! one that has waited longest for its request headers.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

/// A cap on new sessions per client and minute: a token bucket per client (IPv6: per /64) that
/// holds a minute's worth of sessions and refills evenly, so a client may start that many at
/// once and then one every `60 s / per_minute`. Runs on tokio's clock, so tests can pause it.
#[derive(Debug)]
pub struct Rate {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Sessions the client may still start, as of `at`.
    tokens: f64,
    at: Instant,
}

/// Above this many clients tracked, full buckets (clients quiet for a minute) are forgotten.
const RATE_PRUNE_AT: usize = 4096;

impl Rate {
    /// At most `per_minute` new sessions per client and minute; 0 means no cap.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::default(),
        }
    }

    /// Counts a new session for `client`; `false` if it has started too many lately.
    pub fn allow(&self, client: IpAddr) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let now = Instant::now();
        let full = f64::from(self.per_minute);
        let refill = |b: &Bucket| {
            let per_second = full / 60.0;
            (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second).min(full)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= RATE_PRUNE_AT {
            buckets.retain(|_, b| refill(b) < full);
        }
        let bucket = buckets.entry(client_key(client)).or_insert(Bucket {
            tokens: full,
            at: now,
        });
        let tokens = refill(bucket);
        *bucket = Bucket { tokens, at: now };
        if tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        true
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

/// The cap on HTTP connections not yet upgraded (or finished), overall.
///
/// When it is full, a newcomer does not get dropped: the connection that has waited longest
/// for its request headers (or TLS handshake) is evicted instead, and the newcomer takes its
/// place. A legitimate client sends its headers within milliseconds of connecting, so the
/// oldest waiter is almost surely a slow (slowloris) one; dropping newcomers instead let slow
/// clients from enough addresses lock everyone out until the header deadline. Connections in
/// the middle of a request are not evicted, and upgraded ones have left this cap altogether.
#[derive(Debug)]
pub struct Pending {
    max: usize,
    state: Mutex<PendingState>,
}

#[derive(Debug, Default)]
struct PendingState {
    next: u64,
    /// Every connection counted, by id: its eviction token and, while it waits for a request,
    /// its place in `waiting`.
    conns: HashMap<u64, (CancellationToken, Option<u64>)>,
    /// Connections waiting for request headers, by when they started waiting -> id.
    waiting: BTreeMap<u64, u64>,
    evicted: u64,
}

impl PendingState {
    fn ticket(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

impl Pending {
    /// A cap of `max` connections not yet upgraded.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PendingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection, waiting for its headers; when full, evicts the longest waiter
    /// (its token is cancelled). `None` when full and no connection is waiting.
    pub fn admit(self: &Arc<Self>) -> Option<PendingSlot> {
        let mut state = self.state();
        if state.conns.len() >= self.max {
            let (_, victim) = state.waiting.pop_first()?;
            if let Some((token, _)) = state.conns.remove(&victim) {
                token.cancel();
            }
            state.evicted += 1;
        }
        let id = state.ticket();
        let since = state.ticket();
        let token = CancellationToken::new();
        state.conns.insert(id, (token.clone(), Some(since)));
        state.waiting.insert(since, id);
        Some(PendingSlot {
            pending: Arc::clone(self),
            id,
            evicted: token,
        })
    }

    /// Connections counted now.
    pub fn open(&self) -> usize {
        self.state().conns.len()
    }

    /// Connections evicted so far to make room for newcomers.
    pub fn evicted(&self) -> u64 {
        self.state().evicted
    }
}

/// One connection's place under the [`Pending`] cap; dropping it frees the place.
#[derive(Debug)]
pub struct PendingSlot {
    pending: Arc<Pending>,
    id: u64,
    evicted: CancellationToken,
}

impl PendingSlot {
    /// Cancelled when the connection is evicted: it must then be closed.
    pub fn evicted(&self) -> &CancellationToken {
        &self.evicted
    }

    /// A request arrived: the connection cannot be evicted until [`Self::waiting`].
    pub fn busy(&self) {
        let mut state = self.pending.state();
        if let Some(since) = state.conns.get_mut(&self.id).and_then(|c| c.1.take()) {
            state.waiting.remove(&since);
        }
    }

    /// The request is answered: the connection waits for the next one and can be evicted.
    pub fn waiting(&self) {
        let mut state = self.pending.state();
        let since = state.ticket();
        if let Some(conn) = state.conns.get_mut(&self.id) {
            if let Some(old) = conn.1.replace(since) {
                state.waiting.remove(&old);
            }
            state.waiting.insert(since, self.id);
        }
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut state = self.pending.state();
        if let Some((_, Some(since))) = state.conns.remove(&self.id) {
            state.waiting.remove(&since);
        }
    }
}

/// The address a client is counted under: IPv4 as is (mapped IPv6 included), IPv6 by /64.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
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
    use std::time::Duration;

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
    fn a_full_pending_cap_evicts_the_longest_waiter_but_not_busy_ones() {
        let pending = Pending::new(3);
        let a = pending.admit().unwrap();
        let b = pending.admit().unwrap();
        let c = pending.admit().unwrap();
        a.busy();
        let d = pending.admit().unwrap();
        assert!(!a.evicted().is_cancelled());
        assert!(b.evicted().is_cancelled());
        assert_eq!(pending.open(), 3);
        a.waiting(); // now the newest waiter
        let _e = pending.admit().unwrap();
        assert!(c.evicted().is_cancelled());
        assert!(!a.evicted().is_cancelled() && !d.evicted().is_cancelled());
        drop((b, c));
        assert_eq!(pending.open(), 3);
        a.busy();
        d.busy();
        // _e still waits: it goes; then only busy connections are left and a newcomer is dropped.
        let f = pending.admit().unwrap();
        f.busy();
        assert!(pending.admit().is_none());
        assert_eq!(pending.evicted(), 3);
        drop(a);
        assert!(pending.admit().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn one_client_cannot_start_more_than_its_sessions_per_minute() {
        let rate = Rate::new(30);
        for _ in 0..30 {
            assert!(rate.allow(ip("192.0.2.1")));
        }
        assert!(!rate.allow(ip("192.0.2.1")));
        assert!(!rate.allow(ip("::ffff:192.0.2.1")));
        // Others are not affected, and a /64 counts as one client.
        assert!(rate.allow(ip("192.0.2.2")));
        for _ in 0..30 {
            assert!(rate.allow(ip("2001:db8::1")));
        }
        assert!(!rate.allow(ip("2001:db8::ffff")));
        // One more every two seconds.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!rate.allow(ip("192.0.2.1")));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(rate.allow(ip("192.0.2.1")));
        assert!(!rate.allow(ip("192.0.2.1")));
        // After a quiet minute, a full minute's worth again.
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..30 {
            assert!(rate.allow(ip("192.0.2.1")));
        }
        assert!(!rate.allow(ip("192.0.2.1")));
        assert!(Rate::new(0).allow(ip("192.0.2.1")));
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
