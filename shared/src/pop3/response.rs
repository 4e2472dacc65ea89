//! Single-line server replies: `+OK`, `-ERR`, SASL continuations and RFC 2449 response codes.

/// An extended response code (RFC 2449 §8, RFC 3206) from the start of a `-ERR` text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RespCode {
    /// `[IN-USE]`: another session holds the mailbox lock. Retry later.
    InUse,
    /// `[LOGIN-DELAY]`: logged in too recently. Retry after the server's LOGIN-DELAY interval.
    LoginDelay,
    /// `[SYS/TEMP]`: a temporary server problem. Retry later.
    SysTemp,
    /// `[SYS/PERM]`: a permanent server problem. Retrying will not help.
    SysPerm,
    /// `[AUTH]`: the credentials were wrong (not a system problem). Retrying will not help.
    Auth,
    /// A code this client does not know, as sent (upper-cased).
    Other(String),
}

impl RespCode {
    fn parse(code: &str) -> Self {
        match code.to_ascii_uppercase().as_str() {
            "IN-USE" => Self::InUse,
            "LOGIN-DELAY" => Self::LoginDelay,
            "SYS/TEMP" => Self::SysTemp,
            "SYS/PERM" => Self::SysPerm,
            "AUTH" => Self::Auth,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the same request may succeed later (`IN-USE`, `LOGIN-DELAY`, `SYS/TEMP`).
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::InUse | Self::LoginDelay | Self::SysTemp)
    }
}

/// A `-ERR` reply: the server refused a command. This is an event, not a protocol error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The bracketed response code, when the server sent one.
    pub code: Option<RespCode>,
    /// The human-readable text after the code (lossily decoded; servers may send any bytes).
    pub text: String,
    /// For XOAUTH2 and OAUTHBEARER: the decoded error JSON the server sent before `-ERR`.
    pub sasl_error: Option<String>,
}

/// What a status line said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Status<'a> {
    Ok(&'a [u8]),
    Err(&'a [u8]),
    /// `+ <base64>` inside an AUTH exchange.
    Continue(&'a [u8]),
}

/// Strips one trailing LF and an optional CR before it.
pub(crate) fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Classifies a status line (without its line ending). `None` means it is not a POP3 status line.
pub(crate) fn parse_status(line: &[u8]) -> Option<Status<'_>> {
    fn rest(line: &[u8], prefix: usize) -> Option<&[u8]> {
        match line.get(prefix) {
            None => Some(&[]),
            Some(b' ') => Some(&line[prefix + 1..]),
            Some(_) => None,
        }
    }
    if line.starts_with(b"+OK") {
        rest(line, 3).map(Status::Ok)
    } else if line.starts_with(b"-ERR") {
        rest(line, 4).map(Status::Err)
    } else if line.first() == Some(&b'+') {
        rest(line, 1).map(Status::Continue)
    } else {
        None
    }
}

/// Splits `[CODE] text` into code and text.
pub(crate) fn server_error(text: &[u8]) -> ServerError {
    let text = String::from_utf8_lossy(text);
    let (code, text) = match text.strip_prefix('[').and_then(|t| t.split_once(']')) {
        Some((code, rest)) if !code.is_empty() && !code.contains(' ') => {
            (Some(RespCode::parse(code)), rest.trim_start().to_owned())
        }
        _ => (None, text.into_owned()),
    };
    ServerError {
        code,
        text,
        sasl_error: None,
    }
}

/// Finds the APOP timestamp (`<...>`) in a greeting's text (RFC 1939 §7).
pub(crate) fn apop_timestamp(text: &str) -> Option<String> {
    let start = text.find('<')?;
    let len = text[start..].find('>')?;
    let stamp = &text[start..=start + len];
    // A msg-id has no spaces and at least something between the brackets.
    (stamp.len() > 2 && !stamp.contains(char::is_whitespace)).then(|| stamp.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(parse_status(b"+OK"), Some(Status::Ok(b"")));
        assert_eq!(parse_status(b"+OK 2 320"), Some(Status::Ok(b"2 320")));
        assert_eq!(parse_status(b"-ERR no"), Some(Status::Err(b"no")));
        assert_eq!(parse_status(b"+ Zm9v"), Some(Status::Continue(b"Zm9v")));
        assert_eq!(parse_status(b"+"), Some(Status::Continue(b"")));
        assert_eq!(parse_status(b"+OKAY"), None);
        assert_eq!(parse_status(b"OK"), None);
        assert_eq!(parse_status(b""), None);
    }

    #[test]
    fn resp_codes() {
        let e = server_error(b"[IN-USE] Mailbox locked");
        assert_eq!(e.code, Some(RespCode::InUse));
        assert_eq!(e.text, "Mailbox locked");
        assert!(e.code.unwrap().is_temporary());
        assert_eq!(server_error(b"[sys/perm] x").code, Some(RespCode::SysPerm));
        assert_eq!(server_error(b"[AUTH] bad").code, Some(RespCode::Auth));
        assert_eq!(
            server_error(b"[LOGIN-DELAY] wait").code,
            Some(RespCode::LoginDelay)
        );
        assert_eq!(server_error(b"[SYS/TEMP] x").code, Some(RespCode::SysTemp));
        assert_eq!(
            server_error(b"[X-FOO] y").code,
            Some(RespCode::Other("X-FOO".into()))
        );
        assert_eq!(server_error(b"[not a code] y").code, None);
        assert_eq!(server_error(b"plain").text, "plain");
    }

    #[test]
    fn apop_stamps() {
        assert_eq!(
            apop_timestamp("POP3 server ready <1896.697170952@dbc.mtview.ca.us>").as_deref(),
            Some("<1896.697170952@dbc.mtview.ca.us>")
        );
        assert_eq!(apop_timestamp("Dovecot ready."), None);
        assert_eq!(apop_timestamp("odd <> thing"), None);
        assert_eq!(apop_timestamp("odd <a b> thing"), None);
        assert_eq!(apop_timestamp("unclosed <abc"), None);
    }
}
