//! One sync in the page: the engine from `webpop-shared` between a [`Connection`] and the
//! [`MailStore`]. Each batch is committed before the engine may send `DELE` for it; on any
//! failure the connection is dropped without `QUIT`, so the server deletes nothing.

use webpop_shared::pop3::Event;
use webpop_shared::sync::{Engine, EngineConfig, Report, SyncError, SyncEvent};

use crate::net::{Connection, ConnectionError};
use crate::store::{MailStore, StoreError};

/// Why a sync did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncFailure {
    /// The relay or the server connection failed.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The sync stopped (no UIDL, a store failure, cancellation...).
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Reading what the store knows failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sync would not fit in the browser's storage; nothing was fetched.
    #[error("not enough browser storage: this sync needs {needed} MB, {available} MB are free")]
    NotEnoughStorage {
        /// Megabytes the sync would store.
        needed: u64,
        /// Megabytes free.
        available: u64,
    },
}

/// Room kept free beyond what a sync needs: summaries, indexes and IndexedDB's own overhead.
const STORAGE_MARGIN: f64 = 1.25;

/// Runs one sync of `account` over a logged-in `conn`; `on_event` sees every engine event (for
/// progress) and is awaited before the sync goes on. A sync that would not fit in the browser's
/// storage stops before fetching anything. Returns the report once the server confirmed `QUIT`.
pub async fn run(
    mut conn: Connection,
    store: &MailStore,
    account: &str,
    config: EngineConfig,
    mut on_event: impl AsyncFnMut(&SyncEvent),
) -> Result<Report, SyncFailure> {
    let mut engine = Engine::new(config, store.known(account).await?);
    loop {
        loop {
            let mut moved = false;
            while let Some(command) = engine.poll_command() {
                conn.send(command)?;
                moved = true;
            }
            while let Some(event) = engine.poll_event() {
                moved = true;
                on_event(&event).await;
                match event {
                    // Check the quota before a large sync; stop before anything is fetched.
                    SyncEvent::Planned { bytes, .. } if bytes > 0 => {
                        let space = store.space().await?;
                        if bytes as f64 * STORAGE_MARGIN > space.available() {
                            conn.abort();
                            return Err(SyncFailure::NotEnoughStorage {
                                needed: bytes.div_ceil(1_000_000),
                                available: (space.available() / 1e6) as u64,
                            });
                        }
                    }
                    SyncEvent::Store(batch) => {
                        match store.commit(account, &batch, config.now).await {
                            Ok(()) => engine.committed(batch.id),
                            Err(e) => engine.store_failed(batch.id, e.to_string()),
                        }
                    }
                    SyncEvent::Finished(report) => return Ok(report),
                    SyncEvent::Failed(error) => {
                        conn.abort();
                        return Err(error.into());
                    }
                    _ => {}
                }
            }
            if !moved {
                break;
            }
        }
        match conn.next_event().await? {
            Event::Reply { reply, .. } => engine.handle_reply(Ok(reply)),
            Event::Rejected { error, .. } => engine.handle_reply(Err(error)),
            _ => {}
        }
    }
}
