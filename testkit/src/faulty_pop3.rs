//! A POP3-over-TLS server under the test's control, for fault injection.
//!
//! It serves an in-memory mailbox on 127.0.0.1 with a fresh self-signed certificate (pin its
//! [`FaultyPop3::fingerprint`]) and speaks what webpop uses: CAPA (`TOP UIDL USER PIPELINING
//! RESP-CODES`), USER/PASS, STAT, LIST, UIDL, TOP, RETR, DELE, RSET, NOOP and QUIT, answering
//! commands in order (so pipelining works). Deletions follow RFC 1939: `DELE` only marks a
//! message, the marks are applied when `QUIT` ends a logged-in session, and a session that ends
//! any other way deletes nothing. There is no maildrop lock: each session sees the mailbox as it
//! was when it logged in.
//!
//! A [`Fault`] names a protocol [`Phase`] and a [`FaultKind`]; the server fires it when the
//! phase is reached, instead of (or, for [`Phase::AfterDele`], after) what it would have done.
//! A fault with `once` fires the first time only, so a clean rerun against the same server
//! works. Everything the server did is counted ([`Stats`]): connections, logins, faults fired,
//! every `DELE` with the time it arrived, and every message removed at `QUIT` — so a test can
//! check that nothing was deleted before the client had stored it.
//!
//! Some faults are the server's whole manner rather than one event, and are set in [`Config`]:
//! no `PIPELINING` in CAPA (the client then works in lock-step), every message listed at 0
//! octets ([`Config::zero_octet_listing`]), bare LFs passed through unstuffed
//! ([`Config::bare_lf_passthrough`], with [`bare_lf_split_message`] as the mailbox's hostile
//! message), and a certificate past its dates ([`Config::expired_certificate`]). The
//! certificate can also change while the server runs ([`FaultyPop3::replace_certificate`],
//! [`FaultyPop3::restore_certificate`]): what a client that pinned the first one must stop at.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use webpop_testkit::corpus;
//! use webpop_testkit::faulty_pop3::{Config, Fault, FaultKind, FaultyPop3, Phase, ReplyOffset};
//!
//! let server = FaultyPop3::start(Config {
//!     faults: vec![Fault::once(
//!         Phase::Retr { nth: 2, at: ReplyOffset::Middle },
//!         FaultKind::Drop,
//!     )],
//!     ..Config::new(corpus::generate(12, 1))
//! })
//! .await?;
//! // Connect to server.addr() pinning server.fingerprint(), log in as USER/PASSWORD, sync;
//! // then look at server.stats(), server.remaining() and server.deleted().
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use webpop_shared::pop3::server_side::{
    Answers, ServedMessage, ServerOptions, ServerSession, Step, BYE, LOGGED_IN, WRONG_PASSWORD,
};
use webpop_shared::session::Fingerprint;

/// The account's user name.
pub const USER: &str = "faulty";
/// The account's password.
pub const PASSWORD: &str = "fault-injection-pw";

/// The longest command line read; a longer one ends the session (RFC 2449 allows 255 octets).
const MAX_COMMAND: usize = 1024;
/// A TLS handshake that takes longer than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A session with no command for this long is closed.
const IDLE: Duration = Duration::from_secs(60);
/// What [`FaultKind::Garbage`] sends where a status line is due: not `+OK`, not `-ERR`, not
/// text (a NUL, an escape sequence, bytes that are not UTF-8).
const GARBAGE_LINE: &[u8] = b"\x00\x1b[7m\xff\xfe garbage where a POP3 reply was due \x80\r\n";
/// The `-ERR` line [`FaultKind::Err`] sends.
const ERR_LINE: &[u8] = b"-ERR injected fault\r\n";
/// What [`FaultKind::BareLfSplit`] adds to a message's last line: a bare-LF `.` line, then a
/// forged `+OK` and a forged message, all with bare LFs. A client that ends lines at a bare LF
/// ends the reply at the `.` and takes the rest as the reply to its next `RETR`.
pub const FORGED_AFTER_BARE_LF: &[u8] = b"\n.\n+OK forged\nFrom: bank@example.invalid\n\
Subject: please confirm your password\n\nforged body";
/// The line [`FaultKind::SizeLie`] adds to a message.
const SIZE_LIE_LINE: &[u8] = b"X-Size-Lie: this line is not counted in the listed size\r\n";

