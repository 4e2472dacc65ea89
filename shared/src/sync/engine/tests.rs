//! The engine against a scripted in-memory server: ordering, batching, the memory window and
//! deletion safety. (Real servers: `shared/tests/sync_dovecot.rs`.)

use std::collections::{HashMap, HashSet};

use super::*;
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
    /// Most bytes ever held by the engine at once (pending + uncommitted + requested).
    batches: usize,
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

/// Runs the engine against `server` and `store`. `cut_after` drops the connection after that
/// many replies (no QUIT). Returns the events.
fn run(
    engine: &mut Engine,
    server: &mut Server,
    store: &mut Store,
    cut_after: Option<usize>,
) -> Vec<SyncEvent> {
    let mut events = Vec::new();
    let mut in_flight = std::collections::VecDeque::new();
    let mut replies = 0;
    loop {
        while let Some(command) = engine.poll_command() {
            in_flight.push_back(command);
        }
        while let Some(event) = engine.poll_event() {
            if let SyncEvent::Store(batch) = &event {
                if store.fail_batch == Some(batch.id) {
                    engine.store_failed(batch.id, StoreFault::Full);
                } else {
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
                    engine.committed(batch.id);
                }
            }
            events.push(event);
        }
        // Commits may have released DELEs, more fetches or QUIT.
        while let Some(command) = engine.poll_command() {
            in_flight.push_back(command);
        }
        if engine.is_over() {
            return events;
        }
        if cut_after == Some(replies) {
            return events;
        }
        let Some(command) = in_flight.pop_front() else {
            panic!("engine stalled: nothing to send and not over");
        };
        replies += 1;
        engine.handle_reply(server.answer(command));
    }
}

/// A whole sync with `policy` (no cut); its events.
fn sync(policy: ServerPolicy, server: &mut Server, store: &mut Store) -> Vec<SyncEvent> {
    let mut engine = Engine::new(config(policy), store.known());
    run(&mut engine, server, store, None)
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
    let mut store = Store::default();
    let mut engine = Engine::new(config(ServerPolicy::LeaveOnServer), store.known());
    // Drive by hand, checking the engine's own accounting after every step.
    let mut queue = std::collections::VecDeque::new();
    let mut peak = 0;
    loop {
        while let Some(c) = engine.poll_command() {
            queue.push_back(c);
        }
        while let Some(event) = engine.poll_event() {
            if let SyncEvent::Store(batch) = event {
                for m in batch.messages {
                    store.mail.insert(m.uid, (KnownState::Stored, m.raw));
                }
                engine.committed(batch.id);
            }
        }
        while let Some(c) = engine.poll_command() {
            queue.push_back(c);
        }
        let held = engine.requested_bytes + engine.pending_bytes + engine.uncommitted_bytes;
        peak = peak.max(held);
        if engine.is_over() {
            break;
        }
        let c = queue.pop_front().unwrap();
        engine.handle_reply(server.answer(c));
    }
    let largest = server
        .messages
        .iter()
        .map(|m| m.1.len() as u64)
        .max()
        .unwrap();
    assert!(peak <= 2_000 + largest, "peak {peak}");
    assert_eq!(store.mail.len(), 30);
}

#[test]
fn delete_after_download_deletes_only_committed_messages_and_only_at_quit() {
    let mut server = Server::new(10);
    let mut store = Store::default();
    // Cut the connection part-way: some batches are committed and their DELEs sent, but no QUIT.
    let events = run(
        &mut Engine::new(config(ServerPolicy::DeleteAfterDownload), store.known()),
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
    let events = run(
        &mut Engine::new(cfg, store.known()),
        &mut server,
        &mut store,
        None,
    );
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
    let _ = run(&mut engine, &mut server, &mut store, Some(6));
    engine.cancel();
    assert!(engine.is_over());
    assert_eq!(engine.poll_command(), None);
    assert!(matches!(
        engine.poll_event(),
        Some(SyncEvent::Failed(SyncError::Cancelled))
    ));
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
        let mut engine = Engine::new(config(ServerPolicy::DeleteAfterDownload), store.known());
        let events = run(&mut engine, &mut server, &mut store, None);
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
