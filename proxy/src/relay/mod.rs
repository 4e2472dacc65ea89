//! The relay endpoint: a WebSocket upgrade that becomes a TCP connection to a mail server.
//!
//! [`upgrade`] checks the HTTP request and answers it; [`session`] runs what follows: admission,
//! the policy check, DNS, connecting, and [`pump`]ing bytes until one side ends.

mod direct;
mod origin;
mod pump;
mod session;
mod splice;
mod upgrade;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use webpop_shared::secret::Secret;

use crate::client_ip::TrustedProxies;
use crate::limits::{Limits, Rate};
use crate::metrics::Metrics;
use crate::policy::TargetPolicy;
use crate::resolve::Resolver;

pub use origin::Origins;

/// The most the relay reads from a mail server at once (1 MiB: sixteen 64 KiB frames, sent
/// with one write), and so the most a session holds in memory towards the page. Large reads
/// are what keep the relay's CPU per byte near that of a plain TCP relay.
pub const READ_SIZE: usize = 16 * webpop_shared::relay::MAX_FRAME;
pub(crate) use upgrade::handle;

/// How the relay admits and runs sessions.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Which targets may be reached.
    pub policy: TargetPolicy,
    /// How target names are resolved.
    pub resolver: Resolver,
    /// Which pages may open relay sessions.
    pub origins: Origins,
    /// When set, requests must carry this token.
    pub token: Option<Secret>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Longest wait for DNS, and then for the TCP connection.
    pub connect_timeout: Duration,
    /// A session with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
    /// No session lasts longer than this.
    pub max_lifetime: Duration,
    /// Most sessions open at once.
    pub max_sessions: usize,
    /// Most sessions open at once for one client address (IPv6: one /64).
    pub max_sessions_per_client: usize,
    /// Most new sessions one client address (IPv6: one /64) may start per minute, so that it
    /// cannot try passwords through the relay fast enough to get the relay's address banned by
    /// mail providers; 0 means no cap.
    pub new_sessions_per_client_per_minute: u32,
    /// The demo account the page may offer, served as `/demo.json` (see [`crate::demo`]).
    pub demo: Option<serde_json::Value>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            policy: TargetPolicy::default(),
            resolver: Resolver::system(),
            origins: Origins::default(),
            token: None,
            trusted_proxies: TrustedProxies::default(),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10 * 60),
            max_lifetime: Duration::from_secs(4 * 60 * 60),
            max_sessions: 5_000,
            max_sessions_per_client: 32,
            new_sessions_per_client_per_minute: 30,
            demo: None,
        }
    }
}

/// The relay's shared state: configuration, caps, counters and the set of running sessions.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    limits: Arc<Limits>,
    rate: Rate,
    metrics: Metrics,
    sessions: TaskTracker,
    /// Cancelled when the drain period is over: open sessions close with "shutting down".
    stop_sessions: CancellationToken,
    draining: AtomicBool,
}

impl Relay {
    /// A relay with `config`.
    pub fn new(config: RelayConfig) -> Arc<Self> {
        Arc::new(Self {
            limits: Limits::new(config.max_sessions, config.max_sessions_per_client),
            rate: Rate::new(config.new_sessions_per_client_per_minute),
            config,
            metrics: Metrics::default(),
            sessions: TaskTracker::new(),
            stop_sessions: CancellationToken::new(),
            draining: AtomicBool::new(false),
        })
    }

    /// The demo account description, when the relay runs one.
    pub fn demo(&self) -> Option<&serde_json::Value> {
        self.config.demo.as_ref()
    }

    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.config.trusted_proxies
    }

    /// The relay's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stops admitting sessions, waits up to `grace` for open ones to end, then closes the rest
    /// with "shutting down" and waits for them to finish.
    pub async fn drain(&self, grace: Duration) {
        self.draining.store(true, Ordering::SeqCst);
        self.sessions.close();
        let open = self.metrics.open_sessions();
        if open > 0 {
            tracing::info!(open, ?grace, "waiting for relay sessions to end");
        }
        if tokio::time::timeout(grace, self.sessions.wait())
            .await
            .is_err()
        {
            tracing::info!(
                open = self.metrics.open_sessions(),
                "closing relay sessions still open"
            );
            self.stop_sessions.cancel();
            self.sessions.wait().await;
        }
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
