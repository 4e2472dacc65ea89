//! A tokio driver: a [`Driver`] over a socket (or any tokio byte stream), reading the clock.
//!
//! It adds no protocol logic. Typical use: [`Connection::connect`], [`Connection::login`], then
//! either [`Connection::run`] for one command at a time, or [`Connection::send`] for many and
//! [`Connection::next_event`] for their replies (pipelined when the server allows).

use std::time::{Duration, SystemTime};

use rustls::pki_types::UnixTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::pop3::{AuthMethod, Capabilities, Command, Event, Greeting, Handle, Reply, ServerError};
use crate::secret::Credentials;
use crate::session::{Session, SessionConfig, SessionError};
use crate::transport::{DriveError, Driver, Transport};

/// Why a driven session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Reading or writing the socket failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The server refused a command with `-ERR`.
    #[error("the server refused {verb}: {}", .error.text)]
    Rejected {
        /// The command.
        verb: &'static str,
        /// The server's reason.
        error: ServerError,
    },
    /// Nothing arrived for this long while a reply was due.
    #[error("the mail server stopped answering (nothing for {} s)", .0.as_secs())]
    Stalled(std::time::Duration),
}

/// A tokio byte stream as a [`Transport`], with its read buffer.
struct Stream<S> {
    io: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport for Stream<S> {
    type Error = std::io::Error;

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.io.write_all(bytes).await
    }

    async fn recv(&mut self) -> Result<Option<&[u8]>, Self::Error> {
        let n = self.io.read(&mut self.buf).await?;
        Ok((n > 0).then(|| &self.buf[..n]))
    }

    fn now() -> Duration {
        tokio_now()
    }

    fn sleep(duration: Duration) -> impl std::future::Future<Output = ()> {
        tokio::time::sleep(duration)
    }
}

/// tokio's clock (paused in tests that pause it), from the first time it was read.
pub fn tokio_now() -> Duration {
    static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let now = tokio::time::Instant::now();
    now.saturating_duration_since(*ORIGIN.get_or_init(|| now))
}

impl From<DriveError<std::io::Error>> for DriverError {
    fn from(e: DriveError<std::io::Error>) -> Self {
        match e {
            DriveError::Transport(e) => Self::Io(e),
            DriveError::Session(e) => Self::Session(e),
            DriveError::Rejected { verb, error } => Self::Rejected { verb, error },
            DriveError::Closed => Self::Io(std::io::ErrorKind::UnexpectedEof.into()),
            DriveError::Stalled(limit) => Self::Stalled(limit),
        }
    }
}

/// A session over a tokio byte stream.
pub struct Connection<S> {
    driver: Driver<Stream<S>>,
}

impl<S> std::fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("session", self.driver.session())
            .finish_non_exhaustive()
    }
}

impl Connection<TcpStream> {
    /// Connects over TCP and runs the session up to [`crate::session::SessionEvent::Ready`].
    pub async fn connect(
        addr: impl ToSocketAddrs,
        config: SessionConfig,
    ) -> Result<Self, DriverError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Self::start(tcp, config).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Runs a session over an open stream up to [`crate::session::SessionEvent::Ready`].
    pub async fn start(io: S, config: SessionConfig) -> Result<Self, DriverError> {
        let now = UnixTime::since_unix_epoch(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        Self::start_at(io, config, now).await
    }

    /// Like [`Connection::start`], checking certificates as of `now`.
    pub async fn start_at(
        io: S,
        config: SessionConfig,
        now: UnixTime,
    ) -> Result<Self, DriverError> {
        let stream = Stream {
            io,
            buf: vec![0; 64 * 1024],
        };
        Ok(Self {
            driver: Driver::start(stream, config, now).await?,
        })
    }

    /// The greeting.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.driver.greeting()
    }

    /// The capabilities read during start-up.
    pub fn capabilities(&self) -> &Capabilities {
        self.driver.capabilities()
    }

    /// The session, for its state.
    pub fn session(&self) -> &Session {
        self.driver.session()
    }

    /// Queues a command; its reply comes from [`Connection::next_event`].
    pub fn send(&mut self, command: Command) -> Result<Handle, DriverError> {
        Ok(self.driver.send(command)?)
    }

    /// Logs in and waits for the outcome.
    pub async fn login(
        &mut self,
        credentials: Credentials,
        method: AuthMethod,
    ) -> Result<(), DriverError> {
        Ok(self.driver.login(credentials, method).await?)
    }

    /// Sends one command and waits for its reply.
    pub async fn run(&mut self, command: Command) -> Result<Reply, DriverError> {
        Ok(self.driver.run(command).await?)
    }

    /// Sends QUIT, waits for its reply and closes the stream.
    pub async fn quit(mut self) -> Result<(), DriverError> {
        self.run(Command::Quit).await?;
        self.driver.transport_mut().io.shutdown().await?;
        Ok(())
    }

    /// Writes what the session has to send, then reads until the next event.
    pub async fn next_event(&mut self) -> Result<Event, DriverError> {
        Ok(self.driver.next_event().await?)
    }

    /// Drops the connection without QUIT (so the server commits no deletions).
    pub fn abort(self) {}
}

/// The sync host over a tokio byte stream (TCP in the Dovecot tests and the benchmarks).
impl<S: AsyncRead + AsyncWrite + Unpin> crate::sync::host::Connection for Connection<S> {
    type Error = DriverError;

    fn send(&mut self, command: Command) -> Result<Handle, Self::Error> {
        Connection::send(self, command)
    }

    async fn next_event(&mut self) -> Result<Event, Self::Error> {
        Connection::next_event(self).await
    }

    async fn run(&mut self, command: Command) -> Result<Reply, Self::Error> {
        Connection::run(self, command).await
    }

    async fn quit(self) -> Result<(), Self::Error> {
        Connection::quit(self).await
    }
}
