//! The native transport: a tokio socket (or any tokio byte stream) as a [`Transport`], reading
//! tokio's clock, and the helpers that open a [`Connection`] over one ([`connect`], [`start`],
//! [`start_at`]). It adds no protocol logic.

use std::time::{Duration, SystemTime};

use rustls::pki_types::UnixTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::connection::{Connection, ConnectionError, Transport};
use crate::session::SessionConfig;

/// A tokio byte stream as a [`Transport`], with its read buffer.
#[derive(Debug)]
pub struct TokioStream<S> {
    io: S,
    buf: Vec<u8>,
}

impl<S> TokioStream<S> {
    /// `io` as a transport.
    pub fn new(io: S) -> Self {
        Self {
            io,
            buf: vec![0; 64 * 1024],
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport for TokioStream<S> {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        Ok(self.io.write_all(bytes).await?)
    }

    async fn recv(&mut self) -> Result<Option<&[u8]>, ConnectionError> {
        let n = self.io.read(&mut self.buf).await?;
        Ok((n > 0).then(|| &self.buf[..n]))
    }

    /// Shuts the writing side down, so the server sees the end of the stream.
    async fn close(&mut self) -> Result<(), ConnectionError> {
        Ok(self.io.shutdown().await?)
    }

    fn now() -> Duration {
        tokio_now()
    }

    fn sleep(duration: Duration) -> impl std::future::Future<Output = ()> {
        tokio::time::sleep(duration)
    }
}

/// A connection over TCP.
pub type TcpConnection = Connection<TokioStream<TcpStream>>;

/// tokio's clock (paused in tests that pause it), from the first time it was read.
pub fn tokio_now() -> Duration {
    static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let now = tokio::time::Instant::now();
    now.saturating_duration_since(*ORIGIN.get_or_init(|| now))
}

/// The system clock, as certificates are checked against it.
pub fn unix_now() -> UnixTime {
    UnixTime::since_unix_epoch(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// Connects over TCP (Nagle off) and runs the session up to
/// [`crate::session::SessionEvent::Ready`].
pub async fn connect(
    addr: impl ToSocketAddrs,
    config: SessionConfig,
) -> Result<TcpConnection, ConnectionError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    start(tcp, config).await
}

/// Runs a session over an open stream up to [`crate::session::SessionEvent::Ready`].
pub async fn start<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    config: SessionConfig,
) -> Result<Connection<TokioStream<S>>, ConnectionError> {
    start_at(io, config, unix_now()).await
}

/// Like [`start`], checking certificates as of `now`.
pub async fn start_at<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    config: SessionConfig,
    now: UnixTime,
) -> Result<Connection<TokioStream<S>>, ConnectionError> {
    Connection::start(TokioStream::new(io), config, now).await
}
