//! Commands a client can send (RFC 1939, 2449, 2595, 5034) and their wire form.

use crate::secret::{Credentials, Secret, UserName};

use super::sasl::SaslAuth;

/// One POP3 command. Arguments that could smuggle a line break are validated types, so every
/// command encodes to exactly one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `CAPA` (RFC 2449).
    Capa,
    /// `STLS` (RFC 2595). After `+OK` the caller must start TLS.
    Stls,
    /// `USER name`.
    User(UserName),
    /// `PASS password`.
    Pass(Secret),
    /// `APOP name digest`, with the digest made from the greeting's timestamp.
    Apop(Credentials),
    /// `AUTH mechanism` with the whole SASL exchange (RFC 5034).
    Auth(SaslAuth),
    /// `STAT`.
    Stat,
    /// `LIST` (all messages) or `LIST n`.
    List(Option<u32>),
    /// `UIDL` (all messages) or `UIDL n`.
    Uidl(Option<u32>),
    /// `TOP n lines`: the headers and the first `lines` lines of the body.
    Top {
        /// Message number.
        msg: u32,
        /// Body lines wanted.
        lines: u32,
    },
    /// `RETR n`.
    Retr(u32),
    /// `DELE n`: marks for deletion; the server deletes only after a successful `QUIT`.
    Dele(u32),
    /// `RSET`: unmarks everything marked for deletion.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`: ends the session; in the TRANSACTION state this commits deletions.
    Quit,
}

impl Command {
    /// The verb, for logs and errors (never arguments: they may be credentials).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Capa => "CAPA",
            Self::Stls => "STLS",
            Self::User(_) => "USER",
            Self::Pass(_) => "PASS",
            Self::Apop(_) => "APOP",
            Self::Auth(_) => "AUTH",
            Self::Stat => "STAT",
            Self::List(_) => "LIST",
            Self::Uidl(_) => "UIDL",
            Self::Top { .. } => "TOP",
            Self::Retr(_) => "RETR",
            Self::Dele(_) => "DELE",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
        }
    }

    /// Whether this command carries or starts sending credentials.
    pub(crate) fn sends_credentials(&self) -> bool {
        matches!(
            self,
            Self::User(_) | Self::Pass(_) | Self::Apop(_) | Self::Auth(_)
        )
    }

    /// Commands after which nothing may be pipelined: they change the session's state, and what
    /// follows depends on their outcome (RFC 2449 §6.6, RFC 2595 §4).
    pub(crate) fn is_barrier(&self) -> bool {
        matches!(
            self,
            Self::Capa
                | Self::Stls
                | Self::User(_)
                | Self::Pass(_)
                | Self::Apop(_)
                | Self::Auth(_)
                | Self::Quit
        )
    }
}

/// Appends `verb [args]\r\n` for commands whose line needs no session state.
/// `APOP` and `AUTH` are built by the client, which holds the greeting and the SASL exchange.
pub(crate) fn encode_simple(command: &Command, out: &mut Vec<u8>) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = match command {
        Command::User(user) => write!(out, "USER {}", user.as_str()),
        Command::Pass(pass) => write!(out, "PASS {}", pass.expose()),
        Command::List(Some(n)) => write!(out, "LIST {n}"),
        Command::Uidl(Some(n)) => write!(out, "UIDL {n}"),
        Command::Top { msg, lines } => write!(out, "TOP {msg} {lines}"),
        Command::Retr(n) => write!(out, "RETR {n}"),
        Command::Dele(n) => write!(out, "DELE {n}"),
        other => write!(out, "{}", other.verb()),
    };
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(c: &Command) -> String {
        let mut out = Vec::new();
        encode_simple(c, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn wire_forms() {
        assert_eq!(line(&Command::Stat), "STAT\r\n");
        assert_eq!(line(&Command::List(None)), "LIST\r\n");
        assert_eq!(line(&Command::List(Some(3))), "LIST 3\r\n");
        assert_eq!(line(&Command::Uidl(Some(7))), "UIDL 7\r\n");
        assert_eq!(line(&Command::Top { msg: 1, lines: 0 }), "TOP 1 0\r\n");
        assert_eq!(line(&Command::Retr(12)), "RETR 12\r\n");
        assert_eq!(line(&Command::Dele(2)), "DELE 2\r\n");
        assert_eq!(line(&Command::Rset), "RSET\r\n");
        assert_eq!(line(&Command::Noop), "NOOP\r\n");
        assert_eq!(line(&Command::Quit), "QUIT\r\n");
        assert_eq!(line(&Command::Capa), "CAPA\r\n");
        assert_eq!(line(&Command::Stls), "STLS\r\n");
        assert_eq!(
            line(&Command::User(UserName::new("mrose").unwrap())),
            "USER mrose\r\n"
        );
        assert_eq!(
            line(&Command::Pass(Secret::password("secret").unwrap())),
            "PASS secret\r\n"
        );
    }

    #[test]
    fn debug_of_a_pass_command_hides_the_password() {
        let c = Command::Pass(Secret::password("hunter2").unwrap());
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
