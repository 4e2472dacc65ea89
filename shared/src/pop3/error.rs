//! Errors of the POP3 client. A server's `-ERR` is not among them: that is an [`Event`](super::Event).

/// A protocol violation by the server, a lost connection, or a command the client will not send.
///
/// Violations and a lost connection are sticky: once returned by
/// [`Client::poll_event`](super::Client::poll_event), every later call returns the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line where a status line (`+OK`, `-ERR`) was due started with something else.
    #[error("the server sent a line that is not a POP3 reply: {line:?}")]
    NotAReply {
        /// The start of the line, lossily decoded.
        line: String,
    },
    /// A reply arrived while no command was waiting for one.
    #[error("the server sent a reply to no command: {line:?}")]
    Unsolicited {
        /// The start of the line, lossily decoded.
        line: String,
    },
    /// A `+ ` continuation arrived for a command that is not AUTH.
    #[error("the server sent an AUTH continuation in reply to {verb}")]
    UnexpectedContinuation {
        /// The command it answered.
        verb: &'static str,
    },
    /// A reply's content did not have the form its command defines (e.g. `STAT` without counts).
    #[error("the server's {verb} reply is malformed: {line:?}")]
    Malformed {
        /// The command it answered.
        verb: &'static str,
        /// The start of the offending line, lossily decoded.
        line: String,
    },
    /// A status or listing line exceeded [`Options::max_line_length`](super::Options).
    #[error("the server sent a line longer than the limit of {limit} bytes")]
    LineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// A multi-line reply exceeded [`Options::max_reply_size`](super::Options).
    #[error("the server's {verb} reply is larger than the limit of {limit} bytes")]
    ReplyTooLarge {
        /// The command it answered.
        verb: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// A `LIST` or `UIDL` reply named more messages than
    /// [`Options::max_listing_entries`](super::Options) or the session's `STAT` count allow, or a
    /// `CAPA` reply had too many lines.
    #[error("the server's {verb} reply has more than {limit} lines, more than it may")]
    ListingTooLong {
        /// The command it answered.
        verb: &'static str,
        /// The limit that applied.
        limit: usize,
    },
    /// Bytes followed the `+OK` to STLS before TLS started: a response-injection attack or a
    /// broken server (CVE-2011-0411 class). The session must not continue.
    #[error(
        "the server sent data after accepting STLS and before TLS started; refusing to continue"
    )]
    DataAfterStls,
    /// The connection ended while replies were still due.
    #[error("the connection closed with {pending} command(s) unanswered")]
    ConnectionClosed {
        /// Commands sent or queued that got no reply.
        pending: usize,
    },
    /// Credentials would have been sent over a connection without TLS.
    #[error(
        "refusing to send credentials without TLS: connect with implicit TLS (port 995) or STLS; \
         plaintext is only possible with the explicit loopback testing opt-in"
    )]
    CredentialsWithoutTls,
    /// APOP was asked for, but the greeting carried no timestamp (or has not arrived yet).
    #[error("APOP needs a timestamp in the server's greeting, and there is none")]
    ApopUnavailable,
    /// No login method fits what the server advertised.
    #[error("the server offers no login method this client can use with a password")]
    NoLoginMethod,
    /// A command was sent after QUIT, or after the session failed.
    #[error("the POP3 session has ended")]
    Ended,
}

/// The start of a line, for error messages: short, lossily decoded, line ending removed.
pub(crate) fn preview(line: &[u8]) -> String {
    let line = super::response::trim_eol(line);
    let cut = &line[..line.len().min(80)];
    String::from_utf8_lossy(cut).into_owned()
}
