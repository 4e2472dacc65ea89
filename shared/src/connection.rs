//! One POP3 connection: a [`Session`] (TLS and POP3) over any byte [`Transport`], and the one
//! [`ConnectionError`] it fails with. The transports only move bytes and read the clock: a
//! tokio socket (`tokio_transport`, with the `tokio` feature), the relay's WebSocket in the page
//! (the web app's `net::RelaySocket`) and natively for tests (the test kit's `ws::RelaySocket`).
//! So waiting for a reply, logging in, giving up on a silent server and reaching the end of the
//! stream exist once, and the sync host ([`crate::sync::host`]) runs over any transport.
//!
//! Time enters as data, as in quinn-proto: the stall deadline is a [`StallTimer`] the connection
//! asks when to wake ([`StallTimer::poll_timeout`]) and tells the time when it wakes
//! ([`StallTimer::handle_timeout`]). Only the clock and the sleeping come from the platform
//! ([`Transport::now`], [`Transport::sleep`]), so the page and the native transports give up on a
//! silent server after the same time, decided by the same code.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use rustls::pki_types::UnixTime;

use crate::pop3::{AuthMethod, Capabilities, Command, Event, Greeting, Handle, Reply, ServerError};
use crate::relay::RelayError;
use crate::secret::Credentials;
use crate::session::{Session, SessionConfig, SessionError, SessionEvent};

/// Why a connection failed: its transport, TLS or POP3, or the server's refusal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The transport could not be opened (the browser would not open the WebSocket: a
    /// malformed or blocked URL).
    #[error("cannot open a connection to the relay: {0}")]
    Open(String),
    /// Reading or writing a native socket failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The relay refused or ended the session, with a reason.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The WebSocket failed without a reason (the relay is down or unreachable).
    #[error("the connection to the relay failed")]
    Transport,
    /// The mail server closed the connection before the session was done.
    #[error("the mail server closed the connection")]
    Closed,
    /// Nothing arrived for this long while a reply was due ([`StallTimer`]).
    #[error("the mail server stopped answering (nothing for {} s)", .0.as_secs())]
    Stalled(Duration),
    /// TLS or POP3 failed (certificate problems included).
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

/// Moves a connection's bytes.
// The futures are awaited in place (never boxed or sent to another thread), so the `Send`
// bound this lint asks about does not matter; the browser's WebSocket is not `Send` anyway.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Sends `bytes`.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError>;
    /// The next bytes received, or `None` at the end of the stream. Must be cancel-safe: the
    /// connection drops it when the stall deadline passes, and the sync host when a commit
    /// ends.
    async fn recv(&mut self) -> Result<Option<&[u8]>, ConnectionError>;
    /// Ends the stream once `QUIT` was answered (a socket shuts its writing side down). By
    /// default nothing: dropping the transport closes it.
    async fn close(&mut self) -> Result<(), ConnectionError> {
        Ok(())
    }
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

/// How long a connection waits for the next bytes while it expects some, unless told otherwise
/// ([`Connection::set_stall_limit`]): a server that stalls ends the session with
/// [`ConnectionError::Stalled`] instead of hanging until the relay's idle timeout (10 minutes).
pub const STALL_LIMIT: Duration = Duration::from_secs(90);

/// The stall deadline, as data: armed when the connection starts waiting for bytes, cleared when
/// bytes come; the connection sleeps until [`StallTimer::poll_timeout`] and then reports the time
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

    /// The connection starts (or goes on) waiting for bytes at `now`; the deadline is set by the
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

    /// When to wake, if the connection is waiting.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    /// The connection woke at `now`: whether the deadline has passed (the session stalled).
    pub fn handle_timeout(&mut self, now: Duration) -> bool {
        self.deadline.is_some_and(|deadline| now >= deadline)
    }

    /// The limit this timer was made with.
    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }
}

