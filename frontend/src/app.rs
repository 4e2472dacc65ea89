//! The root component: owns the store, the accounts, the inbox and the running sync, and turns
//! what the person does into store and network work. Leaf views get data and callbacks only.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use gloo_events::{EventListener, EventListenerOptions};
use gloo_timers::callback::Interval;
use wasm_bindgen::JsCast as _;
use web_sys::{HtmlElement, HtmlInputElement, HtmlSelectElement, KeyboardEvent};
use webpop_shared::export::mbox;
use webpop_shared::pop3::LoginDelay;
use webpop_shared::secret::Secret;
use webpop_shared::sync::{
    countdown, Decision, Failure, Gate, Progress, RateMeter, Report, Scheduler, StopReason,
    SyncError, SyncEvent,
};
use yew::html::Scope;
use yew::prelude::*;

use crate::components::account_form::AccountFormView;
use crate::components::message_list::{self, ROW_PX};
use crate::components::reader::{self, Opened};
use crate::download;
use crate::mail;
use crate::net::{Connection, ConnectionError};
use crate::state::account::{Account, AccountForm, FormAction};
use crate::state::explain::{self, Problem};
use crate::state::inbox::{self, Action, Effect, Inbox, Indexed, Row};
use crate::state::progress;
use crate::store::{self, MailStore, Persistence, StoreError};
use crate::sync::{Cancel, SyncFailure};

/// The IndexedDB database the app uses.
pub const DATABASE: &str = "webpop";
/// How often mail is checked automatically (never sooner than the server's LOGIN-DELAY).
const CHECK_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// During a sync, the list is reloaded at most this often (plus 0.1 ms per stored message), so
/// new mail shows as it arrives.
const RELOAD_EVERY_MS: f64 = 1_000.0;
/// Rows read from the store at a time when the list is (re)loaded: each page is one short task
/// (reading and lower-casing 1,000 rows), so a 50,000-message inbox never blocks the page.
const ROWS_PAGE: u32 = 1_000;

/// The demo mailbox the relay offers (`/demo.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct Demo {
    host: String,
    port: u16,
    server_name: String,
    user: String,
    password: String,
    fingerprint: String,
}

/// A sync in progress.
struct Running {
    account: String,
    cancel: Cancel,
    progress: Progress,
    meter: RateMeter,
}

/// How a sync ended.
type SyncOutcome = Result<(Report, Option<LoginDelay>), (Problem, Failure)>;

/// Everything that happens.
pub enum Msg {
    /// The store opened (or could not).
    Opened(Result<Rc<MailStore>, StoreError>),
    /// Accounts and the newest rows were read.
    Loaded(Vec<Account>, Vec<Row>),
    /// The whole list was (re)read.
    Rows(Indexed),
    /// `/demo.json` answered.
    Demo(Demo),
    /// A field of the account form changed.
    Form(FormAction),
    /// Open or close the account form.
    ShowForm(bool),
    /// "Add account".
    Submit,
    /// "Trust this certificate".
    Trust(String),
    /// "Try the demo mailbox".
    TryDemo,
    /// Signing in failed.
    SignInFailed(Problem),
    /// Signed in: the account is stored and its first sync runs in that session.
    AccountAdded(Account, Secret, Cancel),
    /// "Sync now" (every account shown).
    SyncNow,
    /// Progress of an account's sync.
    Progress(String, Progress),
    /// The running sync ended.
    SyncDone(String, SyncOutcome),
    /// "Cancel sync".
    CancelSync,
    /// A password was typed for an account whose password is not remembered.
    PasswordGiven(String),
    /// The password prompt's field changed.
    PasswordDraft(String),
    /// Not now.
    PasswordDismissed,
    /// An inbox action (keyboard, click, search, account choice).
    Inbox(Action),
    /// The list scrolled.
    Scrolled(u32, u32),
    /// A key was pressed outside a text field.
    Key(String),
    /// "/" was pressed: focus the search box.
    FocusSearch,
    /// A message was read from the store.
    MessageLoaded(String, String, Option<(Vec<u8>, bool)>),
    /// An account signed in outside a sync (fetching a whole message), with the server's
    /// LOGIN-DELAY.
    LoggedIn(String, Option<LoginDelay>),
    /// Signing in or working outside a sync failed (account, what went wrong, its kind).
    SignInProblem(String, Problem, Failure),
    /// Reader buttons.
    LoadImages,
    /// "View source".
    ToggleSource,
    /// "Show plain text".
    ToggleText,
    /// "Download the whole message".
    FetchWhole,
    /// Close the reader (narrow screens).
    CloseReader,
    /// "Export mailbox (mbox)".
    ExportMbox,
    /// The browser went on- or offline.
    Online(bool),
    /// The automatic check's clock.
    Tick,
    /// Something to tell the person in the status line.
    Status(String),
}

