//! An account's mail, as the UI asks for it: sign in through the relay, sync into the store,
//! fetch one body on demand. Glue between [`crate::model`], [`crate::net`] and
//! [`crate::sync`].

use webpop_shared::connection::ConnectionError;
use webpop_shared::pop3::LoginDelay;
use webpop_shared::relay::RelayRequest;
use webpop_shared::secret::{Credentials, Secret};
use webpop_shared::session::{SessionConfig, Trust};
use webpop_shared::sync::{EngineConfig, PlanOptions, Report, ServerPolicy, SyncEvent};

use crate::model::{auth_method, Account};
use crate::net::{self, RelayConnection};
use crate::store::{Durability, MailStore};
use crate::sync::{self, Cancel, SyncFailure};
use crate::worker::message::Relay;

/// Messages in a sync's first batch (later ones hold up to 100): what the list waits for
/// before it shows anything.
const FIRST_BATCH_MESSAGES: usize = 10;

/// The relay endpoint of the server that served this page: `ws[s]://<host>/relay`.
pub fn relay_url() -> String {
    let location = web_sys::window().map(|w| w.location());
    let (protocol, host) = location
        .map(|l| {
            (
                l.protocol().unwrap_or_default(),
                l.host().unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}/relay")
}

/// The relay this page talks to, with the access token it was given: what the sync worker
/// connects through.
pub fn relay_here() -> Relay {
    Relay {
        url: relay_url(),
        token: net::stored_token(),
    }
}

/// The time now, seconds since the Unix epoch (the browser's clock).
pub fn now_secs() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// Opens a session for `account` through `relay` and logs in.
pub async fn sign_in(
    relay: &Relay,
    account: &Account,
    password: &Secret,
) -> Result<RelayConnection, ConnectionError> {
    let target = account.target().map_err(ConnectionError::Open)?;
    let mut trust = Trust::default();
    if let Some(pin) = account.pin() {
        trust = trust.with_pin(pin);
    }
    let config =
        SessionConfig::new(account.server_name.clone(), account.security.security()).trust(trust);
    let mut conn = net::open_with_token(
        &relay.url,
        &RelayRequest::new(target),
        config,
        rustls_pki_types::UnixTime::now(),
        relay.token.as_ref(),
    )
    .await?;
    let credentials = Credentials::new(account.user.clone(), password.expose())
        .map_err(|e| ConnectionError::Open(e.to_string()))?;
    conn.login(credentials, auth_method(&account.auth)).await?;
    Ok(conn)
}

/// Syncs `account` over a logged-in `conn`; `on_event` sees progress.
pub async fn sync_account(
    conn: RelayConnection,
    store: &impl webpop_shared::sync::host::MailStore<Error = crate::store::StoreError>,
    account: &Account,
    cancel: &Cancel,
    on_event: impl AsyncFnMut(&SyncEvent),
) -> Result<Report, SyncFailure> {
    let top = conn.capabilities().top;
    let config = EngineConfig {
        plan: PlanOptions {
            policy: account.policy.server_policy(),
            top,
            ..PlanOptions::default()
        },
        now: now_secs(),
        // The list shows a first sync's first mail after a few messages, not a hundred.
        first_batch_messages: FIRST_BATCH_MESSAGES,
        ..EngineConfig::default()
    };
    sync::run(conn, store, &account.id, config, cancel, on_event).await
}

/// Fetches the whole of a message stored headers-only and stores it; also gives the server's
/// LOGIN-DELAY, which this sign-in started anew.
pub async fn fetch_whole(
    relay: &Relay,
    store: &MailStore,
    account: &Account,
    password: &Secret,
    uid: &str,
) -> Result<(Vec<u8>, Option<LoginDelay>), SyncFailure> {
    let conn = sign_in(relay, account, password).await?;
    let delay = conn.capabilities().login_delay;
    let durability = if account.policy.server_policy() == ServerPolicy::LeaveOnServer {
        Durability::Default
    } else {
        Durability::Strict
    };
    let raw = sync::fetch_body(conn, store, &account.id, uid, durability).await?;
    Ok((raw, delay))
}
