//! The sync worker's side: it takes [`Command`]s and runs them — sign-in through the relay,
//! TLS, POP3, the sync host with its MIME summaries, and the IndexedDB writes, over its own
//! connection to the database — and posts [`Event`]s back. Where the browser has no Web
//! Workers, the page runs the same [`Server`] itself ([`super::client`]).
//!
//! New mail is announced to every tab on the [`MAIL_CHANNEL`] `BroadcastChannel`, so the other
//! tabs reload their list; without `BroadcastChannel` they see it on their next reload.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use wasm_bindgen::JsValue;
use webpop_shared::connection::ConnectionError;
use webpop_shared::sync::{Failure, SyncError, SyncEvent};

use super::message::{outcome_to_wire, Command, Event, Relay};
use super::reporting::Reporting;
use crate::mail;
use crate::model::Account;
use crate::net::RelayConnection;
use crate::state::explain::{self, Problem};
use crate::state::scheduler::Outcome;
use crate::store::{MailStore, StoreError, DATABASE};
use crate::sync::{Cancel, SyncFailure};
use webpop_shared::secret::Secret;

/// The `BroadcastChannel` on which the sync tells every tab that new mail is stored.
pub const MAIL_CHANNEL: &str = "webpop-mail";

/// Progress is posted at most this often (and at the end): the page redraws for each, which
/// is work on its thread, so four times a second is enough for a moving bar.
const PROGRESS_EVERY_MS: f64 = 250.0;
/// The sync works at most this long at a stretch, then rests for [`REST_MS`]: on a machine
/// with few cores, busy with the sync's decryption, the browser's database and the network, the
/// page's thread then finds a core free for its renders (the sync takes a little longer).
const WORK_SLICE_MS: f64 = 12.0;
/// See [`WORK_SLICE_MS`].
const REST_MS: u32 = 4;
/// Other tabs are told of new mail at most this often during a sync (each rereads its list).
const ANNOUNCE_EVERY_MS: f64 = 2_000.0;

/// The runner of the page's commands.
pub struct Server {
    /// The tab this server works for: its own announcements are not news to it.
    tab: String,
    post: Rc<dyn Fn(Event)>,
    store: RefCell<Option<Rc<MailStore>>>,
    /// Sessions signed in by [`Command::SignIn`], waiting for the account's first sync.
    held: RefCell<HashMap<String, RelayConnection>>,
    /// The running syncs' cancel switches.
    cancels: RefCell<HashMap<String, Cancel>>,
    /// The [`MAIL_CHANNEL`], where the browser has `BroadcastChannel`.
    channel: Option<web_sys::BroadcastChannel>,
}

/// What goes on the [`MAIL_CHANNEL`]: which tab's sync stored mail for which account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailNews {
    /// The tab whose sync stored it.
    pub tab: String,
    /// The account.
    pub account: String,
}

/// Whether the global scope (page or worker) has `name`.
pub fn has_global(name: &str) -> bool {
    js_sys::Reflect::get(&js_sys::global(), &name.into()).is_ok_and(|v| !v.is_undefined())
}

impl Server {
    /// A server for tab `tab` that posts its events with `post`.
    pub fn new(tab: String, post: impl Fn(Event) + 'static) -> Rc<Self> {
        let channel = if has_global("BroadcastChannel") {
            web_sys::BroadcastChannel::new(MAIL_CHANNEL).ok()
        } else {
            None
        };
        Rc::new(Self {
            tab,
            post: Rc::new(post),
            store: RefCell::new(None),
            held: RefCell::new(HashMap::new()),
            cancels: RefCell::new(HashMap::new()),
            channel,
        })
    }

    /// Carries out `command`; what comes of it is posted as events.
    pub fn handle(self: &Rc<Self>, command: Command) {
        let server = Rc::clone(self);
        match command {
            Command::Cancel { account } => {
                if let Some(cancel) = self.cancels.borrow().get(&account) {
                    cancel.cancel();
                }
            }
            Command::Release { account } => {
                if let Some(conn) = self.held.borrow_mut().remove(&account) {
                    conn.abort();
                }
            }
            Command::SignIn {
                account,
                password,
                relay,
            } => wasm_bindgen_futures::spawn_local(async move {
                let id = account.id.clone();
                // The first sync follows at once: the database opens while the server answers.
                let (signed_in, _) = futures_util::future::join(
                    mail::sign_in(&relay, &account, &password),
                    server.store(),
                )
                .await;
                match signed_in {
                    Ok(conn) => {
                        server.held.borrow_mut().insert(id.clone(), conn);
                        (server.post)(Event::SignedIn { account: id });
                    }
                    Err(e) => (server.post)(Event::SignInFailed {
                        account: id,
                        problem: explain::connection(&e),
                    }),
                }
            }),
            Command::Sync {
                account,
                password,
                relay,
            } => wasm_bindgen_futures::spawn_local(async move {
                server.sync(account, password, relay).await;
            }),
            Command::FetchWhole {
                account,
                password,
                relay,
                uid,
            } => wasm_bindgen_futures::spawn_local(async move {
                server.fetch_whole(account, password, relay, uid).await;
            }),
        }
    }