/// The web app.
pub struct App {
    store: Option<Rc<MailStore>>,
    accounts: Vec<Account>,
    passwords: HashMap<String, Secret>,
    inbox: Inbox,
    scroll_px: u32,
    view_px: u32,
    opened: Option<Opened>,
    running: Option<Running>,
    queue: VecDeque<String>,
    /// When each account may sign in and check next (backoff, LOGIN-DELAY, pauses).
    schedule: Scheduler,
    /// A LOGIN-DELAY being waited out, shown as a countdown: (account label, until).
    login_wait: Option<(String, u64)>,
    asking_password: Option<String>,
    password_draft: String,
    status: String,
    online: bool,
    show_form: bool,
    form: AccountForm,
    form_problem: Option<Problem>,
    signing_in: bool,
    demo: Option<Demo>,
    ready: bool,
    last_reload_ms: f64,
    list_ref: NodeRef,
    search_ref: NodeRef,
    _listeners: Vec<EventListener>,
    _ticker: Interval,
}

fn window() -> web_sys::Window {
    web_sys::window().expect("the app runs in a browser window")
}

fn navigator_online() -> bool {
    window().navigator().on_line()
}

fn in_text_field(target: Option<web_sys::EventTarget>) -> bool {
    target
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

fn listeners(link: &Scope<App>) -> Vec<EventListener> {
    let w = window();
    let keys = {
        let link = link.clone();
        EventListener::new_with_options(
            &w,
            "keydown",
            EventListenerOptions::enable_prevent_default(),
            move |e| {
                let Some(e) = e.dyn_ref::<KeyboardEvent>() else {
                    return;
                };
                if e.ctrl_key() || e.meta_key() || e.alt_key() || in_text_field(e.target()) {
                    return;
                }
                let key = e.key();
                if key == "/" {
                    e.prevent_default();
                    link.send_message(Msg::FocusSearch);
                } else if inbox::key_action(&key).is_some() {
                    e.prevent_default();
                    link.send_message(Msg::Key(key));
                }
            },
        )
    };
    let online = {
        let link = link.clone();
        EventListener::new(&w, "online", move |_| link.send_message(Msg::Online(true)))
    };
    let offline = {
        let link = link.clone();
        EventListener::new(&w, "offline", move |_| {
            link.send_message(Msg::Online(false))
        })
    };
    vec![keys, online, offline]
}

/// Every list row, read and indexed a page at a time.
async fn load_rows(store: &MailStore) -> Result<Indexed, StoreError> {
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

async fn load_demo() -> Option<Demo> {
    let response = gloo_net::http::Request::get("/demo.json")
        .send()
        .await
        .ok()?;
    if !response.ok() {
        return None;
    }
    let v: serde_json::Value = response.json().await.ok()?;
    Some(Demo {
        host: v["host"].as_str()?.to_owned(),
        port: u16::try_from(v["port"].as_u64()?).ok()?,
        server_name: v["server_name"].as_str()?.to_owned(),
        user: v["user"].as_str()?.to_owned(),
        password: v["password"].as_str()?.to_owned(),
        fingerprint: v["cert_sha256"].as_str()?.to_owned(),
    })
}

/// Signs in for `account` and runs a whole sync, reporting back.
fn spawn_sync(
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
        link.send_message(Msg::SyncDone(account.id.clone(), outcome));
    });
}

