//! The in-process relay: a `webpop-proxy` relay on 127.0.0.1, the one the relay's own tests,
//! the fault matrix, the browser tests (`webpop-test-env`) and the benchmarks start. It may
//! reach the given loopback ports, and it serves a web root: the built `dist/` for the
//! end-to-end tests (so that the web app and `/relay` are same-origin, as in production), or a
//! one-line page of its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use webpop_proxy::policy::TargetPolicy;
use webpop_proxy::relay::Origins;
use webpop_proxy::{Relay, RelayConfig, ServeOptions};

use crate::ws::{self, Ws};

/// A running relay; dropping it stops the relay (open sessions are closed at once).
#[derive(Debug)]
pub struct LocalRelay {
    addr: SocketAddr,
    relay: Arc<Relay>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    web_root: PathBuf,
    /// The web root when none was given; removed on drop.
    _own_web_root: Option<tempfile::TempDir>,
}

/// A relay config that may reach loopback on `ports`, as every test needs, with no cap on new
/// sessions per minute (tests open many from 127.0.0.1).
pub fn loopback_config(ports: &[u16]) -> RelayConfig {
    RelayConfig {
        policy: TargetPolicy::default()
            .ports(ports.iter().copied())
            .allow_reserved_ranges(true),
        new_sessions_per_client_per_minute: 0,
        ..RelayConfig::default()
    }
}

impl LocalRelay {
    /// Starts a relay on `addr` (port 0 for any) that may reach `ports` on loopback and admits
    /// pages from any origin (the wasm-bindgen test page is served elsewhere). It serves no web
    /// app (a one-line page).
    pub async fn start(addr: SocketAddr, ports: &[u16]) -> Result<Self> {
        Self::start_serving(addr, ports, None).await
    }

    /// Like [`Self::start`], and also serves the files under `web_root` (e.g. the built `dist/`)
    /// at `/`, the way `webpop-proxy --web-root` does.
    pub async fn start_serving(
        addr: SocketAddr,
        ports: &[u16],
        web_root: Option<&Path>,
    ) -> Result<Self> {
        if let Some(root) = web_root {
            if !root.join("index.html").is_file() {
                anyhow::bail!("{} has no index.html (build the web app)", root.display());
            }
        }
        let config = RelayConfig {
            origins: Origins::default().allow(["*".to_owned()]),
            ..loopback_config(ports)
        };
        Self::start_with(
            addr,
            config,
            ServeOptions::default(),
            Duration::ZERO,
            web_root,
        )
        .await
    }

    /// Starts a relay on 127.0.0.1 (a free port) with `config`, serving a one-line page, and
    /// draining for up to 5 s on [`Self::stop`].
    pub async fn with_config(config: RelayConfig) -> Result<Self> {
        Self::with_options(config, ServeOptions::default(), Duration::from_secs(5)).await
    }

    /// Like [`Self::with_config`], with the server's options and how long a stop drains.
    pub async fn with_options(
        config: RelayConfig,
        options: ServeOptions,
        drain: Duration,
    ) -> Result<Self> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_with(any, config, options, drain, None).await
    }

    /// Starts a relay on `listen` with everything chosen: `web_root` `None` serves a one-line
    /// page from a directory of its own.
    pub async fn start_with(
        listen: SocketAddr,
        config: RelayConfig,
        options: ServeOptions,
        drain: Duration,
        web_root: Option<&Path>,
    ) -> Result<Self> {
        let (web_root, own_web_root) = match web_root {
            Some(root) => (root.to_owned(), None),
            None => {
                let dir = tempfile::tempdir().context("creating the relay's web root")?;
                std::fs::write(
                    dir.path().join("index.html"),
                    "<!doctype html><title>webpop</title>",
                )
                .context("writing the relay's page")?;
                (dir.path().to_owned(), Some(dir))
            }
        };
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the relay to {listen}"))?;
        let addr = listener.local_addr()?;
        let relay = Relay::new(config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(webpop_proxy::run(
            listener,
            web_root.clone(),
            Arc::clone(&relay),
            options,
            drain,
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            addr,
            relay,
            stop: Some(stop),
            task: Some(task),
            web_root,
            _own_web_root: own_web_root,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relay itself (its metrics, its sessions).
    pub fn relay(&self) -> &Arc<Relay> {
        &self.relay
    }

    /// The directory served as the web app.
    pub fn web_root(&self) -> &Path {
        &self.web_root
    }

    /// Starts the shutdown and returns the server task, which ends once sessions drained;
    /// `None` when it was stopped already.
    pub fn stop(&mut self) -> Option<JoinHandle<std::io::Result<()>>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take()
    }

    /// The URL of a relay session to `host`:`port`.
    pub fn url(&self, host: &str, port: u16) -> String {
        format!("ws://{}/relay?host={host}&port={port}", self.addr)
    }

    /// Opens a relay session to `target` from 127.0.0.1 with no Origin header.
    pub async fn connect(&self, target: SocketAddr) -> Result<Ws> {
        let url = self.url(&target.ip().to_string(), target.port());
        Ok(ws::connect(&url, None, None).await?)
    }

    /// A value from the relay's `/metrics` text.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let text = self.relay.metrics().render();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

impl Drop for LocalRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