/// A TLS+POP3 session over a [`Transport`]: the one connection type of the page, the native
/// clients, the tests and the sync host.
///
/// Typical use: [`Connection::start`] (or a transport's own helper, such as
/// `tokio_transport::connect`), [`Connection::login`], then either [`Connection::run`] for one
/// command at a time, or [`Connection::send`] for many and
/// [`Connection::next_event`] for their replies (pipelined when the server allows); at the end
/// [`Connection::quit`], which makes the server's deletions happen, or [`Connection::abort`],
/// which makes none.
pub struct Connection<T> {
    transport: T,
    session: Session,
    greeting: Option<Greeting>,
    capabilities: Capabilities,
    stall: StallTimer,
}

impl<T> std::fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<T> Connection<T> {
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

    /// The transport (for what only it knows, such as the page's flow control).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives up after `limit` without bytes while a reply is due (`None`: never); the
    /// default is [`STALL_LIMIT`].
    pub fn set_stall_limit(&mut self, limit: Option<Duration>) {
        self.stall = StallTimer::new(limit);
    }
}

impl<T: Transport> Connection<T> {
    /// Runs a session over `transport` up to [`SessionEvent::Ready`], checking certificates as
    /// of `now`.
    pub async fn start(
        transport: T,
        config: SessionConfig,
        now: UnixTime,
    ) -> Result<Self, ConnectionError> {
        Self::start_with_stall_limit(transport, config, now, Some(STALL_LIMIT)).await
    }

