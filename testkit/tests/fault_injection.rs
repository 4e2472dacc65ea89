//! Fault injection: a POP3 server under our control ([`FaultyPop3`]) breaks every protocol
//! phase in every way — drop, stall, garbage, `-ERR`, an over-long line — and a whole sync runs
//! into it through a real relay ([`LocalRelay`]), with the TLS+POP3 session over a native
//! WebSocket client (as the page does it) and the sync host the page runs
//! (`webpop_shared::sync::host`); then a clean rerun. The server, the relay, TLS, POP3 and the
//! sync loop are what ships; only the store is the test kit's memory store (IndexedDB in the
//! browser).
//!
//! After both syncs, for every combination: every message the server had is stored exactly
//! once with its exact bytes, and every `DELE` (and every deletion at `QUIT`) reached the server
//! only after the store had committed that message. The faulted sync must end the way the fault
//! should end it — a clear, typed error, or a finished sync where the engine legitimately goes
//! on (a `-ERR` to one `RETR` skips that message; a `-ERR` to `DELE` leaves it on the server) —
//! and a stall must end in the connection's stall timeout (the page's), not a hang.
//!
//! Replies that lie about a message (a bare-LF `.` line and a forged reply spliced into a
//! message, a message longer than its listed size) and a hostile message that would end its own
//! reply at a bare LF run the same way, pipelined and in lock-step.
//!
//! `cargo test -p webpop-testkit --test fault_injection -- --nocapture` prints the matrix and
//! the figures.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::{JoinSet, LocalSet};
use webpop_shared::connection::{Connection, ConnectionError};
use webpop_shared::pop3::{self, AuthMethod};
use webpop_shared::relay::{RelayError, RelayRequest, Target, PATH};
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Security, SessionConfig, SessionError, Trust};
use webpop_shared::sync::host::{self, Cancel};
use webpop_shared::sync::{
    EngineConfig, KnownState, PlanError, PlanOptions, Report, ServerPolicy, SyncError,
};
use webpop_shared::tokio_transport::unix_now;
use webpop_testkit::corpus;
use webpop_testkit::faulty_pop3::{
    bare_lf_split_message, Config, Fault, FaultKind, FaultyPop3, Phase, ReplyOffset, PASSWORD, USER,
};
use webpop_testkit::local_relay::LocalRelay;
use webpop_testkit::memory_store::{MemoryStore, MemoryStoreError};
use webpop_testkit::ws::RelaySocket;

/// Messages in the mailbox: one of each small corpus kind, among them a 234 KB one with a
/// base64 attachment and two with 20 KB lines (437 KB in all).
const MESSAGES: usize = 12;
const SEED: u64 = 0xFA17;
const T0: u64 = 1_800_000_000;
/// The connection's stall limit here (the page's is 90 s), generous for a loaded machine: the
/// shipped stall timer gives up on a stalled sync after this long without bytes.
const STALL_LIMIT: Duration = Duration::from_secs(5);
/// Every sync must end well within this; reaching it means a hang.
const HANG_BOUND: Duration = Duration::from_secs(30);
/// The client's limit on one reply; the server's over-long line (1.5 MiB) is above it, every
/// message below it.
const MAX_REPLY: usize = 1024 * 1024;
/// Combinations run at once.
const PARALLEL: usize = 8;

/// A relay session to `server` (what `frontend/src/net.rs` opens in the page).
async fn open(relay: &LocalRelay, server: &FaultyPop3) -> Result<RelaySocket, ConnectionError> {
    let target = Target::new("127.0.0.1", server.addr().port()).expect("a valid target");
    let url = format!(
        "ws://{}{PATH}?{}",
        relay.addr(),
        RelayRequest::new(target.clone()).to_query()
    );
    RelaySocket::open(&url, target).await
}

// ---- one sync: the shipped host, with the test kit's store in memory ----

/// The store standing in for IndexedDB: as in the page, a batch commits while the next
/// replies are read, and the engine hears of it only then; each message keeps its commit time
/// to check against the server's `DELE` arrivals.
type Store = MemoryStore;

/// Why a sync did not finish.
#[derive(Debug)]
enum Failure {
    Open(ConnectionError),
    Connection(ConnectionError),
    Sync(SyncError),
    /// The host stopped otherwise (the memory store never fails, nor runs out of space, here).
    Host(host::Failure<MemoryStoreError>),
    /// The test gave up: the sync hung.
    Hung(Duration),
}