/// A whole sync of `account` over a logged-in `conn`, its progress sent to the app.
async fn sync_over(
    link: &Scope<App>,
    store: &MailStore,
    account: &Account,
    conn: Connection,
    cancel: &Cancel,
) -> SyncOutcome {
    let delay = conn.capabilities().login_delay;
    let progress_link = link.clone();
    let id = account.id.clone();
    let report = mail::sync_account(conn, store, account, cancel, async move |e| {
        if let SyncEvent::Progress(p) = e {
            progress_link.send_message(Msg::Progress(id.clone(), *p));
        }
    })
    .await
    .map_err(|e| fail_sync(&e))?;
    Ok((report, delay))
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

impl App {
    fn store(&self) -> Option<Rc<MailStore>> {
        self.store.clone()
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

    /// Records a failed sign-in or sync of `id` with the schedule; returns what happens next,
    /// in words, to follow the problem in the status line. A refused password is forgotten
    /// (also when remembered on this device) and automatic checks stop until it is typed
    /// again: retrying a wrong password can get the account locked.
    fn failed(&mut self, id: &str, now: u64, failure: &Failure) -> String {
        match self.schedule.failed(id, now, failure) {
            Decision::Stop(StopReason::Auth) => {
                self.passwords.remove(id);
                if let Some(account) = self.accounts.iter_mut().find(|a| a.id == id) {
                    if account.password.take().is_some() {
                        if let Some(store) = self.store.clone() {
                            let saved = account.clone();
                            wasm_bindgen_futures::spawn_local(async move {
                                let _ = store.put_account(&saved).await;
                            });
                        }
                    }
                }
                " Automatic checks are paused until you enter the password again (Sync now).".into()
            }
            Decision::Stop(_) => " Automatic checks are paused for this account.".into(),
            Decision::RetryAt(at) => {
                if let Gate::Wait { until } = self.schedule.gate(id, now) {
                    let label = self.account(id).map(|a| a.label().to_owned());
                    self.login_wait = label.map(|l| (l, until));
                }
                format!(" Next try in {}.", countdown(at.saturating_sub(now)))
            }
        }
    }

    /// Shows the LOGIN-DELAY countdown for `label` until `until`.
    fn wait_for_login(&mut self, label: &str, until: u64, now: u64) {
        self.login_wait = Some((label.to_owned(), until));
        self.tick_login_wait(now);
    }

    /// Updates the LOGIN-DELAY countdown; true when the status line changed.
    fn tick_login_wait(&mut self, now: u64) -> bool {
        let Some((label, until)) = self.login_wait.clone() else {
            return false;
        };
        if until <= now {
            self.login_wait = None;
            self.status = format!("{label}: the server allows a new sign-in now.");
        } else {
            self.status = format!(
                "{label}: the server allows one sign-in at a time every few minutes \
                 (LOGIN-DELAY); next sign-in in {}.",
                countdown(until - now)
            );
        }
        true
    }

    fn reload_rows(&mut self, ctx: &Context<Self>) {
        let Some(store) = self.store() else { return };
        self.last_reload_ms = js_sys::Date::now();
        ctx.link().send_future(async move {
            match load_rows(&store).await {
                Ok(rows) => Msg::Rows(rows),
                Err(e) => Msg::Status(format!("Reading the mail store failed: {e}")),
            }
        });
    }

    /// Starts the next queued sync, if none runs.
    fn next_sync(&mut self, ctx: &Context<Self>) {
        if self.running.is_some() || self.asking_password.is_some() || !self.online {
            return;
        }
        let Some(store) = self.store() else { return };
        while let Some(id) = self.queue.pop_front() {
            let Some(account) = self.account(&id).cloned() else {
                continue;
            };
            let now = mail::now_secs();
            if let Gate::Wait { until } = self.schedule.gate(&id, now) {
                // The server's LOGIN-DELAY: not even "Sync now" may sign in before it passes.
                self.wait_for_login(account.label(), until, now);
                continue;
            }
            let Some(password) = self.password(&account) else {
                self.asking_password = Some(id.clone());
                self.queue.push_front(id);
                return;
            };
            let cancel = Cancel::new();
            self.running = Some(Running {
                account: id,
                cancel: cancel.clone(),
                progress: Progress::default(),
                meter: RateMeter::new(),
            });
            self.status = format!("Checking {}…", account.label());
            spawn_sync(ctx.link().clone(), store, account, password, cancel);
            return;
        }
    }

    fn queue_all(&mut self, only: Option<String>) {
        let ids: Vec<String> = match only {
            Some(id) => vec![id],
            None => self.accounts.iter().map(|a| a.id.clone()).collect(),
        };
        for id in ids {
            if !self.queue.contains(&id) && self.running.as_ref().map(|r| &r.account) != Some(&id) {
                self.queue.push_back(id);
            }
        }
    }

    fn submit(&mut self, ctx: &Context<Self>) {
        let (account, password) = match self.form.validate() {
            Ok(v) => v,
            Err(words) => {
                self.form_problem = Some(Problem::Other(words));
                return;
            }
        };
        let Some(store) = self.store() else { return };
        self.signing_in = true;
        self.form_problem = None;
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            // Signing in checks the settings before anything is stored; the first sync then
            // goes on in the same session (a second login at once could meet LOGIN-DELAY).
            let conn = match mail::sign_in(&account, &password).await {
                Ok(conn) => conn,
                Err(e) => return link.send_message(Msg::SignInFailed(explain::connection(&e))),
            };
            if let Err(e) = store.put_account(&account).await {
                conn.abort();
                return link.send_message(Msg::SignInFailed(Problem::Storage(format!(
                    "Saving the account failed: {e}"
                ))));
            }
            let cancel = Cancel::new();
            link.send_message(Msg::AccountAdded(account.clone(), password, cancel.clone()));
            let outcome = sync_over(&link, &store, &account, conn, &cancel).await;
            link.send_message(Msg::SyncDone(account.id.clone(), outcome));
        });
    }

    fn apply_effect(&mut self, ctx: &Context<Self>, effect: Effect) {
        let Some(store) = self.store() else { return };
        match effect {
            Effect::None => {}
            Effect::Open { account, uid } => {
                let (a, u) = (account.clone(), uid.clone());
                ctx.link().send_future(async move {
                    let _ = store.set_read(&a, &u, true).await;
                    let message = store.message(&a, &u).await.ok().flatten();
                    Msg::MessageLoaded(a, u, message)
                });
            }
            Effect::Delete { account, uid } => {
                if self
                    .opened
                    .as_ref()
                    .is_some_and(|o| o.account == account && o.uid == uid)
                {
                    self.opened = None;
                }
                ctx.link().send_future(async move {
                    match store.mark_deleted(&account, &uid).await {
                        Ok(()) => Msg::Status("Message deleted.".into()),
                        Err(e) => Msg::Status(format!("Deleting failed: {e}")),
                    }
                });
            }
            Effect::MarkRead { account, uid, read } => {
                ctx.link().send_future(async move {
                    match store.set_read(&account, &uid, read).await {
                        Ok(()) => Msg::Status(String::new()),
                        Err(e) => Msg::Status(format!("Saving the read flag failed: {e}")),
                    }
                });
            }
        }
    }

    /// Keeps the selected row in view after j/k.
    fn scroll_to_selected(&mut self) {
        let Some(selected) = self.inbox.selected() else {
            return;
        };
        let top = selected as u32 * ROW_PX;
        let view = self.view_px.max(ROW_PX);
        let target = if top < self.scroll_px {
            top
        } else if top + ROW_PX > self.scroll_px + view {
            top + ROW_PX - view
        } else {
            return;
        };
        self.scroll_px = target;
        if let Some(list) = self.list_ref.cast::<HtmlElement>() {
            list.set_scroll_top(target as i32);
        }
    }

    fn export(&mut self, ctx: &Context<Self>) {
        let Some(store) = self.store() else { return };
        let ids: Vec<(String, String)> = match self.shown_account() {
            Some(a) => vec![(a.id.clone(), a.label().to_owned())],
            None => self
                .accounts
                .iter()
                .map(|a| (a.id.clone(), a.label().to_owned()))
                .collect(),
        };
        let name = match ids.as_slice() {
            [(_, label)] => format!(
                "{}.mbox",
                webpop_shared::export::safe_file_name(label, "mail")
            ),
            _ => "webpop.mbox".to_owned(),
        };
        ctx.link().send_future(async move {
            let mut all = Vec::new();
            for (id, _) in &ids {
                match store.raw_messages(id).await {
                    Ok(mut m) => all.append(&mut m),
                    Err(e) => return Msg::Status(format!("Export failed: {e}")),
                }
            }
            let bytes = mbox(all.iter().map(Vec::as_slice));
            match download::save(&bytes, &name) {
                Ok(()) => Msg::Status(format!("Exported {} messages to {name}.", all.len())),
                Err(_) => Msg::Status("Export failed: the browser refused the download.".into()),
            }
        });
    }

    fn shown_account(&self) -> Option<&Account> {
        self.inbox.account().and_then(|id| self.account(id))
    }
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        ctx.link()
            .send_future(async { Msg::Opened(MailStore::open(DATABASE).await.map(Rc::new)) });
        // Whether the browser already keeps the mail under storage pressure. Only asked, never
        // requested: `persist()` prompts in Firefox, and start-up waits on no prompt. A policy
        // that deletes from the server offers the request, and needs consent without it.
        ctx.link().send_future(async {
            let persistent = store::persisted().await.is_persistent();
            Msg::Form(FormAction::StoragePersistent(persistent))
        });
        ctx.link()
            .send_message(Msg::Form(FormAction::WebKitEviction(
                store::webkit_may_evict_unvisited_sites(),
            )));
        ctx.link().send_future(async {
            match load_demo().await {
                Some(demo) => Msg::Demo(demo),
                None => Msg::Status(String::new()),
            }
        });
        let ticker = {
            let link = ctx.link().clone();
            // Every second: a LOGIN-DELAY countdown shows seconds; otherwise a tick only
            // compares a few numbers.
            Interval::new(1_000, move || link.send_message(Msg::Tick))
        };
        Self {
            store: None,
            accounts: Vec::new(),
            passwords: HashMap::new(),
            inbox: Inbox::new(),
            scroll_px: 0,
            view_px: 800,
            opened: None,
            running: None,
            queue: VecDeque::new(),
            schedule: Scheduler::new(CHECK_INTERVAL),
            login_wait: None,
            asking_password: None,
            password_draft: String::new(),
            status: String::new(),
            online: navigator_online(),
            show_form: false,
            form: AccountForm::new(),
            form_problem: None,
            signing_in: false,
            demo: None,
            ready: false,
            last_reload_ms: 0.0,
            list_ref: NodeRef::default(),
            search_ref: NodeRef::default(),
            _listeners: listeners(ctx.link()),
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
                false
            }
            Msg::Opened(Err(e)) => {
                self.status = format!("The browser's mail store cannot be opened: {e}");
                self.ready = true;
                true
            }
            Msg::Loaded(accounts, rows) => {
                self.accounts = accounts;
                self.show_form = self.accounts.is_empty();
                let now = mail::now_secs();
                for a in &self.accounts {
                    self.schedule.track(&a.id, a.last_sync, now);
                }
                self.inbox.apply(Action::Load(rows));
                self.ready = true;
                self.reload_rows(ctx);
                true
            }
            Msg::Rows(rows) => {
                self.inbox.apply(Action::LoadIndexed(rows));
                true
            }
            Msg::Demo(demo) => {
                self.demo = Some(demo);
                true
            }
            Msg::Form(action) => {
                if action == FormAction::AskToKeep {
                    ctx.link().send_future(async {
                        let answer = match store::request_persistence().await {
                            Persistence::Persistent => Some(true),
                            Persistence::BestEffort => Some(false),
                            Persistence::Unsupported => None,
                        };
                        Msg::Form(FormAction::KeepAnswer(answer))
                    });
                }
                self.form.apply(action);
                true
            }
            Msg::ShowForm(show) => {
                self.show_form = show || self.accounts.is_empty();
                self.form_problem = None;
                true
            }
            Msg::Submit => {
                self.submit(ctx);
                true
            }
            Msg::Trust(fingerprint) => {
                self.form.apply(FormAction::Fingerprint(fingerprint));
                self.submit(ctx);
                true
            }
            Msg::TryDemo => {
                if let Some(d) = &self.demo {
                    let mut form =
                        AccountForm::demo(&d.host, d.port, &d.server_name, &d.user, &d.password);
                    form.fingerprint = d.fingerprint.clone();
                    self.form.apply(FormAction::Fill(Box::new(form)));
                    self.submit(ctx);
                }
                true
            }
            Msg::SignInFailed(problem) => {
                self.signing_in = false;
                self.form_problem = Some(problem);
                true
            }
            Msg::AccountAdded(account, password, cancel) => {
                self.signing_in = false;
                self.show_form = false;
                self.form
                    .apply(FormAction::Fill(Box::new(AccountForm::new())));
                self.passwords.insert(account.id.clone(), password);
                let id = account.id.clone();
                self.status = format!("Checking {}…", account.label());
                self.accounts.retain(|a| a.id != id);
                self.accounts.push(account);
                // Another sync may be running: this one goes on alongside it, shown in its
                // place; the other still reports when it ends.
                self.running = Some(Running {
                    account: id,
                    cancel,
                    progress: Progress::default(),
                    meter: RateMeter::new(),
                });
                true
            }
            Msg::SyncNow => {
                let only = self.inbox.account().map(str::to_owned);
                self.queue_all(only);
                self.next_sync(ctx);
                true
            }
            Msg::Progress(id, p) => {
                if let Some(run) = self.running.as_mut().filter(|r| r.account == id) {
                    run.meter.record(js_sys::Date::now(), p.bytes_done);
                    run.progress = p;
                }
                // A big mailbox is reread less often: each reread reads every row.
                let every = RELOAD_EVERY_MS + self.inbox.total() as f64 * 0.1;
                if js_sys::Date::now() - self.last_reload_ms > every {
                    self.reload_rows(ctx);
                }
                true
            }
            Msg::SyncDone(id, outcome) => {
                let label = self
                    .account(&id)
                    .map(|a| a.label().to_owned())
                    .unwrap_or_default();
                let now = mail::now_secs();
                let ran = match &self.running {
                    Some(run) if run.account == id => self.running.take(),
                    _ => None,
                };
                match outcome {
                    Ok((report, delay)) => {
                        self.schedule.logged_in(&id, now, delay);
                        self.schedule.succeeded(&id, now);
                        let deleted = if report.deleted > 0 {
                            format!(", {} deleted from the server", report.deleted)
                        } else {
                            String::new()
                        };
                        let plural = if report.stored == 1 { "" } else { "s" };
                        self.status = format!(
                            "Synced {} new message{plural} for {label}{deleted}.",
                            report.stored
                        );
                        if let Some(account) = self.accounts.iter_mut().find(|a| a.id == id) {
                            account.last_sync = Some(now);
                            if let Some(store) = self.store.clone() {
                                let saved = account.clone();
                                wasm_bindgen_futures::spawn_local(async move {
                                    let _ = store.put_account(&saved).await;
                                });
                            }
                        }
                    }
                    Err((problem, failure)) => {
                        let cancelled = ran.is_some_and(|r| r.cancel.is_cancelled());
                        self.status = if cancelled {
                            "Sync cancelled; the mail stored so far is kept.".into()
                        } else {
                            let after = self.failed(&id, now, &failure);
                            format!("{label}: {}{after}", problem.status_text())
                        };
                    }
                }
                self.reload_rows(ctx);
                self.next_sync(ctx);
                true
            }
            Msg::CancelSync => {
                self.queue.clear();
                if let Some(run) = &self.running {
                    run.cancel.cancel();
                }
                true
            }
            Msg::PasswordGiven(id) => {
                match Secret::password(std::mem::take(&mut self.password_draft)) {
                    Ok(p) => {
                        // Signing in again ends a pause after a refused password.
                        self.schedule.resume(&id);
                        self.passwords.insert(id, p);
                        self.asking_password = None;
                        self.next_sync(ctx);
                    }
                    Err(e) => self.status = format!("That password cannot be used: {e}"),
                }
                true
            }
            Msg::PasswordDraft(draft) => {
                self.password_draft = draft;
                false
            }
            Msg::PasswordDismissed => {
                self.asking_password = None;
                self.queue.clear();
                self.password_draft.clear();
                true
            }
            Msg::Inbox(action) => {
                let opening = matches!(action, Action::Select(_) | Action::Open);
                let effect = self.inbox.apply(action);
                if opening && effect == Effect::None {
                    return true;
                }
                self.apply_effect(ctx, effect);
                true
            }
            Msg::Key(key) => {
                if let Some(action) = inbox::key_action(&key) {
                    let moved = matches!(action, Action::Next | Action::Previous);
                    let effect = self.inbox.apply(action);
                    if moved {
                        self.scroll_to_selected();
                    }
                    self.apply_effect(ctx, effect);
                }
                true
            }
            Msg::FocusSearch => {
                if let Some(input) = self.search_ref.cast::<HtmlInputElement>() {
                    let _ = input.focus();
                    input.select();
                }
                false
            }
            Msg::Scrolled(top, height) => {
                let changed = (top / ROW_PX) != (self.scroll_px / ROW_PX) || height != self.view_px;
                self.scroll_px = top;
                self.view_px = height;
                changed
            }
            Msg::LoggedIn(id, delay) => {
                self.schedule.logged_in(&id, mail::now_secs(), delay);
                false
            }
            Msg::SignInProblem(id, problem, failure) => {
                let label = self
                    .account(&id)
                    .map(|a| a.label().to_owned())
                    .unwrap_or_default();
                let after = self.failed(&id, mail::now_secs(), &failure);
                self.status = format!("{label}: {}{after}", problem.status_text());
                true
            }
            Msg::MessageLoaded(account, uid, message) => {
                let current = self.inbox.selected_row().map(|r| (&r.account, &r.uid));
                if current != Some((&account, &uid)) {
                    return false;
                }
                self.opened = match message {
                    Some((raw, headers_only)) => Some(Opened::new(account, uid, raw, headers_only)),
                    None => {
                        self.status = "That message is no longer stored.".into();
                        None
                    }
                };
                true
            }
            Msg::LoadImages => {
                if let Some(o) = &mut self.opened {
                    o.load_images();
                }
                true
            }
            Msg::ToggleSource => {
                if let Some(o) = &mut self.opened {
                    o.show_source = !o.show_source;
                }
                true
            }
            Msg::ToggleText => {
                if let Some(o) = &mut self.opened {
                    o.prefer_text = !o.prefer_text;
                }
                true
            }
            Msg::FetchWhole => {
                let Some(o) = &self.opened else { return false };
                let Some(account) = self.account(&o.account).cloned() else {
                    return false;
                };
                let Some(password) = self.password(&account) else {
                    self.asking_password = Some(account.id.clone());
                    return true;
                };
                let Some(store) = self.store() else {
                    return false;
                };
                let now = mail::now_secs();
                match self.schedule.gate(&account.id, now) {
                    Gate::Wait { until } => {
                        self.wait_for_login(account.label(), until, now);
                        return true;
                    }
                    Gate::Open | Gate::Paused(_) => {}
                }
                let uid = o.uid.clone();
                self.status = "Downloading the whole message…".into();
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let id = account.id.clone();
                    match mail::fetch_whole(&store, &account, &password, &uid).await {
                        Ok((raw, delay)) => {
                            link.send_message(Msg::LoggedIn(id.clone(), delay));
                            link.send_message(Msg::MessageLoaded(id, uid, Some((raw, false))));
                        }
                        Err(e) => {
                            let (problem, failure) = fail_sync(&e);
                            link.send_message(Msg::SignInProblem(id, problem, failure));
                        }
                    }
                });
                true
            }
            Msg::CloseReader => {
                self.opened = None;
                true
            }
            Msg::ExportMbox => {
                self.export(ctx);
                true
            }
            Msg::Online(online) => {
                self.online = online;
                if online {
                    self.next_sync(ctx);
                }
                true
            }
            Msg::Tick => {
                let now = mail::now_secs();
                let counting = self.tick_login_wait(now);
                if !self.online || self.running.is_some() {
                    return counting;
                }
                let due: Vec<String> = self
                    .schedule
                    .due(now)
                    .into_iter()
                    .filter(|id| self.account(id).is_some_and(|a| self.password(a).is_some()))
                    .collect();
                if due.is_empty() {
                    return counting;
                }
                for id in due {
                    self.queue_all(Some(id));
                }
                self.next_sync(ctx);
                true
            }
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
            if let Some(body) = window().document().and_then(|d| d.body()) {
                let _ = body.set_attribute("data-ready", "1");
            }
        }
        if let Some(list) = self.list_ref.cast::<HtmlElement>() {
            let height = list.client_height().max(0) as u32;
            if height > 0 && height != self.view_px {
                ctx.link()
                    .send_message(Msg::Scrolled(list.scroll_top().max(0) as u32, height));
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        html! {
            <div class={classes!("app", self.opened.is_some().then_some("reading"))}>
                { self.header(link) }
                { self.sync_bar(link) }
                { self.password_prompt(link) }
                if self.show_form {
                    { self.account_form(link) }
                } else {
                    <main class="panes">
                        <section class="list-pane">
                            { message_list::view(
                                &self.inbox,
                                if self.running.is_some() { "Downloading mail…" } else { "No messages." },
                                self.scroll_px,
                                self.view_px,
                                &self.list_ref,
                                link.callback(|e: Event| {
                                    let list = e.target_unchecked_into::<HtmlElement>();
                                    Msg::Scrolled(
                                        list.scroll_top().max(0) as u32,
                                        list.client_height().max(0) as u32,
                                    )
                                }),
                                link.callback(|i| Msg::Inbox(Action::Select(i))),
                            ) }
                        </section>
                        <section class="reader-pane">
                            { self.reader(link) }
                        </section>
                    </main>
                }
            </div>
        }
    }
}

