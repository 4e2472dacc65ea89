//! The sync queue as a reducer: which account syncs next, when it may sign in, what the status
//! line says about it, and when to ask for a password.
//!
//! [`Scheduler`] (in `webpop-shared`) decides *when* an account may sign in: backoff after
//! failures, the server's LOGIN-DELAY, a pause after a refused password. This reducer puts it
//! to work for the page: a queue of accounts to sync one at a time, the sync that runs, the
//! password prompt, the LOGIN-DELAY countdown, on- and offline. Actions go in with the time as
//! data; effects come out for the app to carry out (start a sync, forget a password, show
//! words). Nothing here reads a clock or touches the browser, so it is tested natively.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use webpop_shared::pop3::LoginDelay;
use webpop_shared::sync::{
    countdown, Decision, Failure, Gate, Progress, RateMeter, Report, Scheduler, StopReason,
};

use super::explain::Problem;

/// What the queue needs to know about the accounts the app holds.
pub trait Roster {
    /// Every account, in the order they are shown.
    fn accounts(&self) -> Vec<String>;
    /// The account's label, or `None` when there is no such account (it was removed).
    fn label(&self, id: &str) -> Option<&str>;
    /// Whether a password is at hand for `id`: typed in this session, or remembered.
    fn has_password(&self, id: &str) -> bool;
}

/// How a sync ended: what it did and the server's LOGIN-DELAY, or the problem in words and
/// its kind for the schedule.
pub type Outcome = Result<(Report, Option<LoginDelay>), (Problem, Failure)>;

/// The sync that runs, for the sync bar.
#[derive(Debug, Clone)]
pub struct Run {
    /// The account.
    pub account: String,
    /// How far it got.
    pub progress: Progress,
    /// Its recent download rate.
    pub meter: RateMeter,
    cancelled: bool,
}

impl Run {
    fn new(account: String) -> Self {
        Self {
            account,
            progress: Progress::default(),
            meter: RateMeter::new(),
            cancelled: false,
        }
    }
}

/// What happens to the queue.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SyncAction {
    /// An account is known (read at start-up), last synced at `last_sync`.
    Track {
        /// The account.
        account: String,
        /// When its last sync finished, if ever.
        last_sync: Option<u64>,
    },
    /// An account was added and signed in; its first sync runs in that session, in place of
    /// any other shown in the sync bar (the other still reports when it ends).
    Added(String),
    /// "Sync now": one account, or every account.
    SyncNow(Option<String>),
    /// The clock moved on (every second): the countdown, and automatic checks that are due.
    Tick,
    /// The browser went on- or offline.
    Online(bool),
    /// Progress of an account's sync, at `now_ms` (milliseconds, for the rate).
    Progress {
        /// The account.
        account: String,
        /// How far it got.
        progress: Progress,
        /// The page's clock, in milliseconds.
        now_ms: f64,
    },
    /// An account's sync ended.
    Done {
        /// The account.
        account: String,
        /// How.
        outcome: Outcome,
    },
    /// "Cancel sync": the running sync stops and nothing else queued starts.
    Cancel,
    /// A password was typed for this account.
    PasswordGiven(String),
    /// "Not now" at the password prompt: nothing queued starts.
    PasswordDismissed,
    /// The account signed in outside a sync (fetching a whole message).
    LoggedIn {
        /// The account.
        account: String,
        /// The server's LOGIN-DELAY, from CAPA.
        login_delay: Option<LoginDelay>,
    },
    /// Signing in or working outside a sync failed.
    Failed {
        /// The account.
        account: String,
        /// What went wrong, in words.
        problem: Problem,
        /// Its kind, for the schedule.
        failure: Failure,
    },
    /// "Download the whole message" for an account: a sign-in outside the queue, which waits
    /// for the password and for LOGIN-DELAY like any other.
    Fetch(String),
}

/// What the app does after an action, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncEffect {
    /// Show this in the status line.
    Status(String),
    /// Sign in for this account and run a whole sync.
    Start(String),
    /// Stop the running sync.
    CancelRun,
    /// The server refused this account's password: forget it, also where it is remembered on
    /// this device (retrying a wrong password can get the account locked).
    ForgetPassword(String),
    /// This account's sync finished at this time: keep it as its last sync.
    Synced {
        /// The account.
        account: String,
        /// Seconds since the Unix epoch.
        at: u64,
    },
    /// Sign in for this account and download the whole open message.
    Fetch(String),
}

/// The queue of syncs, with the schedule every sign-in obeys.
#[derive(Debug, Clone)]
pub struct SyncQueue {
    schedule: Scheduler,
    queue: VecDeque<String>,
    running: Option<Run>,
    asking: Option<String>,
    /// A LOGIN-DELAY being waited out, shown as a countdown: (account label, until).
    login_wait: Option<(String, u64)>,
    /// Passwords the server refused and the app was told to forget, until one is typed again.
    refused: HashSet<String>,
    online: bool,
}

