//! One relay session after the upgrade: refuse with a close code, or connect and pump.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::either::Either;
use webpop_shared::relay::flow::{self, Credit};
use webpop_shared::relay::{CloseReason, Target, MAX_FRAME};

use super::direct::{self, Client, ClientIo};
use super::{pump, Relay, READ_SIZE};
use crate::limits::Permit;
use crate::metrics::Refused;

/// The WebSocket side of a session: the page's own TCP socket (written to directly), or any
/// other stream (the relay's own TLS), written to through tungstenite.
pub(super) type Ws = WebSocketStream<Either<ClientIo, TokioIo<Upgraded>>>;

/// A request that passed the query, token and limit checks.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) target: Target,
    pub(crate) permit: Permit,
}

/// How long a refused or closed session waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

fn ws_config() -> WebSocketConfig {
    // Small read buffer (pages send little: POP3 commands inside TLS records), hard frame and
    // message caps. Writes (only used when the relay serves TLS itself) go out every four
    // frames; one read's frames always fit the write buffer.
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(4 * MAX_FRAME)
        .max_write_buffer_size(READ_SIZE + 4 * MAX_FRAME + 1024)
        .max_frame_size(Some(MAX_FRAME))
        .max_message_size(Some(MAX_FRAME))
}

/// Runs one session to its end; `flow`: the page asked for flow control (and was told yes).
pub(crate) async fn run(
    relay: Arc<Relay>,
    on_upgrade: OnUpgrade,
    admission: Result<Admitted, CloseReason>,
    client: IpAddr,
    flow: bool,
) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(%client, error = %e, "upgrade did not complete");
            return;
        }
    };
    let (io, direct) = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            // Keep only the bytes hyper read ahead, not its whole read buffer.
            let read_ahead = Bytes::copy_from_slice(&parts.read_buf);
            let (io, direct) = direct::split(parts.io.into_inner(), read_ahead);
            (Either::Left(io), Some(direct))
        }
        Err(upgraded) => (Either::Right(TokioIo::new(upgraded)), None),
    };
    let direct = direct.as_ref();
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
    let Admitted { target, permit } = match admission {
        Ok(admitted) => admitted,
        Err(reason) => {
            relay.metrics.refused(Refused::Closed(reason));
            let _ = timeout(CLOSE_WAIT, close(&mut ws, direct, reason)).await;
            return;
        }
    };
    let started = Instant::now();
    let connected = tokio::select! {
        connected = connect(&relay, &target, client) => connected,
        () = relay.stop_sessions.cancelled() => Err(CloseReason::ShuttingDown),
    };
    let upstream = match connected {
        Ok(stream) => stream,
        Err(reason) => {
            relay.metrics.refused(Refused::Closed(reason));
            tracing::info!(%client, %target, reason = reason.label(), "relay refused");
            let _ = timeout(CLOSE_WAIT, close(&mut ws, direct, reason)).await;
            return;
        }
    };
    relay.metrics.opened(started.elapsed());
    let credit = flow.then(|| Credit::new(flow::WINDOW));
    let outcome = pump::run(&relay, &mut ws, direct, upstream, credit).await;
    // The slot is free once the relaying is over; a page that will not take the close frame
    // gets CLOSE_WAIT, then the socket is dropped.
    drop(permit);
    if let Some(reason) = outcome.reason {
        let _ = timeout(CLOSE_WAIT, close(&mut ws, direct, reason)).await;
    }
    relay.metrics.closed(outcome.reason);
    tracing::info!(
        %client,
        %target,
        to_server = outcome.to_server,
        to_client = outcome.to_client,
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        reason = outcome.reason.map_or("client_closed", CloseReason::label),
        "relay session ended"
    );
}

/// Sends a close frame for `reason` and waits briefly for the client's.
async fn close(ws: &mut Ws, direct: Option<&Client>, reason: CloseReason) {
    let frame = CloseFrame {
        code: CloseCode::from(reason.code()),
        reason: Utf8Bytes::from_static(reason.reason()),
    };
    if ws.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    if let Some(direct) = direct {
        if direct.send_control().await.is_err() {
            return;
        }
    }
    let _ = timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Checks `target` against the policy, resolves it, checks every address, and connects to the
/// first that answers, trying only the addresses it checked.
async fn connect(relay: &Relay, target: &Target, client: IpAddr) -> Result<TcpStream, CloseReason> {
    let config = &relay.config;
    let forbidden = |refusal: crate::policy::Refusal| {
        tracing::info!(%client, %target, %refusal, "target refused by policy");
        CloseReason::ForbiddenTarget
    };
    config.policy.check_request(target).map_err(forbidden)?;
    let deadline = Instant::now() + config.connect_timeout;
    let addrs: Vec<SocketAddr> = match target.ip() {
        Some(ip) => vec![SocketAddr::new(ip, target.port())],
        None => match tokio::time::timeout_at(
            deadline,
            config
                .resolver
                .resolve(target.host(), target.port(), client),
        )
        .await
        {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(crate::resolve::ResolveError::Busy)) => {
                tracing::info!(%client, %target, "too many name lookups in flight");
                return Err(CloseReason::LimitReached);
            }
            Ok(Err(e)) => {
                tracing::info!(%client, %target, error = %e, "DNS failed");
                return Err(CloseReason::DnsFailure);
            }
            Err(_) => return Err(CloseReason::DnsFailure),
        },
    };
    for addr in &addrs {
        config
            .policy
            .check_address(target, addr.ip())
            .map_err(forbidden)?;
    }
    let mut last_error: Option<io::Error> = None;
    for addr in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last_error = Some(e),
            Err(_) => return Err(CloseReason::ConnectTimeout),
        }
    }
    if let Some(e) = last_error {
        tracing::info!(%client, %target, error = %e, "connect failed");
    }
    Err(CloseReason::ConnectRefused)
}