/// What the page would show (before `state::explain` puts it in words).
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Open(e) => write!(f, "cannot open the relay session: {e}"),
            Failure::Connection(e) => write!(f, "{e}"),
            Failure::Sync(e) => write!(f, "{e}"),
            Failure::Host(e) => write!(f, "{e}"),
            Failure::Hung(bound) => write!(f, "no end within {bound:?}"),
        }
    }
}

impl From<host::Failure<MemoryStoreError>> for Failure {
    fn from(e: host::Failure<MemoryStoreError>) -> Self {
        match e {
            host::Failure::Connection(e) => Failure::Connection(e),
            host::Failure::Sync(e) => Failure::Sync(e),
            other => Failure::Host(other),
        }
    }
}

/// One whole sync through the relay: connect, TLS with the server's certificate pinned, log
/// in, then the sync host the page runs ([`host::run`]), over the connection the page uses.
async fn sync(
    server: &FaultyPop3,
    relay: &LocalRelay,
    store: &Store,
    config: EngineConfig,
) -> Result<Report, Failure> {
    let socket = open(relay, server).await.map_err(Failure::Open)?;
    let session = SessionConfig::new("localhost", Security::ImplicitTls)
        .trust(Trust::default().with_pin(server.fingerprint()))
        .pop3_options(pop3::Options::default().max_reply_size(MAX_REPLY));
    let mut conn =
        Connection::start_with_stall_limit(socket, session, unix_now(), Some(STALL_LIMIT))
            .await
            .map_err(Failure::Connection)?;
    let credentials = Credentials::new(USER, PASSWORD).expect("valid credentials");
    conn.login(credentials, AuthMethod::Auto)
        .await
        .map_err(Failure::Connection)?;
    Ok(host::run(conn, store, USER, config, &Cancel::new(), async |_| {}).await?)
}

/// [`sync`], given up after `bound`.
async fn bounded_sync(
    server: &FaultyPop3,
    relay: &LocalRelay,
    store: &Store,
    config: EngineConfig,
    bound: Duration,
) -> Result<Report, Failure> {
    tokio::time::timeout(bound, sync(server, relay, store, config))
        .await
        .unwrap_or(Err(Failure::Hung(bound)))
}

// ---- how a sync ended ----

/// How a sync ended, in the terms a user would be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Outcome {
    /// Finished: everything stored, deletions done.
    Finished,
    /// Finished, with messages the server refused to send left for the next sync.
    FinishedSkipping,
    /// The connection's stall timeout.
    TimedOut,
    /// No end within the test's bound: always a test failure.
    Hung,
    /// The connection ended before the sync did.
    ConnectionLost,
    /// The server sent something that is not POP3.
    NotPop3,
    /// A line or reply over the client's limits.
    TooLong,
    /// TLS failed (a corrupted record).
    Tls,
    /// `-ERR` greeting.
    GreetingRefused,
    /// `-ERR` to the login.
    LoginRefused,
    /// `-ERR` to `UIDL` (the engine then says the server has no UIDL).
    UidlRefused,
    /// `-ERR` to `QUIT`.
    QuitRefused,
    /// A `RETR` reply not of the listed size.
    SizeMismatch,
    /// Anything else: always a test failure.
    Other,
}

impl Outcome {
    fn short(self) -> &'static str {
        match self {
            Outcome::Finished => "done",
            Outcome::FinishedSkipping => "done+skip",
            Outcome::TimedOut => "timeout",
            Outcome::Hung => "HUNG",
            Outcome::ConnectionLost => "closed",
            Outcome::NotPop3 => "not-pop3",
            Outcome::TooLong => "too-long",
            Outcome::Tls => "tls",
            Outcome::GreetingRefused => "refused",
            Outcome::LoginRefused => "login-err",
            Outcome::UidlRefused => "no-uidl",
            Outcome::QuitRefused => "quit-err",
            Outcome::SizeMismatch => "size",
            Outcome::Other => "OTHER",
        }
    }
}