impl SyncQueue {
    /// An empty queue; automatic checks every `interval`; the browser is `online` or not.
    pub fn new(interval: Duration, online: bool) -> Self {
        Self {
            schedule: Scheduler::new(interval),
            queue: VecDeque::new(),
            running: None,
            asking: None,
            login_wait: None,
            refused: HashSet::new(),
            online,
        }
    }

    /// The sync that runs.
    pub fn running(&self) -> Option<&Run> {
        self.running.as_ref()
    }

    /// The account whose password the prompt asks for.
    pub fn asking(&self) -> Option<&str> {
        self.asking.as_deref()
    }

    /// Whether the browser is online.
    pub fn online(&self) -> bool {
        self.online
    }

    /// Applies `action` at `now` (seconds since the Unix epoch); returns what the app does next.
    pub fn apply(&mut self, action: SyncAction, now: u64, roster: &impl Roster) -> Vec<SyncEffect> {
        let mut effects = Vec::new();
        match action {
            SyncAction::Track { account, last_sync } => {
                self.schedule.track(&account, last_sync, now);
            }
            SyncAction::Added(account) => {
                self.refused.remove(&account);
                let label = roster.label(&account).unwrap_or_default();
                effects.push(SyncEffect::Status(format!("Checking {label}…")));
                self.running = Some(Run::new(account));
            }
            SyncAction::SyncNow(only) => {
                self.enqueue(only, roster);
                self.next(now, roster, &mut effects);
            }
            SyncAction::Tick => self.tick(now, roster, &mut effects),
            SyncAction::Online(online) => {
                self.online = online;
                if online {
                    self.next(now, roster, &mut effects);
                }
            }
            SyncAction::Progress {
                account,
                progress,
                now_ms,
            } => {
                if let Some(run) = self.running.as_mut().filter(|r| r.account == account) {
                    run.meter.record(now_ms, progress.bytes_done);
                    run.progress = progress;
                }
            }
            SyncAction::Done { account, outcome } => {
                self.done(&account, outcome, now, roster, &mut effects);
                self.next(now, roster, &mut effects);
            }
            SyncAction::Cancel => {
                self.queue.clear();
                if let Some(run) = &mut self.running {
                    run.cancelled = true;
                    effects.push(SyncEffect::CancelRun);
                }
            }
            SyncAction::PasswordGiven(account) => {
                // Signing in again ends a pause after a refused password.
                self.schedule.resume(&account);
                self.refused.remove(&account);
                self.asking = None;
                self.next(now, roster, &mut effects);
            }
            SyncAction::PasswordDismissed => {
                self.asking = None;
                self.queue.clear();
            }
            SyncAction::LoggedIn {
                account,
                login_delay,
            } => self.schedule.logged_in(&account, now, login_delay),
            SyncAction::Failed {
                account,
                problem,
                failure,
            } => {
                let label = roster.label(&account).unwrap_or_default().to_owned();
                let after = self.failed(&account, now, &failure, roster, &mut effects);
                effects.push(SyncEffect::Status(format!(
                    "{label}: {}{after}",
                    problem.status_text()
                )));
            }
            SyncAction::Fetch(account) => {
                if !self.has_password(&account, roster) {
                    self.asking = Some(account);
                } else if let Gate::Wait { until } = self.schedule.gate(&account, now) {
                    let label = roster.label(&account).unwrap_or_default().to_owned();
                    self.wait_for_login(label, until, now, &mut effects);
                } else {
                    effects.push(SyncEffect::Status("Downloading the whole message…".into()));
                    effects.push(SyncEffect::Fetch(account));
                }
            }
        }
        effects
    }

    fn has_password(&self, account: &str, roster: &impl Roster) -> bool {
        !self.refused.contains(account) && roster.has_password(account)
    }

    /// Queues `only`, or every account, unless queued or running already.
    fn enqueue(&mut self, only: Option<String>, roster: &impl Roster) {
        let accounts = match only {
            Some(account) => vec![account],
            None => roster.accounts(),
        };
        for account in accounts {
            self.push(account);
        }
    }

    fn push(&mut self, account: String) {
        let running = self.running.as_ref().map(|r| &r.account);
        if !self.queue.contains(&account) && running != Some(&account) {
            self.queue.push_back(account);
        }
    }