impl App {
    fn header(&self, link: &Scope<Self>) -> Html {
        let syncing = self.running.is_some();
        let sync_title = if !self.online {
            "You are offline: syncing needs the network. Stored mail stays readable."
        } else if syncing {
            "A sync is running."
        } else {
            "Check for new mail now"
        };
        let on_account = link.callback(|e: Event| {
            let value = e.target_unchecked_into::<HtmlSelectElement>().value();
            Msg::Inbox(Action::ShowAccount((!value.is_empty()).then_some(value)))
        });
        let on_search = link.callback(|e: InputEvent| {
            Msg::Inbox(Action::Search(
                e.target_unchecked_into::<HtmlInputElement>().value(),
            ))
        });
        let shown = self.inbox.account().unwrap_or("");
        html! {
            <header class="topbar">
                <h1>{ "webpop" }</h1>
                <div role="status" aria-label="Connection" class="connection">
                    if !self.online {
                        <span class="offline" title="Stored mail stays readable; sync needs the network.">
                            { "Offline" }
                        </span>
                    }
                </div>
                if !self.accounts.is_empty() {
                    <select aria-label="Account" onchange={on_account}>
                        <option value="" selected={shown.is_empty()}>{ "All accounts" }</option>
                        { for self.accounts.iter().map(|a| html! {
                            <option value={a.id.clone()} selected={a.id == shown}>{ a.label() }</option>
                        }) }
                    </select>
                    <input type="search" aria-label="Search mail" placeholder="Search (/)"
                        ref={self.search_ref.clone()} oninput={on_search} />
                }
                <div class="tools">
                    if !self.accounts.is_empty() {
                        <button type="button" class="primary" disabled={!self.online || syncing}
                            title={sync_title} onclick={link.callback(|_| Msg::SyncNow)}>
                            { "Sync now" }
                        </button>
                        <button type="button" onclick={link.callback(|_| Msg::ExportMbox)}>
                            { "Export mailbox (mbox)" }
                        </button>
                    }
                    if !self.show_form {
                        <button type="button" onclick={link.callback(|_| Msg::ShowForm(true))}>
                            { "Add account" }
                        </button>
                    }
                </div>
            </header>
        }
    }

