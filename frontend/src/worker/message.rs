//! What crosses between the page and the sync worker, both ways, as typed messages serialised
//! with serde (JSON text in `postMessage`). Both sides import this one module, so a command or
//! an event cannot mean one thing to the page and another to the worker.
//!
//! Passwords and relay tokens cross only inside a [`Command`], as [`Secret`]s: their `Debug`
//! prints `Secret(***)`, and nothing here logs a message. Errors cross as [`Problem`]s (typed,
//! in words) with the scheduler's [`Failure`] kind, never as a `JsValue`, a Rust `Debug` text or
//! a stack.

use serde::{Deserialize, Serialize};
use webpop_shared::pop3::{LoginDelay, RespCode};
use webpop_shared::secret::Secret;
use webpop_shared::sync::{Failure, Progress, Report};

use crate::model::Account;
use crate::state::explain::Problem;
use crate::state::scheduler::Outcome;

/// Where the worker connects: the relay endpoint and the access token the page was given (a
/// worker has no `localStorage` to read it from).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relay {
    /// `ws[s]://<host>/relay`.
    pub url: String,
    /// The relay's access token, if it wants one.
    #[serde(with = "secret_opt")]
    pub token: Option<Secret>,
}

/// What the page asks of the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    /// Sign in with the settings of an account being added, and keep the session for its first
    /// sync (a second login at once could meet LOGIN-DELAY). Answered by
    /// [`Event::SignedIn`] or [`Event::SignInFailed`].
    SignIn {
        /// The account (its remembered password is never sent: see `password`).
        account: Account,
        /// Its password.
        #[serde(with = "secret")]
        password: Secret,
        /// Through which relay.
        relay: Relay,
    },
    /// Closes, without `QUIT`, a session kept by [`Command::SignIn`] (the account could not be
    /// saved).
    Release {
        /// The account's id.
        account: String,
    },
    /// Syncs the account: in the session [`Command::SignIn`] kept, or a new one. Answered by
    /// [`Event::Progress`] and one [`Event::Done`].
    Sync {
        /// The account.
        account: Account,
        /// Its password.
        #[serde(with = "secret")]
        password: Secret,
        /// Through which relay.
        relay: Relay,
    },
    /// Stops the account's sync; committed mail stays.
    Cancel {
        /// The account's id.
        account: String,
    },
    /// Downloads a message stored headers-only whole, and stores it. Answered by
    /// [`Event::Fetched`] or [`Event::FetchFailed`].
    FetchWhole {
        /// The account.
        account: Account,
        /// Its password.
        #[serde(with = "secret")]
        password: Secret,
        /// Through which relay.
        relay: Relay,
        /// The message's UIDL.
        uid: String,
    },
}

/// What the worker tells the page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Event {
    /// The worker listens: commands posted before this could be lost, so the page holds them
    /// until it comes.
    Ready,
    /// [`Command::SignIn`] succeeded: the session waits for the account's first sync.
    SignedIn {
        /// The account's id.
        account: String,
    },
    /// [`Command::SignIn`] failed.
    SignInFailed {
        /// The account's id.
        account: String,
        /// Why, in words.
        problem: Problem,
    },
    /// A sync got further.
    Progress {
        /// The account's id.
        account: String,
        /// How far.
        progress: WireProgress,
    },
    /// A sync committed a batch: these rows are stored (the list shows them at once).
    Stored {
        /// The account's id.
        account: String,
        /// The batch's rows.
        rows: Vec<crate::model::Row>,
    },
    /// A sync ended.
    Done {
        /// The account's id.
        account: String,
        /// How.
        outcome: WireOutcome,
    },
    /// A whole message was downloaded and stored.
    Fetched {
        /// The account's id.
        account: String,
        /// The message's UIDL.
        uid: String,
        /// The server's LOGIN-DELAY, which this sign-in started anew.
        login_delay: Option<WireLoginDelay>,
    },
    /// Downloading a whole message failed.
    FetchFailed {
        /// The account's id.
        account: String,
        /// Why, in words.
        problem: Problem,
        /// The kind, for the schedule.
        failure: WireFailure,
    },
}

impl Command {
    /// The message text for `postMessage`.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a message text; `None` for anything that is not a command.
    pub fn from_text(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

impl Event {
    /// The message text for `postMessage`.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a message text; `None` for anything that is not an event.
    pub fn from_text(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// [`Progress`], as it crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireProgress {
    messages_done: usize,
    messages_total: usize,
    bytes_done: u64,
    bytes_total: u64,
}

impl From<Progress> for WireProgress {
    fn from(p: Progress) -> Self {
        Self {
            messages_done: p.messages_done,
            messages_total: p.messages_total,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
        }
    }
}

impl From<WireProgress> for Progress {
    fn from(p: WireProgress) -> Self {
        Self {
            messages_done: p.messages_done,
            messages_total: p.messages_total,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
        }
    }
}

/// [`LoginDelay`], as it crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireLoginDelay {
    seconds: u32,
    per_user: bool,
}

impl From<LoginDelay> for WireLoginDelay {
    fn from(d: LoginDelay) -> Self {
        Self {
            seconds: d.seconds,
            per_user: d.per_user,
        }
    }
}

impl From<WireLoginDelay> for LoginDelay {
    fn from(d: WireLoginDelay) -> Self {
        Self {
            seconds: d.seconds,
            per_user: d.per_user,
        }
    }
}

/// [`Report`], as it crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireReport {
    stored: usize,
    deleted: usize,
    skipped: usize,
}

/// [`Failure`], as it crosses: a refusal keeps its response code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireFailure {
    /// The server refused, with this code (`None`: a bare `-ERR`).
    Refused(Option<WireCode>),
    /// Anything else.
    Other,
}

