//! One sync, as a sans-I/O state machine on top of a logged-in POP3 session.
//!
//! The host (the browser glue, or a native driver) moves things between the engine, the
//! session and the store:
//! - [`Engine::poll_command`] gives commands to send; send them in order.
//! - [`Engine::handle_reply`] takes each reply (or `-ERR`) to those commands, in order.
//! - [`Engine::poll_event`] gives events. A [`SyncEvent::Store`] batch must be written in one
//!   store transaction, message and UIDL state together; then call [`Engine::committed`] (or
//!   [`Engine::store_failed`]).
//! - [`Engine::wants_input`] says whether to read from the server now; while it says no, wait
//!   for a commit instead (the server's bytes wait in the network, not in memory).
//!
//! Safety rules kept here: a fetched message gets `DELE` only after its batch is committed;
//! `QUIT` (which makes deletions happen) comes only after every batch is committed and every
//! `DELE` answered. If the host drops the connection at any point before that, the server
//! deletes nothing. Memory is bounded: fetching pauses while more than
//! [`EngineConfig::window_bytes`] are requested, buffered or waiting to be committed, or
//! [`EngineConfig::max_fetches_in_flight`] fetches are unanswered (a server listing every message
//! at 0 octets would otherwise get every `RETR` at once); and the host stops reading the
//! connection while [`Engine::wants_input`] says no, that is while more than the window is
//! received and not yet committed.
//!
//! The server's listing is checked against what it sends: a `RETR` reply whose size differs from
//! the size `LIST` gave stops the sync ([`SyncError::SizeMismatch`]). That message is not stored,
//! nothing received after it is, and nothing more is deleted. A reply whose size does not match
//! is what a split or forged reply looks like, whatever the framing bug that caused it.

use std::collections::{HashMap, VecDeque};

use super::plan::{
    self, Fetch, FetchMode, Known, Listed, Plan, PlanError, PlanOptions, ServerPolicy,
};
use crate::pop3::{Command, ListEntry, Reply, ServerError, UidEntry};

/// Knobs for one sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Policy, large-message threshold and whether the server has `TOP`.
    pub plan: PlanOptions,
    /// Most bytes requested, held or uncommitted at once (at least one message always goes).
    /// Each message counts at the larger of its listed and its received size.
    pub window_bytes: u64,
    /// Most `RETR`/`TOP` commands unanswered at once, whatever their listed sizes (at least 1).
    pub max_fetches_in_flight: usize,
    /// A batch is handed to the store once it holds this many messages...
    pub batch_messages: usize,
    /// ...the first one already at this many (at most `batch_messages`), so that a first sync
    /// shows its first mail sooner...
    pub first_batch_messages: usize,
    /// ...or this many bytes.
    pub batch_bytes: u64,
    /// The time now, in seconds since the Unix epoch (for "delete after N days").
    pub now: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            plan: PlanOptions::default(),
            window_bytes: 8 * 1024 * 1024,
            max_fetches_in_flight: 32,
            batch_messages: 100,
            first_batch_messages: 100,
            batch_bytes: 4 * 1024 * 1024,
            now: 0,
        }
    }
}

/// Bytes counted for a headers-only fetch before its size is known.
const HEADERS_ESTIMATE: u64 = 8 * 1024;

/// A fetched message, to be stored with its UIDL state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The UIDL.
    pub uid: String,
    /// The size the server listed.
    pub size: u64,
    /// Whole message or headers only.
    pub mode: FetchMode,
    /// The bytes exactly as the server holds them.
    pub raw: Vec<u8>,
}

/// Messages to write in one store transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Pass to [`Engine::committed`] or [`Engine::store_failed`].
    pub id: u64,
    /// The messages, newest first.
    pub messages: Vec<Fetched>,
    /// The account's policy may delete these from the server once committed (now or in a
    /// later sync): the store must make the commit durable before reporting it (IndexedDB
    /// `durability: "strict"`), or a crash right after could lose the only copy.
    pub durable: bool,
}

/// Counts for a progress bar. The host adds the rate from its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Messages stored so far.
    pub messages_done: usize,
    /// Messages this sync will fetch.
    pub messages_total: usize,
    /// Bytes received so far.
    pub bytes_done: u64,
    /// Bytes this sync will fetch (whole messages; headers-only fetches add their actual size).
    pub bytes_total: u64,
}

