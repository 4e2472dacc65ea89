//! The engine against a scripted in-memory server: ordering, batching, the memory window and
//! deletion safety. (Real servers: `shared/tests/sync_dovecot.rs`.)

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use rustls::pki_types::UnixTime;

use super::*;
use crate::connection::{Connection, ConnectionError, Transport};
use crate::session::{Security, SessionConfig};
use crate::sync::host;
use crate::sync::plan::{KnownState, ServerPolicy};

/// A POP3 mailbox that answers commands; deletions take effect only at QUIT.
struct Server {
    messages: Vec<(String, Vec<u8>)>,
    marked: HashSet<u32>,
    refuse_retr: HashSet<u32>,
    uidl: bool,
    /// Lists every message at this size instead of its own.
    list_size: Option<u64>,
    /// Appends these bytes to every RETR reply (the listing does not count them).
    retr_extra: Vec<u8>,
    /// Answers UIDL (or QUIT) with this instead.
    uidl_error: Option<ServerError>,
    quit_error: Option<ServerError>,
}

impl Server {
    fn new(n: usize) -> Self {
        Self {
            messages: (0..n)
                .map(|i| {
                    (
                        format!("uid-{i}"),
                        format!("Subject: {i}\r\n\r\n{}\r\n", "x".repeat(i * 100)).into_bytes(),
                    )
                })
                .collect(),
            marked: HashSet::new(),
            refuse_retr: HashSet::new(),
            uidl: true,
            list_size: None,
            retr_extra: Vec::new(),
            uidl_error: None,
            quit_error: None,
        }
    }

    fn err(text: &str) -> ServerError {
        ServerError {
            code: None,
            text: text.into(),
            sasl_error: None,
        }
    }