/// Where in the protocol a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Instead of the greeting (after the TLS handshake).
    Greeting,
    /// Instead of the reply to `PASS` (the login is not done).
    Auth,
    /// Instead of the reply to `UIDL`.
    Uidl,
    /// In the reply to the `nth` `RETR` of a session (1-based), after `at` of its bytes.
    Retr {
        /// Which `RETR` of the session, counting from 1.
        nth: usize,
        /// How much of the reply goes out before the fault.
        at: ReplyOffset,
    },
    /// Instead of the reply to a `DELE`; the message is not marked.
    BeforeDele,
    /// After a `DELE` marked its message, instead of the `+OK`.
    AfterDele,
    /// Instead of the reply to `QUIT`; no deletion is applied.
    BeforeQuit,
}

impl Phase {
    /// One of each phase, with `RETR` faults at every [`ReplyOffset`] of the `nth` `RETR`.
    pub fn all(retr_nth: &[usize]) -> Vec<Phase> {
        let mut all = vec![Phase::Greeting, Phase::Auth, Phase::Uidl];
        for &nth in retr_nth {
            all.extend(ReplyOffset::ALL.map(|at| Phase::Retr { nth, at }));
        }
        all.extend([Phase::BeforeDele, Phase::AfterDele, Phase::BeforeQuit]);
        all
    }
}

/// A byte offset into a multi-line reply: the `+OK` line, the dot-stuffed body and the final
/// `.` line, as they go on the wire (inside TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyOffset {
    /// Before the first byte: the fault replaces the whole reply.
    Start,
    /// After the first byte (`+`).
    AfterFirstByte,
    /// After half of the reply.
    Middle,
    /// After all but the last byte (the `\n` ending the final `.` line).
    BeforeLastByte,
}

impl ReplyOffset {
    /// Every offset, in order.
    pub const ALL: [ReplyOffset; 4] = [
        ReplyOffset::Start,
        ReplyOffset::AfterFirstByte,
        ReplyOffset::Middle,
        ReplyOffset::BeforeLastByte,
    ];

    /// The offset in a reply of `len` bytes.
    pub fn of(self, len: usize) -> usize {
        match self {
            ReplyOffset::Start => 0,
            ReplyOffset::AfterFirstByte => len.min(1),
            ReplyOffset::Middle => len / 2,
            ReplyOffset::BeforeLastByte => len.saturating_sub(1),
        }
    }
}

/// What the server does when a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Closes the TCP connection at once, without TLS `close_notify`.
    Drop,
    /// Sends nothing more and reads nothing it acts on, until the client goes away (or
    /// [`Config::stall_limit`] passes).
    Stall,
    /// Where a status line is due: a line that is not POP3 (a NUL, an escape sequence, bytes
    /// that are not UTF-8); the session goes on. Part-way through a reply, where any bytes would be message content: a corrupted
    /// TLS record written under TLS onto the TCP stream (what a broken middlebox does), then
    /// the connection is closed.
    Garbage,
    /// Where a status line is due: `-ERR injected fault`, and the session goes on (after the
    /// greeting or `QUIT` it ends, as POP3 says). Part-way through a reply: that line right
    /// after the bytes sent so far, then the connection is closed (a server aborting a
    /// transfer).
    Err,
    /// A line of [`Config::long_line`] octets: where a status line is due, `+OK xxx…` in its
    /// place; part-way through a reply, inserted there, followed by the rest of the reply.
    LongLine,
    /// In a `RETR` reply (the offset is ignored): the message's last line carries
    /// [`FORGED_AFTER_BARE_LF`] (a bare-LF `.` line and a forged reply), not dot-stuffed, as a
    /// server that passes bare LFs through sends it, and not counted in `LIST`. Elsewhere the
    /// reply goes out unchanged.
    BareLfSplit,
    /// In a `RETR` reply (the offset is ignored): a well-framed message one line longer than
    /// the size `LIST` gave. Elsewhere the reply goes out unchanged.
    SizeLie,
}

