//! The server's side of POP3, for the servers webpop runs itself (the demo mailbox, the
//! fault-injecting test server): a sans-I/O session over a maildrop ([`ServerSession`]),
//! dot-stuffing a message and cutting it for `TOP`.
//!
//! The session speaks what webpop uses — CAPA, USER/PASS, STAT, LIST, UIDL, TOP, RETR, DELE,
//! RSET, NOOP and QUIT — one command line in, one [`Step`] out, so that pipelined commands are
//! answered in order. It holds no socket and no clock: the server around it reads lines, writes
//! replies, decides what a login gets (a copy of its mailbox as of now) and what `QUIT` removes
//! (RFC 1939's UPDATE state). Each [`Step`] says what a reply answers, which is where a test
//! server injects its faults.

use std::sync::Arc;

/// A message as a server holds it: its UIDL and its bytes (lines ending in CRLF).
pub type ServedMessage = (String, Arc<[u8]>);

/// The reply to a successful `PASS`.
pub const LOGGED_IN: &[u8] = b"+OK logged in\r\n";
/// The reply to a `PASS` with a wrong user name or password.
pub const WRONG_PASSWORD: &[u8] = b"-ERR [AUTH] wrong user name or password\r\n";
/// The reply to `QUIT`.
pub const BYE: &[u8] = b"+OK bye\r\n";

/// Who may log in, and how the server answers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// The account's user name.
    pub user: String,
    /// The account's password.
    pub password: String,
    /// The capabilities `CAPA` lists, in order (`TOP`, `LOGIN-DELAY 900`, …), without CRLF.
    pub capabilities: Vec<String>,
    /// `LIST` (and `STAT`) give every message as 0 octets while `RETR` sends it whole: a
    /// server whose sizes lie, for tests of a client that trusts them.
    pub zero_octet_listing: bool,
    /// Dot-stuff only lines that follow a CRLF: a bare LF passes through as content, as in
    /// servers that pass 8-bit bodies through unchanged, so a `.` after a bare LF goes out
    /// unstuffed.
    pub bare_lf_passthrough: bool,
}

impl ServerOptions {
    /// One account, `CAPA` with `TOP UIDL USER PIPELINING RESP-CODES`, honest sizes and
    /// RFC 1939 dot-stuffing.
    pub fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
            capabilities: ["TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES"]
                .map(str::to_owned)
                .to_vec(),
            zero_octet_listing: false,
            bare_lf_passthrough: false,
        }
    }
}

/// What the server is to do about one command line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Send `reply`, which answers `answers`.
    Reply {
        /// The whole reply, status line and (for a multi-line reply) body and final `.` line.
        reply: Vec<u8>,
        /// What it answers.
        answers: Answers,
    },
    /// `PASS` before the login: `accepted` tells whether the user name and password were
    /// right. The server then calls [`ServerSession::open`] with the maildrop and sends
    /// [`LOGGED_IN`], or sends a refusal ([`WRONG_PASSWORD`], or its own `-ERR [LOGIN-DELAY]`).
    Pass {
        /// Whether `USER` and `PASS` named the account.
        accepted: bool,
    },
    /// `QUIT`: the UIDLs marked deleted (none before the login). A server that keeps
    /// deletions removes them, then sends [`BYE`] and closes the connection.
    Quit {
        /// The messages `DELE` marked, in message-number order.
        deleted: Vec<String>,
    },
}

/// What a reply answers: where a test server may put a fault instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answers {
    /// `CAPA`.
    Capa,
    /// `NOOP`.
    Noop,
    /// `USER`.
    User,
    /// `STAT`.
    Stat,
    /// `LIST`, with or without a message number.
    List,
    /// `UIDL`, with or without a message number.
    Uidl,
    /// `RETR` of a message that exists.
    Retr,
    /// `TOP` of a message that exists.
    Top,
    /// `DELE` that marked message `index` (0-based); [`ServerSession::unmark`] undoes it.
    Dele {
        /// The message's index in the maildrop.
        index: usize,
        /// Its UIDL.
        uid: String,
    },
    /// `RSET`.
    Rset,
    /// A command refused with `-ERR` (no such message, not logged in, unknown command).
    Refusal,
}