    fn answer(&mut self, command: Command) -> Result<Reply, ServerError> {
        let get = |msg: u32| self.messages.get(msg as usize - 1);
        match command {
            Command::Uidl(None) if self.uidl_error.is_some() => {
                Err(self.uidl_error.clone().unwrap())
            }
            Command::Quit if self.quit_error.is_some() => Err(self.quit_error.clone().unwrap()),
            Command::Uidl(None) if self.uidl => Ok(Reply::Uids(
                (1..=self.messages.len() as u32)
                    .map(|msg| UidEntry {
                        msg,
                        uid: self.messages[msg as usize - 1].0.clone(),
                    })
                    .collect(),
            )),
            Command::Uidl(None) => Err(Self::err("unknown command")),
            Command::Stat => Ok(Reply::Stat(crate::pop3::Stat {
                count: self.messages.len() as u32,
                size: self.messages.iter().map(|m| m.1.len() as u64).sum(),
            })),
            Command::List(None) => Ok(Reply::Listing(
                (1..=self.messages.len() as u32)
                    .map(|msg| ListEntry {
                        msg,
                        size: self
                            .list_size
                            .unwrap_or(self.messages[msg as usize - 1].1.len() as u64),
                    })
                    .collect(),
            )),
            Command::Retr(msg) if self.refuse_retr.contains(&msg) => Err(Self::err("gone")),
            Command::Retr(msg) => {
                let mut raw = get(msg).unwrap().1.clone();
                raw.extend_from_slice(&self.retr_extra);
                Ok(Reply::Message(raw))
            }
            Command::Top { msg, .. } => {
                let raw = &get(msg).unwrap().1;
                let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                Ok(Reply::Message(raw[..end].to_vec()))
            }
            Command::Dele(msg) => {
                assert!(self.marked.insert(msg), "DELE {msg} twice");
                Ok(Reply::Ok {
                    text: String::new(),
                })
            }
            Command::Quit => {
                let marked = std::mem::take(&mut self.marked);
                let mut n = 0;
                self.messages.retain(|_| {
                    n += 1;
                    !marked.contains(&n)
                });
                Ok(Reply::Ok {
                    text: String::new(),
                })
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The store: UIDL -> (state, raw), written a batch at a time.
#[derive(Default)]
struct Store {
    mail: HashMap<String, (KnownState, Vec<u8>)>,
    fail_batch: Option<u64>,
    /// Batches committed.
    batches: usize,
    /// Counts committed bytes out of what the sync holds.
    memory: Option<Rc<RefCell<Memory>>>,
}

impl Store {
    fn known(&self) -> HashMap<String, Known> {
        self.mail
            .iter()
            .map(|(uid, (state, _))| {
                (
                    uid.clone(),
                    Known {
                        first_seen: 0,
                        state: *state,
                    },
                )
            })
            .collect()
    }
}

/// Bytes a sync holds, as the connection and the store see them.
#[derive(Debug, Default)]
struct Memory {
    /// Bytes of `RETR`s sent and not yet answered.
    requested: u64,
    /// Bytes answered and not yet committed.
    received: u64,
    /// Most of both at once.
    peak: u64,
}

impl Memory {
    fn measure(&mut self) {
        self.peak = self.peak.max(self.requested + self.received);
    }
}

/// Why the test store refused a batch.
#[derive(Debug)]
struct QuotaExceeded;

/// The store as the sync host sees it (commits at once; a `RefCell` as the host shares it).
impl host::MailStore for RefCell<&mut Store> {
    type Error = QuotaExceeded;

    async fn known(&self, _: &str) -> Result<HashMap<String, Known>, QuotaExceeded> {
        Ok(self.borrow().known())
    }

    async fn commit(
        &self,
        _: &str,
        batch: &Batch,
        _: &[crate::mime::Summary],
        _: u64,
    ) -> Result<(), QuotaExceeded> {
        let mut store = self.borrow_mut();
        if store.fail_batch == Some(batch.id) {
            return Err(QuotaExceeded);
        }
        for m in &batch.messages {
            let state = match m.mode {
                FetchMode::Whole => KnownState::Stored,
                FetchMode::HeadersOnly => KnownState::HeadersOnly,
            };
            assert!(
                store
                    .mail
                    .insert(m.uid.clone(), (state, m.raw.clone()))
                    .is_none(),
                "stored {} twice",
                m.uid
            );
        }
        store.batches += 1;
        if let Some(memory) = &store.memory {
            let mut memory = memory.borrow_mut();
            let bytes: u64 = batch.messages.iter().map(|m| m.raw.len() as u64).sum();
            memory.received -= bytes;
            memory.measure();
        }
        Ok(())
    }

    async fn space(&self) -> Option<u64> {
        None
    }

    async fn store_whole(
        &self,
        _: &str,
        _: &str,
        _: &[u8],
        _: &crate::mime::Summary,
        _: bool,
    ) -> Result<(), QuotaExceeded> {
        unreachable!("a sync stores no whole message on demand")
    }

    fn fault(&self, _: &QuotaExceeded) -> StoreFault {
        StoreFault::Full
    }
}

/// What the scripted server owes the client, in order.
enum Due {
    /// The greeting, before any command.
    Greeting,
    /// `CAPA`'s reply, during start-up.
    Capa,
    /// The reply to one of the host's commands.
    Reply(Command),
}

/// The scripted server as a transport: it reads the command lines the session writes and
/// answers each, in order, when the session reads (one reply a read). After `cut_after` replies
/// to the host's commands, the stream ends (the server hung up; no QUIT).
struct Scripted<'a> {
    server: &'a mut Server,
    due: VecDeque<Due>,
    /// The start of a command line not yet complete.
    partial: Vec<u8>,
    /// The reply handed out last.
    out: Vec<u8>,
    replies: usize,
    cut_after: Option<usize>,
    /// Every command the host sent.
    sent: Rc<RefCell<Vec<Command>>>,
    /// Counts what is requested and received.
    memory: Option<Rc<RefCell<Memory>>>,
}

impl Scripted<'_> {
    /// The command on `line` (without CRLF), as this test's host sends them.
    fn parse(line: &str) -> Due {
        let words: Vec<&str> = line.split(' ').collect();
        let n = |i: usize| words[i].parse::<u32>().unwrap();
        Due::Reply(match words[0] {
            "CAPA" => return Due::Capa,
            "STAT" => Command::Stat,
            "UIDL" if words.len() == 1 => Command::Uidl(None),
            "LIST" if words.len() == 1 => Command::List(None),
            "RETR" => Command::Retr(n(1)),
            "TOP" => Command::Top {
                msg: n(1),
                lines: n(2),
            },
            "DELE" => Command::Dele(n(1)),
            "QUIT" => Command::Quit,
            _ => panic!("unexpected command {line:?}"),
        })
    }

    /// `answer` on the wire.
    fn encode(answer: Result<Reply, ServerError>) -> Vec<u8> {
        let reply = match answer {
            Ok(reply) => reply,
            Err(error) => {
                let code = match error.code {
                    None => String::new(),
                    Some(crate::pop3::RespCode::InUse) => "[IN-USE] ".into(),
                    Some(other) => panic!("no wire form here for {other:?}"),
                };
                return format!("-ERR {code}{}\r\n", error.text).into_bytes();
            }
        };
        let lines = |lines: Vec<String>| {
            let mut out = b"+OK\r\n".to_vec();
            for line in lines {
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
            out
        };
        match reply {
            Reply::Ok { text } => format!("+OK {text}\r\n").into_bytes(),
            Reply::Stat(stat) => format!("+OK {} {}\r\n", stat.count, stat.size).into_bytes(),
            Reply::Uids(uids) => lines(
                uids.iter()
                    .map(|u| format!("{} {}", u.msg, u.uid))
                    .collect(),
            ),
            Reply::Listing(list) => lines(
                list.iter()
                    .map(|e| format!("{} {}", e.msg, e.size))
                    .collect(),
            ),
            Reply::Message(raw) => {
                let mut out = b"+OK\r\n".to_vec();
                crate::pop3::server_side::dot_stuff(&mut out, &raw);
                out
            }
            other => panic!("no wire form here for {other:?}"),
        }
    }
}

impl Transport for Scripted<'_> {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.partial.drain(..end + 2).collect();
            let due = Self::parse(std::str::from_utf8(&line[..end]).unwrap());
            if let Due::Reply(command) = &due {
                self.sent.borrow_mut().push(command.clone());
                if let (Some(memory), Command::Retr(msg)) = (&self.memory, command) {
                    let mut memory = memory.borrow_mut();
                    memory.requested += self.server.messages[*msg as usize - 1].1.len() as u64;
                    memory.measure();
                }
            }
            self.due.push_back(due);
        }
        Ok(())
    }

