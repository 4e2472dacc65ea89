//! A `webpop-proxy` relay on 127.0.0.1 for the browser tests and benchmarks: it may reach the
//! given loopback ports and admits pages from any origin (the wasm-bindgen test page is served
//! elsewhere). It can also serve a web root (the built `dist/`), so that the web app and `/relay`
//! are same-origin, as in production (the end-to-end tests).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use webpop_proxy::policy::TargetPolicy;
use webpop_proxy::relay::Origins;
use webpop_proxy::{Relay, RelayConfig, ServeOptions};

/// A running relay; dropping it stops the relay (open sessions are closed at once).
#[derive(Debug)]
pub struct LocalRelay {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl LocalRelay {
    /// Starts a relay on `addr` (port 0 for any) that may reach `ports` on loopback. It serves no
    /// web app (an empty directory).
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
        let web_root: PathBuf = match web_root {
            Some(root) => {
                if !root.join("index.html").is_file() {
                    anyhow::bail!("{} has no index.html (build the web app)", root.display());
                }
                root.to_owned()
            }
            None => std::env::temp_dir(),
        };
        let listener = TcpListener::bind(addr).await.context("binding the relay")?;
        let addr = listener.local_addr()?;
        let relay = Relay::new(RelayConfig {
            policy: TargetPolicy::default()
                .ports(ports.iter().copied())
                .allow_reserved_ranges(true),
            origins: Origins::default().allow(["*".to_owned()]),
            // Tests open many sessions from 127.0.0.1.
            new_sessions_per_client_per_minute: 0,
            ..RelayConfig::default()
        });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = webpop_proxy::run(
                listener,
                web_root,
                relay,
                ServeOptions::default(),
                Duration::ZERO,
                async {
                    let _ = stopped.await;
                },
            )
            .await;
        });
        Ok(Self { addr, _stop: stop })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
