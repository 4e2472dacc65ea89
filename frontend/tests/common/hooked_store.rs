//! The IndexedDB store with the hooks tests and benchmarks need, kept out of the product's
//! store: a quota that fills up during a sync, a space estimate of the test's choosing, and
//! commits that write nothing (the sync's speed without IndexedDB).

use std::cell::Cell;
use std::collections::HashMap;

use webpop_frontend::store::{MailStore, StoreError};
use webpop_shared::mime::Summary;
use webpop_shared::sync::host;
use webpop_shared::sync::{Batch, Known, StoreFault};

/// `store` for the sync host, with hooks.
pub struct Hooked<'a> {
    store: &'a MailStore,
    quota: Option<u64>,
    space: Option<u64>,
    discard: bool,
    /// Raw bytes committed through this wrapper.
    stored: Cell<u64>,
}

impl<'a> Hooked<'a> {
    /// `store` with no hook set: it behaves as `store`.
    pub fn new(store: &'a MailStore) -> Self {
        Self {
            store,
            quota: None,
            space: None,
            discard: false,
            stored: Cell::new(0),
        }
    }

    /// A commit that would bring the bytes stored through this wrapper over `bytes` fails with
    /// [`StoreError::QuotaExceeded`] (storage filling up during a sync, as when another tab
    /// writes).
    pub fn quota(mut self, bytes: u64) -> Self {
        self.quota = Some(bytes);
        self
    }

    /// The space the store reports: `bytes` allowed.
    pub fn space(mut self, bytes: u64) -> Self {
        self.space = Some(bytes);
        self
    }

    /// Every commit succeeds without writing. Nothing is stored, so only for a policy that
    /// deletes nothing.
    pub fn discard_writes(mut self) -> Self {
        self.discard = true;
        self
    }
}

impl host::MailStore for Hooked<'_> {
    type Error = StoreError;

    async fn known(&self, account: &str) -> Result<HashMap<String, Known>, StoreError> {
        host::MailStore::known(self.store, account).await
    }

    async fn commit(
        &self,
        account: &str,
        batch: &Batch,
        summaries: &[Summary],
        now: u64,
    ) -> Result<(), StoreError> {
        if self.discard {
            return Ok(());
        }
        let bytes: u64 = batch.messages.iter().map(|m| m.raw.len() as u64).sum();
        if self
            .quota
            .is_some_and(|quota| self.stored.get() + bytes > quota)
        {
            return Err(StoreError::QuotaExceeded);
        }
        host::MailStore::commit(self.store, account, batch, summaries, now).await?;
        self.stored.set(self.stored.get() + bytes);
        Ok(())
    }

    async fn space(&self) -> Option<u64> {
        match self.space {
            Some(quota) => Some(quota.saturating_sub(self.stored.get())),
            None => host::MailStore::space(self.store).await,
        }
    }

    async fn store_whole(
        &self,
        account: &str,
        uid: &str,
        raw: &[u8],
        summary: &Summary,
        durable: bool,
    ) -> Result<(), StoreError> {
        host::MailStore::store_whole(self.store, account, uid, raw, summary, durable).await
    }

    fn fault(&self, error: &StoreError) -> StoreFault {
        host::MailStore::fault(self.store, error)
    }
}