    async fn recv(&mut self) -> Result<Option<&[u8]>, ConnectionError> {
        if self.cut_after == Some(self.replies) {
            return Ok(None);
        }
        self.out = match self
            .due
            .pop_front()
            .expect("the host read with no reply due")
        {
            Due::Greeting => b"+OK scripted\r\n".to_vec(),
            Due::Capa => b"+OK\r\nUIDL\r\nTOP\r\nPIPELINING\r\n.\r\n".to_vec(),
            Due::Reply(command) => {
                self.replies += 1;
                if let (Some(memory), Command::Retr(msg)) = (&self.memory, &command) {
                    let mut memory = memory.borrow_mut();
                    let bytes = self.server.messages[*msg as usize - 1].1.len() as u64;
                    memory.requested -= bytes;
                    memory.received += bytes;
                    memory.measure();
                }
                Self::encode(self.server.answer(command))
            }
        };
        Ok(Some(&self.out))
    }
}

/// Runs `future` to its end; the scripted server and the store never wait, so neither does it.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the sync host waited with nothing to wait for"),
    }
}

/// Runs one sync with `config` through the sync host ([`host::run`], the loop the page runs)
/// against `server` and `store`. `cut_after` ends the stream after that many replies (no
/// QUIT); `cancel_after` cancels the sync once that many events were seen. Returns the events
/// and the commands sent.
fn run_host(
    config: EngineConfig,
    server: &mut Server,
    store: &mut Store,
    cut_after: Option<usize>,
    cancel_after: Option<usize>,
) -> (Vec<SyncEvent>, Vec<Command>) {
    run_scripted(config, server, store, cut_after, cancel_after, None)
}

