//! Driving a [`Session`] over any byte transport. The tokio driver ([`crate::driver`], a TCP
//! socket) and the web app (the relay's WebSocket) both use this, so the logic of waiting for a
//! reply, logging in and reaching the end of the stream exists once.

use rustls::pki_types::UnixTime;

use crate::pop3::{AuthMethod, Capabilities, Command, Event, Greeting, Handle, Reply, ServerError};
use crate::secret::Credentials;
use crate::session::{Session, SessionConfig, SessionError, SessionEvent};

/// Moves a session's bytes.
// The futures are awaited in place (never boxed or sent to another thread), so the `Send`
// bound this lint asks about does not matter; the browser's WebSocket is not `Send` anyway.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Why the transport failed.
    type Error;
    /// Sends `bytes`.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
    /// The next bytes received, or `None` at the end of the stream.
    async fn recv(&mut self) -> Result<Option<&[u8]>, Self::Error>;
}

/// Why a driven session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError<E> {
    /// The transport failed.
    #[error("transport error")]
    Transport(E),
    /// TLS or POP3 failed.
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
    /// The stream ended before the session was done.
    #[error("the connection ended unexpectedly")]
    Closed,
}

/// A session over a [`Transport`].
pub struct Driver<T> {
    transport: T,
    session: Session,
    greeting: Option<Greeting>,
    capabilities: Capabilities,
}

impl<T> std::fmt::Debug for Driver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<T> Driver<T> {
    /// The greeting.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// The capabilities read during start-up (after TLS).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The session, for its state.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }
}

impl<T: Transport> Driver<T> {
    /// Runs a session over `transport` up to [`SessionEvent::Ready`], checking certificates as
    /// of `now`.
    pub async fn start(
        transport: T,
        config: SessionConfig,
        now: UnixTime,
    ) -> Result<Self, DriveError<T::Error>> {
        let mut driver = Self {
            transport,
            session: Session::new(config, now)?,
            greeting: None,
            capabilities: Capabilities::default(),
        };
        loop {
            match driver.next_session_event().await? {
                SessionEvent::Ready {
                    greeting,
                    capabilities,
                } => {
                    driver.greeting = Some(greeting);
                    driver.capabilities = capabilities;
                    return Ok(driver);
                }
                // Nothing was sent by the caller yet, so nothing else can arrive.
                _ => continue,
            }
        }
    }

    /// Queues a command; its reply comes from [`Driver::next_event`].
    pub fn send(&mut self, command: Command) -> Result<Handle, DriveError<T::Error>> {
        Ok(self.session.send(command)?)
    }

    /// Logs in and waits for the outcome.
    pub async fn login(
        &mut self,
        credentials: Credentials,
        method: AuthMethod,
    ) -> Result<(), DriveError<T::Error>> {
        let handle = self.session.login(credentials, method)?;
        self.wait(handle, "login").await.map(|_| ())
    }

    /// Sends one command and waits for its reply.
    pub async fn run(&mut self, command: Command) -> Result<Reply, DriveError<T::Error>> {
        let verb = command.verb();
        let handle = self.session.send(command)?;
        self.wait(handle, verb).await
    }

    async fn wait(
        &mut self,
        handle: Handle,
        verb: &'static str,
    ) -> Result<Reply, DriveError<T::Error>> {
        loop {
            match self.next_event().await? {
                Event::Reply { handle: h, reply } if h == handle => return Ok(reply),
                Event::Rejected { handle: h, error } if h == handle => {
                    return Err(DriveError::Rejected { verb, error })
                }
                _ => continue,
            }
        }
    }

    /// Sends what the session has to send, then reads until the next POP3 event.
    pub async fn next_event(&mut self) -> Result<Event, DriveError<T::Error>> {
        loop {
            if let SessionEvent::Pop3(event) = self.next_session_event().await? {
                return Ok(event);
            }
        }
    }

    async fn next_session_event(&mut self) -> Result<SessionEvent, DriveError<T::Error>> {
        loop {
            self.flush().await?;
            if let Some(event) = self.session.poll_event()? {
                return Ok(event);
            }
            // Replies may have freed room for more pipelined commands.
            self.flush().await?;
            match self.transport.recv().await.map_err(DriveError::Transport)? {
                Some(bytes) => self.session.handle_input(bytes)?,
                None => {
                    self.session.handle_eof();
                    return self.session.poll_event()?.ok_or(DriveError::Closed);
                }
            }
        }
    }

    async fn flush(&mut self) -> Result<(), DriveError<T::Error>> {
        if let Some(bytes) = self.session.poll_transmit() {
            self.transport
                .send(&bytes)
                .await
                .map_err(DriveError::Transport)?;
        }
        Ok(())
    }
}

/// The sync host runs over a driver directly (the native relay client in the tests does).
impl<T: Transport> crate::sync::host::Connection for Driver<T> {
    type Error = DriveError<T::Error>;

    fn send(&mut self, command: Command) -> Result<Handle, Self::Error> {
        Driver::send(self, command)
    }

    async fn next_event(&mut self) -> Result<Event, Self::Error> {
        Driver::next_event(self).await
    }

    async fn run(&mut self, command: Command) -> Result<Reply, Self::Error> {
        Driver::run(self, command).await
    }

    async fn quit(mut self) -> Result<(), Self::Error> {
        Driver::run(&mut self, Command::Quit).await.map(|_| ())
    }
}