/// [`RespCode`], as it crosses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireCode {
    /// `[IN-USE]`.
    InUse,
    /// `[LOGIN-DELAY]`.
    LoginDelay,
    /// `[SYS/TEMP]`.
    SysTemp,
    /// `[SYS/PERM]`.
    SysPerm,
    /// `[AUTH]`.
    Auth,
    /// Another code, as sent.
    Other(String),
}

impl From<&Failure> for WireFailure {
    fn from(f: &Failure) -> Self {
        match f {
            Failure::Refused(code) => Self::Refused(code.as_ref().map(|c| match c {
                RespCode::InUse => WireCode::InUse,
                RespCode::LoginDelay => WireCode::LoginDelay,
                RespCode::SysTemp => WireCode::SysTemp,
                RespCode::SysPerm => WireCode::SysPerm,
                RespCode::Auth => WireCode::Auth,
                RespCode::Other(s) => WireCode::Other(s.clone()),
                _ => WireCode::Other(String::new()),
            })),
            _ => Self::Other,
        }
    }
}

impl From<WireFailure> for Failure {
    fn from(f: WireFailure) -> Self {
        match f {
            WireFailure::Refused(code) => Self::Refused(code.map(|c| match c {
                WireCode::InUse => RespCode::InUse,
                WireCode::LoginDelay => RespCode::LoginDelay,
                WireCode::SysTemp => RespCode::SysTemp,
                WireCode::SysPerm => RespCode::SysPerm,
                WireCode::Auth => RespCode::Auth,
                WireCode::Other(s) => RespCode::Other(s),
            })),
            WireFailure::Other => Self::Other,
        }
    }
}

/// [`Outcome`], as it crosses.
pub type WireOutcome = Result<(WireReport, Option<WireLoginDelay>), (Problem, WireFailure)>;

/// The outcome as it crosses.
pub fn outcome_to_wire(outcome: &Outcome) -> WireOutcome {
    match outcome {
        Ok((report, delay)) => Ok((
            WireReport {
                stored: report.stored,
                deleted: report.deleted,
                skipped: report.skipped,
            },
            delay.map(Into::into),
        )),
        Err((problem, failure)) => Err((problem.clone(), failure.into())),
    }
}

/// The outcome the scheduler takes.
pub fn outcome_from_wire(outcome: WireOutcome) -> Outcome {
    match outcome {
        Ok((r, delay)) => Ok((
            Report {
                stored: r.stored,
                deleted: r.deleted,
                skipped: r.skipped,
            },
            delay.map(Into::into),
        )),
        Err((problem, failure)) => Err((problem, failure.into())),
    }
}

/// A [`Secret`] crosses as its text and is checked again on arrival.
mod secret {
    use serde::{Deserialize as _, Deserializer, Serializer};
    use webpop_shared::secret::Secret;

    pub fn serialize<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let text = String::deserialize(d)?;
        Secret::password(text).map_err(serde::de::Error::custom)
    }
}

/// An optional [`Secret`] (a relay token), as [`secret`].
mod secret_opt {
    use serde::{Deserialize as _, Deserializer, Serializer};
    use webpop_shared::secret::Secret;

    pub fn serialize<S: Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => s.serialize_some(secret.expose()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(Secret::token)
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            id: "u@h:995".into(),
            email: "u@example.org".into(),
            user: "u".into(),
            host: "h".into(),
            port: 995,
            security: crate::model::SecurityChoice::Tls,
            server_name: "h".into(),
            auth: "auto".into(),
            cert_sha256: None,
            policy: crate::model::PolicyChoice::Days(7),
            password: Some(Secret::password("remembered").unwrap()),
            last_sync: Some(5),
        }
    }

    #[test]
    fn a_command_crosses_whole_and_its_password_never_shows_in_debug() {
        let command = Command::Sync {
            account: account(),
            password: Secret::password("hunter2").unwrap(),
            relay: Relay {
                url: "ws://127.0.0.1/relay".into(),
                token: Some(Secret::token("tok").unwrap()),
            },
        };
        let back = Command::from_text(&command.to_text()).unwrap();
        let Command::Sync {
            account: a,
            password,
            relay,
        } = &back
        else {
            panic!("not a sync");
        };
        assert_eq!(password.expose(), "hunter2");
        assert_eq!(relay.token.as_ref().unwrap().expose(), "tok");
        // The remembered (sealed) password stays on the page: only `password` crosses.
        assert_eq!(a.password, None);
        assert_eq!(a.policy, crate::model::PolicyChoice::Days(7));
        assert!(!format!("{back:?}").contains("hunter2"));
        assert!(!command.to_text().contains("remembered"));
    }

    #[test]
    fn an_outcome_crosses_with_its_problem_and_its_response_code() {
        let outcome: Outcome = Err((
            Problem::Later("The mailbox is busy.".into()),
            Failure::Refused(Some(RespCode::InUse)),
        ));
        let event = Event::Done {
            account: "a".into(),
            outcome: outcome_to_wire(&outcome),
        };
        let Some(Event::Done { outcome: back, .. }) = Event::from_text(&event.to_text()) else {
            panic!("not done");
        };
        assert_eq!(outcome_from_wire(back), outcome);
    }

    #[test]
    fn anything_else_is_not_a_message() {
        assert!(Command::from_text("{\"Nope\":1}").is_none());
        assert!(Event::from_text("not json").is_none());
    }
}