/// [`run_host`] to the end, counting what the sync holds in `memory`.
fn run_host_measured(
    config: EngineConfig,
    server: &mut Server,
    store: &mut Store,
    memory: Option<Rc<RefCell<Memory>>>,
) -> (Vec<SyncEvent>, Vec<Command>) {
    run_scripted(config, server, store, None, None, memory)
}

fn run_scripted(
    config: EngineConfig,
    server: &mut Server,
    store: &mut Store,
    cut_after: Option<usize>,
    cancel_after: Option<usize>,
    memory: Option<Rc<RefCell<Memory>>>,
) -> (Vec<SyncEvent>, Vec<Command>) {
    let sent = Rc::new(RefCell::new(Vec::new()));
    let scripted = Scripted {
        server,
        due: VecDeque::from([Due::Greeting]),
        partial: Vec::new(),
        out: Vec::new(),
        replies: 0,
        cut_after,
        sent: Rc::clone(&sent),
        memory,
    };
    // Plain POP3, as if logged in: the host gets the connection after the login.
    let session = SessionConfig::new("localhost", Security::InsecurePlaintextLoopbackOnly);
    let start = Connection::start_with_stall_limit(scripted, session, UnixTime::now(), None);
    let conn = block_on(start).expect("the scripted server greets");
    let store = RefCell::new(store);
    let cancel = host::Cancel::new();
    let mut events = Vec::new();
    let _ = block_on(host::run(conn, &store, "a", config, &cancel, async |e| {
        events.push(e.clone());
        if cancel_after == Some(events.len()) {
            cancel.cancel();
        }
    }));
    let sent = sent.borrow().clone();
    (events, sent)
}

/// Runs one sync with `config`; its events.
fn run(
    config: EngineConfig,
    server: &mut Server,
    store: &mut Store,
    cut_after: Option<usize>,
) -> Vec<SyncEvent> {
    run_host(config, server, store, cut_after, None).0
}

/// A whole sync with `policy` (no cut); its events.
fn sync(policy: ServerPolicy, server: &mut Server, store: &mut Store) -> Vec<SyncEvent> {
    run(config(policy), server, store, None)
}

fn config(policy: ServerPolicy) -> EngineConfig {
    EngineConfig {
        plan: PlanOptions {
            policy,
            ..PlanOptions::default()
        },
        window_bytes: 2_000,
        max_fetches_in_flight: 32,
        batch_messages: 3,
        first_batch_messages: 3,
        batch_bytes: 1_000,
        now: 1_800_000_000,
    }
}

fn finished(events: &[SyncEvent]) -> Option<Report> {
    events.iter().find_map(|e| match e {
        SyncEvent::Finished(r) => Some(*r),
        _ => None,
    })
}

#[test]
fn a_full_sync_stores_everything_in_batches_then_a_second_fetches_nothing() {
    let mut server = Server::new(20);
    let mut store = Store::default();
    let events = sync(ServerPolicy::LeaveOnServer, &mut server, &mut store);
    assert_eq!(
        finished(&events),
        Some(Report {
            stored: 20,
            deleted: 0,
            skipped: 0
        })
    );
    assert_eq!(store.mail.len(), 20);
    for (uid, raw) in &server.messages {
        assert_eq!(&store.mail[uid].1, raw);
    }
    assert!(store.batches >= 7, "{} batches", store.batches);
    let last = events.iter().rev().find_map(|e| match e {
        SyncEvent::Progress(p) => Some(*p),
        _ => None,
    });
    assert_eq!(
        last.map(|p| (p.messages_done, p.messages_total)),
        Some((20, 20))
    );

    let again = sync(ServerPolicy::LeaveOnServer, &mut server, &mut store);
    assert_eq!(finished(&again), Some(Report::default()));
    assert_eq!(server.messages.len(), 20);
}