    /// The store, opened on first use (its own connection to the database).
    async fn store(&self) -> Result<Rc<MailStore>, (Problem, Failure)> {
        if let Some(store) = self.store.borrow().clone() {
            return Ok(store);
        }
        let opened = MailStore::open(DATABASE)
            .await
            .map_err(|e| store_problem(&e))?;
        // Another command may have opened it meanwhile: keep the first.
        let mut slot = self.store.borrow_mut();
        Ok(Rc::clone(slot.get_or_insert_with(|| Rc::new(opened))))
    }

    /// Tells the other tabs that `account` has new mail.
    fn announce(&self, account: &str) {
        let Some(channel) = &self.channel else { return };
        let news = MailNews {
            tab: self.tab.clone(),
            account: account.to_owned(),
        };
        if let Ok(text) = serde_json::to_string(&news) {
            let _ = channel.post_message(&JsValue::from_str(&text));
        }
    }

    async fn sync(&self, account: Account, password: Secret, relay: Relay) {
        let id = account.id.clone();
        let cancel = Cancel::new();
        self.cancels.borrow_mut().insert(id.clone(), cancel.clone());
        let outcome = self
            .sync_outcome(&account, &password, &relay, &cancel)
            .await;
        self.cancels.borrow_mut().remove(&id);
        if matches!(&outcome, Ok((report, _)) if report.stored > 0 || report.deleted > 0) {
            self.announce(&id);
        }
        (self.post)(Event::Done {
            account: id,
            outcome: outcome_to_wire(&outcome),
        });
    }

    async fn sync_outcome(
        &self,
        account: &Account,
        password: &Secret,
        relay: &Relay,
        cancel: &Cancel,
    ) -> Outcome {
        let store = self.store().await?;
        let held = self.held.borrow_mut().remove(&account.id);
        let conn = match held {
            Some(conn) => conn,
            None => mail::sign_in(relay, account, password)
                .await
                .map_err(|e| fail_connection(&e))?,
        };
        let delay = conn.capabilities().login_delay;
        let (last_post, last_announce) = (Cell::new(f64::MIN), Cell::new(js_sys::Date::now()));
        let working_since = Cell::new(js_sys::Date::now());
        let post = Rc::clone(&self.post);
        let reporting = Reporting::new(&store, |rows| {
            post(Event::Stored {
                account: account.id.clone(),
                rows,
            });
        });
        let report =
            mail::sync_account(conn, &reporting, account, cancel, async |e: &SyncEvent| {
                let mut now = js_sys::Date::now();
                if now - working_since.get() >= WORK_SLICE_MS {
                    gloo_timers::future::TimeoutFuture::new(REST_MS).await;
                    now = js_sys::Date::now();
                    working_since.set(now);
                }
                let SyncEvent::Progress(p) = e else { return };
                if now - last_post.get() >= PROGRESS_EVERY_MS || p.messages_done >= p.messages_total
                {
                    last_post.set(now);
                    post(Event::Progress {
                        account: account.id.clone(),
                        progress: (*p).into(),
                    });
                }
                if p.messages_done > 0 && now - last_announce.get() >= ANNOUNCE_EVERY_MS {
                    last_announce.set(now);
                    self.announce(&account.id);
                }
            })
            .await
            .map_err(|e| fail_sync(&e))?;
        Ok((report, delay))
    }

    async fn fetch_whole(&self, account: Account, password: Secret, relay: Relay, uid: String) {
        let id = account.id.clone();
        let fetched = match self.store().await {
            Ok(store) => mail::fetch_whole(&relay, &store, &account, &password, &uid)
                .await
                .map_err(|e| fail_sync(&e)),
            Err(e) => Err(e),
        };
        let event = match fetched {
            Ok((_, login_delay)) => {
                self.announce(&id);
                Event::Fetched {
                    account: id,
                    uid,
                    login_delay: login_delay.map(Into::into),
                }
            }
            Err((problem, failure)) => Event::FetchFailed {
                account: id,
                problem,
                failure: (&failure).into(),
            },
        };
        (self.post)(event);
    }
}

fn store_problem(e: &StoreError) -> (Problem, Failure) {
    (
        Problem::Storage(format!("The browser's mail store cannot be opened: {e}")),
        Failure::Other,
    )
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
