//! A POP3 session in the page: TLS and POP3 from `webpop-shared`, carried through the relay's
//! WebSocket (binary frames, `arraybuffer`). The relay's close codes become [`RelayError`]s.

use futures_util::{SinkExt as _, StreamExt as _};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use webpop_shared::pop3::{AuthMethod, Capabilities, Command, Event, Handle, Reply, ServerError};
use webpop_shared::relay::{RelayError, RelayRequest, Target};
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Session, SessionConfig, SessionError, SessionEvent};

/// Why a session in the page failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The browser would not open the WebSocket (a malformed or blocked URL).
    #[error("cannot open a connection to the relay: {0}")]
    Open(String),
    /// The relay refused or ended the session, with a reason.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The WebSocket failed without a reason (the relay is down or unreachable).
    #[error("the connection to the relay failed")]
    Transport,
    /// The mail server closed the connection before the session was done.
    #[error("the mail server closed the connection")]
    Closed,
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

/// A TLS+POP3 session through the relay.
pub struct Connection {
    ws: WebSocket,
    session: Session,
    target: Target,
    capabilities: Capabilities,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens `relay` (a `ws://` or `wss://` URL of the relay endpoint) for `request` and runs
    /// the session up to the point where commands may be sent, checking certificates as of
    /// `now`.
    pub async fn open(
        relay: &str,
        request: &RelayRequest,
        config: SessionConfig,
        now: rustls_pki_types::UnixTime,
    ) -> Result<Self, ConnectionError> {
        let url = format!("{relay}?{}", request.to_query());
        let ws = WebSocket::open(&url).map_err(|e| ConnectionError::Open(e.to_string()))?;
        let mut conn = Self {
            ws,
            session: Session::new(config, now)?,
            target: request.target.clone(),
            capabilities: Capabilities::default(),
        };
        loop {
            match conn.next_session_event().await? {
                SessionEvent::Ready { capabilities, .. } => {
                    conn.capabilities = capabilities;
                    return Ok(conn);
                }
                // Nothing was sent by the caller yet, so nothing else can arrive.
                _ => continue,
            }
        }
    }

    /// What the server said it can do (after TLS).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
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
            self.flush().await?;
            match self.ws.next().await {
                Some(Ok(Message::Bytes(bytes))) => self.session.handle_input(&bytes)?,
                // The relay sends binary frames only.
                Some(Ok(Message::Text(_))) => return Err(ConnectionError::Transport),
                Some(Err(WebSocketError::ConnectionClose(close))) => {
                    if let Some(error) =
                        RelayError::from_close(&self.target, close.code, &close.reason)
                    {
                        return Err(error.into());
                    }
                    return self.end_of_stream();
                }
                // An `error` event comes before the `close` event that says why: read on.
                Some(Err(WebSocketError::ConnectionError)) => continue,
                Some(Err(_)) => return Err(ConnectionError::Transport),
                None => return self.end_of_stream(),
            }
        }
    }

    fn end_of_stream(&mut self) -> Result<SessionEvent, ConnectionError> {
        self.session.handle_eof();
        match self.session.poll_event()? {
            Some(event) => Ok(event),
            None => Err(ConnectionError::Closed),
        }
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        if let Some(bytes) = self.session.poll_transmit() {
            self.ws
                .send(Message::Bytes(bytes))
                .await
                .map_err(|_| ConnectionError::Transport)?;
        }
        Ok(())
    }

    /// Sends QUIT and waits for its reply, then closes the WebSocket.
    pub async fn quit(mut self) -> Result<(), ConnectionError> {
        self.run(Command::Quit).await?;
        Ok(())
    }

    /// Closes the WebSocket without QUIT (so the server commits no deletions).
    pub fn abort(self) {}
}
