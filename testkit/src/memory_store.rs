//! A mail store in memory, for running the one sync host ([`webpop_shared::sync::host`]) in
//! native tests and benchmarks where the page uses IndexedDB.
//!
//! It behaves as IndexedDB does where the host can tell: a batch's records are written as soon
//! as its commit starts (a dropped commit future still commits, as a queued transaction does),
//! and the commit is reported one turn of the executor later, so the host reads on while a
//! batch is being written. Each record keeps the time its commit was reported (the time after
//! which the engine may send `DELE` for it), to check against when a server read that `DELE`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::poll_fn;
use std::task::Poll;
use std::time::Instant;

use webpop_shared::mime::Summary;
use webpop_shared::sync::host::MailStore;
use webpop_shared::sync::{Batch, FetchMode, Known, KnownState, StoreFault};

/// Why the memory store refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryStoreError {
    /// The store is full (a batch [`MemoryStore::fail_batch`] chose, or over the quota).
    #[error("the store is full")]
    Full,
    /// A whole message was stored for a UIDL the store has no record of.
    #[error("no record of {0}")]
    NoRecord(String),
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The bytes exactly as the server held them.
    pub raw: Vec<u8>,
    /// Its UIDL state and when it was first seen.
    pub known: Known,
    /// When it was committed.
    pub committed: Instant,
}

/// Mail in memory, per account and UIDL.
#[derive(Debug, Default)]
pub struct MemoryStore {
    mail: RefCell<BTreeMap<String, BTreeMap<String, Stored>>>,
    duplicates: RefCell<Vec<String>>,
    fail_batch: Cell<Option<u64>>,
    space: Cell<Option<u64>>,
    batches: Cell<usize>,
}

impl MemoryStore {
    /// An empty store with unknown space that never fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the commit of batch `id` (of any later sync) fail as a full store does.
    pub fn fail_batch(&self, id: Option<u64>) {
        self.fail_batch.set(id);
    }

    /// Makes [`MailStore::space`] report `bytes` free (`None`: unknown).
    pub fn set_space(&self, bytes: Option<u64>) {
        self.space.set(bytes);
    }

    /// Stores `raw` for `account`'s `uid` in `state`, as a sync would have (seeding a test).
    pub fn put(&self, account: &str, uid: &str, raw: Vec<u8>, state: KnownState, first_seen: u64) {
        let stored = Stored {
            raw,
            known: Known { first_seen, state },
            committed: Instant::now(),
        };
        let mut mail = self.mail.borrow_mut();
        let account_mail = mail.entry(account.to_owned()).or_default();
        if account_mail.insert(uid.to_owned(), stored).is_some() {
            self.duplicates.borrow_mut().push(uid.to_owned());
        }
    }

    /// Sets the state of a stored message (the user deleted it here, say).
    pub fn set_state(&self, account: &str, uid: &str, state: KnownState) {
        if let Some(stored) = self
            .mail
            .borrow_mut()
            .get_mut(account)
            .and_then(|m| m.get_mut(uid))
        {
            stored.known.state = state;
        }
    }

    /// `account`'s messages, by UIDL.
    pub fn mail(&self, account: &str) -> BTreeMap<String, Stored> {
        self.mail.borrow().get(account).cloned().unwrap_or_default()
    }

    /// UIDLs a sync handed to the store while it already held them (a sync must never).
    pub fn duplicates(&self) -> Vec<String> {
        self.duplicates.borrow().clone()
    }

    /// Batches committed so far.
    pub fn batches(&self) -> usize {
        self.batches.get()
    }
}

/// Lets the executor run once (other futures, the connection's reads) before going on.
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

impl MailStore for MemoryStore {
    type Error = MemoryStoreError;

    async fn known(&self, account: &str) -> Result<HashMap<String, Known>, Self::Error> {
        Ok(self
            .mail(account)
            .into_iter()
            .map(|(uid, stored)| (uid, stored.known))
            .collect())
    }

    async fn commit(
        &self,
        account: &str,
        batch: &Batch,
        _summaries: &[Summary],
        now: u64,
    ) -> Result<(), Self::Error> {
        if self.fail_batch.get() == Some(batch.id) {
            yield_once().await;
            return Err(MemoryStoreError::Full);
        }
        for m in &batch.messages {
            let state = match m.mode {
                FetchMode::Whole => KnownState::Stored,
                FetchMode::HeadersOnly => KnownState::HeadersOnly,
            };
            self.put(account, &m.uid, m.raw.clone(), state, now);
        }
        self.batches.set(self.batches.get() + 1);
        yield_once().await;
        // Reported now: the time a server's `DELE` must not precede.
        if let Some(mail) = self.mail.borrow_mut().get_mut(account) {
            let now = Instant::now();
            for m in &batch.messages {
                if let Some(stored) = mail.get_mut(&m.uid) {
                    stored.committed = now;
                }
            }
        }
        Ok(())
    }

    async fn space(&self) -> Option<u64> {
        self.space.get()
    }

    async fn store_whole(
        &self,
        account: &str,
        uid: &str,
        raw: &[u8],
        _summary: &Summary,
        _durable: bool,
    ) -> Result<(), Self::Error> {
        let mut mail = self.mail.borrow_mut();
        let stored = mail
            .get_mut(account)
            .and_then(|m| m.get_mut(uid))
            .ok_or_else(|| MemoryStoreError::NoRecord(uid.to_owned()))?;
        stored.raw = raw.to_vec();
        stored.known.state = KnownState::Stored;
        stored.committed = Instant::now();
        Ok(())
    }

    fn fault(&self, error: &Self::Error) -> StoreFault {
        match error {
            MemoryStoreError::Full => StoreFault::Full,
            _ => StoreFault::Failed,
        }
    }
}