impl FaultKind {
    /// Every kind, in order.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Drop,
        FaultKind::Stall,
        FaultKind::Garbage,
        FaultKind::Err,
        FaultKind::LongLine,
    ];

    /// The kinds that lie about a message in its `RETR` reply (see [`FaultKind::BareLfSplit`]).
    pub const IN_RETR: [FaultKind; 2] = [FaultKind::BareLfSplit, FaultKind::SizeLie];
}

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fault {
    /// Where it fires.
    pub phase: Phase,
    /// What happens.
    pub kind: FaultKind,
    /// Fire only the first time the phase is reached (otherwise every time).
    pub once: bool,
}

impl Fault {
    /// A fault that fires the first time `phase` is reached.
    pub fn once(phase: Phase, kind: FaultKind) -> Self {
        Self {
            phase,
            kind,
            once: true,
        }
    }
}

/// How to start a [`FaultyPop3`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The mailbox, oldest first (message `i` gets UID [`uid`]`(i)`). Messages should use CRLF.
    pub messages: Vec<Vec<u8>>,
    /// The fault plan. Each fault fires when its phase is reached; the first matching one wins.
    pub faults: Vec<Fault>,
    /// How long a [`FaultKind::Stall`] holds a connection at most (it ends earlier when the
    /// client goes away).
    pub stall_limit: Duration,
    /// Octets in a [`FaultKind::LongLine`] line.
    pub long_line: usize,
    /// Whether CAPA advertises `PIPELINING` (without it the client sends one command at a time).
    pub pipelining: bool,
    /// A fault of the whole listing: `LIST` (and `STAT`) give every message as 0 octets, while
    /// `RETR` sends it whole. A client trusting the sizes would request every message at once
    /// and count none of them against its storage space. For the browser's memory test.
    pub zero_octet_listing: bool,
    /// Dot-stuff only lines that follow a CRLF: a bare LF passes through as content, as in
    /// servers that pass 8-bit bodies through unchanged. A `.` after a bare LF then goes out
    /// unstuffed (see [`bare_lf_split_message`]).
    pub bare_lf_passthrough: bool,
    /// Seconds advertised as `LOGIN-DELAY` in CAPA (RFC 2449); a login sooner than that after
    /// the last successful one is refused with `-ERR [LOGIN-DELAY]`.
    pub login_delay: Option<u32>,
    /// Present a self-signed certificate whose validity ended in 2020: refused as expired,
    /// which no one may be offered to trust (unlike a merely self-signed one).
    pub expired_certificate: bool,
}

impl Config {
    /// A server for `messages` with no faults, stalls of up to 60 s and 1.5 MiB long lines.
    pub fn new(messages: Vec<Vec<u8>>) -> Self {
        Self {
            messages,
            faults: Vec::new(),
            stall_limit: Duration::from_secs(60),
            long_line: 1536 * 1024,
            pipelining: true,
            zero_octet_listing: false,
            bare_lf_passthrough: false,
            login_delay: None,
            expired_certificate: false,
        }
    }
}

/// A message whose body ends its own `RETR` reply for a client that splits lines at a bare LF,
/// when the server passes bare LFs through ([`Config::bare_lf_passthrough`]): its last line
/// holds [`FORGED_AFTER_BARE_LF`]. Its listed size counts every byte, so a size check alone does
/// not catch the split; only CRLF framing does.
pub fn bare_lf_split_message() -> Vec<u8> {
    let mut m =
        b"From: attacker@example.invalid\r\nSubject: an ordinary message\r\n\r\nhello".to_vec();
    m.extend_from_slice(FORGED_AFTER_BARE_LF);
    m.extend_from_slice(b"\r\n");
    m
}

/// The POP3 manners `config` asks for: the account, CAPA with or without `PIPELINING` and with
/// `LOGIN-DELAY`, the sizes listed, the stuffing.
fn pop3_options(config: &Config) -> ServerOptions {
    let mut options = ServerOptions::new(USER, PASSWORD);
    options
        .capabilities
        .retain(|c| config.pipelining || c != "PIPELINING");
    options
        .capabilities
        .push("IMPLEMENTATION webpop-faulty-pop3".to_owned());
    if let Some(delay) = config.login_delay {
        options.capabilities.push(format!("LOGIN-DELAY {delay}"));
    }
    options.zero_octet_listing = config.zero_octet_listing;
    options.bare_lf_passthrough = config.bare_lf_passthrough;
    options
}