fn classify(result: &Result<Report, Failure>) -> Outcome {
    use pop3::Error as P;
    match result {
        Ok(report) if report.skipped > 0 => Outcome::FinishedSkipping,
        Ok(_) => Outcome::Finished,
        Err(Failure::Hung(_)) => Outcome::Hung,
        Err(Failure::Connection(ConnectionError::Stalled(_))) => Outcome::TimedOut,
        Err(Failure::Connection(e)) => match e {
            ConnectionError::Closed
            | ConnectionError::Session(SessionError::Pop3(P::ConnectionClosed { .. }))
            | ConnectionError::Relay(RelayError::ServerLost(_)) => Outcome::ConnectionLost,
            ConnectionError::Session(SessionError::Pop3(
                P::NotAReply { .. } | P::Malformed { .. } | P::Unsolicited { .. },
            )) => Outcome::NotPop3,
            ConnectionError::Session(SessionError::Pop3(
                P::LineTooLong { .. } | P::ReplyTooLarge { .. },
            )) => Outcome::TooLong,
            ConnectionError::Session(SessionError::Tls(_)) => Outcome::Tls,
            ConnectionError::Session(SessionError::Refused(_)) => Outcome::GreetingRefused,
            ConnectionError::Rejected { verb: "login", .. } => Outcome::LoginRefused,
            _ => Outcome::Other,
        },
        Err(Failure::Sync(SyncError::Plan(PlanError::NoUidl))) => Outcome::UidlRefused,
        Err(Failure::Sync(SyncError::Refused {
            command: "QUIT", ..
        })) => Outcome::QuitRefused,
        Err(Failure::Sync(SyncError::SizeMismatch { .. })) => Outcome::SizeMismatch,
        Err(_) => Outcome::Other,
    }
}

/// How a sync that meets `kind` at `phase` must end.
fn expected(phase: Phase, kind: FaultKind) -> Outcome {
    let mid_reply = matches!(phase, Phase::Retr { at, .. } if at != ReplyOffset::Start);
    match (kind, phase) {
        // The reply is read whole (a bare LF ends no line in it) and is not the listed size.
        (FaultKind::BareLfSplit | FaultKind::SizeLie, Phase::Retr { .. }) => Outcome::SizeMismatch,
        (FaultKind::BareLfSplit | FaultKind::SizeLie, _) => Outcome::Finished,
        (FaultKind::Stall, _) => Outcome::TimedOut,
        (FaultKind::Drop, _) => Outcome::ConnectionLost,
        // Part-way through a reply, garbage is a corrupted TLS record: only TLS can tell.
        (FaultKind::Garbage, _) if mid_reply => Outcome::Tls,
        (FaultKind::Garbage, _) => Outcome::NotPop3,
        (FaultKind::LongLine, _) => Outcome::TooLong,
        (FaultKind::Err, Phase::Greeting) => Outcome::GreetingRefused,
        (FaultKind::Err, Phase::Auth) => Outcome::LoginRefused,
        (FaultKind::Err, Phase::Uidl) => Outcome::UidlRefused,
        // A refused RETR: the engine goes on and leaves that message for the next sync.
        (
            FaultKind::Err,
            Phase::Retr {
                at: ReplyOffset::Start,
                ..
            },
        ) => Outcome::FinishedSkipping,
        // "+" then "-ERR …": a status line that is neither.
        (
            FaultKind::Err,
            Phase::Retr {
                at: ReplyOffset::AfterFirstByte,
                ..
            },
        ) => Outcome::NotPop3,
        // Inside the body "-ERR …" is just text; then the server hangs up.
        (FaultKind::Err, Phase::Retr { .. }) => Outcome::ConnectionLost,
        // A refused DELE: the message stays on the server; the next sync deletes it.
        (FaultKind::Err, Phase::BeforeDele | Phase::AfterDele) => Outcome::Finished,
        (FaultKind::Err, Phase::BeforeQuit) => Outcome::QuitRefused,
    }
}

/// Whether `outcome` is a right ending for `kind` at `phase`: the expected one, or, for a
/// corrupt TLS record the server sends just before it hangs up, the lost connection: the close
/// can overtake the record on the way (a reset drops what the relay had not yet read), and
/// either way the sync fails cleanly.
fn acceptable(phase: Phase, kind: FaultKind, outcome: Outcome) -> bool {
    let expected = expected(phase, kind);
    outcome == expected
        || (kind == FaultKind::Garbage
            && expected == Outcome::Tls
            && outcome == Outcome::ConnectionLost)
}

