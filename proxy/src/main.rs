//! `webpop-proxy`: parses flags, sets up logging and runs the server until Ctrl-C.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

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
    let shutdown = async {
        // If the signal handler cannot be installed, run until killed rather than exit at once.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    };
    webpop_proxy::run(listener, args.web_root, shutdown)
        .await
        .context("server failed")
}