/// The UIDL of message `index` (0-based) of [`Config::messages`].
pub fn uid(index: usize) -> String {
    format!("fault-uid-{:04}", index + 1)
}

/// A fault that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    /// The fault.
    pub fault: Fault,
    /// The connection it fired on (1-based, in accept order).
    pub connection: usize,
}

/// A `DELE` the server read, whatever it then did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleSeen {
    /// The UIDL of the message it named.
    pub uid: String,
    /// The connection (1-based).
    pub connection: usize,
    /// When the server read it.
    pub at: Instant,
}

/// A message removed from the mailbox by a `QUIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Its UIDL.
    pub uid: String,
    /// The connection whose `QUIT` removed it.
    pub connection: usize,
    /// When.
    pub at: Instant,
}

/// What the server did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections: usize,
    /// Successful logins.
    pub logins: usize,
    /// Logins refused because the last one was sooner than [`Config::login_delay`].
    pub refused_for_login_delay: usize,
    /// Faults fired, in order.
    pub fired: Vec<Fired>,
    /// Every `DELE` read, in order.
    pub deles: Vec<DeleSeen>,
    /// `RETR` commands read (for any message, answered or not).
    pub retrs: usize,
    /// Logged-in sessions ended by `QUIT` with their deletions applied.
    pub updates: usize,
    /// Messages removed at `QUIT`, in order.
    pub removed: Vec<Removed>,
}

/// A message of the mailbox.
type Message = ServedMessage;

/// The fault plan, the mailbox and the counters.
#[derive(Debug)]
struct State {
    original: Vec<Message>,
    live: Vec<Message>,
    armed: Vec<(Fault, bool)>,
    stats: Stats,
    /// When the last login succeeded (for [`Config::login_delay`]).
    last_login: Option<Instant>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    stall_limit: Duration,
    long_line: usize,
    login_delay: Option<u32>,
    /// What every session starts from: the account, CAPA, the listing and stuffing manners.
    pop3: ServerOptions,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not turn every later look at the server into a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fault for `reached` on `connection`, if one is armed; records it as fired.
    fn fire(&self, reached: Reached, connection: usize) -> Option<Fault> {
        let mut state = self.lock();
        let (fault, spent) = state
            .armed
            .iter_mut()
            .find(|(fault, spent)| !*spent && reached.matches(&fault.phase))?;
        *spent = fault.once;
        let fault = *fault;
        state.stats.fired.push(Fired { fault, connection });
        Some(fault)
    }
}

/// A phase as the server reaches it (a `RETR` by its count only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    Greeting,
    Auth,
    Uidl,
    Retr(usize),
    BeforeDele,
    AfterDele,
    BeforeQuit,
}

impl Reached {
    fn matches(self, phase: &Phase) -> bool {
        match (self, phase) {
            (Reached::Retr(n), Phase::Retr { nth, .. }) => n == *nth,
            (Reached::Greeting, Phase::Greeting)
            | (Reached::Auth, Phase::Auth)
            | (Reached::Uidl, Phase::Uidl)
            | (Reached::BeforeDele, Phase::BeforeDele)
            | (Reached::AfterDele, Phase::AfterDele)
            | (Reached::BeforeQuit, Phase::BeforeQuit) => true,
            _ => false,
        }
    }
}

/// A certificate the server presents, with the acceptor that presents it.
#[derive(Clone)]
struct Presented {
    der: Arc<[u8]>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Presented({})", Fingerprint::of(&self.der))
    }
}

impl Presented {
    /// A fresh self-signed certificate for `localhost` and 127.0.0.1; with `expired`, valid
    /// in 2019 only.
    fn self_signed(expired: bool) -> std::io::Result<Self> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = rcgen::CertificateParams::new(names).map_err(std::io::Error::other)?;
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key_pair = rcgen::KeyPair::generate().map_err(std::io::Error::other)?;
        let cert = params
            .self_signed(&key_pair)
            .map_err(std::io::Error::other)?;
        let der: Arc<[u8]> = Arc::from(cert.der().as_ref());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(der.to_vec())], key)
            .map_err(std::io::Error::other)?;
        Ok(Self {
            der,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
        })
    }
}

/// The certificate presented to new connections, and the one the server started with.
#[derive(Debug)]
struct Certificates {
    current: Presented,
    first: Presented,
}

