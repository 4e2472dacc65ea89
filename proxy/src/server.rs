//! The accept loop: plain HTTP or HTTPS (tokio-rustls), HTTP/1.1 with WebSocket upgrades,
//! header timeouts and caps on connections not yet upgraded (overall and per client address)
//! against slow clients, and a graceful stop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1::UpgradeableConnection;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::client_ip::TrustedProxies;
use crate::host::AllowedHosts;
use crate::limits::{Limits, Pending, PendingSlot};

/// The TCP peer of a request, put in its extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// How connections are accepted and served.
#[derive(Clone)]
pub struct ServeOptions {
    /// Serve HTTPS with this acceptor instead of plain HTTP.
    pub tls: Option<TlsAcceptor>,
    /// A client must finish its TLS handshake and request headers within this time.
    pub header_timeout: Duration,
    /// Most HTTP connections not yet upgraded to relay sessions. When full, the one that has
    /// waited longest for its request headers (or TLS handshake) is cut to make room.
    pub max_http_connections: usize,
    /// Most of those from one client address (IPv6: one /64), so that one client holding
    /// connections open (slowloris) cannot take every slot. Trusted reverse proxies, which
    /// carry many clients' connections, are not counted per address.
    pub max_http_connections_per_client: usize,
    /// After shutdown starts, how long plain HTTP requests in flight may take.
    pub http_grace: Duration,
    /// The `Host` names answered (see [`crate::host`]); others get 421, so a page whose DNS
    /// name was rebound to this server cannot use it.
    pub allowed_hosts: AllowedHosts,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("tls", &self.tls.is_some())
            .field("header_timeout", &self.header_timeout)
            .field("max_http_connections", &self.max_http_connections)
            .field(
                "max_http_connections_per_client",
                &self.max_http_connections_per_client,
            )
            .field("http_grace", &self.http_grace)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tls: None,
            header_timeout: Duration::from_secs(10),
            max_http_connections: 1024,
            max_http_connections_per_client: 64,
            http_grace: Duration::from_secs(3),
            allowed_hosts: AllowedHosts::default(),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting and gives HTTP
/// requests in flight [`ServeOptions::http_grace`] to finish. Relay sessions are not waited for
/// here: they belong to the [`crate::relay::Relay`] and are drained by it. Connections from
/// `proxies` are exempt from the per-client cap on connections not yet upgraded.
///
/// # Errors
/// Only if the listener fails in a way that retrying cannot fix.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    proxies: TrustedProxies,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    let slots = Pending::new(options.max_http_connections);
    let per_client = Limits::new(usize::MAX, options.max_http_connections_per_client);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_transient(&e) => {
                    // Out of file descriptors or a connection reset before accept: back off.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
            () = &mut shutdown => break,
        };
        let client_slot = if proxies.trusts(peer.ip()) {
            None
        } else {
            let Ok(slot) = per_client.acquire(peer.ip()) else {
                tracing::debug!(%peer, "too many HTTP connections from this client; dropping one");
                continue;
            };
            Some(slot)
        };
        // When full, this evicts the connection waiting longest for its headers rather than
        // dropping the newcomer: otherwise slow clients from enough addresses (each under its
        // per-client cap) could lock everyone out until the header deadline. See [`Pending`].
        let Some(slot) = slots.admit() else {
            tracing::debug!(%peer, "too many HTTP connections, none waiting; dropping one");
            continue;
        };
        let slot = Arc::new(slot);
        let _ = tcp.set_nodelay(true);
        let in_request = Arc::clone(&slot);
        let service = app
            .clone()
            .map_request(move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .map_future(move |response| {
                // Not evictable while a request is being handled.
                let busy = Busy::new(Arc::clone(&in_request));
                async move {
                    let response = response.await;
                    drop(busy);
                    response
                }
            });
        let service = TowerToHyperService::new(service);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(options.header_timeout);
        let tls = options.tls.clone();
        let header_timeout = options.header_timeout;
        let stop = stop.clone();
        connections.spawn(async move {
            let evicted = slot.evicted().clone();
            let serve = async move {
                let result = match tls {
                    None => {
                        let conn = http
                            .serve_connection(TokioIo::new(tcp), service)
                            .with_upgrades();
                        until_stopped(conn, &stop).await
                    }
                    Some(acceptor) => {
                        let tls = match tokio::time::timeout(header_timeout, acceptor.accept(tcp))
                            .await
                        {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                        let conn = http
                            .serve_connection(TokioIo::new(tls), service)
                            .with_upgrades();
                        until_stopped(conn, &stop).await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                }
            };
            tokio::select! {
                () = serve => {}
                () = evicted.cancelled() => {
                    tracing::debug!(%peer, "HTTP connection evicted to make room for a new one");
                }
            }
            drop((slot, client_slot));
        });
    }
    drop(listener);
    stop.cancel();
    connections.close();
    if tokio::time::timeout(options.http_grace, connections.wait())
        .await
        .is_err()
    {
        tracing::debug!("HTTP connections still open after the grace period");
    }
    Ok(())
}

/// Serves one HTTP connection; once `stop` is cancelled, lets the request in flight finish and
/// ends the connection instead of keeping it alive.
async fn until_stopped<I, S>(
    conn: UpgradeableConnection<I, S>,
    stop: &CancellationToken,
) -> hyper::Result<()>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return result,
        () = stop.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    conn.await
}

/// Marks a connection busy (not evictable) from a request's arrival until its response.
struct Busy(Arc<PendingSlot>);

impl Busy {
    fn new(slot: Arc<PendingSlot>) -> Self {
        slot.busy();
        Self(slot)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.waiting();
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e
        .raw_os_error()
        .is_some_and(|code| code == 24 || code == 23) // EMFILE, ENFILE
}