/// How a finished sync went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Messages stored.
    pub stored: usize,
    /// Messages the server deleted at QUIT.
    pub deleted: usize,
    /// Messages the server refused to send (`-ERR` to RETR/TOP); fetched again next time.
    pub skipped: usize,
}

/// Why a sync stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The listing could not be planned (no UIDL, duplicate ids).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The server refused UIDL or LIST.
    #[error("the server refused to list messages: {0}")]
    Listing(String),
    /// The store could not write a batch (for example, storage is full). The store's own
    /// error goes to the host's caller ([`super::host::Failure::Commit`]).
    #[error("storing mail failed: {0}")]
    Store(StoreFault),
    /// A reply did not fit the command it answered.
    #[error("the server's reply to {0} was not what POP3 allows")]
    UnexpectedReply(&'static str),
    /// The sync was cancelled.
    #[error("the sync was cancelled")]
    Cancelled,
    /// A message's `RETR` reply was not the size `LIST` gave for it: the reply was cut short,
    /// or it ran into (or was) another reply. The message is not stored, nothing received after
    /// it is, and nothing more is deleted.
    #[error(
        "the server's reply does not match its listing: message {uid} was listed at {listed} \
         bytes, but {received} bytes arrived"
    )]
    SizeMismatch {
        /// The message's UIDL.
        uid: String,
        /// The size `LIST` gave.
        listed: u64,
        /// The size of the reply's message.
        received: u64,
    },
    /// The server refused a command the sync cannot do without; its response code (e.g.
    /// `[IN-USE]`, `[SYS/TEMP]`) says whether a retry may help.
    #[error("the server refused {command}: {}", .error.text)]
    Refused {
        /// The command.
        command: &'static str,
        /// What the server said.
        error: ServerError,
    },
}

/// Why a store could not write a batch, as far as the sync is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreFault {
    /// The storage is full (or the commit was aborted, as a full store aborts one).
    #[error("the storage is full")]
    Full,
    /// The store failed for another reason.
    #[error("the store failed")]
    Failed,
}

/// What the engine tells the host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncEvent {
    /// The plan: how much will be fetched and deleted.
    Planned {
        /// Messages to fetch.
        fetch: usize,
        /// Bytes to fetch.
        bytes: u64,
        /// Stored messages the policy deletes now.
        delete: usize,
    },
    /// UIDLs the store knows that the server no longer has.
    Gone(Vec<String>),
    /// Write these in one transaction, then call [`Engine::committed`].
    Store(Batch),
    /// Progress after a message arrived or a batch committed.
    Progress(Progress),
    /// The server would not send a message; it is left for the next sync.
    Skipped {
        /// The UIDL.
        uid: String,
        /// What the server said.
        error: ServerError,
    },
    /// The server confirmed `QUIT`: deletions are done and the session is over.
    Finished(Report),
    /// The sync stopped. Drop the connection without `QUIT`, so the server deletes nothing.
    Failed(SyncError),
}

/// What a sent command's reply means.
#[derive(Debug)]
enum Expect {
    Stat,
    Uidl,
    List,
    Fetch(Fetch),
    Dele,
    Quit,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Listing,
    Fetching,
    Quitting,
    Over,
}

/// One sync. See the module documentation for the host's side.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    known: HashMap<String, Known>,
    phase: Phase,
    outbox: VecDeque<(Command, Expect)>,
    expect: VecDeque<Expect>,
    events: VecDeque<SyncEvent>,
    uids: Option<Vec<UidEntry>>,
    plan: Plan,
    next_fetch: usize,
    fetches_in_flight: usize,
    requested_bytes: u64,
    pending: Vec<Fetched>,
    pending_bytes: u64,
    uncommitted: HashMap<u64, Uncommitted>,
    uncommitted_bytes: u64,
    next_batch: u64,
    msg_of: HashMap<String, u32>,
    deles_in_flight: usize,
    progress: Progress,
    report: Report,
}

