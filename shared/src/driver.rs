//! A tokio driver: moves bytes between a socket and a [`Session`], and reads the clock.
//!
//! It adds no protocol logic. Typical use: [`Connection::connect`], [`Connection::login`], then
//! either [`Connection::run`] for one command at a time, or [`Connection::send`] for many and
//! [`Connection::next_event`] for their replies (pipelined when the server allows).

use std::time::SystemTime;

use rustls::pki_types::UnixTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::pop3::{AuthMethod, Capabilities, Command, Event, Greeting, Handle, Reply, ServerError};
use crate::secret::Credentials;
use crate::session::{Session, SessionConfig, SessionError, SessionEvent};

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
}

/// A session over a tokio byte stream.
pub struct Connection<S> {
    io: S,
    session: Session,
    buf: Vec<u8>,
    greeting: Option<Greeting>,
    capabilities: Capabilities,
}

impl<S> std::fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Connection<TcpStream> {
    /// Connects over TCP and runs the session up to [`SessionEvent::Ready`].
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
    /// Runs a session over an open stream up to [`SessionEvent::Ready`].
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
        let mut conn = Self {
            io,
            session: Session::new(config, now)?,
            buf: vec![0; 64 * 1024],
            greeting: None,
            capabilities: Capabilities::default(),
        };
        loop {
            match conn.next_session_event().await? {
                SessionEvent::Ready {
                    greeting,
                    capabilities,
                } => {
                    conn.greeting = Some(greeting);
                    conn.capabilities = capabilities;
                    return Ok(conn);
                }
                // Nothing was sent by the caller yet, so nothing else can arrive.
                SessionEvent::Pop3(_) => continue,
            }
        }
    }

    /// The greeting.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// The capabilities read during start-up.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The session, for its state.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Queues a command; its reply comes from [`Connection::next_event`].
    pub fn send(&mut self, command: Command) -> Result<Handle, DriverError> {
        Ok(self.session.send(command)?)
    }

    /// Logs in and waits for the outcome.
    pub async fn login(
        &mut self,
        credentials: Credentials,
        method: AuthMethod,
    ) -> Result<(), DriverError> {
        let handle = self.session.login(credentials, method)?;
        self.wait(handle, "login").await.map(|_| ())
    }

    /// Sends one command and waits for its reply.
    pub async fn run(&mut self, command: Command) -> Result<Reply, DriverError> {
        let verb = command.verb();
        let handle = self.session.send(command)?;
        self.wait(handle, verb).await
    }

    /// Sends QUIT, waits for its reply and closes the stream.
    pub async fn quit(mut self) -> Result<(), DriverError> {
        self.run(Command::Quit).await?;
        self.io.shutdown().await?;
        Ok(())
    }

    async fn wait(&mut self, handle: Handle, verb: &'static str) -> Result<Reply, DriverError> {
        loop {
            match self.next_event().await? {
                Event::Reply { handle: h, reply } if h == handle => return Ok(reply),
                Event::Rejected { handle: h, error } if h == handle => {
                    return Err(DriverError::Rejected { verb, error })
                }
                _ => continue,
            }
        }
    }

    /// Writes what the session has to send, then reads until the next event.
    pub async fn next_event(&mut self) -> Result<Event, DriverError> {
        loop {
            match self.next_session_event().await? {
                SessionEvent::Pop3(event) => return Ok(event),
                SessionEvent::Ready { .. } => continue,
            }
        }
    }

    async fn next_session_event(&mut self) -> Result<SessionEvent, DriverError> {
        loop {
            self.flush().await?;
            if let Some(event) = self.session.poll_event()? {
                return Ok(event);
            }
            // Replies may have freed room for more pipelined commands.
            self.flush().await?;
            let n = self.io.read(&mut self.buf).await?;
            if n == 0 {
                self.session.handle_eof();
                return match self.session.poll_event()? {
                    Some(event) => Ok(event),
                    None => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
                };
            }
            self.session.handle_input(&self.buf[..n])?;
        }
    }

    async fn flush(&mut self) -> Result<(), DriverError> {
        if let Some(bytes) = self.session.poll_transmit() {
            self.io.write_all(&bytes).await?;
        }
        Ok(())
    }

    /// Drops the connection without QUIT (so the server commits no deletions).
    pub fn abort(self) {}
}
