//! Helpers for the relay's integration tests: the test kit's relay on 127.0.0.1 and WebSocket
//! client (with the assertions these tests make), TCP servers to relay to, and a recorder of
//! everything that crosses the relay.
#![allow(dead_code)] // Each test file uses a different subset.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite;
use webpop_testkit::ws;

#[allow(unused_imports)] // Each test file uses a different subset.
pub use webpop_testkit::local_relay::{loopback_config, LocalRelay};
#[allow(unused_imports)]
pub use webpop_testkit::ws::{connect as ws_connect, Recording, RelaySocket, Ws};

/// Opens a WebSocket to `url` from 127.0.0.1 offering these subprotocols; returns it and the
/// subprotocol the relay picked.
pub async fn ws_connect_protocols(
    url: &str,
    protocols: &[&str],
) -> Result<(Ws, Option<String>), tungstenite::Error> {
    let options = ws::Options {
        protocols,
        ..ws::Options::default()
    };
    ws::open(url, &options).await
}

/// Reads until the relay's close frame and returns its code; panics on data, a bare EOF, or
/// after 30 s.
pub async fn close_code(ws: &mut Ws) -> u16 {
    close_code_within(ws, Duration::from_secs(30)).await
}

/// [`close_code`] with another time limit (tests on a paused clock need a long one).
pub async fn close_code_within(ws: &mut Ws, limit: Duration) -> u16 {
    match tokio::time::timeout(limit, ws::close_code(ws)).await {
        Ok(Ok(Some(1005))) => panic!("close frame without a code"),
        Ok(Ok(Some(code))) => code,
        Ok(Ok(None)) => panic!("connection ended without a close frame"),
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("no close frame within {limit:?}"),
    }
}

/// A value from the relay's `/metrics` text.
pub fn metric(relay: &LocalRelay, name: &str) -> u64 {
    relay
        .metric(name)
        .unwrap_or_else(|| panic!("no {name} in\n{}", relay.relay().metrics().render()))
}

/// Sends `data` and reads binary frames until as many bytes came back.
pub async fn round_trip(ws: &mut Ws, data: &[u8]) -> Vec<u8> {
    ws::round_trip(ws, data)
        .await
        .unwrap_or_else(|e| panic!("expected data: {e}"))
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

/// A relay session to `target` over `ws`: the transport of a POP3 `Connection` through the
/// relay.
pub fn relay_socket(ws: Ws, target: SocketAddr) -> RelaySocket {
    let target = webpop_shared::relay::Target::new(&target.ip().to_string(), target.port());
    RelaySocket::new(ws, target.unwrap())
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

/// A self-signed certificate for `localhost` and its key, as PEM files, and its DER.
pub struct TlsFiles {
    _dir: tempfile::TempDir,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub der: Vec<u8>,
}

/// A fresh [`TlsFiles`] in a directory of its own.
pub fn tls_certificate() -> TlsFiles {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    TlsFiles {
        der: generated.cert.der().to_vec(),
        _dir: dir,
        cert,
        key,
    }
}

/// A TLS client that trusts only the certificate `der`.
pub fn tls_connector(der: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.to_vec().into()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// The `webpop-proxy` binary this package builds.
pub const BINARY: &str = env!("CARGO_BIN_EXE_webpop-proxy");

/// The relay binary running, its standard output read line by line (so it never blocks on a
/// full pipe); killed when dropped.
pub struct RelayBinary {
    child: Option<std::process::Child>,
    /// The address from its "serving" line.
    pub addr: SocketAddr,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    log: Vec<String>,
}

impl RelayBinary {
    /// Starts `command` (the relay binary, listening on port 0) and waits for the line that
    /// says where it serves.
    pub async fn spawn(mut command: std::process::Command) -> Self {
        use std::io::BufRead as _;
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines_tx.send(line);
            }
        });
        let mut log = Vec::new();
        let addr = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.recv())
                .await
                .expect("no 'serving' line")
                .expect("the binary exited");
            log.push(line.clone());
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        Self {
            child: Some(child),
            addr,
            lines,
            log,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// A `kB` line of its `/proc/<pid>/status`.
    pub fn status_kib(&self, key: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    /// Sends SIGTERM, waits for the exit, and returns it with the whole log.
    pub async fn sigterm(mut self) -> (std::process::ExitStatus, String) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = self.child.take().unwrap();
        let exit = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        while let Some(line) = self.lines.recv().await {
            self.log.push(line);
        }
        (exit, std::mem::take(&mut self.log).join("\n"))
    }
}

impl Drop for RelayBinary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
