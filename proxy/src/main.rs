//! `webpop-proxy`: parses flags, sets up logging, and serves until SIGINT or SIGTERM.

#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::Parser as _;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use webpop_proxy::config::Args;
use webpop_proxy::Relay;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One thread by default: a relay's work is moving bytes between sockets, and one thread
    // does that with the fewest cross-thread wake-ups (lowest latency); more help when the
    // relay serves TLS itself to many users.
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    // tungstenite's trace logs print frame payloads: cap them, whatever RUST_LOG says.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("tungstenite=info".parse()?)
        .add_directive("tokio_tungstenite=info".parse()?);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .init();
    let demo = args.demo;
    let mut settings = args.into_settings()?;
    if demo {
        let demo = webpop_proxy::demo::Demo::start()
            .await
            .context("cannot start the demo mailbox")?;
        tracing::info!(
            addr = %demo.addr(),
            user = webpop_proxy::demo::USER,
            fingerprint = demo.fingerprint(),
            "demo mailbox running (sample mail only)"
        );
        settings.relay.policy = settings.relay.policy.clone().also_allow(demo.addr());
        settings.relay.demo = Some(demo.describe());
    }
    if !settings.web_root.join("index.html").is_file() {
        tracing::warn!(
            web_root = %settings.web_root.display(),
            "no index.html in the web root; build the web app first (scripts/run does)"
        );
    }
    if settings.relay.policy.allows_reserved_ranges() {
        tracing::warn!(
            "--allow-private-targets: the relay can reach loopback and private networks"
        );
    }
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let relay = Relay::new(settings.relay);
    webpop_proxy::run(
        listener,
        settings.web_root,
        relay,
        settings.serve,
        settings.drain_timeout,
        stop_signal(),
    )
    .await
    .context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on the first SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot listen for signals; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}
