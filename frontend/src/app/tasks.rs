//! The app's work off the render path: reading the store, signing in, syncing, fetching a
//! whole message. Each runs as a future and reports back to the root as a message.

use std::rc::Rc;

use webpop_shared::secret::Secret;
use webpop_shared::sync::{Failure, SyncError, SyncEvent};
use yew::html::Scope;

use super::{App, ListMsg, Msg};
use crate::mail;
use crate::model::Account;
use crate::net::{Connection, ConnectionError};
use crate::state::explain::{self, Problem};
use crate::state::inbox::Indexed;
use crate::state::scheduler::{Outcome, SyncAction};
use crate::store::{MailStore, StoreError};
use crate::sync::{Cancel, SyncFailure};

/// Rows read from the store at a time when the list is (re)loaded: each page is one short task
/// (reading and lower-casing 1,000 rows), so a 50,000-message inbox never blocks the page.
const ROWS_PAGE: u32 = 1_000;

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

fn done(account: &Account, outcome: Outcome) -> Msg {
    Msg::Sync(SyncAction::Done {
        account: account.id.clone(),
        outcome,
    })
}

/// Signs in for `account` and runs a whole sync, reporting back.
pub(super) fn sync(
    link: Scope<App>,
    store: Rc<MailStore>,
    account: Account,
    password: Secret,
    cancel: Cancel,
) {
    wasm_bindgen_futures::spawn_local(async move {
        let outcome = match mail::sign_in(&account, &password).await {
            Ok(conn) => sync_over(&link, &store, &account, conn, &cancel).await,
            Err(e) => Err(fail_connection(&e)),
        };
        link.send_message(done(&account, outcome));
    });
}

/// The first sync of an account just added, in the session that signed in with its settings.
pub(super) fn first_sync(
    link: Scope<App>,
    store: Rc<MailStore>,
    account: Account,
    conn: Connection,
    cancel: Cancel,
) {
    wasm_bindgen_futures::spawn_local(async move {
        let outcome = sync_over(&link, &store, &account, conn, &cancel).await;
        link.send_message(done(&account, outcome));
    });
}

/// A whole sync of `account` over a logged-in `conn`, its progress sent to the app.
async fn sync_over(
    link: &Scope<App>,
    store: &MailStore,
    account: &Account,
    conn: Connection,
    cancel: &Cancel,
) -> Outcome {
    let delay = conn.capabilities().login_delay;
    let progress_link = link.clone();
    let id = account.id.clone();
    let report = mail::sync_account(conn, store, account, cancel, async move |e| {
        if let SyncEvent::Progress(p) = e {
            progress_link.send_message(Msg::Sync(SyncAction::Progress {
                account: id.clone(),
                progress: *p,
                now_ms: js_sys::Date::now(),
            }));
        }
    })
    .await
    .map_err(|e| fail_sync(&e))?;
    Ok((report, delay))
}

/// Signs in for `account` and downloads message `uid` whole, reporting the login (for
/// LOGIN-DELAY) and the message, or the problem.
pub(super) fn fetch_whole(
    link: Scope<App>,
    store: Rc<MailStore>,
    account: Account,
    password: Secret,
    uid: String,
) {
    wasm_bindgen_futures::spawn_local(async move {
        let id = account.id.clone();
        match mail::fetch_whole(&store, &account, &password, &uid).await {
            Ok((raw, login_delay)) => {
                link.send_message(Msg::Sync(SyncAction::LoggedIn {
                    account: id.clone(),
                    login_delay,
                }));
                link.send_message(Msg::List(ListMsg::MessageLoaded(
                    id,
                    uid,
                    Some((raw, false)),
                )));
            }
            Err(e) => {
                let (problem, failure) = fail_sync(&e);
                link.send_message(Msg::Sync(SyncAction::Failed {
                    account: id,
                    problem,
                    failure,
                }));
            }
        }
    });
}

fn fail_connection(e: &ConnectionError) -> (Problem, Failure) {
    let failure = match e {
        ConnectionError::Rejected { error, .. } => Failure::Refused(error.code.clone()),
        _ => Failure::Other,
    };
    (explain::connection(e), failure)
}

fn fail_sync(e: &SyncFailure) -> (Problem, Failure) {
    match e {
        SyncFailure::Connection(c) => fail_connection(c),
        SyncFailure::Sync(SyncError::Refused { error, .. }) => {
            (explain::sync(e), Failure::Refused(error.code.clone()))
        }
        other => (explain::sync(other), Failure::Other),
    }
}
