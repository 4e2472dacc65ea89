//! Counters for `/metrics`, in the Prometheus text format.
//!
//! Plain atomics: the hot path (bytes relayed) is one relaxed add per frame.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use webpop_shared::relay::CloseReason;

/// Why a request never became a relay session, for `refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Refused after the upgrade, with this close reason.
    Closed(CloseReason),
    /// A WebSocket from an Origin not on the allowlist (HTTP 403).
    ForbiddenOrigin,
    /// Not a valid WebSocket upgrade (HTTP 4xx).
    BadUpgrade,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Self::Closed(reason) => reason.label(),
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::BadUpgrade => "bad_upgrade",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::ForbiddenOrigin => 0,
            Self::BadUpgrade => 1,
            Self::Closed(reason) => {
                2 + CloseReason::ALL
                    .iter()
                    .position(|r| *r == reason)
                    .unwrap_or(0)
            }
        }
    }
}

const REFUSED_SLOTS: usize = 2 + CloseReason::ALL.len();

/// Upper bounds of the connect-latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The relay's counters.
#[derive(Debug)]
pub struct Metrics {
    open: AtomicU64,
    total: AtomicU64,
    refused: [AtomicU64; REFUSED_SLOTS],
    closed: [AtomicU64; CloseReason::ALL.len() + 1],
    bytes_to_server: AtomicU64,
    bytes_to_client: AtomicU64,
    bytes_spliced: AtomicU64,
    buffered: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            open: AtomicU64::new(0),
            total: AtomicU64::new(0),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
            closed: std::array::from_fn(|_| AtomicU64::new(0)),
            bytes_to_server: AtomicU64::new(0),
            bytes_to_client: AtomicU64::new(0),
            bytes_spliced: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            latency_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_count: AtomicU64::new(0),
            latency_micros: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// A session connected to its target.
    pub fn opened(&self, connect_latency: Duration) {
        self.open.fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
        let secs = connect_latency.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        let micros = u64::try_from(connect_latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros.fetch_add(micros, Relaxed);
    }

    /// A connected session ended; `reason` is `None` when the client closed it.
    pub fn closed(&self, reason: Option<CloseReason>) {
        self.open.fetch_sub(1, Relaxed);
        let slot = reason
            .and_then(|r| CloseReason::ALL.iter().position(|x| *x == r))
            .map_or(0, |i| i + 1);
        self.closed[slot].fetch_add(1, Relaxed);
    }

    /// A request was refused before a session started.
    pub fn refused(&self, why: Refused) {
        self.refused[why.index()].fetch_add(1, Relaxed);
    }

    /// How many requests were refused for `why` so far.
    pub fn refused_count(&self, why: Refused) -> u64 {
        self.refused[why.index()].load(Relaxed)
    }

    /// Bytes relayed from the page to the mail server.
    pub fn to_server(&self, n: usize) {
        self.bytes_to_server.fetch_add(n as u64, Relaxed);
    }

    /// Bytes relayed from the mail server to the page.
    pub fn to_client(&self, n: usize) {
        self.bytes_to_client.fetch_add(n as u64, Relaxed);
    }

    /// Of the bytes relayed to pages, `n` went through a kernel pipe without being copied into
    /// the relay (Linux, plain-TCP pages, while a download streams).
    pub fn spliced(&self, n: usize) {
        self.bytes_spliced.fetch_add(n as u64, Relaxed);
    }

    /// Bytes read from one side and not yet written to the other grew (`+`) or shrank (`-`).
    pub fn buffer(&self, delta: isize) {
        if delta >= 0 {
            self.buffered
                .fetch_add(delta.unsigned_abs() as u64, Relaxed);
        } else {
            self.buffered
                .fetch_sub(delta.unsigned_abs() as u64, Relaxed);
        }
    }

    /// Bytes held in the relay's own buffers right now, over all sessions.
    pub fn buffered_bytes(&self) -> u64 {
        self.buffered.load(Relaxed)
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> u64 {
        self.open.load(Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        gauge(
            "webpop_relay_connections_open",
            "Relay sessions open now.",
            "gauge",
            self.open.load(Relaxed),
        );
        gauge(
            "webpop_relay_connections_total",
            "Relay sessions that connected to their target.",
            "counter",
            self.total.load(Relaxed),
        );
        gauge(
            "webpop_relay_bytes_to_server_total",
            "Bytes relayed from pages to mail servers.",
            "counter",
            self.bytes_to_server.load(Relaxed),
        );
        gauge(
            "webpop_relay_bytes_to_client_total",
            "Bytes relayed from mail servers to pages.",
            "counter",
            self.bytes_to_client.load(Relaxed),
        );
        gauge(
            "webpop_relay_bytes_spliced_total",
            "Of the bytes relayed to pages, those moved by splice(2) without a copy in the relay.",
            "counter",
            self.bytes_spliced.load(Relaxed),
        );
        gauge(
            "webpop_relay_buffered_bytes",
            "Bytes held in relay buffers now.",
            "gauge",
            self.buffered.load(Relaxed),
        );

        let _ = writeln!(out, "# HELP webpop_relay_refused_total Requests refused before relaying, by reason.\n# TYPE webpop_relay_refused_total counter");
        let mut refused = vec![Refused::ForbiddenOrigin, Refused::BadUpgrade];
        refused.extend(CloseReason::ALL.map(Refused::Closed));
        for why in refused {
            let _ = writeln!(
                out,
                "webpop_relay_refused_total{{reason=\"{}\"}} {}",
                why.label(),
                self.refused[why.index()].load(Relaxed)
            );
        }

        let _ = writeln!(out, "# HELP webpop_relay_closed_total Relay sessions ended, by reason.\n# TYPE webpop_relay_closed_total counter");
        let _ = writeln!(
            out,
            "webpop_relay_closed_total{{reason=\"client_closed\"}} {}",
            self.closed[0].load(Relaxed)
        );
        for (i, reason) in CloseReason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "webpop_relay_closed_total{{reason=\"{}\"}} {}",
                reason.label(),
                self.closed[i + 1].load(Relaxed)
            );
        }

        let name = "webpop_relay_connect_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to connect to the mail server.\n# TYPE {name} histogram"
        );
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.latency_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_counts() {
        let m = Metrics::default();
        m.opened(Duration::from_millis(3));
        m.to_client(100);
        m.to_server(7);
        m.refused(Refused::Closed(CloseReason::ForbiddenTarget));
        m.refused(Refused::ForbiddenOrigin);
        m.closed(Some(CloseReason::Done));
        let text = m.render();
        for line in [
            "webpop_relay_connections_open 0",
            "webpop_relay_connections_total 1",
            "webpop_relay_bytes_to_client_total 100",
            "webpop_relay_bytes_to_server_total 7",
            "webpop_relay_refused_total{reason=\"forbidden_target\"} 1",
            "webpop_relay_refused_total{reason=\"forbidden_origin\"} 1",
            "webpop_relay_closed_total{reason=\"done\"} 1",
            "webpop_relay_connect_seconds_bucket{le=\"0.001\"} 0",
            "webpop_relay_connect_seconds_bucket{le=\"0.005\"} 1",
            "webpop_relay_connect_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
