//! The sync host: the one loop that moves things between the [`Engine`], a logged-in POP3
//! [`Connection`] (over any [`Transport`]) and a [`MailStore`]. The page (IndexedDB over the
//! relay's WebSocket), the native tests (an in-memory store over TCP or a native relay client)
//! and the benchmarks all run this loop over the same connection type, so what the tests prove
//! about it is what ships.
//!
//! [`Transport::recv`] must be cancel-safe: the host drops a read when a commit finishes or the
//! sync is cancelled, and reads again later.
//!
//! Safety rules kept here (the engine decides, the host must not undo it):
//! - a batch is committed before the engine hears of it, so `DELE` for a message only goes out
//!   once it is stored;
//! - on any failure (the engine's, the connection's, the store's, a cancel, too little room)
//!   the connection is dropped without `QUIT`, so the server deletes nothing;
//! - batches already handed to the store are finished before the host returns, never dropped
//!   halfway;
//! - a sync that would not fit in the store's space stops before anything is fetched.
//!
//! The host is single-threaded and `Send`-free (the browser's WebSocket and IndexedDB are
//! neither `Send` nor `Sync`), and has no runtime of its own: any executor drives it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures_util::future::{select, Either};
use futures_util::stream::{FuturesUnordered, StreamExt as _};

use super::engine::{Batch, Engine, EngineConfig, Report, StoreFault, SyncError, SyncEvent};
use super::plan::Known;
use crate::connection::{Connection, ConnectionError, Transport};
use crate::mime::{self, Summary};
use crate::pop3::{Command, Event, Reply};

/// Where a sync's mail goes: IndexedDB in the page, memory in the tests.
#[allow(async_fn_in_trait)]
pub trait MailStore {
    /// Why the store failed, typed, so the words shown for it need no text matching.
    type Error;
    /// What the store knows of `account`'s UIDLs.
    async fn known(&self, account: &str) -> Result<HashMap<String, Known>, Self::Error>;
    /// Writes `batch` for `account` in one transaction, its messages first seen at `now`
    /// (seconds since the Unix epoch), durably when [`Batch::durable`]; returns only once it
    /// is committed. Nothing of a failed batch may be kept. `summaries[i]` is the list's row
    /// for `batch.messages[i]` (the host reads the mail, so the store only writes).
    async fn commit(
        &self,
        account: &str,
        batch: &Batch,
        summaries: &[Summary],
        now: u64,
    ) -> Result<(), Self::Error>;
    /// Bytes the store may still take, or `None` when that is unknown (the sync then goes
    /// ahead, and a full store fails a commit, which keeps the mail on the server).
    async fn space(&self) -> Option<u64>;
    /// Replaces what is stored for `uid` (its headers) with the whole message `raw`, and its
    /// row with `summary`, durably when `durable`.
    async fn store_whole(
        &self,
        account: &str,
        uid: &str,
        raw: &[u8],
        summary: &Summary,
        durable: bool,
    ) -> Result<(), Self::Error>;
    /// What a store error means to the sync.
    fn fault(&self, error: &Self::Error) -> StoreFault;
}

/// Why a sync (or fetching one body) did not finish. `S` is the store's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure<S> {
    /// The connection (relay, socket, TLS or POP3) failed.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The sync stopped (no UIDL, a refusal, cancellation...).
    #[error(transparent)]
    Sync(SyncError),
    /// Reading from the store, or storing a whole message, failed.
    #[error(transparent)]
    Store(S),
    /// The store could not commit a batch: the sync stopped and nothing more was deleted.
    #[error("storing mail failed: {0}")]
    Commit(S),
    /// The message is no longer on the server (its body cannot be fetched).
    #[error("the message is no longer on the server")]
    GoneFromServer(String),
    /// The sync would not fit in the store's space; nothing was fetched. (Worded for the
    /// page, where the store is the browser's storage.)
    #[error("not enough browser storage: this sync needs {needed} MB, {available} MB are free")]
    NotEnoughStorage {
        /// Megabytes the sync would store.
        needed: u64,
        /// Megabytes free.
        available: u64,
    },
}