// ---- the matrix ----

/// A server policy and what the store holds before the faulted sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Scenario {
    /// Remove right after download, empty store: every phase.
    DeleteAfterDownload,
    /// Leave on server, empty store: every phase a sync that deletes nothing reaches.
    LeaveOnServer,
    /// Remove right after download with the older half already stored, so the sync starts
    /// with `DELE`s of stored mail before its `RETR`s.
    DeleteAfterDownloadHalfStored,
}

impl Scenario {
    const ALL: [Scenario; 3] = [
        Scenario::DeleteAfterDownload,
        Scenario::LeaveOnServer,
        Scenario::DeleteAfterDownloadHalfStored,
    ];

    fn policy(self) -> ServerPolicy {
        match self {
            Scenario::LeaveOnServer => ServerPolicy::LeaveOnServer,
            _ => ServerPolicy::DeleteAfterDownload,
        }
    }

    fn seeded(self) -> usize {
        match self {
            Scenario::DeleteAfterDownloadHalfStored => MESSAGES / 2,
            _ => 0,
        }
    }

    /// The phases to break; `largest_nth` is the `RETR` that fetches the largest message.
    fn phases(self, largest_nth: usize) -> Vec<Phase> {
        match self {
            Scenario::DeleteAfterDownload => Phase::all(&[1, largest_nth]),
            Scenario::LeaveOnServer => Phase::all(&[largest_nth])
                .into_iter()
                .filter(|p| !matches!(p, Phase::BeforeDele | Phase::AfterDele))
                .collect(),
            Scenario::DeleteAfterDownloadHalfStored => vec![
                Phase::BeforeDele,
                Phase::AfterDele,
                Phase::Retr {
                    nth: 1,
                    at: ReplyOffset::Middle,
                },
                Phase::BeforeQuit,
            ],
        }
    }

    fn config(self) -> EngineConfig {
        EngineConfig {
            plan: PlanOptions {
                policy: self.policy(),
                large_message: u64::MAX,
                top: true,
            },
            // A small window and small batches: RETRs go out a few at a time, and DELEs for
            // committed batches interleave with them, so mid-RETR faults come after DELEs.
            window_bytes: 64 * 1024,
            batch_messages: 3,
            now: T0,
            ..EngineConfig::default()
        }
    }
}

fn phase_label(phase: Phase) -> String {
    match phase {
        Phase::Retr { nth, at } => format!("RETR#{nth}@{at:?}"),
        other => format!("{other:?}"),
    }
}

/// What one combination showed.
struct Run {
    scenario: Scenario,
    /// The phase's place in the scenario's list (protocol order).
    order: usize,
    phase: Phase,
    kind: FaultKind,
    outcome: Outcome,
    failure: String,
    /// What the failure says (its `Display`), as a user would read it.
    message: String,
    faults_fired: usize,
    connections: usize,
    /// Messages compared byte for byte with the server's (after the fault and after the rerun).
    compared: usize,
    /// DELEs the server read, each checked against the store's commit time.
    deles_checked: usize,
    /// Messages removed at QUIT, each checked the same way.
    removals_checked: usize,
    /// Whether the faulted session had sent DELEs and then failed (nothing may be deleted).
    deles_then_failed: bool,
    problems: Vec<String>,
}

/// Checks that everything in `store` is a message of `original`, byte for byte, held once.
fn check_store(
    store: &Store,
    original: &BTreeMap<String, Vec<u8>>,
    when: &str,
    problems: &mut Vec<String>,
) -> usize {
    for uid in &store.duplicates() {
        problems.push(format!("{when}: {uid} stored twice"));
    }
    let mut compared = 0;
    let mail = store.mail(USER);
    for (uid, stored) in &mail {
        match original.get(uid) {
            Some(raw) if *raw == stored.raw => compared += 1,
            Some(raw) => problems.push(format!(
                "{when}: {uid} stored with {} bytes that differ from the server's {}",
                stored.raw.len(),
                raw.len()
            )),
            None => problems.push(format!("{when}: {uid} stored but never on the server")),
        }
    }
    let distinct: HashSet<&[u8]> = mail.values().map(|s| s.raw.as_slice()).collect();
    if distinct.len() != mail.len() {
        problems.push(format!("{when}: the same message stored under two UIDLs"));
    }
    compared
}