    /// Starts the next queued sync, if none runs and nothing waits for the person.
    fn next(&mut self, now: u64, roster: &impl Roster, effects: &mut Vec<SyncEffect>) {
        if self.running.is_some() || self.asking.is_some() || !self.online {
            return;
        }
        while let Some(account) = self.queue.pop_front() {
            let Some(label) = roster.label(&account).map(str::to_owned) else {
                continue;
            };
            if let Gate::Wait { until } = self.schedule.gate(&account, now) {
                // The server's LOGIN-DELAY: not even "Sync now" may sign in before it passes.
                self.wait_for_login(label, until, now, effects);
                continue;
            }
            if !self.has_password(&account, roster) {
                self.asking = Some(account.clone());
                self.queue.push_front(account);
                return;
            }
            effects.push(SyncEffect::Status(format!("Checking {label}…")));
            effects.push(SyncEffect::Start(account.clone()));
            self.running = Some(Run::new(account));
            return;
        }
    }

    fn tick(&mut self, now: u64, roster: &impl Roster, effects: &mut Vec<SyncEffect>) {
        self.tick_login_wait(now, effects);
        if !self.online || self.running.is_some() {
            return;
        }
        let due: Vec<String> = self
            .schedule
            .due(now)
            .into_iter()
            .filter(|id| roster.label(id).is_some() && self.has_password(id, roster))
            .collect();
        if due.is_empty() {
            return;
        }
        for account in due {
            self.push(account);
        }
        self.next(now, roster, effects);
    }

    fn done(
        &mut self,
        account: &str,
        outcome: Outcome,
        now: u64,
        roster: &impl Roster,
        effects: &mut Vec<SyncEffect>,
    ) {
        let label = roster.label(account).unwrap_or_default().to_owned();
        let ran = match &self.running {
            Some(run) if run.account == account => self.running.take(),
            _ => None,
        };
        match outcome {
            Ok((report, delay)) => {
                self.schedule.logged_in(account, now, delay);
                self.schedule.succeeded(account, now);
                let deleted = if report.deleted > 0 {
                    format!(", {} deleted from the server", report.deleted)
                } else {
                    String::new()
                };
                let plural = if report.stored == 1 { "" } else { "s" };
                effects.push(SyncEffect::Status(format!(
                    "Synced {} new message{plural} for {label}{deleted}.",
                    report.stored
                )));
                effects.push(SyncEffect::Synced {
                    account: account.to_owned(),
                    at: now,
                });
            }
            Err(_) if ran.is_some_and(|r| r.cancelled) => {
                effects.push(SyncEffect::Status(
                    "Sync cancelled; the mail stored so far is kept.".into(),
                ));
            }
            Err((problem, failure)) => {
                let after = self.failed(account, now, &failure, roster, effects);
                effects.push(SyncEffect::Status(format!(
                    "{label}: {}{after}",
                    problem.status_text()
                )));
            }
        }
    }

    /// Records a failed sign-in or sync with the schedule; returns what happens next, in
    /// words, to follow the problem in the status line. A refused password is forgotten (also
    /// when remembered on this device) and automatic checks stop until it is typed again.
    fn failed(
        &mut self,
        account: &str,
        now: u64,
        failure: &Failure,
        roster: &impl Roster,
        effects: &mut Vec<SyncEffect>,
    ) -> String {
        match self.schedule.failed(account, now, failure) {
            Decision::Stop(StopReason::Auth) => {
                self.refused.insert(account.to_owned());
                effects.push(SyncEffect::ForgetPassword(account.to_owned()));
                " Automatic checks are paused until you enter the password again (Sync now).".into()
            }
            Decision::Stop(_) => " Automatic checks are paused for this account.".into(),
            Decision::RetryAt(at) => {
                if let Gate::Wait { until } = self.schedule.gate(account, now) {
                    let label = roster.label(account).map(str::to_owned);
                    self.login_wait = label.map(|l| (l, until));
                }
                format!(" Next try in {}.", countdown(at.saturating_sub(now)))
            }
        }
    }

    /// Shows the LOGIN-DELAY countdown for `label` until `until`.
    fn wait_for_login(
        &mut self,
        label: String,
        until: u64,
        now: u64,
        effects: &mut Vec<SyncEffect>,
    ) {
        self.login_wait = Some((label, until));
        self.tick_login_wait(now, effects);
    }

    /// Updates the LOGIN-DELAY countdown.
    fn tick_login_wait(&mut self, now: u64, effects: &mut Vec<SyncEffect>) {
        let Some((label, until)) = self.login_wait.clone() else {
            return;
        };
        effects.push(SyncEffect::Status(if until <= now {
            self.login_wait = None;
            format!("{label}: the server allows a new sign-in now.")
        } else {
            format!(
                "{label}: the server allows one sign-in at a time every few minutes \
                 (LOGIN-DELAY); next sign-in in {}.",
                countdown(until - now)
            )
        }));
    }
}

#[cfg(test)]
mod tests;