/// A running server; dropping it stops it and closes every session.
#[derive(Debug)]
pub struct FaultyPop3 {
    addr: SocketAddr,
    certificates: Arc<Mutex<Certificates>>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FaultyPop3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultyPop3 {
    /// Starts the server on 127.0.0.1 (a free port) with a fresh self-signed certificate for
    /// `localhost` and 127.0.0.1. Call it inside a tokio runtime.
    pub async fn start(config: Config) -> std::io::Result<Self> {
        let first = Presented::self_signed(config.expired_certificate)?;
        let pop3 = pop3_options(&config);
        let certificates = Arc::new(Mutex::new(Certificates {
            current: first.clone(),
            first,
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let original: Vec<Message> = config
            .messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| (uid(i), Arc::from(m)))
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                live: original.clone(),
                original,
                armed: config.faults.into_iter().map(|f| (f, false)).collect(),
                stats: Stats::default(),
                last_login: None,
            }),
            stall_limit: config.stall_limit,
            long_line: config.long_line,
            login_delay: config.login_delay,
            pop3,
        });
        let task = tokio::spawn(accept(
            listener,
            Arc::clone(&certificates),
            Arc::clone(&shared),
        ));
        Ok(Self {
            addr,
            certificates,
            shared,
            task,
        })
    }

    fn certificates(&self) -> MutexGuard<'_, Certificates> {
        self.certificates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The certificate it presents now (DER).
    pub fn cert_der(&self) -> Vec<u8> {
        self.certificates().current.der.to_vec()
    }

    /// The SHA-256 fingerprint of the certificate it presents now, to pin.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.certificates().current.der)
    }

    /// Presents a fresh self-signed certificate (same names, valid dates) from the next
    /// connection on; sessions already open keep theirs. Its fingerprint.
    ///
    /// # Errors
    /// When the certificate cannot be made.
    pub fn replace_certificate(&self) -> std::io::Result<Fingerprint> {
        let fresh = Presented::self_signed(false)?;
        let fingerprint = Fingerprint::of(&fresh.der);
        self.certificates().current = fresh;
        Ok(fingerprint)
    }

    /// Presents the certificate it started with again, from the next connection on. Its
    /// fingerprint.
    pub fn restore_certificate(&self) -> Fingerprint {
        let mut certificates = self.certificates();
        certificates.current = certificates.first.clone();
        Fingerprint::of(&certificates.current.der)
    }

    /// Arms one more fault.
    pub fn arm(&self, fault: Fault) {
        self.shared.lock().armed.push((fault, false));
    }

    /// The mailbox as started: UIDL and bytes, oldest first.
    pub fn original(&self) -> Vec<(String, Vec<u8>)> {
        let state = self.shared.lock();
        state
            .original
            .iter()
            .map(|(uid, raw)| (uid.clone(), raw.to_vec()))
            .collect()
    }

    /// The UIDLs still in the mailbox, oldest first.
    pub fn remaining(&self) -> Vec<String> {
        let state = self.shared.lock();
        state.live.iter().map(|(uid, _)| uid.clone()).collect()
    }

    /// The UIDLs removed by `QUIT`s, in order.
    pub fn deleted(&self) -> Vec<String> {
        let state = self.shared.lock();
        state.stats.removed.iter().map(|r| r.uid.clone()).collect()
    }

    /// What the server did so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }
}

async fn accept(
    listener: TcpListener,
    certificates: Arc<Mutex<Certificates>>,
    shared: Arc<Shared>,
) {
    // Sessions live in this set, so aborting this task ends them too.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let connection = {
                    let mut state = shared.lock();
                    state.stats.connections += 1;
                    state.stats.connections
                };
                let acceptor = certificates
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .current
                    .acceptor
                    .clone();
                let shared = Arc::clone(&shared);
                sessions.spawn(async move {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let session = Session {
                        shared: &shared,
                        connection,
                        tls,
                        input: Vec::new(),
                        retrs: 0,
                        pop3: ServerSession::new(shared.pop3.clone()),
                    };
                    // An I/O error only means the client went away.
                    let _ = session.serve().await;
                });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// `reply` as [`FaultKind::BareLfSplit`] or [`FaultKind::SizeLie`] changes a multi-line reply