/// One client's POP3 session with a server (see the module's documentation).
#[derive(Debug, Clone)]
pub struct ServerSession {
    options: ServerOptions,
    user_ok: bool,
    /// The maildrop as of the login; `None` before it.
    maildrop: Option<Vec<ServedMessage>>,
    marked: Vec<bool>,
}

impl ServerSession {
    /// A session in the AUTHORIZATION state.
    pub fn new(options: ServerOptions) -> Self {
        Self {
            options,
            user_ok: false,
            maildrop: None,
            marked: Vec::new(),
        }
    }

    /// Whether the login is done (the TRANSACTION state).
    pub fn logged_in(&self) -> bool {
        self.maildrop.is_some()
    }

    /// Ends the login with `maildrop` (the mailbox as of now, in message-number order): the
    /// session is in the TRANSACTION state.
    pub fn open(&mut self, maildrop: Vec<ServedMessage>) {
        self.marked = vec![false; maildrop.len()];
        self.maildrop = Some(maildrop);
    }

    /// Takes back the mark of a `DELE` ([`Answers::Dele`]) that the server did not carry out.
    pub fn unmark(&mut self, index: usize) {
        if let Some(mark) = self.marked.get_mut(index) {
            *mark = false;
        }
    }

    /// Answers one command line (with or without its CRLF).
    pub fn handle(&mut self, line: &[u8]) -> Step {
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_ascii_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        let first_is = |want: &str| args.first() == Some(&want);
        match (verb.as_str(), self.logged_in()) {
            ("CAPA", _) => {
                let mut out = b"+OK capabilities follow\r\n".to_vec();
                for capability in &self.options.capabilities {
                    out.extend_from_slice(capability.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b".\r\n");
                reply(out, Answers::Capa)
            }
            ("NOOP", _) => reply(b"+OK\r\n", Answers::Noop),
            ("QUIT", _) => Step::Quit {
                deleted: self.marked_uids(),
            },
            ("USER", false) => {
                self.user_ok = first_is(&self.options.user);
                reply(b"+OK send PASS\r\n", Answers::User)
            }
            ("PASS", false) => Step::Pass {
                accepted: self.user_ok && first_is(&self.options.password),
            },
            (_, false) => reply(b"-ERR log in first\r\n", Answers::Refusal),
            (_, true) => self.transaction(&verb, &args),
        }
    }

    /// A command in the TRANSACTION state.
    fn transaction(&mut self, verb: &str, args: &[&str]) -> Step {
        let number = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
        let zero = self.options.zero_octet_listing;
        let listed_size = |m: &ServedMessage| if zero { 0 } else { m.1.len() };
        match verb {
            "STAT" => {
                let live = self.live();
                let size: usize = live.iter().map(|(_, m)| listed_size(m)).sum();
                let line = format!("+OK {} {size}\r\n", live.len());
                reply(line, Answers::Stat)
            }
            "LIST" | "UIDL" => {
                let field = |i: usize, m: &ServedMessage| match verb {
                    "LIST" => format!("{} {}", i + 1, listed_size(m)),
                    _ => format!("{} {}", i + 1, m.0),
                };
                let out = if args.is_empty() {
                    let mut out = String::from("+OK\r\n");
                    for (i, m) in self.live() {
                        out.push_str(&field(i, m));
                        out.push_str("\r\n");
                    }
                    out.push_str(".\r\n");
                    out
                } else {
                    match self.message(number(0)) {
                        Some((i, m)) => format!("+OK {}\r\n", field(i, m)),
                        None => "-ERR no such message\r\n".to_owned(),
                    }
                };
                let answers = match verb {
                    "LIST" => Answers::List,
                    _ => Answers::Uidl,
                };
                reply(out, answers)
            }
            "RETR" | "TOP" => {
                let (body, answers) = match (self.message(number(0)), verb, number(1)) {
                    (Some((_, m)), "RETR", _) => (m.1.to_vec(), Answers::Retr),
                    (Some((_, m)), _, Some(lines)) => (top(&m.1, lines), Answers::Top),
                    (Some(_), _, None) => {
                        return reply(b"-ERR TOP needs a line count\r\n", Answers::Refusal)
                    }
                    (None, ..) => return reply(b"-ERR no such message\r\n", Answers::Refusal),
                };
                let mut out = format!("+OK {} octets\r\n", body.len()).into_bytes();
                if self.options.bare_lf_passthrough {
                    dot_stuff_crlf_lines(&mut out, &body);
                } else {
                    dot_stuff(&mut out, &body);
                }
                reply(out, answers)
            }
            "DELE" => {
                let Some((index, m)) = self.message(number(0)) else {
                    return reply(b"-ERR no such message\r\n", Answers::Refusal);
                };
                let uid = m.0.clone();
                if let Some(mark) = self.marked.get_mut(index) {
                    *mark = true;
                }
                let ok = format!("+OK message {} deleted\r\n", index + 1);
                reply(ok, Answers::Dele { index, uid })
            }
            "RSET" => {
                self.marked.iter_mut().for_each(|m| *m = false);
                reply(b"+OK\r\n", Answers::Rset)
            }
            _ => reply(b"-ERR unknown command\r\n", Answers::Refusal),
        }
    }

    /// Message `n` (1-based) if it exists and is not marked deleted: its index and itself.
    fn message(&self, n: Option<usize>) -> Option<(usize, &ServedMessage)> {
        let i = n?.checked_sub(1)?;
        let m = self.maildrop.as_ref()?.get(i)?;
        (!self.marked.get(i).copied().unwrap_or(true)).then_some((i, m))
    }

    /// The messages not marked deleted, with their indexes.
    fn live(&self) -> Vec<(usize, &ServedMessage)> {
        (1..=self.marked.len())
            .filter_map(|n| self.message(Some(n)))
            .collect()
    }

    fn marked_uids(&self) -> Vec<String> {
        let Some(maildrop) = &self.maildrop else {
            return Vec::new();
        };
        maildrop
            .iter()
            .zip(&self.marked)
            .filter(|(_, marked)| **marked)
            .map(|((uid, _), _)| uid.clone())
            .collect()
    }
}

fn reply(reply: impl Into<Vec<u8>>, answers: Answers) -> Step {
    Step::Reply {
        reply: reply.into(),
        answers,
    }
}

/// Appends `body` dot-stuffed (RFC 1939 §3: a line starting with `.` gets another), ending in
/// CRLF, then the terminating `.` line.
pub fn dot_stuff(out: &mut Vec<u8>, body: &[u8]) {
    for line in body.split_inclusive(|b| *b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !body.is_empty() && !body.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// Dot-stuffs `body` as a server that sees lines only at CRLF: a `.` after a bare LF is not
/// stuffed ([`ServerOptions::bare_lf_passthrough`]). Ends in CRLF, then the terminating `.`
/// line.
pub fn dot_stuff_crlf_lines(out: &mut Vec<u8>, body: &[u8]) {
    let mut at_line_start = true;
    for (i, &b) in body.iter().enumerate() {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n' && i > 0 && body[i - 1] == b'\r';
    }
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// The headers, the blank line and the first `lines` body lines of `message` (what `TOP n
/// lines` returns).
pub fn top(message: &[u8], lines: usize) -> Vec<u8> {
    let split = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |p| p + 4);
    let mut out = message[..split].to_vec();
    for line in message[split..]
        .split_inclusive(|b| *b == b'\n')
        .take(lines)
    {
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_dot_stuffed_and_terminated() {
        let mut out = Vec::new();
        dot_stuff(&mut out, b"a\r\n.b\r\n..\r\nend");
        assert_eq!(out, b"a\r\n..b\r\n...\r\nend\r\n.\r\n");
        let mut empty = Vec::new();
        dot_stuff(&mut empty, b"");
        assert_eq!(empty, b".\r\n");
    }

    #[test]
    fn passthrough_stuffing_leaves_a_dot_after_a_bare_lf() {
        let mut out = Vec::new();
        dot_stuff_crlf_lines(&mut out, b".a\r\nb\n.c\r\n.");
        assert_eq!(out, b"..a\r\nb\n.c\r\n..\r\n.\r\n");
    }

    #[test]
    fn top_gives_headers_and_the_first_lines() {
        let m = b"Subject: x\r\n\r\none\r\ntwo\r\nthree\r\n";
        assert_eq!(top(m, 0), b"Subject: x\r\n\r\n");
        assert_eq!(top(m, 2), b"Subject: x\r\n\r\none\r\ntwo\r\n");
        assert_eq!(top(b"no blank line", 5), b"no blank line");
    }

    fn text(step: &Step) -> String {
        match step {
            Step::Reply { reply, .. } => String::from_utf8_lossy(reply).into_owned(),
            other => format!("{other:?}"),
        }
    }

    fn logged_in_session() -> ServerSession {
        let mut s = ServerSession::new(ServerOptions::new("u", "p"));
        assert_eq!(
            s.handle(b"USER u\r\n"),
            reply(b"+OK send PASS\r\n", Answers::User)
        );
        assert_eq!(s.handle(b"PASS p\r\n"), Step::Pass { accepted: true });
        let mail = |uid: &str, raw: &[u8]| (uid.to_owned(), Arc::from(raw));
        s.open(vec![
            mail("a", b"Subject: 1\r\n\r\n.dot\r\n"),
            mail("b", b"Subject: 2\r\n\r\nx\r\n"),
        ]);
        s
    }

    #[test]
    fn a_wrong_password_or_user_is_not_accepted_and_nothing_is_served_before_the_login() {
        let mut s = ServerSession::new(ServerOptions::new("u", "p"));
        assert_eq!(text(&s.handle(b"STAT")), "-ERR log in first\r\n");
        s.handle(b"USER u");
        assert_eq!(s.handle(b"PASS wrong"), Step::Pass { accepted: false });
        s.handle(b"USER other");
        assert_eq!(s.handle(b"PASS p"), Step::Pass { accepted: false });
        assert_eq!(s.handle(b"QUIT"), Step::Quit { deleted: vec![] });
    }

    #[test]
    fn a_session_lists_serves_and_marks_as_rfc_1939_says() {
        let mut s = logged_in_session();
        assert_eq!(text(&s.handle(b"STAT")), "+OK 2 37\r\n");
        assert_eq!(text(&s.handle(b"UIDL")), "+OK\r\n1 a\r\n2 b\r\n.\r\n");
        assert_eq!(text(&s.handle(b"LIST 2")), "+OK 2 17\r\n");
        assert_eq!(
            text(&s.handle(b"RETR 1")),
            "+OK 20 octets\r\nSubject: 1\r\n\r\n..dot\r\n.\r\n"
        );
        assert_eq!(
            text(&s.handle(b"TOP 2 0")),
            "+OK 14 octets\r\nSubject: 2\r\n\r\n.\r\n"
        );
        assert_eq!(
            s.handle(b"DELE 1"),
            reply(
                b"+OK message 1 deleted\r\n",
                Answers::Dele {
                    index: 0,
                    uid: "a".to_owned()
                }
            )
        );
        assert_eq!(text(&s.handle(b"RETR 1")), "-ERR no such message\r\n");
        assert_eq!(text(&s.handle(b"LIST")), "+OK\r\n2 17\r\n.\r\n");
        assert_eq!(text(&s.handle(b"RSET")), "+OK\r\n");
        s.handle(b"DELE 2");
        assert_eq!(
            s.handle(b"QUIT"),
            Step::Quit {
                deleted: vec!["b".to_owned()]
            }
        );
    }

    #[test]
    fn an_unmarked_dele_deletes_nothing() {
        let mut s = logged_in_session();
        s.handle(b"DELE 2");
        s.unmark(1);
        assert_eq!(s.handle(b"QUIT"), Step::Quit { deleted: vec![] });
    }

    #[test]
    fn a_zero_octet_listing_lies_about_sizes_only() {
        let mut options = ServerOptions::new("u", "p");
        options.zero_octet_listing = true;
        let mut s = ServerSession::new(options);
        s.open(vec![("a".to_owned(), Arc::from(&b"x\r\n"[..]))]);
        assert_eq!(text(&s.handle(b"LIST")), "+OK\r\n1 0\r\n.\r\n");
        assert_eq!(text(&s.handle(b"STAT")), "+OK 1 0\r\n");
        assert_eq!(text(&s.handle(b"RETR 1")), "+OK 3 octets\r\nx\r\n.\r\n");
    }
}