async fn run_combination(
    mail: Arc<Vec<Vec<u8>>>,
    scenario: Scenario,
    order: usize,
    phase: Phase,
    kind: FaultKind,
) -> Run {
    run_on(mail, scenario, order, phase, kind, true).await
}

/// [`run_combination`] against a server with or without `PIPELINING`.
async fn run_on(
    mail: Arc<Vec<Vec<u8>>>,
    scenario: Scenario,
    order: usize,
    phase: Phase,
    kind: FaultKind,
    pipelining: bool,
) -> Run {
    let server = FaultyPop3::start(Config {
        faults: vec![Fault::once(phase, kind)],
        stall_limit: Duration::from_secs(20),
        pipelining,
        ..Config::new(mail.to_vec())
    })
    .await
    .expect("starting the faulty server");
    let relay = LocalRelay::start(
        "127.0.0.1:0".parse().expect("an address"),
        &[server.addr().port()],
    )
    .await
    .expect("starting the relay");
    let original: BTreeMap<String, Vec<u8>> = server.original().into_iter().collect();
    let store = Store::default();
    for (uid, raw) in original.iter().take(scenario.seeded()) {
        store.put(USER, uid, raw.clone(), KnownState::Stored, T0);
    }
    let config = scenario.config();
    let mut problems = Vec::new();
    let mut compared = 0;

    // The faulted sync.
    let first = bounded_sync(&server, &relay, &store, config, HANG_BOUND).await;
    let outcome = classify(&first);
    let (failure, message) = match &first {
        Ok(report) => (format!("{report:?}"), String::new()),
        Err(e) => (format!("{e:?}"), e.to_string()),
    };
    if !acceptable(phase, kind, outcome) {
        problems.push(format!(
            "the faulted sync ended {outcome:?}, expected {:?}: {failure}",
            expected(phase, kind)
        ));
    }
    compared += check_store(&store, &original, "after the fault", &mut problems);
    let after_fault = server.stats();
    let deles_then_failed = first.is_err() && !after_fault.deles.is_empty();
    if first.is_err() && !after_fault.removed.is_empty() {
        problems.push(format!(
            "a failed session deleted {:?} (no QUIT was answered)",
            server.deleted()
        ));
    }
    let stored_after_fault = store.mail(USER).len();

    // The clean rerun.
    match bounded_sync(&server, &relay, &store, config, HANG_BOUND).await {
        Ok(report) => {
            if report.skipped != 0 {
                problems.push(format!("the rerun skipped {}", report.skipped));
            }
            if report.stored != MESSAGES - stored_after_fault {
                problems.push(format!(
                    "the rerun stored {}, expected {}",
                    report.stored,
                    MESSAGES - stored_after_fault
                ));
            }
        }
        Err(e) => problems.push(format!("the clean rerun failed: {e:?}")),
    }
    compared += check_store(&store, &original, "after the rerun", &mut problems);
    let missing: Vec<&String> = original
        .keys()
        .filter(|u| !store.mail(USER).contains_key(*u))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("never stored: {missing:?}"));
    }

    // Deletion safety: every DELE and every removal came after the store committed.
    let stats = server.stats();
    let mail = store.mail(USER);
    let committed_by = |uid: &str, at: Instant| {
        mail.get(uid)
            .is_some_and(|s| s.known.state == KnownState::Stored && s.committed <= at)
    };
    for dele in &stats.deles {
        if !committed_by(&dele.uid, dele.at) {
            problems.push(format!(
                "DELE for {} (connection {}) before it was stored",
                dele.uid, dele.connection
            ));
        }
    }
    for removed in &stats.removed {
        if !committed_by(&removed.uid, removed.at) {
            problems.push(format!("{} deleted before it was stored", removed.uid));
        }
    }
    let mut deleted = server.deleted();
    deleted.sort();
    let all: Vec<String> = original.keys().cloned().collect();
    match scenario.policy() {
        ServerPolicy::LeaveOnServer => {
            if !stats.deles.is_empty() || !deleted.is_empty() {
                problems.push(format!("leave-on-server deleted {deleted:?}"));
            }
            if server.remaining() != all {
                problems.push(format!("left on the server: {:?}", server.remaining()));
            }
        }
        _ => {
            if deleted != all || !server.remaining().is_empty() {
                problems.push(format!(
                    "after the rerun the server still has {:?} and deleted {deleted:?}",
                    server.remaining()
                ));
            }
        }
    }
    if stats.fired.len() != 1 {
        problems.push(format!("the fault fired {} times", stats.fired.len()));
    }
    Run {
        scenario,
        order,
        phase,
        kind,
        outcome,
        failure,
        message,
        faults_fired: stats.fired.len(),
        connections: stats.connections,
        compared,
        deles_checked: stats.deles.len(),
        removals_checked: stats.removed.len(),
        deles_then_failed,
        problems,
    }
}

