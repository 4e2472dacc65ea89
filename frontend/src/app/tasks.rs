//! The app's reading of the store off the render path. (Signing in, syncing and fetching a
//! whole message run in the sync worker: [`crate::worker`].)

use crate::state::inbox::Indexed;
use crate::store::{MailStore, StoreError};

/// Rows read from the store at a time when the list is (re)loaded: each page is one short task
/// (reading and lower-casing 250 rows), so a 50,000-message inbox never blocks the page, also
/// while the sync worker keeps a core busy and the list is reread every second or so.
const ROWS_PAGE: u32 = 250;

/// Every list row, read and indexed a page at a time.
pub(super) async fn load_rows(store: &MailStore) -> Result<Indexed, StoreError> {
    let mut indexed = Indexed::default();
    let mut after = None;
    loop {
        let (rows, next) = store.rows_page(after.as_ref(), ROWS_PAGE).await?;
        indexed.extend(rows);
        match next {
            Some(key) => after = Some(key),
            None => return Ok(indexed),
        }
    }
}
