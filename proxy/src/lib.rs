//! webpop's relay and static file server.
//!
//! For now it only serves the built web app (trunk's `dist/`). The relay — WebSocket frames in,
//! TCP bytes out, TLS left end-to-end between the page and the POP3 server — comes next.
//!
//! [`run`] takes an already bound listener and a shutdown future, so tests can bind
//! `127.0.0.1:0` and stop the server when they are done; `main.rs` only parses flags, sets up
//! tracing and calls it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::path::PathBuf;

use axum::Router;
use tokio::net::TcpListener;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

/// Builds the HTTP application: every path is a file under `web_root` (a directory path serves
/// its `index.html`).
pub fn app(web_root: impl Into<PathBuf>) -> Router {
    Router::new()
        .fallback_service(ServeDir::new(web_root.into()))
        .layer(TraceLayer::new_for_http())
}

/// Serves `web_root` on `listener` until `shutdown` completes, then stops accepting and lets
/// requests in flight finish.
///
/// # Errors
/// Fails only if the listener itself fails (axum logs and skips failures of single connections).
pub async fn run(
    listener: TcpListener,
    web_root: impl Into<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let web_root = web_root.into();
    tracing::info!(
        addr = %listener.local_addr()?,
        web_root = %web_root.display(),
        "serving"
    );
    axum::serve(listener, app(web_root))
        .with_graceful_shutdown(shutdown)
        .await
}