    fn sync_bar(&self, link: &Scope<Self>) -> Html {
        let offline_note = (!self.online && !self.accounts.is_empty()).then(|| {
            html! {
                <p class="offline-note">
                    { "You are offline. Your stored mail is readable; syncing resumes when the network is back." }
                </p>
            }
        });
        match &self.running {
            Some(run) => {
                let view = progress::view(&run.progress, &run.meter);
                html! {
                    <div class="syncbar">
                        <progress aria-label="Sync progress" max="1"
                            value={format!("{:.4}", view.fraction)} />
                        <span role="status" aria-label="Sync status">{ view.text }</span>
                        <button type="button" onclick={link.callback(|_| Msg::CancelSync)}>
                            { "Cancel sync" }
                        </button>
                    </div>
                }
            }
            None => html! {
                <div class="syncbar idle">
                    { for offline_note }
                    <span role="status" aria-label="Sync status">{ self.status.clone() }</span>
                </div>
            },
        }
    }

    fn password_prompt(&self, link: &Scope<Self>) -> Html {
        let Some(id) = &self.asking_password else {
            return html! {};
        };
        let label = self
            .account(id)
            .map(|a| a.label().to_owned())
            .unwrap_or_default();
        let submit = {
            let id = id.clone();
            link.callback(move |e: SubmitEvent| {
                e.prevent_default();
                Msg::PasswordGiven(id.clone())
            })
        };
        let on_input = link.callback(|e: InputEvent| {
            Msg::PasswordDraft(e.target_unchecked_into::<HtmlInputElement>().value())
        });
        html! {
            <form class="password-prompt" aria-label="Password" onsubmit={submit}>
                <label>{ format!("Password for {label}") }
                    <input type="password" autocomplete="current-password" oninput={on_input} />
                </label>
                <button type="submit" class="primary">{ "Sync" }</button>
                <button type="button" onclick={link.callback(|_| Msg::PasswordDismissed)}>{ "Not now" }</button>
            </form>
        }
    }

