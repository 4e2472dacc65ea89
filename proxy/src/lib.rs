//! webpop's relay and web server.
//!
//! One binary serves the built web app and the relay endpoint ([`webpop_shared::relay`]): a
//! WebSocket whose binary frames carry raw TCP bytes to and from a POP3 server. The page does
//! its own TLS end to end, so the relay only sees ciphertext. The relay is deny-by-default
//! ([`policy`]), bounded ([`limits`], [`relay::RelayConfig`]) and stateless, so several can run
//! behind a load balancer.
//!
//! [`run`] takes an already bound listener and a shutdown future, so tests can bind
//! `127.0.0.1:0`; `main.rs` parses [`config::Args`], sets up logging and signals, and calls it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client_ip;
pub mod config;
pub mod demo;
pub mod host;
pub mod limits;
pub mod metrics;
pub mod policy;
pub mod relay;
pub mod resolve;
pub mod security_headers;
pub mod server;
pub mod tls;
pub mod web;

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use relay::{Relay, RelayConfig};
pub use server::ServeOptions;

/// Serves the web app and `relay` on `listener` until `shutdown` completes, then stops
/// accepting, lets open relay sessions drain for up to `drain_timeout`, and returns.
///
/// # Errors
/// Only if the listener fails.
pub async fn run(
    listener: TcpListener,
    web_root: impl Into<PathBuf>,
    relay: Arc<Relay>,
    options: ServeOptions,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let web_root = web_root.into();
    tracing::info!(
        addr = %listener.local_addr()?,
        web_root = %web_root.display(),
        tls = options.tls.is_some(),
        "serving"
    );
    let headers = Arc::new(security_headers::SecurityHeaders::new(
        &web_root,
        options.tls.is_some(),
    ));
    let app = web::app(
        Arc::clone(&relay),
        web_root,
        options.allowed_hosts.clone(),
        headers,
    );
    let proxies = relay.trusted_proxies().clone();
    server::serve(listener, app, options, proxies, shutdown).await?;
    relay.drain(drain_timeout).await;
    Ok(())
}
