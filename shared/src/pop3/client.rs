//! The POP3 client state machine: commands in, bytes out; bytes in, events out.

use std::collections::VecDeque;

use crate::secret::{Credentials, Secret};

use super::capabilities::Capabilities;
use super::command::{encode_simple, Command};
use super::error::{preview, Error};
use super::reader::{LineReader, NoLine};
use super::response::{apop_timestamp, parse_status, server_error, trim_eol, ServerError, Status};
use super::sasl::{apop_digest, Exchange, SaslAuth};

/// Limits and behaviour. Defaults are safe for any server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Longest status or listing line accepted, terminator excluded (RFC 2449 allows 512).
    pub max_line_length: usize,
    /// Largest multi-line reply accepted (a whole RETR body), in bytes.
    pub max_reply_size: usize,
    /// Most commands in flight when the server advertises PIPELINING. 1 means lock-step.
    pub max_in_flight: usize,
    /// Most entries accepted in one `LIST` or `UIDL` reply. Each costs memory beyond its line
    /// (up to about 100 bytes for a UIDL), so the byte limit alone would let a hostile listing of
    /// tiny lines take many times [`Options::max_reply_size`]. Once the session has a `STAT`
    /// reply, a listing is also held to the message count `STAT` gave (RFC 1939: both name the
    /// same messages), so an honest server's listing costs memory in proportion to its
    /// mailbox; send `STAT` first to get that tighter limit.
    pub max_listing_entries: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_line_length: 8 * 1024,
            max_reply_size: 64 * 1024 * 1024,
            max_in_flight: 64,
            max_listing_entries: 200_000,
        }
    }
}

impl Options {
    /// Sets [`Options::max_line_length`].
    pub fn max_line_length(mut self, bytes: usize) -> Self {
        self.max_line_length = bytes;
        self
    }
    /// Sets [`Options::max_reply_size`].
    pub fn max_reply_size(mut self, bytes: usize) -> Self {
        self.max_reply_size = bytes;
        self
    }
    /// Sets [`Options::max_listing_entries`].
    pub fn max_listing_entries(mut self, entries: usize) -> Self {
        self.max_listing_entries = entries;
        self
    }
    /// Sets [`Options::max_in_flight`] (at least 1).
    pub fn max_in_flight(mut self, commands: usize) -> Self {
        self.max_in_flight = commands.max(1);
        self
    }
}

/// Identifies a command; its reply event carries the same handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(u64);

/// The server's `+OK` greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The greeting text.
    pub text: String,
    /// The APOP timestamp (`<...>`), if the server offers APOP.
    pub apop_timestamp: Option<String>,
}

/// `STAT`: message count and total size (of messages not marked deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Number of messages.
    pub count: u32,
    /// Total size in octets.
    pub size: u64,
}

/// One `LIST` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListEntry {
    /// Message number.
    pub msg: u32,
    /// Size in octets (as the server counts them, with CRLF line endings).
    pub size: u64,
}

/// One `UIDL` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidEntry {
    /// Message number.
    pub msg: u32,
    /// The unique id: 1 to 70 printable ASCII characters, stable across sessions.
    pub uid: String,
}

/// What a `+OK` reply carried, by command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// A reply with only text: USER, DELE, RSET, NOOP, QUIT, STLS.
    Ok {
        /// The server's text.
        text: String,
    },
    /// PASS, APOP, AUTH or a login succeeded: the session is in the TRANSACTION state.
    Authenticated,
    /// `STAT`.
    Stat(Stat),
    /// `LIST` of all messages.
    Listing(Vec<ListEntry>),
    /// `LIST n`.
    ListEntry(ListEntry),
    /// `UIDL` of all messages.
    Uids(Vec<UidEntry>),
    /// `UIDL n`.
    Uid(UidEntry),
    /// `RETR` or `TOP`: the message bytes, dot-unstuffed, exactly as the server holds them.
    Message(Vec<u8>),
    /// `CAPA`.
    Capabilities(Capabilities),
}

/// Something the server said.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server is ready (`+OK` greeting).
    Greeting(Greeting),
    /// The server refused the connection (`-ERR` greeting); it will close it.
    GreetingRejected(ServerError),
    /// A command succeeded.
    Reply {
        /// The command's handle.
        handle: Handle,
        /// What it returned.
        reply: Reply,
    },
    /// A command failed (`-ERR`). Not a protocol error: the session goes on.
    Rejected {
        /// The command's handle.
        handle: Handle,
        /// The server's reason.
        error: ServerError,
    },
}

