//! The WebSocket test client: what the relay's tests, the fault matrix and the benchmarks use to
//! open relay sessions the way a browser does (Nagle off, an optional `Origin`, an optional
//! loopback source address), send bytes and read them back, and see how a session ended; and a
//! relay session as a [`Transport`] ([`RelaySocket`]), for a TLS+POP3 `Connection` through the
//! relay as the page runs one.
//!
//! Everything returns errors rather than panicking, so that a benchmark can count failures;
//! a test unwraps.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webpop_shared::connection::{ConnectionError, Transport};
use webpop_shared::relay::{RelayError, Target};
use webpop_shared::tokio_transport::tokio_now;

/// A client's WebSocket to a relay.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How to open a WebSocket; `Options::default()` is a browser's plain request from 127.0.0.1.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// The `Origin` header, if any.
    pub origin: Option<&'a str>,
    /// The loopback address to connect from (127.0.0.x: Linux routes all of 127/8 to
    /// loopback), so that one test can be many clients.
    pub source: Option<IpAddr>,
    /// Subprotocols to offer (`Sec-WebSocket-Protocol`).
    pub protocols: &'a [&'a str],
    /// tungstenite's limits and buffers; `None`: frames of at most 1 MiB, default buffers.
    pub config: Option<WebSocketConfig>,
}

/// Opens a WebSocket to `url` (`ws://` with an IP address and port) with Nagle off; returns it
/// and the subprotocol the server picked. A refused upgrade is `tungstenite::Error::Http`, with
/// the response, as tungstenite gives it.
pub async fn open(url: &str, options: &Options<'_>) -> Result<(Ws, Option<String>), WsError> {
    let header =
        |value: &str| HeaderValue::from_str(value).map_err(|e| WsError::HttpFormat(e.into()));
    let mut request = url.into_client_request()?;
    if let Some(origin) = options.origin {
        request.headers_mut().insert("origin", header(origin)?);
    }
    if !options.protocols.is_empty() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            header(&options.protocols.join(", "))?,
        );
    }
    let authority = request
        .uri()
        .authority()
        .ok_or(WsError::Url(UrlError::NoHostName))?;
    let addr: SocketAddr = authority
        .as_str()
        .parse()
        .map_err(|_| WsError::Url(UrlError::UnableToConnect(authority.to_string())))?;
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(source) = options.source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    let config = options
        .config
        .unwrap_or_else(|| WebSocketConfig::default().max_frame_size(Some(1 << 20)));
    let (ws, response) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(tcp),
        Some(config),
    )
    .await?;
    let picked = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((ws, picked))
}

/// Opens a WebSocket to `url`, optionally with an `Origin` and from a chosen loopback source
/// address.
pub async fn connect(
    url: &str,
    origin: Option<&str>,
    source: Option<IpAddr>,
) -> Result<Ws, WsError> {
    let options = Options {
        origin,
        source,
        ..Options::default()
    };
    Ok(open(url, &options).await?.0)
}

/// Sends `data` and reads binary frames until as many bytes came back; what came back.
pub async fn round_trip(ws: &mut Ws, data: &[u8]) -> Result<Vec<u8>> {
    ws.send(Message::binary(data.to_vec())).await?;
    let mut back = Vec::with_capacity(data.len());
    while back.len() < data.len() {
        match ws.next().await.context("closed")?? {
            Message::Binary(chunk) => back.extend_from_slice(&chunk),
            Message::Close(frame) => bail!("closed: {frame:?}"),
            _ => {}
        }
    }
    Ok(back)
}

/// Reads until the relay's close frame and returns its code (1005 for a close frame without
/// one; `None`: the stream ended, or failed, without a close frame), then reads on until the
/// end so that tungstenite's reply goes out. Data before the close frame is an error.
pub async fn close_code(ws: &mut Ws) -> Result<Option<u16>> {
    let mut code = None;
    while let Some(message) = ws.next().await {
        match message {
            Ok(Message::Close(frame)) => {
                code = Some(frame.map_or(1005, |f| u16::from(f.code)));
            }
            Ok(Message::Binary(data)) if code.is_none() => {
                bail!("unexpected {} bytes of data", data.len())
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(code)
}

/// Closes politely: a close frame, then reading until the relay ends the stream.
pub async fn close(mut ws: Ws) {
    let _ = ws.close(None).await;
    while let Some(Ok(_)) = ws.next().await {}
}

/// Everything that crossed one point, each direction in order.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// The bytes sent towards the server.
    pub to_server: Arc<Mutex<Vec<u8>>>,
    /// The bytes sent towards the client.
    pub to_client: Arc<Mutex<Vec<u8>>>,
}

impl Recording {
    /// Both directions: towards the server, then towards the client.
    pub fn all(&self) -> Vec<Vec<u8>> {
        let get = |m: &Mutex<Vec<u8>>| m.lock().unwrap_or_else(PoisonError::into_inner).clone();
        vec![get(&self.to_server), get(&self.to_client)]
    }
}

/// A relay session as a [`Transport`] (what the page's `net::RelaySocket` is in the browser):
/// binary frames carry the bytes; a close frame's code becomes a [`RelayError`] (1000, "server
/// closed", is the end of the stream). With [`RelaySocket::record`], the payload of every frame
/// is recorded both ways.
pub struct RelaySocket {
    ws: Ws,
    target: Target,
    last: Bytes,
    recording: Option<Recording>,
}

impl RelaySocket {
    /// A session to `target` over `ws`, a WebSocket the relay accepted for it.
    pub fn new(ws: Ws, target: Target) -> Self {
        Self {
            ws,
            target,
            last: Bytes::new(),
            recording: None,
        }
    }

    /// Opens a WebSocket to `url` (the relay's endpoint with the request for `target`) and
    /// makes it a session.
    pub async fn open(url: &str, target: Target) -> Result<Self, ConnectionError> {
        let ws = connect(url, None, None)
            .await
            .map_err(|e| ConnectionError::Open(e.to_string()))?;
        Ok(Self::new(ws, target))
    }

    /// Records from now on every payload byte both ways.
    pub fn record(&mut self) -> Recording {
        self.recording
            .get_or_insert_with(Recording::default)
            .clone()
    }
}

/// A WebSocket failure: a socket's own error is I/O, the rest has no reason to give.
fn ws_error(e: WsError) -> ConnectionError {
    match e {
        WsError::Io(e) => ConnectionError::Io(e),
        _ => ConnectionError::Transport,
    }
}

fn record(to: Option<&Arc<Mutex<Vec<u8>>>>, bytes: &[u8]) {
    if let Some(to) = to {
        to.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
    }
}

impl Transport for RelaySocket {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        record(self.recording.as_ref().map(|r| &r.to_server), bytes);
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .await
            .map_err(ws_error)
    }

    async fn recv(&mut self) -> Result<Option<&[u8]>, ConnectionError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Binary(data))) => {
                    record(self.recording.as_ref().map(|r| &r.to_client), &data);
                    self.last = data;
                    return Ok(Some(&self.last));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    return match RelayError::from_close(&self.target, code, &reason) {
                        Some(e) => Err(e.into()),
                        None => Ok(None),
                    };
                }
                // The relay sends binary frames only.
                Some(Ok(Message::Text(_))) => return Err(ConnectionError::Transport),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ws_error(e)),
                None => return Ok(None),
            }
        }
    }

    /// Closes politely: a close frame (the relay then closes the server's side).
    async fn close(&mut self) -> Result<(), ConnectionError> {
        self.ws.close(None).await.map_err(ws_error)
    }

    fn now() -> Duration {
        tokio_now()
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(duration)
    }
}
