//! One sync in the page: the engine from `webpop-shared` between a [`Connection`] and the
//! [`MailStore`]. Each batch is committed before the engine may send `DELE` for it; on any
//! failure the connection is dropped without `QUIT`, so the server deletes nothing.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use std::future::Future;
use std::pin::Pin;

use futures_util::future::{select, Either};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use webpop_shared::pop3::{Command, Event, Reply};
use webpop_shared::sync::{Engine, EngineConfig, Report, SyncError, SyncEvent};

use crate::net::{Connection, ConnectionError};
use crate::store::{Durability, MailStore, StoreError};

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
    /// The message is no longer on the server (its body cannot be fetched).
    #[error("the message is no longer on the server")]
    GoneFromServer(String),
    /// The sync would not fit in the browser's storage; nothing was fetched.
    #[error("not enough browser storage: this sync needs {needed} MB, {available} MB are free")]
    NotEnoughStorage {
        /// Megabytes the sync would store.
        needed: u64,
        /// Megabytes free.
        available: u64,
    },
}

/// A switch that cancels a running sync (the UI's cancel button). Cloning shares the switch.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Rc<RefCell<(bool, Option<Waker>)>>);

impl Cancel {
    /// A switch that is off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the sync: it stops at once, without `QUIT`; committed batches stay stored.
    pub fn cancel(&self) {
        let mut state = self.0.borrow_mut();
        state.0 = true;
        if let Some(waker) = state.1.take() {
            waker.wake();
        }
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.borrow().0
    }

    async fn cancelled(&self) {
        poll_fn(|cx| {
            let mut state = self.0.borrow_mut();
            if state.0 {
                Poll::Ready(())
            } else {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// What woke the sync loop.
enum Woke {
    Network(Result<Event, ConnectionError>),
    Cancelled,
    Committed(u64, Result<(), StoreError>),
}

/// A batch being written: its id and the outcome.
type Commit<'a> = Pin<Box<dyn Future<Output = (u64, Result<(), StoreError>)> + 'a>>;

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
    cancel: &Cancel,
    mut on_event: impl AsyncFnMut(&SyncEvent),
) -> Result<Report, SyncFailure> {
    let mut engine = Engine::new(config, store.known(account).await?);
    let mut commits: FuturesUnordered<Commit<'_>> = FuturesUnordered::new();
    loop {
        loop {
            if cancel.is_cancelled() {
                engine.cancel();
            }
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
                    // A browser that gives no estimate (WebKitGTK) is not checked: a full
                    // store then fails a commit, which keeps the mail on the server.
                    SyncEvent::Planned { bytes, .. } if bytes > 0 => {
                        let space = store.space().await;
                        if let Some(space) =
                            space.filter(|s| bytes as f64 * STORAGE_MARGIN > s.available())
                        {
                            conn.abort();
                            return Err(SyncFailure::NotEnoughStorage {
                                needed: bytes.div_ceil(1_000_000),
                                available: (space.available() / 1e6) as u64,
                            });
                        }
                    }
                    // Written while the next replies are decrypted; the engine hears of it (and
                    // may then delete) only once the transaction has committed.
                    SyncEvent::Store(batch) => commits.push(Box::pin(async move {
                        let result = store.commit(account, &batch, config.now).await;
                        (batch.id, result)
                    })),
                    SyncEvent::Finished(report) => return Ok(report),
                    SyncEvent::Failed(error) => {
                        conn.abort();
                        // Batches already handed to the store are finished, not dropped halfway.
                        while commits.next().await.is_some() {}
                        return Err(error.into());
                    }
                    _ => {}
                }
            }
            if !moved {
                break;
            }
        }
        // Backpressure: while the engine holds a window of uncommitted mail, wait for a commit
        // instead of reading (unless no commit is pending, which would wait for ever).
        let read = engine.wants_input() || commits.is_empty();
        let woke = {
            let next = async {
                if read {
                    conn.next_event().await
                } else {
                    std::future::pending().await
                }
            };
            let network = select(Box::pin(next), Box::pin(cancel.cancelled()));
            let committed = async {
                match commits.next().await {
                    Some(done) => done,
                    None => std::future::pending().await,
                }
            };
            match select(network, Box::pin(committed)).await {
                Either::Left((Either::Left((next, _)), _)) => Woke::Network(next),
                Either::Left((Either::Right(((), _)), _)) => Woke::Cancelled,
                Either::Right(((id, result), _)) => Woke::Committed(id, result),
            }
        };
        let next = match woke {
            Woke::Network(Ok(next)) => next,
            Woke::Network(Err(e)) => {
                // Batches already handed to the store are finished, not dropped halfway.
                while commits.next().await.is_some() {}
                return Err(e.into());
            }
            Woke::Cancelled => continue,
            Woke::Committed(id, result) => {
                match result {
                    Ok(()) => engine.committed(id),
                    Err(e) => engine.store_failed(id, e.to_string()),
                }
                continue;
            }
        };
        match next {
            Event::Reply { reply, .. } => engine.handle_reply(Ok(reply)),
            Event::Rejected { error, .. } => engine.handle_reply(Err(error)),
            _ => {}
        }
    }
}

/// Fetches the whole of `uid` (stored headers-only because it was large) over a logged-in
/// `conn`, stores it in place of the headers with `durability` (strict when the account's
/// policy may delete it from the server), and returns it. The session ends with `QUIT`.
pub async fn fetch_body(
    mut conn: Connection,
    store: &MailStore,
    account: &str,
    uid: &str,
    durability: Durability,
) -> Result<Vec<u8>, SyncFailure> {
    let uids = match conn.run(Command::Uidl(None)).await? {
        Reply::Uids(uids) => uids,
        _ => return Err(SyncError::UnexpectedReply("UIDL").into()),
    };
    let Some(entry) = uids.iter().find(|u| u.uid == uid) else {
        return Err(SyncFailure::GoneFromServer(uid.to_owned()));
    };
    let listed = match conn.run(Command::List(Some(entry.msg))).await? {
        Reply::ListEntry(e) if e.msg == entry.msg => e.size,
        _ => return Err(SyncError::UnexpectedReply("LIST").into()),
    };
    let raw = match conn.run(Command::Retr(entry.msg)).await? {
        Reply::Message(raw) => raw,
        _ => return Err(SyncError::UnexpectedReply("RETR").into()),
    };
    // As in a sync: a reply of another size than listed is a split or forged one; store nothing.
    if raw.len() as u64 != listed {
        return Err(SyncError::SizeMismatch {
            uid: uid.to_owned(),
            listed,
            received: raw.len() as u64,
        }
        .into());
    }
    store.store_whole(account, uid, &raw, durability).await?;
    conn.quit().await?;
    Ok(raw)
}
