//! Helpers for the relay's integration tests: a relay on 127.0.0.1, WebSocket clients, TCP
//! servers to relay to, and a recorder of everything that crosses the relay.
#![allow(dead_code)] // Each test file uses a different subset.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webpop_proxy::{Relay, RelayConfig, ServeOptions};

/// A client's WebSocket to the relay.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A relay serving on 127.0.0.1, stopped when dropped or by [`TestRelay::stop`].
pub struct TestRelay {
    pub addr: SocketAddr,
    pub relay: Arc<Relay>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _web_root: tempfile::TempDir,
}

/// A relay config that may reach loopback on `ports`, as every test needs, with no cap on new
/// sessions per minute (tests open many from 127.0.0.1).
pub fn loopback_config(ports: &[u16]) -> RelayConfig {
    RelayConfig {
        policy: webpop_proxy::policy::TargetPolicy::default()
            .ports(ports.iter().copied())
            .allow_reserved_ranges(true),
        new_sessions_per_client_per_minute: 0,
        ..RelayConfig::default()
    }
}

impl TestRelay {
    pub async fn start(config: RelayConfig) -> Self {
        Self::start_with(config, ServeOptions::default(), Duration::from_secs(5)).await
    }

    pub async fn start_with(config: RelayConfig, options: ServeOptions, drain: Duration) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), config, options, drain).await
    }

    pub async fn start_on(
        listen: SocketAddr,
        config: RelayConfig,
        options: ServeOptions,
        drain: Duration,
    ) -> Self {
        let web_root = tempfile::tempdir().unwrap();
        std::fs::write(
            web_root.path().join("index.html"),
            "<!doctype html><title>webpop</title>",
        )
        .unwrap();
        let listener = TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = Relay::new(config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(webpop_proxy::run(
            listener,
            web_root.path().to_owned(),
            Arc::clone(&relay),
            options,
            drain,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            relay,
            stop: Some(stop),
            task: Some(task),
            _web_root: web_root,
        }
    }

    /// Starts the shutdown and returns the server task, which ends once sessions drained.
    pub fn stop(&mut self) -> JoinHandle<std::io::Result<()>> {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap()
    }

    /// The directory served as the web app.
    pub fn web_root(&self) -> std::path::PathBuf {
        self._web_root.path().to_owned()
    }

    pub fn url(&self, host: &str, port: u16) -> String {
        format!("ws://{}/relay?host={host}&port={port}", self.addr)
    }

    /// Opens a relay session to `target` from 127.0.0.1 with no Origin header.
    pub async fn connect(&self, target: SocketAddr) -> Ws {
        ws_connect(
            &self.url(&target.ip().to_string(), target.port()),
            None,
            None,
        )
        .await
        .unwrap()
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Opens a WebSocket to `url`, optionally with an `Origin` and from a chosen loopback source
/// address (127.0.0.x: Linux routes all of 127/8 to loopback).
pub async fn ws_connect(
    url: &str,
    origin: Option<&str>,
    source: Option<IpAddr>,
) -> Result<Ws, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let authority = request.uri().authority().unwrap().to_string();
    let addr: SocketAddr = authority.parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0)).unwrap();
    }
    let tcp = socket.connect(addr).await?;
    let config = WebSocketConfig::default().max_frame_size(Some(1 << 20));
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(tcp),
        Some(config),
    )
    .await?;
    Ok(ws)
}

/// Opens a WebSocket to `url` from 127.0.0.1 offering these subprotocols; returns it and the
/// subprotocol the relay picked.
pub async fn ws_connect_protocols(
    url: &str,
    protocols: &[&str],
) -> Result<(Ws, Option<String>), tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            protocols.join(", ").parse().unwrap(),
        );
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await?;
    let picked = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    Ok((ws, picked))
}

/// Reads until the relay's close frame and returns its code; panics on data, a bare EOF, or
/// after 30 s.
pub async fn close_code(ws: &mut Ws) -> u16 {
    close_code_within(ws, Duration::from_secs(30)).await
}

/// [`close_code`] with another time limit (tests on a paused clock need a long one).
pub async fn close_code_within(ws: &mut Ws, limit: Duration) -> u16 {
    loop {
        match tokio::time::timeout(limit, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => return frame.code.into(),
            Ok(Some(Ok(Message::Close(None)))) => panic!("close frame without a code"),
            Ok(Some(Ok(Message::Binary(data)))) => {
                panic!("unexpected {} bytes of data", data.len())
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("WebSocket error before the close frame: {e}"),
            Ok(None) => panic!("connection ended without a close frame"),
            Err(_) => panic!("no close frame within {limit:?}"),
        }
    }
}

/// A value from the relay's `/metrics` text.
pub fn metric(relay: &TestRelay, name: &str) -> u64 {
    let text = relay.relay.metrics().render();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// Sends `data` and reads binary frames until as many bytes came back.
pub async fn round_trip(ws: &mut Ws, data: &[u8]) -> Vec<u8> {
    ws.send(Message::binary(data.to_vec())).await.unwrap();
    let mut back = Vec::new();
    while back.len() < data.len() {
        match ws.next().await {
            Some(Ok(Message::Binary(chunk))) => back.extend_from_slice(&chunk),
            other => panic!("expected data, got {other:?}"),
        }
    }
    back
}

/// A TCP echo server on 127.0.0.1.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Everything that crossed one point, each direction in order.
#[derive(Clone, Default)]
pub struct Recording {
    pub to_server: Arc<Mutex<Vec<u8>>>,
    pub to_client: Arc<Mutex<Vec<u8>>>,
}

impl Recording {
    pub fn all(&self) -> Vec<Vec<u8>> {
        vec![
            self.to_server.lock().unwrap().clone(),
            self.to_client.lock().unwrap().clone(),
        ]
    }
}

/// Turns a relay WebSocket into a byte stream for the POP3 driver, recording the payload of
/// every frame both ways.
pub fn ws_as_stream(ws: Ws) -> (DuplexStream, Recording) {
    let (app, mut ours) = tokio::io::duplex(256 * 1024);
    let recording = Recording::default();
    let rec = recording.clone();
    tokio::spawn(async move {
        let (mut sink, mut stream) = ws.split();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                n = ours.read(&mut buf) => match n {
                    Ok(0) | Err(_) => { let _ = sink.close().await; break; }
                    Ok(n) => {
                        rec.to_server.lock().unwrap().extend_from_slice(&buf[..n]);
                        if sink.send(Message::binary(buf[..n].to_vec())).await.is_err() { break; }
                    }
                },
                message = stream.next() => match message {
                    Some(Ok(Message::Binary(data))) => {
                        rec.to_client.lock().unwrap().extend_from_slice(&data);
                        if ours.write_all(&data).await.is_err() { break; }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    });
    (app, recording)
}

/// A TCP forwarder on 127.0.0.1 that records what passes between the relay and `target`.
pub async fn tcp_tap(target: SocketAddr) -> (SocketAddr, Recording) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recording = Recording::default();
    let rec = recording.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let rec = rec.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = {
                    let rec = rec.to_server.clone();
                    async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            rec.lock().unwrap().extend_from_slice(&buf[..n]);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    }
                };
                let down = {
                    let rec = rec.to_client.clone();
                    async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = sr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            rec.lock().unwrap().extend_from_slice(&buf[..n]);
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = cw.shutdown().await;
                    }
                };
                tokio::join!(up, down);
            });
        }
    });
    (addr, recording)
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
