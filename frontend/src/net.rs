//! A POP3 session in the page: the [`Connection`] from `webpop-shared` (TLS and POP3) over the
//! relay's WebSocket ([`RelaySocket`]: binary frames, `arraybuffer`), opened by [`open`]. The
//! relay's close codes become [`RelayError`]s.
//!
//! A relay that requires an access token gets it as a WebSocket subprotocol
//! ([`webpop_shared::relay::token_protocol`]), never in the URL, where access logs record it.
//! The page learns the token from its address's fragment (`#token=...`, never sent to a
//! server) and keeps it in `localStorage` ([`adopt_token_from_fragment`]).
//!
//! The page also asks for flow control ([`webpop_shared::relay::flow`]): a browser's WebSocket
//! takes every frame the relay sends, whether or not the sync wants more, so without it a sync
//! that stops reading (its window full of mail not yet stored) would still fill the page's
//! memory with everything the server sends. With it, the relay sends at most
//! [`WINDOW`](webpop_shared::relay::flow::WINDOW) bytes the session has not taken, and the page
//! acknowledges bytes as it hands them to the session.

use std::cell::Cell;
use std::rc::Rc;

use futures_util::{SinkExt as _, StreamExt as _};
use gloo_events::EventListener;
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use wasm_bindgen::JsCast as _;
use webpop_shared::connection::{Connection, ConnectionError, Transport};
use webpop_shared::relay::flow::Grants;
use webpop_shared::relay::{RelayError, RelayRequest, Target, FLOW_PROTOCOL, PROTOCOL};
use webpop_shared::secret::Secret;
use webpop_shared::session::SessionConfig;

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

/// The relay's access token this page was given, if any (the page hands it to the sync worker,
/// which has no `localStorage`).
pub fn stored_token() -> Option<Secret> {
    let storage = web_sys::window()?.local_storage().ok()??;
    let token = storage.get_item(TOKEN_KEY).ok()??;
    Secret::token(token).ok()
}

/// A TLS+POP3 session through the relay.
pub type RelayConnection = Connection<RelaySocket>;

/// The relay's WebSocket as a [`Transport`]: binary frames carry the bytes; a close frame's
/// code becomes a [`RelayError`]; with flow control, bytes handed to the session are
/// acknowledged.
pub struct RelaySocket {
    ws: WebSocket,
    /// The same socket, for what gloo does not offer: the protocol the relay picked, and
    /// acknowledgements sent at once (a `Transport` future may be dropped at any await).
    raw: web_sys::WebSocket,
    target: Target,
    last: Vec<u8>,
    /// Flow control, once the first bytes have come (the relay's answer is known by then):
    /// `Some(grants)` when the relay agreed to it.
    flow: Option<Option<Grants>>,
    /// Payload bytes the browser has delivered to the page, counted as they arrive.
    arrived: Rc<Cell<u64>>,
    /// Payload bytes handed to the session.
    consumed: u64,
    _count_arrivals: EventListener,
}