impl Engine {
    /// A sync against a server listing, given what the store `known`s.
    pub fn new(config: EngineConfig, known: HashMap<String, Known>) -> Self {
        Self {
            config,
            known,
            phase: Phase::Listing,
            // STAT first: the POP3 client then holds UIDL and LIST to the count it gives, so a
            // listing costs memory in proportion to the mailbox (`pop3::Options`).
            outbox: VecDeque::from([
                (Command::Stat, Expect::Stat),
                (Command::Uidl(None), Expect::Uidl),
                (Command::List(None), Expect::List),
            ]),
            expect: VecDeque::new(),
            events: VecDeque::new(),
            uids: None,
            plan: Plan::default(),
            next_fetch: 0,
            fetches_in_flight: 0,
            requested_bytes: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            uncommitted: HashMap::new(),
            uncommitted_bytes: 0,
            next_batch: 1,
            msg_of: HashMap::new(),
            deles_in_flight: 0,
            progress: Progress::default(),
            report: Report::default(),
        }
    }

    /// The next command to send, if any.
    pub fn poll_command(&mut self) -> Option<Command> {
        let (command, expect) = self.outbox.pop_front()?;
        self.expect.push_back(expect);
        Some(command)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SyncEvent> {
        self.events.pop_front()
    }

    /// Whether replies are outstanding.
    pub fn awaiting_replies(&self) -> bool {
        !self.expect.is_empty()
    }

    /// Whether the host should read from the server now. Ask before every read: `false` while
    /// no reply is due, after the sync ended, and while more than [`EngineConfig::window_bytes`]
    /// are received and not yet committed (backpressure: the server's bytes wait in the network
    /// instead of in memory). Committing a batch ([`Engine::committed`]) makes it `true` again.
    pub fn wants_input(&self) -> bool {
        self.phase != Phase::Over && self.awaiting_replies() && !self.over_window()
    }

    /// Whether the received, uncommitted bytes fill the window while a commit can free some.
    fn over_window(&self) -> bool {
        let held = self.pending_bytes.saturating_add(self.uncommitted_bytes);
        held >= self.config.window_bytes && !self.uncommitted.is_empty()
    }

    /// Whether the sync has finished or failed.
    pub fn is_over(&self) -> bool {
        self.phase == Phase::Over
    }

    /// Takes the reply (or `-ERR`) to the oldest command sent and not yet answered.
    pub fn handle_reply(&mut self, reply: Result<Reply, ServerError>) {
        if self.phase == Phase::Over {
            return;
        }
        let Some(expect) = self.expect.pop_front() else {
            return self.fail(SyncError::UnexpectedReply("no command"));
        };
        match (expect, reply) {
            (Expect::Stat, Ok(Reply::Stat(_))) => {}
            (Expect::Stat, Err(error)) => {
                return self.fail(SyncError::Refused {
                    command: "STAT",
                    error,
                })
            }
            (Expect::Stat, Ok(_)) => return self.fail(SyncError::UnexpectedReply("STAT")),
            (Expect::Uidl, Ok(Reply::Uids(uids))) => self.uids = Some(uids),
            // A bare -ERR is how a server without UIDL answers; one with a response code is a
            // server with UIDL that cannot serve it now.
            (Expect::Uidl, Err(error)) if error.code.is_some() => {
                return self.fail(SyncError::Refused {
                    command: "UIDL",
                    error,
                })
            }
            (Expect::Uidl, Err(_)) => return self.fail(PlanError::NoUidl.into()),
            (Expect::List, Ok(Reply::Listing(sizes))) => self.start(&sizes),
            (Expect::List, Err(e)) => return self.fail(SyncError::Listing(e.text)),
            (Expect::Fetch(fetch), Ok(Reply::Message(raw))) => {
                if let Err(error) = self.fetched(fetch, raw) {
                    return self.fail(error);
                }
            }
            (Expect::Fetch(fetch), Err(error)) => {
                self.fetches_in_flight -= 1;
                self.requested_bytes = self.requested_bytes.saturating_sub(estimate(&fetch));
                self.report.skipped += 1;
                self.events.push_back(SyncEvent::Skipped {
                    uid: fetch.message.uid,
                    error,
                });
            }
            (Expect::Dele, Ok(_)) => {
                self.deles_in_flight -= 1;
                self.report.deleted += 1;
            }
            // A message the server will not delete stays; the next sync tries again.
            (Expect::Dele, Err(_)) => self.deles_in_flight -= 1,
            (Expect::Quit, Ok(_)) => {
                self.phase = Phase::Over;
                self.events.push_back(SyncEvent::Finished(self.report));
                return;
            }
            (Expect::Quit, Err(error)) => {
                return self.fail(SyncError::Refused {
                    command: "QUIT",
                    error,
                })
            }
            (Expect::Uidl, Ok(_)) => return self.fail(SyncError::UnexpectedReply("UIDL")),
            (Expect::List, Ok(_)) => return self.fail(SyncError::UnexpectedReply("LIST")),
            (Expect::Fetch(_), Ok(_)) => return self.fail(SyncError::UnexpectedReply("RETR")),
        }
        self.advance();
    }

    /// The store committed batch `id`: its messages are safe, and may now be deleted.
    pub fn committed(&mut self, id: u64) {
        let Some(batch) = self.uncommitted.remove(&id) else {
            return;
        };
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(batch.bytes);
        self.progress.messages_done += batch.count;
        self.report.stored += batch.count;
        if self.plan.delete_after_store && self.phase == Phase::Fetching {
            for msg in batch.whole {
                self.dele(msg);
            }
        }
        self.events.push_back(SyncEvent::Progress(self.progress));
        self.advance();
    }

    /// The store could not write batch `id`: the sync stops and nothing more is deleted.
    pub fn store_failed(&mut self, id: u64, fault: StoreFault) {
        if self.uncommitted.remove(&id).is_some() {
            self.fail(SyncError::Store(fault));
        }
    }

    /// Stops the sync. Drop the connection without `QUIT`; committed batches stay stored.
    pub fn cancel(&mut self) {
        self.fail(SyncError::Cancelled);
    }

    fn fail(&mut self, error: SyncError) {
        if self.phase == Phase::Over {
            return;
        }
        self.phase = Phase::Over;
        self.outbox.clear();
        // Received and not handed to the store: never stored, whatever arrives later.
        self.pending.clear();
        self.pending_bytes = 0;
        self.events.push_back(SyncEvent::Failed(error));
    }

    fn start(&mut self, sizes: &[ListEntry]) {
        let Some(uids) = self.uids.take() else {
            return self.fail(PlanError::NoUidl.into());
        };
        let planned = plan::listing(&uids, sizes)
            .and_then(|listed| plan::plan(&listed, &self.known, self.config.plan, self.config.now));
        let planned = match planned {
            Ok(planned) => planned,
            Err(e) => return self.fail(e.into()),
        };
        self.known.clear();
        self.events.push_back(SyncEvent::Planned {
            fetch: planned.fetch.len(),
            bytes: planned.bytes,
            delete: planned.delete.len(),
        });
        if !planned.gone.is_empty() {
            self.events.push_back(SyncEvent::Gone(planned.gone.clone()));
        }
        self.progress.messages_total = planned.fetch.len();
        self.progress.bytes_total = planned.bytes;
        self.events.push_back(SyncEvent::Progress(self.progress));
        self.msg_of = planned
            .fetch
            .iter()
            .map(|f| (f.message.uid.clone(), f.message.msg))
            .collect();
        let old: Vec<Listed> = planned.delete.clone();
        self.plan = planned;
        self.phase = Phase::Fetching;
        // These were committed by earlier syncs.
        for message in old {
            self.dele(message.msg);
        }
    }

    fn dele(&mut self, msg: u32) {
        self.deles_in_flight += 1;
        self.outbox.push_back((Command::Dele(msg), Expect::Dele));
    }

    /// Takes a fetched message into the next batch, unless its size gives the listing the lie.
    fn fetched(&mut self, fetch: Fetch, raw: Vec<u8>) -> Result<(), SyncError> {
        self.fetches_in_flight -= 1;
        let estimated = estimate(&fetch);
        self.requested_bytes = self.requested_bytes.saturating_sub(estimated);
        let size = raw.len() as u64;
        // TOP replies are headers only: nothing to compare them with.
        if fetch.mode == FetchMode::Whole && size != fetch.message.size {
            return Err(SyncError::SizeMismatch {
                uid: fetch.message.uid,
                listed: fetch.message.size,
                received: size,
            });
        }
        self.progress.bytes_done = self.progress.bytes_done.saturating_add(size);
        if fetch.mode == FetchMode::HeadersOnly {
            self.progress.bytes_total = self.progress.bytes_total.saturating_add(size);
        }
        // Whatever the listing said, the bytes held are at least the bytes received.
        self.pending_bytes = self.pending_bytes.saturating_add(size.max(estimated));
        self.pending.push(Fetched {
            uid: fetch.message.uid,
            size: fetch.message.size,
            mode: fetch.mode,
            raw,
        });
        self.events.push_back(SyncEvent::Progress(self.progress));
        Ok(())
    }

    /// Hands over a full (or final) batch, requests more, and quits when everything is done.
    fn advance(&mut self) {
        if self.phase != Phase::Fetching {
            return;
        }
        let all_requested = self.next_fetch == self.plan.fetch.len();
        let last = all_requested && self.fetches_in_flight == 0;
        // A full window is handed over too: only a commit can make room in it.
        let window_full =
            self.pending_bytes.saturating_add(self.uncommitted_bytes) >= self.config.window_bytes;
        let batch_messages = if self.next_batch == 1 {
            self.config
                .first_batch_messages
                .min(self.config.batch_messages)
        } else {
            self.config.batch_messages
        };
        if !self.pending.is_empty()
            && (last
                || window_full
                || self.pending.len() >= batch_messages
                || self.pending_bytes >= self.config.batch_bytes)
        {
            self.flush_batch();
        }
        self.fill_window();
        let all_requested = self.next_fetch == self.plan.fetch.len();
        if all_requested
            && self.fetches_in_flight == 0
            && self.pending.is_empty()
            && self.uncommitted.is_empty()
            && self.deles_in_flight == 0
            && self.outbox.is_empty()
        {
            self.phase = Phase::Quitting;
            self.outbox.push_back((Command::Quit, Expect::Quit));
        }
    }

    fn flush_batch(&mut self) {
        let id = self.next_batch;
        self.next_batch += 1;
        let messages = std::mem::take(&mut self.pending);
        let bytes = std::mem::take(&mut self.pending_bytes);
        // Headers-only messages count as stored but are never deleted.
        let whole = messages
            .iter()
            .filter(|m| m.mode == FetchMode::Whole)
            .filter_map(|m| self.msg_of.get(&m.uid).copied())
            .collect();
        self.uncommitted.insert(
            id,
            Uncommitted {
                count: messages.len(),
                whole,
                bytes,
            },
        );
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_add(bytes);
        self.events.push_back(SyncEvent::Store(Batch {
            id,
            messages,
            durable: self.config.plan.policy != ServerPolicy::LeaveOnServer,
        }));
    }

    fn fill_window(&mut self) {
        while self.next_fetch < self.plan.fetch.len() {
            // Sizes come from the server: never trust them not to overflow.
            let held = self
                .requested_bytes
                .saturating_add(self.pending_bytes)
                .saturating_add(self.uncommitted_bytes);
            let nothing_moving = self.fetches_in_flight == 0 && self.uncommitted.is_empty();
            if held >= self.config.window_bytes && !nothing_moving {
                break;
            }
            // Listed sizes may be lies (0 octets each): the count is capped too.
            if self.fetches_in_flight >= self.config.max_fetches_in_flight.max(1) {
                break;
            }
            let fetch = self.plan.fetch[self.next_fetch].clone();
            self.next_fetch += 1;
            self.fetches_in_flight += 1;
            self.requested_bytes = self.requested_bytes.saturating_add(estimate(&fetch));
            let command = match fetch.mode {
                FetchMode::Whole => Command::Retr(fetch.message.msg),
                FetchMode::HeadersOnly => Command::Top {
                    msg: fetch.message.msg,
                    lines: 0,
                },
            };
            self.outbox.push_back((command, Expect::Fetch(fetch)));
        }
    }
}

/// Bytes a fetch is expected to bring.
fn estimate(fetch: &Fetch) -> u64 {
    match fetch.mode {
        FetchMode::Whole => fetch.message.size,
        FetchMode::HeadersOnly => HEADERS_ESTIMATE,
    }
}

/// A batch handed to the store and not yet committed.
#[derive(Debug)]
struct Uncommitted {
    /// Messages in it.
    count: usize,
    /// Numbers of the whole messages (the ones a policy may delete once committed).
    whole: Vec<u32>,
    /// Their bytes.
    bytes: u64,
}

#[cfg(test)]
mod tests;
