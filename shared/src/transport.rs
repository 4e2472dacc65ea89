//! Driving a [`Session`] over any byte transport. The tokio driver ([`crate::driver`], a TCP
//! socket) and the web app (the relay's WebSocket) both use this, so the logic of waiting for a
//! reply, logging in and reaching the end of the stream exists once.
//!
//! Time enters as data, as in quinn-proto: the stall deadline is a [`StallTimer`] the driver
//! asks when to wake ([`StallTimer::poll_timeout`]) and tells the time when it wakes
//! ([`StallTimer::handle_timeout`]). Only the clock and the sleeping come from the platform
//! ([`Transport::now`], [`Transport::sleep`]), so the page and the native drivers give up on a
//! silent server after the same time, decided by the same code.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
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
    /// The next bytes received, or `None` at the end of the stream. Must be cancel-safe: the
    /// driver drops it when the stall deadline passes, and the sync host when a commit ends.
    async fn recv(&mut self) -> Result<Option<&[u8]>, Self::Error>;
    /// The platform's monotonic clock, from any origin. A transport without one (the
    /// default) never stalls.
    fn now() -> Duration {
        Duration::ZERO
    }
    /// Resolves after `duration` on the platform's timer (by default never).
    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        let _ = duration;
        std::future::pending()
    }
}

/// How long a session waits for the next bytes while it expects some, unless told otherwise
/// ([`Driver::set_stall_limit`]): a server that stalls ends the session with
/// [`DriveError::Stalled`] instead of hanging until the relay's idle timeout (10 minutes).
pub const STALL_LIMIT: Duration = Duration::from_secs(90);

/// The stall deadline, as data: armed when the driver starts waiting for bytes, cleared when
/// bytes come; the driver sleeps until [`StallTimer::poll_timeout`] and then reports the time
/// to [`StallTimer::handle_timeout`]. Times are [`Transport::now`] values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallTimer {
    limit: Option<Duration>,
    deadline: Option<Duration>,
}

impl StallTimer {
    /// A timer that gives up after `limit` without bytes (`None`: never).
    pub fn new(limit: Option<Duration>) -> Self {
        Self {
            limit,
            deadline: None,
        }
    }

    /// The driver starts (or goes on) waiting for bytes at `now`; the deadline is set by the
    /// first call after [`StallTimer::reset`] or [`StallTimer::handle_input`].
    pub fn waiting(&mut self, now: Duration) {
        if self.deadline.is_none() {
            self.deadline = self.limit.map(|limit| now.saturating_add(limit));
        }
    }

    /// Bytes arrived: the wait is over.
    pub fn handle_input(&mut self) {
        self.deadline = None;
    }

    /// The caller stopped waiting (the sync host does while a commit holds the window): the
    /// next wait starts anew.
    pub fn reset(&mut self) {
        self.deadline = None;
    }

    /// When to wake, if the driver is waiting.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    /// The driver woke at `now`: whether the deadline has passed (the session stalled).
    pub fn handle_timeout(&mut self, now: Duration) -> bool {
        self.deadline.is_some_and(|deadline| now >= deadline)
    }

    /// The limit this timer was made with.
    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }
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
    /// Nothing arrived for this long while a reply was due ([`StallTimer`]).
    #[error("the mail server stopped answering (nothing for {} s)", .0.as_secs())]
    Stalled(Duration),
}

/// A session over a [`Transport`].
pub struct Driver<T> {
    transport: T,
    session: Session,
    greeting: Option<Greeting>,
    capabilities: Capabilities,
    stall: StallTimer,
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

    /// Gives up after `limit` without bytes while a reply is due (`None`: never); the
    /// default is [`STALL_LIMIT`].
    pub fn set_stall_limit(&mut self, limit: Option<Duration>) {
        self.stall = StallTimer::new(limit);
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
        Self::start_with_stall_limit(transport, config, now, Some(STALL_LIMIT)).await
    }

    /// [`Driver::start`], giving up after `stall_limit` without bytes while some are due
    /// (during start-up too).
    pub async fn start_with_stall_limit(
        transport: T,
        config: SessionConfig,
        now: UnixTime,
        stall_limit: Option<Duration>,
    ) -> Result<Self, DriveError<T::Error>> {
        let mut driver = Self {
            transport,
            session: Session::new(config, now)?,
            greeting: None,
            capabilities: Capabilities::default(),
            stall: StallTimer::new(stall_limit),
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
        // A read the caller dropped (the sync host does while it waits for a commit) does not
        // count against this one.
        self.stall.reset();
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
            if !self.read().await? {
                self.session.handle_eof();
                return self.session.poll_event()?.ok_or(DriveError::Closed);
            }
        }
    }

    /// Reads once and hands the bytes to the session, unless the stall deadline passes
    /// first; `false` at the end of the stream.
    async fn read(&mut self) -> Result<bool, DriveError<T::Error>> {
        self.stall.waiting(T::now());
        loop {
            let received = match self.stall.poll_timeout() {
                None => self.transport.recv().await,
                Some(deadline) => {
                    let sleep = pin!(T::sleep(deadline.saturating_sub(T::now())));
                    match select(pin!(self.transport.recv()), sleep).await {
                        Either::Left((received, _)) => received,
                        Either::Right(((), _)) => {
                            if self.stall.handle_timeout(T::now()) {
                                let limit = self.stall.limit().unwrap_or_default();
                                return Err(DriveError::Stalled(limit));
                            }
                            // Woken before the deadline: wait on.
                            continue;
                        }
                    }
                }
            };
            return match received.map_err(DriveError::Transport)? {
                Some(bytes) => {
                    self.session.handle_input(bytes)?;
                    self.stall.handle_input();
                    Ok(true)
                }
                None => Ok(false),
            };
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::StallTimer;

    #[test]
    fn the_stall_deadline_is_set_by_the_first_wait_and_cleared_by_bytes_or_a_reset() {
        let s = Duration::from_secs;
        let mut timer = StallTimer::new(Some(s(90)));
        assert_eq!(timer.poll_timeout(), None);
        timer.waiting(s(10));
        // Waiting on (after a wake-up) does not move the deadline.
        timer.waiting(s(50));
        assert_eq!(timer.poll_timeout(), Some(s(100)));
        assert!(!timer.handle_timeout(s(99)));
        assert!(timer.handle_timeout(s(100)));
        timer.handle_input();
        assert_eq!(timer.poll_timeout(), None);
        assert!(!timer.handle_timeout(s(1_000)));
        timer.waiting(s(200));
        timer.reset();
        timer.waiting(s(300));
        assert_eq!(timer.poll_timeout(), Some(s(390)));
        // No limit: never a deadline.
        let mut never = StallTimer::new(None);
        never.waiting(s(0));
        assert_eq!(never.poll_timeout(), None);
        assert!(!never.handle_timeout(Duration::MAX));
    }
}
