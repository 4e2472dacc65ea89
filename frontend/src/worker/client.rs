//! The page's side: starts the sync worker (`/webpop-worker_loader.js`, built by trunk from
//! `src/bin/webpop-worker.rs`), sends it [`Command`]s, takes one sync lock per account
//! ([`super::lock`]) and hands the [`Event`]s that come back to the app.
//!
//! A browser without Web Workers, or one that will not start this one, runs the same
//! [`Server`] in the page: everything works, and [`SyncClient::notes`] says that the page may
//! pause while mail downloads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use wasm_bindgen::{JsCast as _, JsValue};
use webpop_shared::secret::Secret;
use webpop_shared::sync::{Failure, Report};
use yew::Callback;

use super::lock::{self, SyncLock};
use super::message::{outcome_to_wire, Command, Event};
use super::serve::{has_global, MailNews, Server, MAIL_CHANNEL};
use crate::mail;
use crate::model::Account;
use crate::state::explain::Problem;

/// Where trunk puts the worker's loader (a worker keeps its Cargo binary name, unhashed).
pub const WORKER_SCRIPT: &str = "/webpop-worker_loader.js";

/// What a sign-in was answered with.
type SignedInCallback = Box<dyn FnOnce(Result<(), Problem>)>;

/// Who runs the commands.
enum Runner {
    /// The worker is loading: commands wait for its [`Event::Ready`].
    Starting(web_sys::Worker, Vec<Command>),
    /// The worker listens.
    Worker(web_sys::Worker),
    /// The page itself (no worker).
    InPage(Rc<Server>),
}

/// The page's handle on the sync.
pub struct SyncClient {
    tab: String,
    runner: RefCell<Runner>,
    on_event: Callback<Event>,
    sign_ins: RefCell<HashMap<String, SignedInCallback>>,
    /// The sync lock of every account whose sync runs from this tab.
    locks: RefCell<HashMap<String, SyncLock>>,
    notes: RefCell<Vec<&'static str>>,
    /// The worker's `message` and `error` listeners.
    worker_listeners: RefCell<Vec<EventListener>>,
    /// The [`MAIL_CHANNEL`]'s listener.
    _news: Option<EventListener>,
}

/// Sentence for a page that runs the sync itself.
const NO_WORKER: &str = "This browser cannot run the sync in the background (no Web Workers): \
                         the page may pause while mail downloads.";
/// Sentence for a browser with neither Web Locks nor `localStorage`.
const NO_LOCKS: &str = "Two webpop tabs may check the same account at once (this browser has \
                        neither Web Locks nor localStorage); the server keeps one of them out.";
/// Sentence for a browser without `BroadcastChannel`.
const NO_BROADCAST: &str = "Other webpop tabs show new mail only once they are reloaded \
                            (this browser has no BroadcastChannel).";

fn new_tab_id() -> String {
    let random = (js_sys::Math::random() * 1e15) as u64;
    format!("{:x}-{random:x}", js_sys::Date::now() as u64)
}

impl SyncClient {
    /// Starts the worker (or the in-page fallback). `on_event` gets every event but the
    /// answers to sign-ins; `on_news` is told when another tab stored mail for an account.
    pub fn start(on_event: Callback<Event>, on_news: Callback<String>) -> Rc<Self> {
        let tab = new_tab_id();
        let mut notes = Vec::new();
        Rc::new_cyclic(|weak: &Weak<Self>| {
            let mut listeners = Vec::new();
            let runner = match spawn_worker(&tab) {
                Some(worker) => {
                    listeners.extend(listen_to(weak, &worker));
                    Runner::Starting(worker, Vec::new())
                }
                None => {
                    notes.push(NO_WORKER);
                    Runner::InPage(in_page_server(weak, &tab))
                }
            };
            if lock::kind() == lock::Kind::None {
                notes.push(NO_LOCKS);
            }
            let news = listen_for_news(&tab, on_news);
            if news.is_none() {
                notes.push(NO_BROADCAST);
            }
            Self {
                tab: tab.clone(),
                runner: RefCell::new(runner),
                on_event,
                sign_ins: RefCell::new(HashMap::new()),
                locks: RefCell::new(HashMap::new()),
                notes: RefCell::new(notes),
                worker_listeners: RefCell::new(listeners),
                _news: news,
            }
        })
    }