    fn account_form(&self, link: &Scope<Self>) -> Html {
        html! {
            <AccountFormView
                form={self.form.clone()}
                problem={self.form_problem.clone()}
                busy={self.signing_in}
                demo={self.demo.is_some()}
                can_close={!self.accounts.is_empty()}
                on_change={link.callback(Msg::Form)}
                on_submit={link.callback(|()| Msg::Submit)}
                on_trust={link.callback(Msg::Trust)}
                on_demo={link.callback(|()| Msg::TryDemo)}
                on_close={link.callback(|()| Msg::ShowForm(false))}
            />
        }
    }

    fn reader(&self, link: &Scope<Self>) -> Html {
        match &self.opened {
            Some(opened) => reader::view(
                opened,
                &reader::Actions {
                    load_images: link.callback(|()| Msg::LoadImages),
                    toggle_source: link.callback(|()| Msg::ToggleSource),
                    toggle_text: link.callback(|()| Msg::ToggleText),
                    mark_unread: link.callback(|()| Msg::Inbox(Action::MarkRead(false))),
                    delete: link.callback(|()| Msg::Inbox(Action::Delete)),
                    fetch_whole: link.callback(|()| Msg::FetchWhole),
                    close: link.callback(|()| Msg::CloseReader),
                },
            ),
            None => html! {
                <div class="placeholder">
                    if self.inbox.is_empty() {
                        <p>{ "No mail here yet." }</p>
                    } else {
                        <p>{ "Select a message to read it." }</p>
                        <p class="hint">{ "j / k move, Enter opens, Delete deletes, / searches." }</p>
                    }
                </div>
            },
        }
    }
}