fn print_matrix(runs: &[Run]) {
    for scenario in Scenario::ALL {
        println!("\n{scenario:?} (faulted sync's outcome; every rerun finished clean):");
        print!("  {:<24}", "phase \\ fault");
        for kind in FaultKind::ALL {
            print!("{:<11}", format!("{kind:?}"));
        }
        println!();
        let mut phases: Vec<Phase> = Vec::new();
        for run in runs.iter().filter(|r| r.scenario == scenario) {
            if !phases.contains(&run.phase) {
                phases.push(run.phase);
            }
        }
        for phase in phases {
            print!("  {:<24}", phase_label(phase));
            for kind in FaultKind::ALL {
                let cell = runs
                    .iter()
                    .find(|r| r.scenario == scenario && r.phase == phase && r.kind == kind)
                    .map_or("-", |r| r.outcome.short());
                print!("{cell:<11}");
            }
            println!();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_every_pop3_phase_through_the_relay_loses_no_mail_duplicates_none_and_deletes_only_stored_mail(
) {
    let started = Instant::now();
    let mail = Arc::new(corpus::generate(MESSAGES, SEED));
    // Newest first: RETR #n of a full sync fetches message MESSAGES + 1 - n.
    let largest = (0..MESSAGES)
        .max_by_key(|&i| mail[i].len())
        .expect("messages");
    let largest_nth = MESSAGES - largest;
    assert!(
        mail[largest].len() > 20_000,
        "the largest message has only {} bytes",
        mail[largest].len()
    );

    let limit = Arc::new(Semaphore::new(PARALLEL));
    // The sync host is single-threaded, as in the page: the syncs share this thread, while the
    // servers and relays run on the runtime's workers.
    let syncs = LocalSet::new();
    let mut runs = Vec::new();
    syncs
        .run_until(async {
            let mut tasks = JoinSet::new();
            for scenario in Scenario::ALL {
                for (order, phase) in scenario.phases(largest_nth).into_iter().enumerate() {
                    for kind in FaultKind::ALL {
                        let (mail, limit) = (Arc::clone(&mail), Arc::clone(&limit));
                        tasks.spawn_local(async move {
                            let _permit =
                                limit.acquire_owned().await.expect("the semaphore is open");
                            run_combination(mail, scenario, order, phase, kind).await
                        });
                    }
                }
            }
            while let Some(run) = tasks.join_next().await {
                runs.push(run.expect("a combination panicked"));
            }
        })
        .await;
    runs.sort_by_key(|r| {
        let kind = FaultKind::ALL.iter().position(|k| *k == r.kind);
        (r.scenario, r.order, kind)
    });

    println!(
        "mailbox: {MESSAGES} messages, {} bytes; the largest ({} bytes) is RETR #{largest_nth}",
        mail.iter().map(Vec::len).sum::<usize>(),
        mail[largest].len()
    );
    print_matrix(&runs);
    let faults: usize = runs.iter().map(|r| r.faults_fired).sum();
    let compared: usize = runs.iter().map(|r| r.compared).sum();
    let deles: usize = runs.iter().map(|r| r.deles_checked).sum();
    let removals: usize = runs.iter().map(|r| r.removals_checked).sum();
    let connections: usize = runs.iter().map(|r| r.connections).sum();
    let risky = runs.iter().filter(|r| r.deles_then_failed).count();
    let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    for run in &runs {
        *outcomes.entry(run.outcome).or_default() += 1;
    }
    println!(
        "\nfault injection: {} combinations ({} phases of {} scenarios x {} kinds), {} syncs, \
         {connections} connections through the relay",
        runs.len(),
        runs.len() / FaultKind::ALL.len(),
        Scenario::ALL.len(),
        FaultKind::ALL.len(),
        runs.len() * 2,
    );
    println!(
        "faults fired: {faults}; messages verified: {} ({MESSAGES} per combination after the \
         rerun), {compared} byte-for-byte comparisons in all; {deles} DELEs and {removals} \
         deletions at QUIT checked against the store's commit times; {risky} faulted sessions \
         had sent DELEs before failing (nothing deleted)",
        runs.len() * MESSAGES,
    );
    println!(
        "faulted syncs ended: {}",
        outcomes
            .iter()
            .map(|(o, n)| format!("{o:?} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("what each failure says (one example each):");
    let mut said = HashSet::new();
    for run in &runs {
        if !run.message.is_empty() && said.insert(run.outcome) {
            println!("  {:<16} {}", format!("{:?}:", run.outcome), run.message);
        }
    }
    println!("took {:.1} s", started.elapsed().as_secs_f64());

    let failures: Vec<String> = runs
        .iter()
        .flat_map(|r| {
            r.problems.iter().map(move |p| {
                format!(
                    "{:?} / {} / {:?}: {p} [{}]",
                    r.scenario,
                    phase_label(r.phase),
                    r.kind,
                    r.failure
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(faults, runs.len(), "every fault fired exactly once");
    assert!(
        risky > 0,
        "no faulted session had sent DELEs before failing"
    );
}

/// A message the server refuses to send every time (`-ERR` to its `RETR`, not once): each sync
/// finishes, skips it and stores and deletes the rest; it is never stored and never deleted.
#[tokio::test]
async fn a_message_the_server_always_refuses_is_skipped_every_sync_and_never_deleted() {
    let mail = corpus::generate(MESSAGES, SEED);
    let server = FaultyPop3::start(Config {
        faults: vec![Fault {
            phase: Phase::Retr {
                nth: 1,
                at: ReplyOffset::Start,
            },
            kind: FaultKind::Err,
            once: false,
        }],
        ..Config::new(mail)
    })
    .await
    .unwrap();
    let relay = LocalRelay::start("127.0.0.1:0".parse().unwrap(), &[server.addr().port()])
        .await
        .unwrap();
    let config = Scenario::DeleteAfterDownload.config();
    let store = Store::default();
    let refused = webpop_testkit::faulty_pop3::uid(MESSAGES - 1);
    let first = bounded_sync(&server, &relay, &store, config, HANG_BOUND)
        .await
        .unwrap();
    assert_eq!(
        first,
        Report {
            stored: MESSAGES - 1,
            deleted: MESSAGES - 1,
            skipped: 1
        }
    );
    for _ in 0..2 {
        // Only the refused message is left, so it is RETR #1 again.
        let again = bounded_sync(&server, &relay, &store, config, HANG_BOUND)
            .await
            .unwrap();
        assert_eq!(
            again,
            Report {
                stored: 0,
                deleted: 0,
                skipped: 1
            }
        );
    }
    assert_eq!(server.remaining(), std::slice::from_ref(&refused));
    assert!(!store.mail(USER).contains_key(&refused));
    assert_eq!(store.mail(USER).len(), MESSAGES - 1);
    assert_eq!(server.stats().fired.len(), 3);
}

/// Security review: a server that passes bare LFs through let a message end its own reply at
/// `\n.\n` and forge the reply to the next pipelined `RETR`, which was then stored under the
/// next message's UIDL (and that message deleted). Here the server splices the split (and,
/// separately, a line the listing does not count) into one `RETR` reply: the reply is read whole,
/// does not match its listing, and the sync stops with that error; nothing forged or after it is
/// stored, nothing is deleted before it is stored, and a clean rerun stores everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_split_at_a_bare_lf_or_longer_than_listed_is_never_stored_pipelined_or_in_lock_step(
) {
    let mail = Arc::new(corpus::generate(MESSAGES, SEED));
    let mut problems = Vec::new();
    let mut runs = 0;
    for pipelining in [true, false] {
        for kind in FaultKind::IN_RETR {
            for scenario in [
                Scenario::DeleteAfterDownload,
                Scenario::DeleteAfterDownloadHalfStored,
            ] {
                for nth in [1, 4] {
                    let phase = Phase::Retr {
                        nth,
                        at: ReplyOffset::Start,
                    };
                    let run = run_on(Arc::clone(&mail), scenario, 0, phase, kind, pipelining).await;
                    runs += 1;
                    let label =
                        format!("{kind:?} at RETR #{nth}, {scenario:?}, pipelining {pipelining}");
                    if run.outcome != Outcome::SizeMismatch
                        || !run
                            .message
                            .contains("the server's reply does not match its listing")
                    {
                        problems.push(format!("{label}: ended {:?}: {}", run.outcome, run.message));
                    }
                    problems.extend(run.problems.iter().map(|p| format!("{label}: {p}")));
                }
            }
        }
    }
    println!("{runs} syncs with a lying RETR reply, each followed by a clean rerun");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The attack itself, with nothing but the message: its body holds `\n.\n+OK` and a forged
/// message, the server passes its bare LFs through unstuffed and lists its true size. A client
/// that split lines at a bare LF stored the forgery under the next message's UIDL; now every
/// message, the hostile one included, is stored exactly as the server holds it, pipelined and
/// in lock-step, and "remove after download" deletes each only after it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_ends_its_own_reply_at_a_bare_lf_is_stored_whole_and_forges_nothing() {
    let mut mail = corpus::generate(MESSAGES, SEED);
    // In the middle of the mailbox: the next message fetched (newest first) is an older one.
    mail.insert(MESSAGES / 2, bare_lf_split_message());
    for pipelining in [true, false] {
        let server = FaultyPop3::start(Config {
            pipelining,
            bare_lf_passthrough: true,
            ..Config::new(mail.clone())
        })
        .await
        .unwrap();
        let relay = LocalRelay::start("127.0.0.1:0".parse().unwrap(), &[server.addr().port()])
            .await
            .unwrap();
        let store = Store::default();
        let config = Scenario::DeleteAfterDownload.config();
        let report = bounded_sync(&server, &relay, &store, config, HANG_BOUND)
            .await
            .unwrap_or_else(|e| panic!("pipelining {pipelining}: {e}"));
        assert_eq!(report.stored, MESSAGES + 1, "pipelining {pipelining}");
        let original: BTreeMap<String, Vec<u8>> = server.original().into_iter().collect();
        let mut problems = Vec::new();
        assert_eq!(
            check_store(&store, &original, "after the sync", &mut problems),
            MESSAGES + 1
        );
        assert!(problems.is_empty(), "pipelining {pipelining}: {problems:?}");
        let hostile = webpop_testkit::faulty_pop3::uid(MESSAGES / 2);
        for (uid, stored) in &store.mail(USER) {
            let forged = stored.raw.windows(11).any(|w| w == b"forged body");
            assert_eq!(forged, *uid == hostile, "{uid} holds the forged message");
        }
        let stats = server.stats();
        assert_eq!(stats.deles.len(), MESSAGES + 1);
        for dele in &stats.deles {
            assert!(
                store.mail(USER)[&dele.uid].committed <= dele.at,
                "DELE {} before it was stored",
                dele.uid
            );
        }
        assert!(server.remaining().is_empty());
    }
}

/// A server that lists every message at 0 octets: the engine asks for at most its count cap of
/// messages at once (not all of them), and the first reply, not of its listed size, stops the
/// sync; nothing is stored or deleted.
#[tokio::test]
async fn a_zero_octet_listing_gets_at_most_the_count_cap_of_retrs_and_stops_at_the_first_reply() {
    const MANY: usize = 100;
    let server = FaultyPop3::start(Config {
        zero_octet_listing: true,
        ..Config::new(corpus::generate(MANY, SEED))
    })
    .await
    .unwrap();
    let relay = LocalRelay::start("127.0.0.1:0".parse().unwrap(), &[server.addr().port()])
        .await
        .unwrap();
    let store = Store::default();
    let config = EngineConfig {
        max_fetches_in_flight: 16,
        ..Scenario::DeleteAfterDownload.config()
    };
    let result = bounded_sync(&server, &relay, &store, config, HANG_BOUND).await;
    assert_eq!(classify(&result), Outcome::SizeMismatch, "{result:?}");
    // Give the server a moment to read whatever was sent before the connection went.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = server.stats();
    assert!(
        stats.retrs >= 1 && stats.retrs <= 16,
        "{} RETRs",
        stats.retrs
    );
    assert!(store.mail(USER).is_empty());
    assert!(stats.deles.is_empty());
    assert_eq!(server.remaining().len(), MANY);
}
