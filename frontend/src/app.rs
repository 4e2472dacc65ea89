//! The root component: owns the store, the accounts and their passwords, the inbox and the sync
//! queue, turns what the person does into reducer actions, and carries out the effects that
//! come back (store and network work, in [`tasks`]). The views are components that get data
//! and callbacks; the store reaches the ones that read it through a context.

mod callbacks;
mod list;
mod listeners;
mod sync;
mod tasks;

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use gloo_events::EventListener;
use gloo_timers::callback::Interval;
use web_sys::HtmlElement;
use webpop_shared::secret::Secret;
use yew::prelude::*;

use crate::components::add_account::{AddAccount, SignedIn};
use crate::components::header::Header;
use crate::components::message_list::{ListPage, MessageList};
use crate::components::password_prompt::PasswordPrompt;
use crate::components::reader::{self, Opened, Reader};
use crate::components::store::{StoreContext, SyncContext};
use crate::components::sync_bar::SyncBar;
use crate::model::Account;
use crate::state::inbox::{Action, Inbox, Indexed, Row};
use crate::state::progress;
use crate::state::scheduler::{SyncAction, SyncQueue};
use crate::store::{MailStore, StoreError};
use crate::worker::client::SyncClient;
use crate::worker::message::Event as WorkerEvent;
pub use list::ListMsg;

pub use crate::store::DATABASE;
/// How often mail is checked automatically (never sooner than the server's LOGIN-DELAY).
const CHECK_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Everything that happens.
pub enum Msg {
    /// The store opened (or could not).
    Opened(Result<Rc<MailStore>, StoreError>),
    /// Accounts and the newest rows were read.
    Loaded(Vec<Account>, Vec<Row>),
    /// The whole list was (re)read.
    Rows(Indexed),
    /// Open or close the account form.
    ShowForm(bool),
    /// An account was added: signed in and stored; its first sync runs in that session.
    AccountAdded(Box<SignedIn>),
    /// Something for the sync queue (see [`SyncAction`]).
    Sync(SyncAction),
    /// "Sync now": every account shown.
    SyncShown,
    /// A password was typed for an account whose password is not remembered.
    PasswordGiven(String, String),
    /// Something for the list or the reader (see [`ListMsg`]).
    List(ListMsg),
    /// "Download the whole message".
    FetchWhole,
    /// Something to tell the person in the status line.
    Status(String),
    /// The sync worker reported (progress, a sync's end, a whole message).
    Worker(WorkerEvent),
    /// Another tab stored new mail: reread the list.
    MailNews,
}

/// The web app.
pub struct App {
    store: Option<Rc<MailStore>>,
    accounts: Vec<Account>,
    passwords: HashMap<String, Secret>,
    inbox: Inbox,
    syncs: SyncQueue,
    /// The sync worker.
    client: Rc<SyncClient>,
    /// The account of the sync shown in the sync bar ("Cancel sync" stops it).
    syncing: Option<String>,
    scroll_px: u32,
    view_px: u32,
    /// Whether `view_px` was measured since the list appeared or the window was resized.
    view_known: bool,
    /// The open message, and how many were opened (a new reader for each).
    opened: Option<Rc<Opened>>,
    opened_count: u64,
    status: String,
    show_form: bool,
    ready: bool,
    list_ref: NodeRef,
    search_ref: NodeRef,
    callbacks: callbacks::Callbacks,
    _listeners: Vec<EventListener>,
    _ticker: Interval,
}

impl App {
    /// Hands `action` to the sync queue, rereading the list when a sync ended; true when the
    /// page changes. (During a sync, each committed batch's rows come with
    /// [`Event::Stored`](crate::worker::message::Event::Stored): no reread.)
    fn sync_message(&mut self, ctx: &Context<Self>, action: SyncAction) -> bool {
        let reload = matches!(action, SyncAction::Done { .. });
        let quiet = matches!(action, SyncAction::Tick | SyncAction::LoggedIn { .. });
        let asked = self.sync(ctx, action);
        if reload {
            self.reload_rows(ctx);
        }
        asked || !quiet
    }

    fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    fn password(&self, account: &Account) -> Option<Secret> {
        self.passwords
            .get(&account.id)
            .cloned()
            .or_else(|| account.password.clone())
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link();
        link.send_future(async { Msg::Opened(MailStore::open(DATABASE).await.map(Rc::new)) });
        // Every second: a LOGIN-DELAY countdown shows seconds; otherwise a tick only compares
        // a few numbers.
        let ticker = {
            let link = link.clone();
            Interval::new(1_000, move || {
                link.send_message(Msg::Sync(SyncAction::Tick))
            })
        };
        let client =
            SyncClient::start(link.callback(Msg::Worker), link.callback(|_| Msg::MailNews));
        Self {
            status: client.notes().unwrap_or_default(),
            client,
            syncing: None,
            store: None,
            accounts: Vec::new(),
            passwords: HashMap::new(),
            inbox: Inbox::new(),
            syncs: SyncQueue::new(CHECK_INTERVAL, listeners::window().navigator().on_line()),
            scroll_px: 0,
            view_px: 800,
            view_known: false,
            opened: None,
            opened_count: 0,
            show_form: false,
            ready: false,
            list_ref: NodeRef::default(),
            search_ref: NodeRef::default(),
            callbacks: callbacks::Callbacks::new(link),
            _listeners: listeners::listen(link),
            _ticker: ticker,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Self::Message) -> bool {
        match msg {
            Msg::Opened(Ok(store)) => {
                self.store = Some(Rc::clone(&store));
                ctx.link().send_future(async move {
                    let accounts = store.accounts().await.unwrap_or_default();
                    // A first screenful at once; the whole list follows.
                    let rows = store.newest_rows(100).await.unwrap_or_default();
                    Msg::Loaded(accounts, rows)
                });
                true
            }
            Msg::Opened(Err(e)) => {
                self.status = format!("The browser's mail store cannot be opened: {e}");
                self.ready = true;
                true
            }
            Msg::Loaded(accounts, rows) => {
                self.show_form = accounts.is_empty();
                for a in &accounts {
                    let (account, last_sync) = (a.id.clone(), a.last_sync);
                    self.sync(ctx, SyncAction::Track { account, last_sync });
                }
                self.accounts = accounts;
                self.inbox.apply(Action::Load(rows));
                self.ready = true;
                self.reload_rows(ctx);
                true
            }
            Msg::Rows(rows) => {
                self.inbox.apply(Action::LoadIndexed(rows));
                true
            }
            Msg::ShowForm(show) => {
                self.show_form = show || self.accounts.is_empty();
                true
            }
            Msg::AccountAdded(added) => {
                let SignedIn { account, password } = *added;
                self.show_form = false;
                let id = account.id.clone();
                self.passwords.insert(id.clone(), password.clone());
                self.accounts.retain(|a| a.id != id);
                self.accounts.push(account.clone());
                // Another sync may be running: this one goes on alongside it, shown in its
                // place; the other still reports when it ends. It runs in the session the
                // sign-in left waiting in the worker.
                self.syncing = Some(id.clone());
                self.sync(ctx, SyncAction::Added(id));
                self.client.sync(account, password);
                true
            }
            Msg::Sync(action) => self.sync_message(ctx, action),
            Msg::SyncShown => {
                let shown = self.inbox.account().map(str::to_owned);
                self.sync_message(ctx, SyncAction::SyncNow(shown))
            }
            Msg::Worker(event) => self.worker_event(ctx, event),
            Msg::MailNews => {
                self.reload_rows(ctx);
                false
            }
            Msg::PasswordGiven(id, typed) => {
                match Secret::password(typed) {
                    Ok(p) => {
                        self.passwords.insert(id.clone(), p);
                        self.sync(ctx, SyncAction::PasswordGiven(id));
                    }
                    Err(e) => self.status = format!("That password cannot be used: {e}"),
                }
                true
            }
            Msg::FetchWhole => {
                let account = self.opened.as_ref().map(|o| o.account.clone());
                match account.filter(|a| self.account(a).is_some()) {
                    Some(account) => {
                        self.sync(ctx, SyncAction::Fetch(account));
                        true
                    }
                    None => false,
                }
            }
            Msg::List(msg) => self.update_list(ctx, msg),
            Msg::Status(text) => {
                if text.is_empty() {
                    return false;
                }
                self.status = text;
                true
            }
        }
    }

    fn rendered(&mut self, ctx: &Context<Self>, _first_render: bool) {
        if self.ready {
            if let Some(body) = listeners::window().document().and_then(|d| d.body()) {
                let _ = body.set_attribute("data-ready", "1");
            }
        }
        // The list's height is read once it shows and after the window was resized (scroll
        // events carry it too): reading it after every render would make the browser lay out
        // the page inside each render's task.
        if !self.view_known {
            if let Some(list) = self.list_ref.cast::<HtmlElement>() {
                let height = list.client_height().max(0) as u32;
                self.view_known = height > 0;
                if height > 0 && height != self.view_px {
                    ctx.link().send_message(Msg::List(ListMsg::Scrolled(
                        list.scroll_top().max(0) as u32,
                        height,
                    )));
                }
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let on = &self.callbacks;
        let running = self.syncs.running();
        let accounts: Vec<(String, String)> = (self.accounts.iter())
            .map(|a| (a.id.clone(), a.label().to_owned()))
            .collect();
        let prompt = self.syncs.asking().map(|id| {
            let label = self.account(id).map(|a| a.label().to_owned());
            let (id, key) = (id.to_owned(), id.to_owned());
            html! {
                <PasswordPrompt {key} label={label.unwrap_or_default()}
                    on_submit={link.callback(move |typed| Msg::PasswordGiven(id.clone(), typed))}
                    on_dismiss={on.on_password_dismissed.clone()} />
            }
        });
        let reader = match &self.opened {
            Some(opened) => html! {
                <Reader key={self.opened_count.to_string()} opened={Rc::clone(opened)}
                    on_mark_unread={on.on_mark_unread.clone()} on_delete={on.on_delete.clone()}
                    on_fetch_whole={on.on_fetch_whole.clone()} on_close={on.on_close_reader.clone()} />
            },
            None => reader::placeholder(self.inbox.is_empty()),
        };
        html! {
            <ContextProvider<StoreContext> context={StoreContext(self.store.clone())}>
            <ContextProvider<SyncContext> context={SyncContext(Rc::clone(&self.client))}>
            <div class={classes!("app", self.opened.is_some().then_some("reading"))}>
                <Header accounts={accounts} shown={self.inbox.account().map(str::to_owned)}
                    online={self.syncs.online()} syncing={running.is_some()}
                    show_form={self.show_form} search_ref={self.search_ref.clone()}
                    on_account={on.on_account.clone()} on_search={on.on_search.clone()}
                    on_sync_now={on.on_sync_now.clone()} on_add_account={on.on_add_account.clone()}
                    on_status={on.on_status.clone()} />
                <SyncBar progress={running.map(|r| progress::view(&r.progress, &r.meter))}
                    status={self.status.clone()}
                    offline={!self.syncs.online() && !self.accounts.is_empty()}
                    on_cancel={on.on_cancel.clone()} />
                { for prompt }
                if self.show_form {
                    <AddAccount can_close={!self.accounts.is_empty()}
                        on_added={on.on_added.clone()} on_close={on.on_close_form.clone()} />
                } else {
                    <main class="panes">
                        <section class="list-pane">
                            <MessageList page={ListPage::of(&self.inbox, self.scroll_px, self.view_px)}
                                empty_text={if running.is_some() { "Downloading mail…" } else { "No messages." }}
                                list_ref={self.list_ref.clone()} on_scroll={on.on_scroll.clone()}
                                on_select={on.on_select.clone()} />
                        </section>
                        <section class="reader-pane">{ reader }</section>
                    </main>
                }
            </div>
            </ContextProvider<SyncContext>>
            </ContextProvider<StoreContext>>
        }
    }
}