impl RelaySocket {
    /// Opens `url`, offering `protocols`.
    fn open(url: &str, protocols: &[String], target: Target) -> Result<Self, ConnectionError> {
        let offered: js_sys::Array = protocols
            .iter()
            .map(|p| wasm_bindgen::JsValue::from_str(p))
            .collect();
        // The browser's own message may quote JavaScript; its error's name is enough.
        let refused = |name: Option<String>| {
            ConnectionError::Open(match name {
                Some(name) => format!("the browser refused the relay's address ({name})"),
                None => "the browser refused the relay's address".into(),
            })
        };
        let raw = web_sys::WebSocket::new_with_str_sequence(url, &offered)
            .map_err(|e| refused(e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.name()))))?;
        // gloo sets `binaryType` to `arraybuffer` before any message can arrive.
        let ws = WebSocket::try_from(raw.clone()).map_err(|e| refused(Some(e.name)))?;
        let arrived = Rc::new(Cell::new(0u64));
        let count = Rc::clone(&arrived);
        let count_arrivals = EventListener::new(&raw, "message", move |event| {
            let bytes = event
                .dyn_ref::<web_sys::MessageEvent>()
                .and_then(|m| m.data().dyn_into::<js_sys::ArrayBuffer>().ok())
                .map_or(0, |b| u64::from(b.byte_length()));
            count.set(count.get().saturating_add(bytes));
        });
        Ok(Self {
            ws,
            raw,
            target,
            last: Vec::new(),
            flow: None,
            arrived,
            consumed: 0,
            _count_arrivals: count_arrivals,
        })
    }

    /// Counts `bytes` as handed to the session and, with flow control, acknowledges them once
    /// enough are pending.
    fn consumed(&mut self, bytes: usize) -> Result<(), ConnectionError> {
        self.consumed = self.consumed.saturating_add(bytes as u64);
        let raw = &self.raw;
        let grants = self
            .flow
            .get_or_insert_with(|| (raw.protocol() == FLOW_PROTOCOL).then(Grants::new));
        if let Some(ack) = grants.as_mut().and_then(|g| g.consumed(bytes)) {
            self.raw
                .send_with_str(&ack.to_string())
                .map_err(|_| ConnectionError::Transport)?;
        }
        Ok(())
    }

    /// Bytes the relay has delivered to this page that the session has not taken yet: what a
    /// page that stops reading holds in memory. With flow control, at most
    /// [`WINDOW`](webpop_shared::relay::flow::WINDOW).
    pub fn unconsumed_bytes(&self) -> u64 {
        self.arrived.get().saturating_sub(self.consumed)
    }

    /// Whether the relay agreed to flow control (`webpop.flow.v1`).
    pub fn flow_control(&self) -> bool {
        self.raw.protocol() == FLOW_PROTOCOL
    }
}

impl Transport for RelaySocket {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.ws
            .send(Message::Bytes(bytes.to_vec()))
            .await
            .map_err(|_| ConnectionError::Transport)
    }

    async fn recv(&mut self) -> Result<Option<&[u8]>, ConnectionError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Bytes(bytes))) => {
                    self.consumed(bytes.len())?;
                    self.last = bytes;
                    return Ok(Some(&self.last));
                }
                // The relay sends binary frames only.
                Some(Ok(Message::Text(_))) => return Err(ConnectionError::Transport),
                Some(Err(WebSocketError::ConnectionClose(close))) => {
                    return match RelayError::from_close(&self.target, close.code, &close.reason) {
                        Some(error) => Err(error.into()),
                        None => Ok(None),
                    };
                }
                // An `error` event comes before the `close` event that says why: read on.
                Some(Err(WebSocketError::ConnectionError)) => continue,
                Some(Err(_)) => return Err(ConnectionError::Transport),
                None => return Ok(None),
            }
        }
    }

    /// The monotonic clock (`performance.now()`, in a page or a worker), or the wall clock where
    /// there is none.
    fn now() -> std::time::Duration {
        let ms = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
            .ok()
            .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
            .map_or_else(js_sys::Date::now, |p| p.now());
        std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }

    fn sleep(duration: std::time::Duration) -> impl std::future::Future<Output = ()> {
        let ms = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
        gloo_timers::future::TimeoutFuture::new(ms)
    }
}

/// Opens `relay` (a `ws://` or `wss://` URL of the relay endpoint) for `request`, offering the
/// relay the access token this page was given, and runs the session up to the point where
/// commands may be sent, checking certificates as of `now`.
pub async fn open(
    relay: &str,
    request: &RelayRequest,
    config: SessionConfig,
    now: rustls_pki_types::UnixTime,
) -> Result<RelayConnection, ConnectionError> {
    open_with_token(relay, request, config, now, stored_token().as_ref()).await
}

/// [`open`] offering the relay `token` (the sync worker, which cannot read the page's
/// `localStorage`, is given it).
pub async fn open_with_token(
    relay: &str,
    request: &RelayRequest,
    config: SessionConfig,
    now: rustls_pki_types::UnixTime,
    token: Option<&Secret>,
) -> Result<RelayConnection, ConnectionError> {
    let url = format!("{relay}?{}", request.to_query());
    // The relay answers with flow control, or the plain protocol where it predates flow
    // control; the token's is only offered.
    let mut protocols = vec![PROTOCOL.to_owned(), FLOW_PROTOCOL.to_owned()];
    if let Some(token) = token {
        protocols.push(webpop_shared::relay::token_protocol(token));
    }
    let socket = RelaySocket::open(&url, &protocols, request.target.clone())?;
    Connection::start(socket, config, now).await
}