#[test]
fn memory_stays_within_the_window() {
    let mut server = Server::new(30);
    let largest = server
        .messages
        .iter()
        .map(|m| m.1.len() as u64)
        .max()
        .unwrap();
    let mut store = Store::default();
    // Measured from outside the engine, after every step of the host: bytes requested and not
    // yet answered, plus bytes answered and not yet committed.
    let memory = Rc::new(RefCell::new(Memory::default()));
    store.memory = Some(Rc::clone(&memory));
    let cfg = config(ServerPolicy::LeaveOnServer);
    let (events, _) = run_host_measured(cfg, &mut server, &mut store, Some(Rc::clone(&memory)));
    assert!(finished(&events).is_some(), "{:?}", events.last());
    let memory = memory.borrow();
    assert!(memory.peak <= 2_000 + largest, "peak {}", memory.peak);
    assert!(memory.peak > 0);
    assert_eq!((memory.requested, memory.received), (0, 0));
    assert_eq!(store.mail.len(), 30);
}

#[test]
fn delete_after_download_deletes_only_committed_messages_and_only_at_quit() {
    let mut server = Server::new(10);
    let mut store = Store::default();
    // Cut the connection part-way: some batches are committed and their DELEs sent, but no QUIT.
    let events = run(
        config(ServerPolicy::DeleteAfterDownload),
        &mut server,
        &mut store,
        Some(12),
    );
    assert_eq!(finished(&events), None);
    assert!(
        !store.mail.is_empty() && store.mail.len() < 10,
        "{}",
        store.mail.len()
    );
    assert_eq!(server.messages.len(), 10, "nothing deleted without QUIT");
    server.marked.clear(); // the session ended: marks are dropped

    // The rerun stores the rest (no duplicates: the store asserts it) and deletes everything.
    let events = sync(ServerPolicy::DeleteAfterDownload, &mut server, &mut store);
    let report = finished(&events).unwrap();
    assert_eq!(store.mail.len(), 10);
    assert_eq!(report.deleted, 10);
    assert!(server.messages.is_empty());
}

#[test]
fn a_store_failure_stops_the_sync_and_deletes_nothing() {
    let mut server = Server::new(10);
    let mut store = Store {
        fail_batch: Some(2),
        ..Store::default()
    };
    let events = sync(ServerPolicy::DeleteAfterDownload, &mut server, &mut store);
    assert!(
        matches!(events.last(), Some(SyncEvent::Failed(SyncError::Store(_)))),
        "{:?}",
        events.last()
    );
    assert_eq!(server.messages.len(), 10);
    // The first batch was committed and its DELEs may have been sent, but without QUIT the
    // server keeps them.
    server.marked.clear();
    store.fail_batch = None;
    let events = sync(ServerPolicy::LeaveOnServer, &mut server, &mut store);
    assert!(finished(&events).is_some());
    assert_eq!(store.mail.len(), 10);
}

#[test]
fn refused_messages_are_skipped_and_fetched_next_time() {
    let mut server = Server::new(5);
    server.refuse_retr.insert(2);
    let mut store = Store::default();
    let events = sync(ServerPolicy::LeaveOnServer, &mut server, &mut store);
    assert_eq!(
        finished(&events),
        Some(Report {
            stored: 4,
            deleted: 0,
            skipped: 1
        })
    );
    server.refuse_retr.clear();
    let events = sync(ServerPolicy::LeaveOnServer, &mut server, &mut store);
    assert_eq!(finished(&events).unwrap().stored, 1);
}

#[test]
fn no_uidl_is_a_clear_failure() {
    let mut server = Server::new(3);
    server.uidl = false;
    let mut store = Store::default();
    let events = sync(ServerPolicy::LeaveOnServer, &mut server, &mut store);
    assert_eq!(
        events.last(),
        Some(&SyncEvent::Failed(SyncError::Plan(PlanError::NoUidl)))
    );
    assert!(store.mail.is_empty());
}