/// The POP3 session state (RFC 1939 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Waiting for the greeting.
    Greeting,
    /// Connected, not logged in.
    Authorization,
    /// STLS accepted: TLS must start before anything else happens.
    AwaitingTls,
    /// Logged in.
    Transaction,
    /// QUIT answered (or the greeting was refused): the server closes the connection.
    Closed,
}

/// How [`Client::login`] authenticates with a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthMethod {
    /// Pick from CAPA and the greeting: SASL PLAIN, then USER/PASS, then APOP, then SASL LOGIN.
    #[default]
    Auto,
    /// `USER` then `PASS`.
    UserPass,
    /// `APOP` (needs a greeting timestamp).
    Apop,
    /// `AUTH PLAIN`.
    Plain,
    /// `AUTH LOGIN`.
    Login,
    /// `AUTH CRAM-MD5`.
    CramMd5,
}

/// A command waiting to be sent.
#[derive(Debug)]
enum Queued {
    Command(Command),
    /// USER, then PASS after USER's `+OK`, reported under one handle.
    UserPass(Credentials),
}

impl Queued {
    fn is_barrier(&self) -> bool {
        match self {
            Self::Command(c) => c.is_barrier(),
            Self::UserPass(_) => true,
        }
    }
}

/// What a sent command expects as its reply.
#[derive(Debug)]
enum Op {
    Capa,
    Stls,
    Stat,
    List,
    ListOne,
    Uidl,
    UidlOne,
    Message(&'static str),
    Simple(&'static str),
    Quit,
    Login(&'static str),
    UserThenPass(Secret),
    Auth(Exchange),
}

impl Op {
    fn verb(&self) -> &'static str {
        match self {
            Self::Capa => "CAPA",
            Self::Stls => "STLS",
            Self::Stat => "STAT",
            Self::List | Self::ListOne => "LIST",
            Self::Uidl | Self::UidlOne => "UIDL",
            Self::Message(v) | Self::Simple(v) | Self::Login(v) => v,
            Self::Quit => "QUIT",
            Self::UserThenPass(_) => "USER",
            Self::Auth(_) => "AUTH",
        }
    }

    fn is_barrier(&self) -> bool {
        matches!(
            self,
            Self::Capa
                | Self::Stls
                | Self::Quit
                | Self::Login(_)
                | Self::UserThenPass(_)
                | Self::Auth(_)
        )
    }
}

#[derive(Debug)]
struct Pending {
    handle: Handle,
    op: Op,
}

/// Most lines accepted in a CAPA reply (RFC 2449 defines about a dozen capabilities).
const MAX_CAPA_LINES: usize = 256;

/// A multi-line reply being received.
#[derive(Debug)]
enum Multi {
    Body(Vec<u8>),
    Listing(Vec<ListEntry>),
    Uids(Vec<UidEntry>),
    /// The capabilities so far and the lines read.
    Capa(Capabilities, usize),
}

/// A sans-I/O POP3 client.
///
/// Call order: [`Client::send`] (or [`Client::login`]) queues commands; [`Client::poll_transmit`]
/// gives the bytes to write; [`Client::handle_input`] takes bytes read; [`Client::poll_event`]
/// returns events until it returns `Ok(None)`, meaning it needs more input. Call
/// [`Client::handle_eof`] when the connection ends.
///
/// Commands are sent one at a time until CAPA shows PIPELINING; then up to
/// [`Options::max_in_flight`] are sent together, and replies are matched in order. Commands that
/// change the session's state (CAPA, STLS, logins, QUIT) are never pipelined past.
pub struct Client {
    options: Options,
    state: State,
    reader: LineReader,
    out: Vec<u8>,
    queue: VecDeque<(Handle, Queued)>,
    in_flight: VecDeque<Pending>,
    multi: Option<(Multi, usize)>,
    /// The message count of the last `STAT` reply: no listing may name more.
    stat_count: Option<u32>,
    next_handle: u64,
    greeting: Option<Greeting>,
    capabilities: Option<Capabilities>,
    secure: bool,
    plaintext_allowed: bool,
    quit_queued: bool,
    eof: bool,
    error: Option<Error>,
}

impl std::fmt::Debug for Client {
    /// Shows the session's shape, never its buffers: they hold mail and, briefly, credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state)
            .field("secure", &self.secure)
            .field("queued", &self.queue.len())
            .field("in_flight", &self.in_flight.len())
            .field("buffered", &self.reader.buffered())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for a new connection; the server speaks first.
    pub fn new(options: Options) -> Self {
        Self {
            options,
            state: State::Greeting,
            reader: LineReader::default(),
            out: Vec::new(),
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            multi: None,
            stat_count: None,
            next_handle: 0,
            greeting: None,
            capabilities: None,
            secure: false,
            plaintext_allowed: false,
            quit_queued: false,
            eof: false,
            error: None,
        }
    }

    // ---- getters ----

    /// The session state, as of the replies processed so far.
    pub fn state(&self) -> State {
        self.state
    }

    /// The greeting, once received.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// The capabilities from the last CAPA reply (cleared when TLS starts, per RFC 2595).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.capabilities.as_ref()
    }

    /// Whether the transport is encrypted.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Commands sent or queued that have no reply yet.
    pub fn pending(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    // ---- transport notifications ----

    /// Tells the client that TLS is established (implicit TLS, or after STLS). Credentials are
    /// refused until then; capabilities learnt before TLS are forgotten.
    pub fn tls_established(&mut self) {
        self.secure = true;
        if self.state == State::AwaitingTls {
            self.state = State::Authorization;
            self.capabilities = None;
        }
    }

    /// Allows credentials over plaintext. Only the session layer calls this, and only for a
    /// loopback server with the explicit testing opt-in.
    pub(crate) fn allow_plaintext_credentials(&mut self) {
        self.plaintext_allowed = true;
    }

    // ---- input ----

    /// Takes bytes read from the server. Call [`Client::poll_event`] afterwards.
    pub fn handle_input(&mut self, data: &[u8]) {
        if self.error.is_none() {
            self.reader.push(data);
        }
    }

    /// Records that the server closed the connection.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    // ---- commands ----

    /// Queues a command and returns its handle.
    pub fn send(&mut self, command: Command) -> Result<Handle, Error> {
        self.check_can_send()?;
        if command.sends_credentials() {
            self.check_secure()?;
        }
        if let Command::Apop(_) = command {
            self.greeting
                .as_ref()
                .and_then(|g| g.apop_timestamp.as_ref())
                .ok_or(Error::ApopUnavailable)?;
        }
        if command == Command::Quit {
            self.quit_queued = true;
        }
        Ok(self.enqueue(Queued::Command(command)))
    }

    /// Logs in with a password, reporting one `Reply::Authenticated` or one `Rejected` event for
    /// the returned handle. With [`AuthMethod::Auto`], call after the greeting and CAPA replies.
    pub fn login(&mut self, credentials: Credentials, method: AuthMethod) -> Result<Handle, Error> {
        self.check_can_send()?;
        self.check_secure()?;
        let method = match method {
            AuthMethod::Auto => self.pick_method()?,
            m => m,
        };
        match method {
            AuthMethod::UserPass => Ok(self.enqueue(Queued::UserPass(credentials))),
            AuthMethod::Apop => self.send(Command::Apop(credentials)),
            AuthMethod::Plain => self.send(Command::Auth(SaslAuth::Plain(credentials))),
            AuthMethod::Login => self.send(Command::Auth(SaslAuth::Login(credentials))),
            AuthMethod::CramMd5 | AuthMethod::Auto => {
                self.send(Command::Auth(SaslAuth::CramMd5(credentials)))
            }
        }
    }

    fn pick_method(&self) -> Result<AuthMethod, Error> {
        let Some(caps) = &self.capabilities else {
            // No CAPA: RFC 1939's USER/PASS is the one method every server has.
            return Ok(AuthMethod::UserPass);
        };
        let apop = self
            .greeting
            .as_ref()
            .is_some_and(|g| g.apop_timestamp.is_some());
        if caps.has_sasl("PLAIN") {
            Ok(AuthMethod::Plain)
        } else if caps.user {
            Ok(AuthMethod::UserPass)
        } else if apop {
            Ok(AuthMethod::Apop)
        } else if caps.has_sasl("LOGIN") {
            Ok(AuthMethod::Login)
        } else if caps.has_sasl("CRAM-MD5") {
            Ok(AuthMethod::CramMd5)
        } else {
            Err(Error::NoLoginMethod)
        }
    }

    fn check_can_send(&self) -> Result<(), Error> {
        if self.error.is_some() || self.quit_queued || self.state == State::Closed {
            return Err(Error::Ended);
        }
        Ok(())
    }

    fn check_secure(&self) -> Result<(), Error> {
        if self.secure || self.plaintext_allowed {
            Ok(())
        } else {
            Err(Error::CredentialsWithoutTls)
        }
    }

    fn enqueue(&mut self, queued: Queued) -> Handle {
        let handle = Handle(self.next_handle);
        self.next_handle += 1;
        self.queue.push_back((handle, queued));
        handle
    }

    // ---- output ----

    /// Bytes to write to the server, if any. Returns every command that may go now, together.
    /// After a protocol violation nothing more is sent.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.error.is_some() {
            self.out.clear();
            return None;
        }
        if matches!(self.state, State::Authorization | State::Transaction) {
            self.move_queue_to_out();
        }
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out))
    }

    fn move_queue_to_out(&mut self) {
        let pipelining = self.options.max_in_flight > 1
            && self.capabilities.as_ref().is_some_and(|c| c.pipelining);
        while let Some((_, next)) = self.queue.front() {
            if let Some(last) = self.in_flight.back() {
                let may_follow = pipelining
                    && !last.op.is_barrier()
                    && !next.is_barrier()
                    && self.in_flight.len() < self.options.max_in_flight;
                if !may_follow {
                    break;
                }
            }
            let Some((handle, queued)) = self.queue.pop_front() else {
                break;
            };
            let op = self.encode(queued);
            self.in_flight.push_back(Pending { handle, op });
        }
    }

    fn encode(&mut self, queued: Queued) -> Op {
        let out = &mut self.out;
        let command = match queued {
            Queued::UserPass(c) => {
                encode_simple(&Command::User(c.user), out);
                return Op::UserThenPass(c.password);
            }
            Queued::Command(c) => c,
        };
        match command {
            Command::Apop(c) => {
                let stamp = self
                    .greeting
                    .as_ref()
                    .and_then(|g| g.apop_timestamp.as_deref());
                let digest = apop_digest(stamp.unwrap_or_default(), &c.password);
                out.extend_from_slice(format!("APOP {} {digest}\r\n", c.user.as_str()).as_bytes());
                return Op::Login("APOP");
            }
            Command::Auth(auth) => return Op::Auth(Exchange::start(auth, out)),
            _ => encode_simple(&command, out),
        }
        match command {
            Command::Capa => Op::Capa,
            Command::Stls => Op::Stls,
            Command::Pass(_) => Op::Login("PASS"),
            Command::Stat => Op::Stat,
            Command::List(None) => Op::List,
            Command::List(Some(_)) => Op::ListOne,
            Command::Uidl(None) => Op::Uidl,
            Command::Uidl(Some(_)) => Op::UidlOne,
            Command::Top { .. } => Op::Message("TOP"),
            Command::Retr(_) => Op::Message("RETR"),
            Command::Quit => Op::Quit,
            other => Op::Simple(other.verb()),
        }
    }

    // ---- events ----

    /// The next event, `Ok(None)` if more input is needed. Errors are sticky.
    pub fn poll_event(&mut self) -> Result<Option<Event>, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.step() {
            Ok(event) => Ok(event),
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn need_more(&self) -> Result<Option<Event>, Error> {
        if self.eof && self.state != State::Closed {
            return Err(Error::ConnectionClosed {
                pending: self.pending(),
            });
        }
        Ok(None)
    }

    fn step(&mut self) -> Result<Option<Event>, Error> {
        loop {
            if self.multi.is_some() {
                match self.step_multi()? {
                    Some(event) => return Ok(Some(event)),
                    None if self.multi.is_some() => return self.need_more(),
                    None => continue,
                }
            }
            match self.state {
                State::Closed => return Ok(None),
                State::AwaitingTls => {
                    return match self.reader.buffered() {
                        0 => self.need_more(),
                        _ => Err(Error::DataAfterStls),
                    }
                }
                State::Greeting | State::Authorization | State::Transaction => {}
            }
            let line = match self.reader.next_line(self.options.max_line_length) {
                Ok(line) => trim_eol(line).to_vec(),
                Err(NoLine::NeedMore) => return self.need_more(),
                Err(NoLine::TooLong(_)) => {
                    return Err(Error::LineTooLong {
                        limit: self.options.max_line_length,
                    })
                }
            };
            if self.state == State::Greeting {
                return self.on_greeting(&line).map(Some);
            }
            if let Some(event) = self.on_status_line(&line)? {
                return Ok(Some(event));
            }
        }
    }

    fn on_greeting(&mut self, line: &[u8]) -> Result<Event, Error> {
        match parse_status(line) {
            Some(Status::Ok(text)) => {
                let text = String::from_utf8_lossy(text).into_owned();
                let greeting = Greeting {
                    apop_timestamp: apop_timestamp(&text),
                    text,
                };
                self.greeting = Some(greeting.clone());
                self.state = State::Authorization;
                Ok(Event::Greeting(greeting))
            }
            Some(Status::Err(text)) => {
                self.state = State::Closed;
                Ok(Event::GreetingRejected(server_error(text)))
            }
            _ => Err(Error::NotAReply {
                line: preview(line),
            }),
        }
    }

    /// Handles a status line for the oldest command in flight. `None`: no event yet.
    fn on_status_line(&mut self, line: &[u8]) -> Result<Option<Event>, Error> {
        let Some(front) = self.in_flight.front_mut() else {
            return Err(Error::Unsolicited {
                line: preview(line),
            });
        };
        let status = parse_status(line).ok_or_else(|| Error::NotAReply {
            line: preview(line),
        })?;
        let text = match status {
            Status::Continue(challenge) => {
                let Op::Auth(exchange) = &mut front.op else {
                    return Err(Error::UnexpectedContinuation {
                        verb: front.op.verb(),
                    });
                };
                exchange.respond(challenge, &mut self.out);
                return Ok(None);
            }
            Status::Err(text) => {
                let mut error = server_error(text);
                let Some(pending) = self.in_flight.pop_front() else {
                    return Ok(None);
                };
                if let Op::Auth(exchange) = pending.op {
                    error.sasl_error = exchange.sasl_error;
                }
                return Ok(Some(Event::Rejected {
                    handle: pending.handle,
                    error,
                }));
            }
            Status::Ok(text) => text,
        };
        let handle = front.handle;
        let verb = front.op.verb();
        let malformed = || Error::Malformed {
            verb,
            line: preview(line),
        };
        let reply = match &front.op {
            Op::UserThenPass(password) => {
                // USER accepted: PASS goes out at once under the same handle.
                encode_simple(&Command::Pass(password.clone()), &mut self.out);
                front.op = Op::Login("PASS");
                return Ok(None);
            }
            Op::Capa => return self.start_multi(Multi::Capa(Capabilities::default(), 0)),
            Op::List => return self.start_multi(Multi::Listing(Vec::new())),
            Op::Uidl => return self.start_multi(Multi::Uids(Vec::new())),
            Op::Message(_) => return self.start_multi(Multi::Body(Vec::new())),
            Op::Stat => {
                let (count, size) = two_numbers(text).ok_or_else(malformed)?;
                let count = u32::try_from(count).map_err(|_| malformed())?;
                self.stat_count = Some(count);
                Reply::Stat(Stat { count, size })
            }
            Op::ListOne => Reply::ListEntry(list_entry(text).ok_or_else(malformed)?),
            Op::UidlOne => Reply::Uid(uid_entry(text).ok_or_else(malformed)?),
            Op::Stls => {
                self.state = State::AwaitingTls;
                Reply::Ok {
                    text: String::from_utf8_lossy(text).into_owned(),
                }
            }
            Op::Quit => {
                self.state = State::Closed;
                Reply::Ok {
                    text: String::from_utf8_lossy(text).into_owned(),
                }
            }
            Op::Login(_) | Op::Auth(_) => {
                self.state = State::Transaction;
                Reply::Authenticated
            }
            Op::Simple(_) => Reply::Ok {
                text: String::from_utf8_lossy(text).into_owned(),
            },
        };
        self.in_flight.pop_front();
        // Bytes already buffered after an STLS reply fail the next poll (see `step`).
        Ok(Some(Event::Reply { handle, reply }))
    }

    fn start_multi(&mut self, multi: Multi) -> Result<Option<Event>, Error> {
        self.multi = Some((multi, 0));
        Ok(None)
    }

    /// Consumes lines of a multi-line reply. `Some` when it ended with an event.
    fn step_multi(&mut self) -> Result<Option<Event>, Error> {
        let Some((multi, size)) = &mut self.multi else {
            return Ok(None);
        };
        let verb = self.in_flight.front().map_or("?", |p| p.op.verb());
        let max_entries = self
            .stat_count
            .map_or(self.options.max_listing_entries, |n| {
                self.options
                    .max_listing_entries
                    .min(usize::try_from(n).unwrap_or(usize::MAX))
            });
        loop {
            let limit = match multi {
                Multi::Body(_) => self.options.max_reply_size.saturating_sub(*size),
                _ => self.options.max_line_length,
            };
            // RFC 1939 §3: the lines of a multi-line reply end in CRLF; a bare LF is content.
            let line = match self.reader.next_crlf_line(limit) {
                Ok(line) => line,
                Err(NoLine::NeedMore) => return Ok(None),
                Err(NoLine::TooLong(_)) => {
                    return Err(match multi {
                        Multi::Body(_) => Error::ReplyTooLarge {
                            verb,
                            limit: self.options.max_reply_size,
                        },
                        _ => Error::LineTooLong {
                            limit: self.options.max_line_length,
                        },
                    })
                }
            };
            // RFC 1939 §3: CRLF "." CRLF ends the reply; otherwise a leading "." is stuffing.
            if line == b".\r\n" {
                break;
            }
            let line = line.strip_prefix(b".").unwrap_or(line);
            *size += line.len();
            if *size > self.options.max_reply_size {
                return Err(Error::ReplyTooLarge {
                    verb,
                    limit: self.options.max_reply_size,
                });
            }
            let malformed = || Error::Malformed {
                verb,
                line: preview(line),
            };
            let too_many = |limit| Error::ListingTooLong { verb, limit };
            match multi {
                Multi::Body(body) => body.extend_from_slice(line),
                Multi::Listing(entries) if entries.len() >= max_entries => {
                    return Err(too_many(max_entries))
                }
                Multi::Uids(entries) if entries.len() >= max_entries => {
                    return Err(too_many(max_entries))
                }
                Multi::Capa(_, lines) if *lines >= MAX_CAPA_LINES => {
                    return Err(too_many(MAX_CAPA_LINES))
                }
                Multi::Listing(entries) => {
                    entries.push(list_entry(trim_eol(line)).ok_or_else(malformed)?)
                }
                Multi::Uids(entries) => {
                    entries.push(uid_entry(trim_eol(line)).ok_or_else(malformed)?)
                }
                Multi::Capa(caps, lines) => {
                    *lines += 1;
                    caps.add_line(&String::from_utf8_lossy(trim_eol(line)))
                }
            }
        }
        let Some((multi, _)) = self.multi.take() else {
            return Ok(None);
        };
        let Some(pending) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        let reply = match multi {
            Multi::Body(body) => Reply::Message(body),
            Multi::Listing(entries) => Reply::Listing(entries),
            Multi::Uids(entries) => Reply::Uids(entries),
            Multi::Capa(caps, _) => {
                self.capabilities = Some(caps.clone());
                Reply::Capabilities(caps)
            }
        };
        Ok(Some(Event::Reply {
            handle: pending.handle,
            reply,
        }))
    }
}

fn words(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| *b == b' ').filter(|w| !w.is_empty())
}

fn number(word: &[u8]) -> Option<u64> {
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}

fn two_numbers(text: &[u8]) -> Option<(u64, u64)> {
    let mut w = words(text);
    Some((number(w.next()?)?, number(w.next()?)?))
}

fn msg_number(word: &[u8]) -> Option<u32> {
    u32::try_from(number(word)?).ok().filter(|n| *n > 0)
}

fn list_entry(text: &[u8]) -> Option<ListEntry> {
    let mut w = words(text);
    Some(ListEntry {
        msg: msg_number(w.next()?)?,
        size: number(w.next()?)?,
    })
}

fn uid_entry(text: &[u8]) -> Option<UidEntry> {
    let mut w = words(text);
    let msg = msg_number(w.next()?)?;
    let uid = w.next()?;
    // RFC 1939 §7: 1 to 70 characters in the range 0x21 to 0x7E.
    if uid.len() > 70 || !uid.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return None;
    }
    Some(UidEntry {
        msg,
        uid: String::from_utf8_lossy(uid).into_owned(),
    })
}