    /// Sentences about what this browser lacks, if anything.
    pub fn notes(&self) -> Option<String> {
        let notes = self.notes.borrow();
        (!notes.is_empty()).then(|| notes.join(" "))
    }

    /// Signs in with the settings of an account being added; the session waits in the worker
    /// for [`SyncClient::sync`] (or [`SyncClient::release`]). `done` gets the answer.
    pub fn sign_in(
        &self,
        account: Account,
        password: Secret,
        done: impl FnOnce(Result<(), Problem>) + 'static,
    ) {
        self.sign_ins
            .borrow_mut()
            .insert(account.id.clone(), Box::new(done));
        self.send(Command::SignIn {
            account: without_password(account),
            password,
            relay: mail::relay_here(),
        });
    }

    /// Drops the session a sign-in kept, without `QUIT`.
    pub fn release(&self, account: &str) {
        self.send(Command::Release {
            account: account.to_owned(),
        });
    }

    /// Syncs `account`, once this tab holds its sync lock. When another tab holds it, the sync
    /// ends at once with nothing stored: that tab's sync stores the mail, and its news reloads
    /// this tab's list.
    pub fn sync(self: &Rc<Self>, account: Account, password: Secret) {
        let client = Rc::clone(self);
        wasm_bindgen_futures::spawn_local(async move {
            let id = account.id.clone();
            match lock::acquire(&client.tab, &id).await {
                Some(held) => {
                    client.locks.borrow_mut().insert(id, held);
                    client.send(Command::Sync {
                        account: without_password(account),
                        password,
                        relay: mail::relay_here(),
                    });
                }
                None => client.on_event.emit(Event::Done {
                    account: id,
                    outcome: outcome_to_wire(&Ok((Report::default(), None))),
                }),
            }
        });
    }

    /// Stops `account`'s sync.
    pub fn cancel(&self, account: &str) {
        self.send(Command::Cancel {
            account: account.to_owned(),
        });
    }

    /// Downloads message `uid` of `account` whole.
    pub fn fetch_whole(&self, account: Account, password: Secret, uid: String) {
        self.send(Command::FetchWhole {
            account: without_password(account),
            password,
            relay: mail::relay_here(),
            uid,
        });
    }

    fn send(&self, command: Command) {
        let mut runner = self.runner.borrow_mut();
        match &mut *runner {
            Runner::Starting(_, queue) => queue.push(command),
            Runner::Worker(worker) => {
                let _ = worker.post_message(&JsValue::from_str(&command.to_text()));
            }
            Runner::InPage(server) => {
                let server = Rc::clone(server);
                drop(runner);
                server.handle(command);
            }
        }
    }

    /// Routes an event from the worker (or the in-page server).
    fn receive(&self, event: Event) {
        match event {
            Event::Ready => {
                let mut runner = self.runner.borrow_mut();
                if let Runner::Starting(worker, queue) = &mut *runner {
                    for command in queue.drain(..) {
                        let _ = worker.post_message(&JsValue::from_str(&command.to_text()));
                    }
                    *runner = Runner::Worker(worker.clone());
                }
            }
            Event::SignedIn { account } => self.answer_sign_in(&account, Ok(())),
            Event::SignInFailed { account, problem } => self.answer_sign_in(&account, Err(problem)),
            Event::Done { account, outcome } => {
                self.locks.borrow_mut().remove(&account);
                self.on_event.emit(Event::Done { account, outcome });
            }
            other => self.on_event.emit(other),
        }
    }