    /// [`Connection::start`], giving up after `stall_limit` without bytes while some are due
    /// (during start-up too).
    pub async fn start_with_stall_limit(
        transport: T,
        config: SessionConfig,
        now: UnixTime,
        stall_limit: Option<Duration>,
    ) -> Result<Self, ConnectionError> {
        let mut conn = Self {
            transport,
            session: Session::new(config, now)?,
            greeting: None,
            capabilities: Capabilities::default(),
            stall: StallTimer::new(stall_limit),
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
                _ => continue,
            }
        }
    }

    /// Queues a command; its reply comes from [`Connection::next_event`].
    pub fn send(&mut self, command: Command) -> Result<Handle, ConnectionError> {
        Ok(self.session.send(command)?)
    }

    /// Logs in and waits for the outcome.
    pub async fn login(
        &mut self,
        credentials: Credentials,
        method: AuthMethod,
    ) -> Result<(), ConnectionError> {
        let handle = self.session.login(credentials, method)?;
        self.wait(handle, "login").await.map(|_| ())
    }

    /// Sends one command and waits for its reply.
    pub async fn run(&mut self, command: Command) -> Result<Reply, ConnectionError> {
        let verb = command.verb();
        let handle = self.session.send(command)?;
        self.wait(handle, verb).await
    }

    /// Sends `QUIT` (which makes the server's deletions happen), waits for its reply, then
    /// closes the transport ([`Transport::close`]).
    pub async fn quit(mut self) -> Result<(), ConnectionError> {
        self.run(Command::Quit).await?;
        self.transport.close().await
    }

    /// Drops the connection without `QUIT`, so the server deletes nothing.
    pub fn abort(self) {}

    async fn wait(&mut self, handle: Handle, verb: &'static str) -> Result<Reply, ConnectionError> {
        loop {
            match self.next_event().await? {
                Event::Reply { handle: h, reply } if h == handle => return Ok(reply),
                Event::Rejected { handle: h, error } if h == handle => {
                    return Err(ConnectionError::Rejected { verb, error })
                }
                _ => continue,
            }
        }
    }

    /// Sends what the session has to send, then reads until the next POP3 event.
    pub async fn next_event(&mut self) -> Result<Event, ConnectionError> {
        // A read the caller dropped (the sync host does while it waits for a commit) does not
        // count against this one.
        self.stall.reset();
        loop {
            if let SessionEvent::Pop3(event) = self.next_session_event().await? {
                return Ok(event);
            }
        }
    }

    async fn next_session_event(&mut self) -> Result<SessionEvent, ConnectionError> {
        loop {
            self.flush().await?;
            if let Some(event) = self.session.poll_event()? {
                return Ok(event);
            }
            // Replies may have freed room for more pipelined commands.
            self.flush().await?;
            if !self.read().await? {
                self.session.handle_eof();
                return self.session.poll_event()?.ok_or(ConnectionError::Closed);
            }
        }
    }

    /// Reads once and hands the bytes to the session, unless the stall deadline passes
    /// first; `false` at the end of the stream.
    async fn read(&mut self) -> Result<bool, ConnectionError> {
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
                                return Err(ConnectionError::Stalled(limit));
                            }
                            // Woken before the deadline: wait on.
                            continue;
                        }
                    }
                }
            };
            return match received? {
                Some(bytes) => {
                    self.session.handle_input(bytes)?;
                    self.stall.handle_input();
                    Ok(true)
                }
                None => Ok(false),
            };
        }
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        if let Some(bytes) = self.session.poll_transmit() {
            self.transport.send(&bytes).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use rustls::pki_types::UnixTime;

    use super::{Connection, ConnectionError, StallTimer, Transport};
    use crate::session::{Security, SessionConfig};

    /// What a [`Scripted`] transport was sent, and when it was closed.
    #[derive(Default)]
    struct Log {
        sent: Vec<u8>,
        /// How many bytes had been sent when the transport was closed.
        closed_after: Option<usize>,
    }

    /// A server that greets, lists its capabilities, then replies `replies` in order, one a
    /// read, logging what it is sent.
    struct Scripted {
        replies: VecDeque<&'static [u8]>,
        log: Rc<RefCell<Log>>,
    }

    impl Transport for Scripted {
        async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
            self.log.borrow_mut().sent.extend_from_slice(bytes);
            Ok(())
        }

        async fn recv(&mut self) -> Result<Option<&[u8]>, ConnectionError> {
            Ok(self.replies.pop_front())
        }

        async fn close(&mut self) -> Result<(), ConnectionError> {
            let mut log = self.log.borrow_mut();
            log.closed_after = Some(log.sent.len());
            Ok(())
        }
    }

    /// Runs `future`, which never waits, to its end.
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(future).poll(&mut cx) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("waited with nothing to wait for"),
        }
    }

    /// A started connection to a [`Scripted`] server that then replies `replies`; its log,
    /// from after the start.
    fn started(replies: &[&'static [u8]]) -> (Connection<Scripted>, Rc<RefCell<Log>>) {
        let mut all = VecDeque::from([&b"+OK hello\r\n"[..], b"+OK\r\nUIDL\r\n.\r\n"]);
        all.extend(replies);
        let log = Rc::new(RefCell::new(Log::default()));
        let transport = Scripted {
            replies: all,
            log: Rc::clone(&log),
        };
        let config = SessionConfig::new("localhost", Security::InsecurePlaintextLoopbackOnly);
        let conn = block_on(Connection::start(transport, config, UnixTime::now())).unwrap();
        log.borrow_mut().sent.clear();
        (conn, log)
    }

    #[test]
    fn quit_closes_the_transport_after_the_servers_answer_and_abort_sends_nothing() {
        let (conn, log) = started(&[b"+OK bye\r\n"]);
        block_on(conn.quit()).unwrap();
        assert_eq!(log.borrow().sent, b"QUIT\r\n");
        assert_eq!(log.borrow().closed_after, Some(6));

        // A refused QUIT is an error, and the transport is left to be dropped.
        let (conn, log) = started(&[b"-ERR cannot commit\r\n"]);
        let refused = block_on(conn.quit());
        assert!(
            matches!(refused, Err(ConnectionError::Rejected { verb: "QUIT", .. })),
            "{refused:?}"
        );
        assert_eq!(log.borrow().closed_after, None);

        let (conn, log) = started(&[]);
        conn.abort();
        assert!(log.borrow().sent.is_empty());
        assert_eq!(log.borrow().closed_after, None);
    }

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
