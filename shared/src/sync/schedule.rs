//! When each account may sign in again and when its next automatic check is due: one place
//! that counts failures, backs off, honours LOGIN-DELAY for every login, and stops for good
//! after the server refused the password.
//!
//! A wrong password retried every few minutes can get an account locked by its provider, and a
//! login sooner than the server's LOGIN-DELAY is refused (or worse, counted against the user).
//! So the host asks [`Scheduler::gate`] before *any* login — automatic checks, "Sync now",
//! fetching a whole message — and reports every outcome back. No clock is read: `now` is
//! seconds since the Unix epoch, passed in.

use std::collections::HashMap;
use std::time::Duration;

use super::retry::{advise, next_check, Advice, StopReason};
use crate::pop3::{LoginDelay, RespCode};

/// The first wait after a failure that is not the server's refusal (a dropped connection, a
/// relay error); it doubles with each failure in a row.
const OTHER_FIRST: Duration = Duration::from_secs(60);
/// The longest wait between automatic retries.
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

/// How a sign-in or a sync failed, as far as scheduling cares.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The server refused, with this response code (`None`: a bare `-ERR`). At login, a
    /// refusal without a code means the password was wrong.
    Refused(Option<RespCode>),
    /// Anything else: the network, the relay, a storage problem. Retried with backoff.
    Other,
}

/// Whether an account may sign in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Yes.
    Open,
    /// Not before this time (seconds since the Unix epoch): the server's LOGIN-DELAY since
    /// the last login has not passed. Show it as a countdown.
    Wait {
        /// When the account may sign in again.
        until: u64,
    },
    /// Automatic checks are off until the person signs in again (see [`Scheduler::resume`]).
    Paused(StopReason),
}

/// What the host should do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The next automatic try is at this time.
    RetryAt(u64),
    /// No more automatic tries. For [`StopReason::Auth`], also forget a remembered password.
    Stop(StopReason),
}

#[derive(Debug, Clone, Default)]
struct Slot {
    last_login: Option<u64>,
    login_delay: Option<LoginDelay>,
    failures: u32,
    next_auto: u64,
    paused: Option<StopReason>,
}

impl Slot {
    fn login_gate(&self) -> u64 {
        match (self.last_login, self.login_delay) {
            (Some(at), Some(delay)) => at.saturating_add(u64::from(delay.seconds)),
            _ => 0,
        }
    }
}

/// The schedule of every account, by account id.
#[derive(Debug, Clone)]
pub struct Scheduler {
    interval: Duration,
    accounts: HashMap<String, Slot>,
}

impl Scheduler {
    /// Automatic checks every `interval` (never sooner than a server's LOGIN-DELAY).
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            accounts: HashMap::new(),
        }
    }

    /// Starts scheduling `id`, last synced at `last_sync` (if ever): its first automatic check
    /// is one interval after that, and not before `now`.
    pub fn track(&mut self, id: &str, last_sync: Option<u64>, now: u64) {
        let next_auto = next_check(last_sync.unwrap_or(0), self.interval, None).max(now);
        self.accounts.entry(id.to_owned()).or_insert(Slot {
            next_auto,
            ..Slot::default()
        });
    }

    /// Stops scheduling `id` (the account was removed).
    pub fn forget(&mut self, id: &str) {
        self.accounts.remove(id);
    }

    /// Whether `id` may sign in at `now`. Manual actions ask too: only a pause is theirs to
    /// override (by signing in again), never the server's LOGIN-DELAY.
    pub fn gate(&self, id: &str, now: u64) -> Gate {
        let Some(slot) = self.accounts.get(id) else {
            return Gate::Open;
        };
        if let Some(reason) = slot.paused {
            return Gate::Paused(reason);
        }
        match slot.login_gate() {
            until if until > now => Gate::Wait { until },
            _ => Gate::Open,
        }
    }

    /// A login of `id` succeeded at `now`; the server advertised `login_delay` (from CAPA).
    pub fn logged_in(&mut self, id: &str, now: u64, login_delay: Option<LoginDelay>) {
        let slot = self.accounts.entry(id.to_owned()).or_default();
        slot.last_login = Some(now);
        if login_delay.is_some() {
            slot.login_delay = login_delay;
        }
    }

    /// A sync of `id` finished at `now`: failures are forgotten and the next automatic check
    /// is one interval (or the LOGIN-DELAY, if longer) after the last login.
    pub fn succeeded(&mut self, id: &str, now: u64) {
        let interval = self.interval;
        let slot = self.accounts.entry(id.to_owned()).or_default();
        slot.failures = 0;
        slot.paused = None;
        slot.next_auto = next_check(slot.last_login.unwrap_or(now), interval, slot.login_delay);
    }

    /// A sign-in or sync of `id` failed at `now`. Failures in a row back off exponentially;
    /// a refused password (or `[SYS/PERM]`) pauses the account.
    pub fn failed(&mut self, id: &str, now: u64, failure: &Failure) -> Decision {
        let slot = self.accounts.entry(id.to_owned()).or_default();
        let attempt = slot.failures;
        slot.failures = slot.failures.saturating_add(1);
        let wait = match failure {
            Failure::Refused(code) => match advise(code.as_ref(), attempt, slot.login_delay) {
                Advice::RetryAfter(wait) => wait,
                Advice::Stop(reason) => {
                    slot.paused = Some(reason);
                    return Decision::Stop(reason);
                }
            },
            Failure::Other => {
                let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
                OTHER_FIRST.saturating_mul(factor).min(MAX_WAIT)
            }
        };
        if matches!(failure, Failure::Refused(Some(RespCode::LoginDelay))) {
            // The server counts from a login we may not know about (another device).
            slot.last_login = Some(now);
            slot.login_delay.get_or_insert(LoginDelay {
                seconds: u32::try_from(wait.as_secs()).unwrap_or(u32::MAX),
                per_user: false,
            });
        }
        let at = now.saturating_add(wait.as_secs()).max(slot.login_gate());
        slot.next_auto = at;
        Decision::RetryAt(at)
    }

    /// The person signed in again (typed the password): a pause ends and failures are
    /// forgotten. The LOGIN-DELAY still holds.
    pub fn resume(&mut self, id: &str) {
        if let Some(slot) = self.accounts.get_mut(id) {
            slot.paused = None;
            slot.failures = 0;
        }
    }

    /// Accounts whose automatic check is due at `now`, in id order: not paused, and past both
    /// their next check and the LOGIN-DELAY.
    pub fn due(&self, now: u64) -> Vec<String> {
        let mut due: Vec<String> = self
            .accounts
            .iter()
            .filter(|(_, s)| s.paused.is_none() && s.next_auto <= now && s.login_gate() <= now)
            .map(|(id, _)| id.clone())
            .collect();
        due.sort();
        due
    }

    /// When `id`'s next automatic check is (for the UI), unless it is paused.
    pub fn next_check(&self, id: &str) -> Option<u64> {
        let slot = self.accounts.get(id)?;
        slot.paused
            .is_none()
            .then(|| slot.next_auto.max(slot.login_gate()))
    }
}

/// A countdown in words: "4:05" (minutes and seconds), or "1:02:03" past an hour.
pub fn countdown(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests;
