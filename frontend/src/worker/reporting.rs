//! A mail store that tells the page which rows each committed batch stored, so the list grows
//! as mail arrives without rereading the database (a reread of a large inbox is work on the
//! page's thread; a committed batch's rows are already at hand in the worker).

use std::collections::HashMap;

use webpop_shared::mime::Summary;
use webpop_shared::sync::host;
use webpop_shared::sync::{Batch, Known, StoreFault};

use crate::model::Row;
use crate::store::{MailStore, StoreError};

/// [`MailStore`] for the sync host, calling `stored` with a batch's rows once it committed.
pub struct Reporting<'a, F> {
    store: &'a MailStore,
    stored: F,
}

impl<'a, F: Fn(Vec<Row>)> Reporting<'a, F> {
    /// Wraps `store`; `stored` hears of every committed batch.
    pub fn new(store: &'a MailStore, stored: F) -> Self {
        Self { store, stored }
    }
}

/// The list's row for `message` as the store writes it for a new message (not read yet).
fn row(account: &str, uid: &str, size: u64, s: &Summary) -> Row {
    Row {
        account: account.to_owned(),
        uid: uid.to_owned(),
        from: s.from.clone(),
        subject: s.subject.clone(),
        date: s.date.unwrap_or(0),
        size,
        has_attachments: s.has_attachments,
        read: false,
        snippet: s.snippet.clone(),
        search: s.text.clone(),
    }
}

impl<F: Fn(Vec<Row>)> host::MailStore for Reporting<'_, F> {
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
        host::MailStore::commit(self.store, account, batch, summaries, now).await?;
        let empty = Summary::default();
        let rows = batch
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| row(account, &m.uid, m.size, summaries.get(i).unwrap_or(&empty)))
            .collect();
        (self.stored)(rows);
        Ok(())
    }

    async fn space(&self) -> Option<u64> {
        host::MailStore::space(self.store).await
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
