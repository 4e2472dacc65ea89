//! One sync in the page: the sync host from `webpop-shared` ([`host::run`]) between a
//! [`RelayConnection`] and the IndexedDB [`MailStore`]. The loop, and its safety rules (commit
//! before `DELE`; on any failure drop the connection without `QUIT`), live there, where the
//! native tests and the fault matrix run the same code over the same connection type.

use webpop_shared::sync::host;
use webpop_shared::sync::{EngineConfig, Report, SyncEvent};

use crate::net::RelayConnection;
use crate::store::{Durability, MailStore, StoreError};

pub use webpop_shared::sync::host::Cancel;

/// Why a sync in the page did not finish.
pub type SyncFailure = host::Failure<StoreError>;

impl From<StoreError> for SyncFailure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Runs one sync of `account` over a logged-in `conn` ([`host::run`]) into `store` (the
/// IndexedDB store, or one that wraps it); `on_event` sees every engine event (for progress).
/// Returns the report once the server confirmed `QUIT`.
pub async fn run(
    conn: RelayConnection,
    store: &impl host::MailStore<Error = StoreError>,
    account: &str,
    config: EngineConfig,
    cancel: &Cancel,
    on_event: impl AsyncFnMut(&SyncEvent),
) -> Result<Report, SyncFailure> {
    host::run(conn, store, account, config, cancel, on_event).await
}

/// Fetches the whole of `uid` (stored headers-only because it was large) over a logged-in
/// `conn` and stores it with `durability` ([`host::fetch_body`]).
pub async fn fetch_body(
    conn: RelayConnection,
    store: &MailStore,
    account: &str,
    uid: &str,
    durability: Durability,
) -> Result<Vec<u8>, SyncFailure> {
    host::fetch_body(conn, store, account, uid, durability == Durability::Strict).await
}