/// Bug: a server with UIDL that answered `-ERR [IN-USE]` to it was reported as "no UIDL
/// support", and the code that says "retry later" was lost.
#[test]
fn uidl_refused_with_a_response_code_is_a_refusal_not_missing_uidl() {
    let mut server = Server::new(3);
    let busy = ServerError {
        code: Some(crate::pop3::RespCode::InUse),
        text: "mailbox busy".into(),
        sasl_error: None,
    };
    server.uidl_error = Some(busy.clone());
    let mut store = Store::default();
    let events = sync(ServerPolicy::LeaveOnServer, &mut server, &mut store);
    assert_eq!(
        events.last(),
        Some(&SyncEvent::Failed(SyncError::Refused {
            command: "UIDL",
            error: busy
        }))
    );
    assert!(store.mail.is_empty());
}

/// Bug: a `-ERR` to QUIT was reported as "the server refused to list messages".
#[test]
fn a_refused_quit_is_reported_as_a_refused_quit() {
    let mut server = Server::new(3);
    server.quit_error = Some(Server::err("cannot commit"));
    let mut store = Store::default();
    let events = sync(ServerPolicy::DeleteAfterDownload, &mut server, &mut store);
    match events.last() {
        Some(SyncEvent::Failed(
            e @ SyncError::Refused {
                command: "QUIT", ..
            },
        )) => {
            assert_eq!(e.to_string(), "the server refused QUIT: cannot commit");
        }
        other => panic!("{other:?}"),
    }
    // Stored before the failure, and nothing deleted: the server applies DELE only at QUIT.
    assert_eq!(store.mail.len(), 3);
    assert_eq!(server.messages.len(), 3);
}

#[test]
fn large_messages_are_stored_headers_first_and_never_deleted() {
    let mut server = Server::new(12);
    let mut store = Store::default();
    let mut cfg = config(ServerPolicy::DeleteAfterDownload);
    cfg.plan.large_message = 500; // messages 5.. are "large"
    let events = run(cfg, &mut server, &mut store, None);
    let report = finished(&events).unwrap();
    let headers_only = store
        .mail
        .values()
        .filter(|(s, _)| *s == KnownState::HeadersOnly)
        .count();
    assert!(headers_only >= 6, "{headers_only}");
    assert_eq!(report.deleted, 12 - headers_only);
    assert_eq!(server.messages.len(), headers_only);
    for (state, raw) in store.mail.values() {
        if *state == KnownState::HeadersOnly {
            assert!(raw.ends_with(b"\r\n\r\n"));
        }
    }
}

#[test]
fn cancel_stops_without_quit() {
    let mut server = Server::new(8);
    let mut store = Store::default();
    let mut engine = Engine::new(config(ServerPolicy::DeleteAfterDownload), store.known());
    engine.cancel();
    assert!(engine.is_over());
    assert_eq!(engine.poll_command(), None);
    assert!(matches!(
        engine.poll_event(),
        Some(SyncEvent::Failed(SyncError::Cancelled))
    ));
    // Through the host, part-way through the sync: nothing is sent after the cancel, no QUIT.
    let cfg = config(ServerPolicy::DeleteAfterDownload);
    let (events, sent) = run_host(cfg, &mut server, &mut store, None, Some(6));
    assert_eq!(
        events.last(),
        Some(&SyncEvent::Failed(SyncError::Cancelled)),
        "{events:?}"
    );
    assert!(!sent.contains(&Command::Quit), "{sent:?}");
    assert_eq!(server.messages.len(), 8);
}

