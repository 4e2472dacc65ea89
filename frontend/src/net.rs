//! A POP3 session in the page: the [`Driver`] from `webpop-shared` (TLS and POP3) over the
//! relay's WebSocket (binary frames, `arraybuffer`). The relay's close codes become
//! [`RelayError`]s.
//!
//! A relay that requires an access token gets it as a WebSocket subprotocol
//! ([`webpop_shared::relay::token_protocol`]), never in the URL, where access logs record it.
//! The page learns the token from its address's fragment (`#token=...`, never sent to a
//! server) and keeps it in `localStorage` ([`adopt_token_from_fragment`]).

use futures_util::{SinkExt as _, StreamExt as _};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use webpop_shared::pop3::{AuthMethod, Capabilities, Command, Event, Handle, Reply, ServerError};
use webpop_shared::relay::{RelayError, RelayRequest, Target, PROTOCOL};
use webpop_shared::secret::{Credentials, Secret};
use webpop_shared::session::{SessionConfig, SessionError};
use webpop_shared::transport::{DriveError, Driver, Transport};

/// The `localStorage` key under which the page keeps the relay's access token.
const TOKEN_KEY: &str = "webpop.relay-token";

/// Takes the relay's access token from the page address's fragment (`#token=...`), keeps it in
/// `localStorage` for later visits, and removes it from the address bar without a history
/// entry, so it is neither shown nor bookmarked. Call once when the page starts.
pub fn adopt_token_from_fragment() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let location = window.location();
    let Some(token) = location
        .hash()
        .ok()
        .and_then(|hash| webpop_shared::relay::token_from_fragment(&hash))
    else {
        return;
    };
    if let Ok(Some(storage)) = window.local_storage() {
        let _ = storage.set_item(TOKEN_KEY, token.expose());
    }
    let without_fragment = format!(
        "{}{}",
        location.pathname().unwrap_or_default(),
        location.search().unwrap_or_default()
    );
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(
            &wasm_bindgen::JsValue::NULL,
            "",
            Some(&without_fragment),
        );
    }
}

/// The relay's access token this page was given, if any.
fn stored_token() -> Option<Secret> {
    let storage = web_sys::window()?.local_storage().ok()??;
    let token = storage.get_item(TOKEN_KEY).ok()??;
    Secret::token(token).ok()
}

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
    /// Nothing arrived for [`STALL_TIMEOUT_MS`] while a reply was due.
    #[error("the mail server stopped answering (nothing for {} s)", STALL_TIMEOUT_MS / 1000)]
    Stalled,
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

/// How long a session waits for the next bytes while it expects some: a server that stalls
/// ends the sync with [`ConnectionError::Stalled`] instead of hanging until the relay's idle
/// timeout (10 minutes).
pub const STALL_TIMEOUT_MS: u32 = 90_000;

/// The relay's WebSocket as a [`Transport`]: binary frames carry the bytes; a close frame's
/// code becomes a [`RelayError`].
struct RelaySocket {
    ws: WebSocket,
    target: Target,
    last: Vec<u8>,
}

/// Why the WebSocket failed.
enum SocketError {
    Relay(RelayError),
    Transport,
    Stalled,
}

impl Transport for RelaySocket {
    type Error = SocketError;

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.ws
            .send(Message::Bytes(bytes.to_vec()))
            .await
            .map_err(|_| SocketError::Transport)
    }

    async fn recv(&mut self) -> Result<Option<&[u8]>, Self::Error> {
        loop {
            let next = futures_util::future::select(
                self.ws.next(),
                gloo_timers::future::TimeoutFuture::new(STALL_TIMEOUT_MS),
            )
            .await;
            let next = match next {
                futures_util::future::Either::Left((next, _)) => next,
                futures_util::future::Either::Right(_) => return Err(SocketError::Stalled),
            };
            match next {
                Some(Ok(Message::Bytes(bytes))) => {
                    self.last = bytes;
                    return Ok(Some(&self.last));
                }
                // The relay sends binary frames only.
                Some(Ok(Message::Text(_))) => return Err(SocketError::Transport),
                Some(Err(WebSocketError::ConnectionClose(close))) => {
                    return match RelayError::from_close(&self.target, close.code, &close.reason) {
                        Some(error) => Err(SocketError::Relay(error)),
                        None => Ok(None),
                    };
                }
                // An `error` event comes before the `close` event that says why: read on.
                Some(Err(WebSocketError::ConnectionError)) => continue,
                Some(Err(_)) => return Err(SocketError::Transport),
                None => return Ok(None),
            }
        }
    }
}

impl From<DriveError<SocketError>> for ConnectionError {
    fn from(e: DriveError<SocketError>) -> Self {
        match e {
            DriveError::Transport(SocketError::Relay(e)) => Self::Relay(e),
            DriveError::Transport(SocketError::Transport) => Self::Transport,
            DriveError::Transport(SocketError::Stalled) => Self::Stalled,
            DriveError::Session(e) => Self::Session(e),
            DriveError::Rejected { verb, error } => Self::Rejected { verb, error },
            DriveError::Closed => Self::Closed,
            _ => Self::Transport,
        }
    }
}

/// A TLS+POP3 session through the relay.
pub struct Connection {
    driver: Driver<RelaySocket>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("session", self.driver.session())
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
        // The relay answers with the plain protocol; the token's is only offered.
        let ws = match stored_token() {
            Some(token) => WebSocket::open_with_protocols(
                &url,
                &[
                    PROTOCOL.to_owned(),
                    webpop_shared::relay::token_protocol(&token),
                ],
            ),
            None => WebSocket::open(&url),
        }
        .map_err(|e| {
            // The browser's own message may quote JavaScript; its error's name is enough.
            ConnectionError::Open(format!(
                "the browser refused the relay's address ({})",
                e.name
            ))
        })?;
        let socket = RelaySocket {
            ws,
            target: request.target.clone(),
            last: Vec::new(),
        };
        Ok(Self {
            driver: Driver::start(socket, config, now).await?,
        })
    }

    /// What the server said it can do (after TLS).
    pub fn capabilities(&self) -> &Capabilities {
        self.driver.capabilities()
    }

    /// Queues a command; its reply comes from [`Connection::next_event`].
    pub fn send(&mut self, command: Command) -> Result<Handle, ConnectionError> {
        Ok(self.driver.send(command)?)
    }

    /// Logs in and waits for the outcome.
    pub async fn login(
        &mut self,
        credentials: Credentials,
        method: AuthMethod,
    ) -> Result<(), ConnectionError> {
        Ok(self.driver.login(credentials, method).await?)
    }

    /// Sends one command and waits for its reply.
    pub async fn run(&mut self, command: Command) -> Result<Reply, ConnectionError> {
        Ok(self.driver.run(command).await?)
    }

    /// Sends what the session has to send, then reads until the next POP3 event.
    pub async fn next_event(&mut self) -> Result<Event, ConnectionError> {
        Ok(self.driver.next_event().await?)
    }

    /// Sends QUIT and waits for its reply; the WebSocket closes when the connection is dropped.
    pub async fn quit(mut self) -> Result<(), ConnectionError> {
        self.run(Command::Quit).await?;
        Ok(())
    }

    /// Closes the WebSocket without QUIT (so the server commits no deletions).
    pub fn abort(self) {}
}