    fn answer_sign_in(&self, account: &str, answer: Result<(), Problem>) {
        let done = self.sign_ins.borrow_mut().remove(account);
        if let Some(done) = done {
            done(answer);
        }
    }

    /// The worker could not start, or stopped: the page takes over. Commands that waited are
    /// run in the page; work the worker had under way is reported as failed, in words.
    fn worker_failed(self: &Rc<Self>) {
        let server = in_page_server(&Rc::downgrade(self), &self.tab);
        let old = std::mem::replace(&mut *self.runner.borrow_mut(), Runner::InPage(server));
        self.worker_listeners.borrow_mut().clear();
        match old {
            Runner::Starting(worker, queue) => {
                worker.terminate();
                self.notes.borrow_mut().push(NO_WORKER);
                for command in queue {
                    self.send(command);
                }
            }
            Runner::Worker(worker) => {
                worker.terminate();
                let lost = Problem::Other(
                    "The background sync stopped unexpectedly. It will be tried again.".into(),
                );
                let running: Vec<String> = self.locks.borrow().keys().cloned().collect();
                for account in running {
                    self.receive(Event::Done {
                        account,
                        outcome: Err((lost.clone(), (&Failure::Other).into())),
                    });
                }
                let waiting: Vec<String> = self.sign_ins.borrow().keys().cloned().collect();
                for account in waiting {
                    self.answer_sign_in(&account, Err(lost.clone()));
                }
            }
            Runner::InPage(_) => {}
        }
    }
}

/// The account as it crosses: its remembered password stays here (the password to use is sent
/// on its own).
fn without_password(mut account: Account) -> Account {
    account.password = None;
    account
}

/// The worker, where the browser has Web Workers and lets this page start one.
fn spawn_worker(tab: &str) -> Option<web_sys::Worker> {
    if !has_global("Worker") {
        return None;
    }
    let options = web_sys::WorkerOptions::new();
    options.set_name(tab);
    web_sys::Worker::new_with_options(WORKER_SCRIPT, &options).ok()
}

/// Follows the worker's messages and errors.
fn listen_to(weak: &Weak<SyncClient>, worker: &web_sys::Worker) -> [EventListener; 2] {
    let client = weak.clone();
    let message = EventListener::new(worker, "message", move |e| {
        let text = e
            .dyn_ref::<web_sys::MessageEvent>()
            .and_then(|m| m.data().as_string());
        let event = text.as_deref().and_then(Event::from_text);
        if let (Some(client), Some(event)) = (client.upgrade(), event) {
            client.receive(event);
        }
    });
    let client = weak.clone();
    let error = EventListener::new(worker, "error", move |_| {
        if let Some(client) = client.upgrade() {
            client.worker_failed();
        }
    });
    [message, error]
}

/// Follows the [`MAIL_CHANNEL`]: `on_news` gets the account of news from other tabs. `None`
/// without `BroadcastChannel`. (The listener keeps the channel open.)
fn listen_for_news(tab: &str, on_news: Callback<String>) -> Option<EventListener> {
    if !has_global("BroadcastChannel") {
        return None;
    }
    let channel = web_sys::BroadcastChannel::new(MAIL_CHANNEL).ok()?;
    let tab = tab.to_owned();
    Some(EventListener::new(&channel, "message", move |e| {
        let news = e
            .dyn_ref::<web_sys::MessageEvent>()
            .and_then(|m| m.data().as_string())
            .and_then(|text| serde_json::from_str::<MailNews>(&text).ok());
        if let Some(news) = news.filter(|n| n.tab != tab) {
            on_news.emit(news.account);
        }
    }))
}

fn in_page_server(weak: &Weak<SyncClient>, tab: &str) -> Rc<Server> {
    let weak = weak.clone();
    Server::new(tab.to_owned(), move |event| {
        if let Some(client) = weak.upgrade() {
            client.receive(event);
        }
    })
}