#[test]
fn a_batch_that_a_policy_may_delete_is_written_durably() {
    // bug: commits used IndexedDB's relaxed durability; with "remove after download" DELE
    // followed within milliseconds, so a crash could lose the only copy.
    let durability = |policy| {
        let mut server = Server::new(5);
        let mut store = Store::default();
        let events = sync(policy, &mut server, &mut store);
        let flags: Vec<bool> = events
            .iter()
            .filter_map(|e| match e {
                SyncEvent::Store(b) => Some(b.durable),
                _ => None,
            })
            .collect();
        assert!(!flags.is_empty());
        flags
    };
    assert!(durability(ServerPolicy::LeaveOnServer).iter().all(|d| !d));
    for policy in [
        ServerPolicy::DeleteAfterDownload,
        ServerPolicy::DeleteAfterDays(0),
        ServerPolicy::DeleteWhenDeletedLocally,
    ] {
        assert!(durability(policy).iter().all(|d| *d), "{policy:?}");
    }
}

/// Lists and answers the listing commands; returns the commands sent after it.
fn listed(engine: &mut Engine, server: &mut Server) -> Vec<Command> {
    for _ in 0..3 {
        let command = engine.poll_command().expect("a listing command");
        engine.handle_reply(server.answer(command));
    }
    std::iter::from_fn(|| engine.poll_command()).collect()
}

/// Security review: a server listing every message at 0 octets got every RETR queued at once.
#[test]
fn a_zero_octet_listing_never_has_more_retrs_in_flight_than_the_count_cap() {
    let mut server = Server::new(200);
    server.list_size = Some(0);
    let config = EngineConfig {
        max_fetches_in_flight: 32,
        window_bytes: 1 << 30,
        ..config(ServerPolicy::LeaveOnServer)
    };
    let mut engine = Engine::new(config, HashMap::new());
    let sent = listed(&mut engine, &mut server);
    let retrs = sent
        .iter()
        .filter(|c| matches!(c, Command::Retr(_)))
        .count();
    assert_eq!(retrs, 32);
    assert_eq!(engine.fetches_in_flight, 32);
}

/// Security review: a RETR reply that is not the listed size is a split or forged reply; it
/// must not be stored, nothing after it either, and nothing may be deleted.
#[test]
fn a_retr_that_does_not_match_its_listing_stops_the_sync_stores_nothing_after_it_and_deletes_nothing(
) {
    for lie in [Some(0), None] {
        let mut server = Server::new(10);
        server.list_size = lie;
        if lie.is_none() {
            server.retr_extra = b"+OK\r\nFrom: bank\r\n\r\nforged\r\n".to_vec();
        }
        let mut store = Store::default();
        let events = run(
            config(ServerPolicy::DeleteAfterDownload),
            &mut server,
            &mut store,
            None,
        );
        let failed = events.iter().find_map(|e| match e {
            SyncEvent::Failed(e) => Some(e.clone()),
            _ => None,
        });
        let Some(SyncError::SizeMismatch {
            uid,
            listed,
            received,
        }) = failed
        else {
            panic!("expected a size mismatch, got {failed:?}");
        };
        // Newest first: message 10 is the first fetched.
        assert_eq!(uid, "uid-9");
        assert_ne!(listed, received);
        assert!(failed_text(&events).contains("does not match its listing"));
        assert!(store.mail.is_empty(), "stored {:?}", store.mail.keys());
        assert!(server.marked.is_empty());
        assert!(!events.iter().any(|e| matches!(e, SyncEvent::Store(_))));
        assert_eq!(server.messages.len(), 10);
    }
}