impl<S> From<SyncError> for Failure<S> {
    fn from(e: SyncError) -> Self {
        Self::Sync(e)
    }
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
enum Woke<S> {
    Network(Result<Event, ConnectionError>),
    Cancelled,
    Committed(u64, Result<(), S>),
}

/// A batch being written: its id and the outcome.
type Commit<'a, E> = Pin<Box<dyn Future<Output = (u64, Result<(), E>)> + 'a>>;

/// Room kept free beyond what a sync needs: summaries, indexes and the store's own overhead.
const STORAGE_MARGIN: f64 = 1.25;

/// Runs one sync of `account` over a logged-in `conn`; `on_event` sees every engine event (for
/// progress) and is awaited before the sync goes on. A sync that would not fit in the store's
/// space stops before fetching anything. Returns the report once the server confirmed `QUIT`.
pub async fn run<T: Transport, S: MailStore>(
    mut conn: Connection<T>,
    store: &S,
    account: &str,
    config: EngineConfig,
    cancel: &Cancel,
    mut on_event: impl AsyncFnMut(&SyncEvent),
) -> Result<Report, Failure<S::Error>> {
    let known = store.known(account).await.map_err(Failure::Store)?;
    let mut engine = Engine::new(config, known);
    let mut commits: FuturesUnordered<Commit<'_, S::Error>> = FuturesUnordered::new();
    // The store's own error for a batch it could not write, told when the engine stops on it.
    let mut commit_error: Option<S::Error> = None;
    loop {
        loop {
            if cancel.is_cancelled() {
                engine.cancel();
            }
            let mut moved = false;
            while let Some(command) = engine.poll_command() {
                if let Err(e) = conn.send(command) {
                    conn.abort();
                    while commits.next().await.is_some() {}
                    return Err(Failure::Connection(e));
                }
                moved = true;
            }
            while let Some(event) = engine.poll_event() {
                moved = true;
                on_event(&event).await;
                match event {
                    // Check the space before a large sync; stop before anything is fetched.
                    // A store that cannot tell (WebKitGTK has no estimate) is not checked: a
                    // full store then fails a commit, which keeps the mail on the server.
                    SyncEvent::Planned { bytes, .. } if bytes > 0 => {
                        if let Some(available) = store
                            .space()
                            .await
                            .filter(|&free| bytes as f64 * STORAGE_MARGIN > free as f64)
                        {
                            conn.abort();
                            while commits.next().await.is_some() {}
                            return Err(Failure::NotEnoughStorage {
                                needed: bytes.div_ceil(1_000_000),
                                available: available / 1_000_000,
                            });
                        }
                    }
                    // Written while the next replies are read; the engine hears of it (and
                    // may then delete) only once the transaction has committed.
                    SyncEvent::Store(batch) => commits.push(Box::pin(async move {
                        let summaries = summaries(&batch);
                        let result = store.commit(account, &batch, &summaries, config.now).await;
                        (batch.id, result)
                    })),
                    SyncEvent::Finished(report) => return Ok(report),
                    SyncEvent::Failed(error) => {
                        conn.abort();
                        // Batches already handed to the store are finished, not dropped halfway.
                        while commits.next().await.is_some() {}
                        return Err(match (error, commit_error) {
                            (SyncError::Store(_), Some(e)) => Failure::Commit(e),
                            (error, _) => Failure::Sync(error),
                        });
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
            // A finished commit first: it may release DELEs and room in the window.
            match select(Box::pin(committed), network).await {
                Either::Left(((id, result), _)) => Woke::Committed(id, result),
                Either::Right((Either::Left((next, _)), _)) => Woke::Network(next),
                Either::Right((Either::Right(((), _)), _)) => Woke::Cancelled,
            }
        };
        match woke {
            Woke::Network(Ok(Event::Reply { reply, .. })) => engine.handle_reply(Ok(reply)),
            Woke::Network(Ok(Event::Rejected { error, .. })) => engine.handle_reply(Err(error)),
            Woke::Network(Ok(_)) => {}
            Woke::Network(Err(e)) => {
                // Batches already handed to the store are finished, not dropped halfway.
                while commits.next().await.is_some() {}
                return Err(Failure::Connection(e));
            }
            Woke::Cancelled => {}
            Woke::Committed(id, Ok(())) => engine.committed(id),
            Woke::Committed(id, Err(e)) => {
                engine.store_failed(id, store.fault(&e));
                commit_error.get_or_insert(e);
            }
        }
    }
}

/// Fetches the whole of `uid` (stored headers-only because it was large) over a logged-in
/// `conn`, stores it in place of the headers (durably when `durable`: the account's policy may
/// delete it from the server), and returns it. The session ends with `QUIT`; on any failure
/// the connection is dropped without it.
pub async fn fetch_body<T: Transport, S: MailStore>(
    mut conn: Connection<T>,
    store: &S,
    account: &str,
    uid: &str,
    durable: bool,
) -> Result<Vec<u8>, Failure<S::Error>> {
    let uids = match conn
        .run(Command::Uidl(None))
        .await
        .map_err(Failure::Connection)?
    {
        Reply::Uids(uids) => uids,
        _ => return Err(SyncError::UnexpectedReply("UIDL").into()),
    };
    let Some(entry) = uids.iter().find(|u| u.uid == uid) else {
        return Err(Failure::GoneFromServer(uid.to_owned()));
    };
    let listed = match conn
        .run(Command::List(Some(entry.msg)))
        .await
        .map_err(Failure::Connection)?
    {
        Reply::ListEntry(e) if e.msg == entry.msg => e.size,
        _ => return Err(SyncError::UnexpectedReply("LIST").into()),
    };
    let raw = match conn
        .run(Command::Retr(entry.msg))
        .await
        .map_err(Failure::Connection)?
    {
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
    store
        .store_whole(account, uid, &raw, &summary_of(&raw), durable)
        .await
        .map_err(Failure::Store)?;
    conn.quit().await.map_err(Failure::Connection)?;
    Ok(raw)
}

/// The list's rows for `batch`'s messages, in its order. Attachments are not decoded
/// ([`mime::summary`]); a message that is not one gets an empty row, and is stored all the same.
fn summaries(batch: &Batch) -> Vec<Summary> {
    batch.messages.iter().map(|m| summary_of(&m.raw)).collect()
}

fn summary_of(raw: &[u8]) -> Summary {
    mime::summary(raw).unwrap_or_else(|_| Summary {
        size: raw.len() as u64,
        ..Summary::default()
    })
}