/// (one ending in CRLF `.` CRLF); any other reply unchanged.
fn lie(kind: FaultKind, reply: &[u8]) -> Vec<u8> {
    let mut out = reply.to_vec();
    if !out.ends_with(b"\r\n.\r\n") {
        return out;
    }
    match kind {
        // Into the last line, before its CRLF.
        FaultKind::BareLfSplit => {
            let at = out.len() - 5;
            out.splice(at..at, FORGED_AFTER_BARE_LF.iter().copied());
        }
        // A line more, before the terminating `.` line.
        FaultKind::SizeLie => {
            let at = out.len() - 3;
            out.splice(at..at, SIZE_LIE_LINE.iter().copied());
        }
        _ => {}
    }
    out
}

/// What to do after a fault.
#[derive(Debug, PartialEq, Eq)]
enum Then {
    /// Read the next command.
    Continue,
    /// End the session (dropping the connection, without `close_notify`).
    Close,
}

/// One client connection.
struct Session<'a> {
    shared: &'a Shared,
    connection: usize,
    tls: TlsStream<TcpStream>,
    input: Vec<u8>,
    retrs: usize,
    /// The POP3 session itself; this server only adds faults around it.
    pop3: ServerSession,
}

impl Session<'_> {
    async fn serve(mut self) -> std::io::Result<()> {
        const GREETING: &[u8] = b"+OK webpop fault-injection POP3 server ready\r\n";
        if let Some(fault) = self.shared.fire(Reached::Greeting, self.connection) {
            // A server that refuses in its greeting hangs up.
            if self.inject(fault.kind, GREETING, 0).await? == Then::Close
                || fault.kind == FaultKind::Err
            {
                return Ok(());
            }
        } else {
            self.write(GREETING).await?;
        }
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(());
            };
            let then = match self.pop3.handle(&line) {
                Step::Reply { reply, answers } => self.answer(reply, answers).await?,
                Step::Pass { accepted } => self.pass(accepted).await?,
                Step::Quit { deleted } => return self.quit(deleted).await,
                _ => self.reply(None, b"-ERR unknown command\r\n").await?,
            };
            if then == Then::Close {
                return Ok(());
            }
        }
    }

    /// Sends what the POP3 session answered, unless a fault fires there.
    async fn answer(&mut self, reply: Vec<u8>, answers: Answers) -> std::io::Result<Then> {
        match answers {
            Answers::Uidl => self.reply(Some(Reached::Uidl), &reply).await,
            Answers::Retr => {
                self.retrs += 1;
                self.shared.lock().stats.retrs += 1;
                self.reply(Some(Reached::Retr(self.retrs)), &reply).await
            }
            Answers::Dele { index, uid } => {
                self.shared.lock().stats.deles.push(DeleSeen {
                    uid,
                    connection: self.connection,
                    at: Instant::now(),
                });
                if let Some(fault) = self.shared.fire(Reached::BeforeDele, self.connection) {
                    // The message is not marked after all.
                    self.pop3.unmark(index);
                    return self.inject(fault.kind, &reply, 0).await;
                }
                self.reply(Some(Reached::AfterDele), &reply).await
            }
            _ => self.reply(None, &reply).await,
        }
    }

    /// `PASS`: a fault at [`Phase::Auth`] comes before the password is even looked at.
    async fn pass(&mut self, accepted: bool) -> std::io::Result<Then> {
        if let Some(fault) = self.shared.fire(Reached::Auth, self.connection) {
            return self.inject(fault.kind, LOGGED_IN, 0).await;
        }
        if !accepted {
            return self.reply(None, WRONG_PASSWORD).await;
        }
        let maildrop = {
            let mut state = self.shared.lock();
            let too_soon = self.shared.login_delay.is_some_and(|d| {
                state
                    .last_login
                    .is_some_and(|at| at.elapsed() < Duration::from_secs(u64::from(d)))
            });
            if too_soon {
                state.stats.refused_for_login_delay += 1;
                None
            } else {
                state.stats.logins += 1;
                state.last_login = Some(Instant::now());
                Some(state.live.clone())
            }
        };
        let Some(maildrop) = maildrop else {
            return self
                .reply(None, b"-ERR [LOGIN-DELAY] logged in too recently\r\n")
                .await;
        };
        self.pop3.open(maildrop);
        self.reply(None, LOGGED_IN).await
    }

    /// `QUIT`: after a login, removes what the session marked (RFC 1939's UPDATE state).
    async fn quit(&mut self, deleted: Vec<String>) -> std::io::Result<()> {
        if let Some(fault) = self.shared.fire(Reached::BeforeQuit, self.connection) {
            // Whatever the fault, the session ends here without deleting anything.
            self.inject(fault.kind, BYE, 0).await?;
            return Ok(());
        }
        if self.pop3.logged_in() {
            let mut state = self.shared.lock();
            let now = Instant::now();
            let connection = self.connection;
            let State { live, stats, .. } = &mut *state;
            live.retain(|(uid, _)| {
                let remove = deleted.contains(uid);
                if remove {
                    stats.removed.push(Removed {
                        uid: uid.clone(),
                        connection,
                        at: now,
                    });
                }
                !remove
            });
            stats.updates += 1;
        }
        self.write(BYE).await?;
        self.tls.shutdown().await
    }

    /// Sends `reply`, unless a fault fires for `phase`.
    async fn reply(&mut self, phase: Option<Reached>, reply: &[u8]) -> std::io::Result<Then> {
        let fault = phase.and_then(|p| self.shared.fire(p, self.connection));
        match fault {
            None => {
                self.write(reply).await?;
                Ok(Then::Continue)
            }
            Some(fault) => {
                let at = match fault.phase {
                    Phase::Retr { at, .. } => at.of(reply.len()),
                    _ => 0,
                };
                self.inject(fault.kind, reply, at).await
            }
        }
    }

    /// Sends the first `at` bytes of `reply`, then does `kind` (see [`FaultKind`]).
    async fn inject(&mut self, kind: FaultKind, reply: &[u8], at: usize) -> std::io::Result<Then> {
        if FaultKind::IN_RETR.contains(&kind) {
            self.write(&lie(kind, reply)).await?;
            return Ok(Then::Continue);
        }
        let (sent, rest) = reply.split_at(at.min(reply.len()));
        if !sent.is_empty() {
            self.write(sent).await?;
        }
        let mid_reply = !sent.is_empty();
        match kind {
            FaultKind::Drop => Ok(Then::Close),
            FaultKind::Stall => {
                self.stall().await;
                Ok(Then::Close)
            }
            FaultKind::Garbage if mid_reply => {
                // An application-data record header and 32 bytes that decrypt to nothing.
                let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x20];
                record.extend((0..32u8).map(|i| i.wrapping_mul(37) ^ 0xA5));
                let tcp = self.tls.get_mut().0;
                tcp.write_all(&record).await?;
                tcp.flush().await?;
                Ok(Then::Close)
            }
            FaultKind::Garbage => {
                self.write(GARBAGE_LINE).await?;
                Ok(Then::Continue)
            }
            FaultKind::Err => {
                self.write(ERR_LINE).await?;
                Ok(if mid_reply {
                    Then::Close
                } else {
                    Then::Continue
                })
            }
            FaultKind::BareLfSplit | FaultKind::SizeLie => Ok(Then::Continue),
            FaultKind::LongLine => {
                let mut out = Vec::with_capacity(self.shared.long_line + rest.len() + 8);
                if !mid_reply {
                    out.extend_from_slice(b"+OK ");
                }
                out.resize(out.len() + self.shared.long_line, b'x');
                out.extend_from_slice(b"\r\n");
                if mid_reply {
                    out.extend_from_slice(rest);
                }
                self.write(&out).await?;
                Ok(Then::Continue)
            }
        }
    }

    /// Holds the connection without answering, until the client goes away or the limit.
    async fn stall(&mut self) {
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(self.shared.stall_limit, async {
            while let Ok(1..) = self.tls.read(&mut sink).await {}
        })
        .await;
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes).await?;
        self.tls.flush().await
    }

    /// The next command line (CRLF or LF removed); `None` when the client is gone, idle too
    /// long, or sent a line over [`MAX_COMMAND`].
    async fn read_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.input.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.input.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.input.len() > MAX_COMMAND {
                return Ok(None);
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(IDLE, self.tls.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => return Ok(None),
                Ok(Ok(n)) => self.input.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webpop_shared::pop3::server_side::dot_stuff_crlf_lines;

    #[tokio::test]
    async fn a_replaced_certificate_is_another_one_until_the_first_is_restored() {
        let server = FaultyPop3::start(Config::new(Vec::new())).await.unwrap();
        let first = server.fingerprint();
        let replaced = server.replace_certificate().unwrap();
        assert_ne!(replaced, first);
        assert_eq!(server.fingerprint(), replaced);
        assert_eq!(Fingerprint::of(&server.cert_der()), replaced);
        assert_eq!(server.restore_certificate(), first);
        assert_eq!(server.fingerprint(), first);
    }

    #[test]
    fn offsets_cut_where_they_say() {
        let reply = b"+OK 3 octets\r\nabc\r\n.\r\n";
        let cut = |at: ReplyOffset| &reply[..at.of(reply.len())];
        assert_eq!(cut(ReplyOffset::Start), b"");
        assert_eq!(cut(ReplyOffset::AfterFirstByte), b"+");
        assert_eq!(cut(ReplyOffset::Middle).len(), reply.len() / 2);
        assert_eq!(cut(ReplyOffset::BeforeLastByte), &reply[..reply.len() - 1]);
        assert_eq!(ReplyOffset::BeforeLastByte.of(0), 0);
    }

    #[test]
    fn a_once_fault_fires_once_and_retr_faults_match_by_count() {
        let shared = Shared {
            state: Mutex::new(State {
                original: Vec::new(),
                live: Vec::new(),
                armed: vec![
                    (
                        Fault::once(
                            Phase::Retr {
                                nth: 2,
                                at: ReplyOffset::Middle,
                            },
                            FaultKind::Drop,
                        ),
                        false,
                    ),
                    (
                        Fault {
                            phase: Phase::Uidl,
                            kind: FaultKind::Err,
                            once: false,
                        },
                        false,
                    ),
                ],
                stats: Stats::default(),
                last_login: None,
            }),
            stall_limit: Duration::ZERO,
            long_line: 0,
            login_delay: None,
            pop3: ServerOptions::new(USER, PASSWORD),
        };
        assert_eq!(shared.fire(Reached::Retr(1), 1), None);
        assert!(shared.fire(Reached::Retr(2), 1).is_some());
        assert_eq!(shared.fire(Reached::Retr(2), 2), None, "fired twice");
        assert!(shared.fire(Reached::Uidl, 1).is_some());
        assert!(
            shared.fire(Reached::Uidl, 2).is_some(),
            "not once: fires again"
        );
        assert_eq!(shared.fire(Reached::BeforeQuit, 2), None);
        let fired = shared.lock().stats.fired.clone();
        assert_eq!(
            fired.iter().map(|f| f.connection).collect::<Vec<_>>(),
            [1, 1, 2]
        );
    }

    #[test]
    fn lies_change_only_multi_line_replies() {
        let reply = b"+OK 6 octets\r\nab\r\ncd\r\n.\r\n";
        let split = lie(FaultKind::BareLfSplit, reply);
        let mut want = b"+OK 6 octets\r\nab\r\ncd".to_vec();
        want.extend_from_slice(FORGED_AFTER_BARE_LF);
        want.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(split, want);
        let longer = lie(FaultKind::SizeLie, reply);
        assert!(longer
            .ends_with(b"cd\r\nX-Size-Lie: this line is not counted in the listed size\r\n.\r\n"));
        assert_eq!(lie(FaultKind::SizeLie, b"+OK\r\n"), b"+OK\r\n");
    }

    #[test]
    fn passthrough_stuffing_leaves_a_dot_after_a_bare_lf() {
        let mut out = Vec::new();
        dot_stuff_crlf_lines(&mut out, &bare_lf_split_message());
        let mut want = bare_lf_split_message();
        want.extend_from_slice(b".\r\n");
        assert_eq!(out, want);
        let mut out = Vec::new();
        dot_stuff_crlf_lines(&mut out, b".a\r\nb\n.c\r\n.");
        assert_eq!(out, b"..a\r\nb\n.c\r\n..\r\n.\r\n");
    }

    #[test]
    fn every_phase_is_listed_once() {
        let all = Phase::all(&[1, 8]);
        assert_eq!(all.len(), 3 + 2 * 4 + 3);
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }
}