fn failed_text(events: &[SyncEvent]) -> String {
    events
        .iter()
        .find_map(|e| match e {
            SyncEvent::Failed(e) => Some(e.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A reply larger than expected (here a TOP reply far beyond the headers estimate) counts at
/// its received size, and once the received, uncommitted bytes fill the window the engine tells
/// the host to stop reading until a commit.
#[test]
fn a_message_bigger_than_listed_counts_at_its_received_size_and_a_full_window_stops_reading() {
    let mut server = Server::new(3);
    // Headers of 100 KB each: far more than the 8 KiB a TOP is estimated at.
    for (_, raw) in &mut server.messages {
        let mut big = format!("X-Big: {}\r\n", "h".repeat(100_000)).into_bytes();
        big.extend_from_slice(raw);
        *raw = big;
    }
    let config = EngineConfig {
        plan: PlanOptions {
            large_message: 1,
            ..PlanOptions::default()
        },
        window_bytes: 150_000,
        max_fetches_in_flight: 32,
        batch_messages: 100,
        first_batch_messages: 100,
        batch_bytes: 1 << 30,
        now: 0,
    };
    let mut engine = Engine::new(config, HashMap::new());
    let mut sent: std::collections::VecDeque<Command> = listed(&mut engine, &mut server).into();
    assert!(engine.wants_input());
    let first = sent.pop_front().unwrap();
    assert!(matches!(first, Command::Top { .. }));
    engine.handle_reply(server.answer(first));
    assert!(engine.pending_bytes > 100_000, "{}", engine.pending_bytes);
    assert!(engine.wants_input(), "below the window");
    let second = sent.pop_front().unwrap();
    engine.handle_reply(server.answer(second));
    assert!(!engine.wants_input(), "the window is full: stop reading");
    let batch = std::iter::from_fn(|| engine.poll_event())
        .find_map(|e| match e {
            SyncEvent::Store(b) => Some(b),
            _ => None,
        })
        .expect("a full window hands its messages to the store");
    assert_eq!(batch.messages.len(), 2);
    assert!(engine.uncommitted_bytes > 200_000);
    engine.committed(batch.id);
    assert!(engine.wants_input(), "committed: read again");
}

#[test]
fn no_input_is_wanted_after_the_sync_ended() {
    let mut server = Server::new(3);
    let mut engine = Engine::new(config(ServerPolicy::LeaveOnServer), HashMap::new());
    let _ = listed(&mut engine, &mut server);
    assert!(engine.wants_input());
    engine.cancel();
    assert!(!engine.wants_input());
}

/// Security review: replies parsed after a mismatched one (here the rest of one pipelined read)
/// must never reach a batch; batches handed over before it hold only earlier messages.
#[test]
fn nothing_read_after_a_reply_that_does_not_match_its_listing_is_committed() {
    let mut server = Server::new(10);
    let config = EngineConfig {
        batch_messages: 2,
        window_bytes: 1 << 30,
        batch_bytes: 1 << 30,
        ..config(ServerPolicy::DeleteAfterDownload)
    };
    let mut engine = Engine::new(config, HashMap::new());
    let sent = listed(&mut engine, &mut server);
    assert_eq!(sent.len(), 10, "{sent:?}");
    let mut stored = Vec::new();
    for (i, command) in sent.into_iter().enumerate() {
        let mut reply = server.answer(command);
        // The third reply of the read carries a forged tail.
        if let (2, Ok(Reply::Message(raw))) = (i, &mut reply) {
            raw.extend_from_slice(b"+OK\r\nforged\r\n");
        }
        engine.handle_reply(reply);
        while let Some(event) = engine.poll_event() {
            if let SyncEvent::Store(batch) = event {
                stored.extend(batch.messages.into_iter().map(|m| m.uid));
            }
        }
    }
    // Newest first: uid-9 and uid-8 made a batch before uid-7 failed the sync.
    assert_eq!(stored, ["uid-9", "uid-8"]);
    assert!(engine.is_over());
    assert!(
        std::iter::from_fn(|| engine.poll_command()).all(|c| !matches!(c, Command::Dele(_))),
        "a DELE after the failure"
    );
}

/// A first sync shows mail sooner: its first batch goes to the store at
/// `first_batch_messages`, the others at `batch_messages`.
#[test]
fn the_first_batch_is_handed_over_at_its_own_smaller_size() {
    let mut server = Server::new(12);
    let mut store = Store::default();
    let config = EngineConfig {
        batch_messages: 5,
        first_batch_messages: 2,
        window_bytes: 1 << 30,
        batch_bytes: 1 << 30,
        ..config(ServerPolicy::LeaveOnServer)
    };
    let events = run(config, &mut server, &mut store, None);
    let sizes: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Store(batch) => Some(batch.messages.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [2, 5, 5], "{sizes:?}");
    assert_eq!(store.mail.len(), 12);
}
