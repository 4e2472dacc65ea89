//! `webpop-proxy`: parses flags, sets up logging and runs the server until Ctrl-C.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing_subscriber::EnvFilter;

/// How long requests in flight may take to finish after Ctrl-C. A browser tab keeps idle
/// keep-alive connections open, and waiting for those would make Ctrl-C appear to hang.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// webpop's relay and web server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "WEBPOP_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory holding the built web app (trunk's output).
    #[arg(long, env = "WEBPOP_WEB_ROOT", default_value = "dist")]
    web_root: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if !args.web_root.join("index.html").is_file() {
        tracing::warn!(
            web_root = %args.web_root.display(),
            "no index.html in the web root; build the web app first (scripts/run does)"
        );
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;

    let (stop, stopped) = oneshot::channel::<()>();
    let mut server = tokio::spawn(webpop_proxy::run(listener, args.web_root, async {
        let _ = stopped.await;
    }));
    tokio::select! {
        joined = &mut server => {
            return joined.context("server task failed")?.context("server failed");
        }
        signal = tokio::signal::ctrl_c() => signal.context("cannot wait for Ctrl-C")?,
    }
    tracing::info!("shutting down");
    let _ = stop.send(());
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(joined) => joined
            .context("server task failed")?
            .context("server failed"),
        Err(_) => {
            tracing::info!("closing connections still open after {SHUTDOWN_GRACE:?}");
            Ok(())
        }
    }
}
