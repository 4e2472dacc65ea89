//! The relay's wire contract, shared by `webpop-proxy` and the web app.
//!
//! The page opens a WebSocket to [`PATH`] with the target in the query string
//! ([`RelayRequest::to_query`]) and, when the relay needs an access token, the token as a
//! WebSocket subprotocol ([`token_protocol`]), never in the query string, which access logs
//! record. Binary frames then carry raw TCP bytes both ways; the page does
//! its own TLS, so the relay only ever sees ciphertext. The relay ends a session with a close
//! frame whose code is one of [`CloseReason`]: a browser cannot read the HTTP status of a failed
//! WebSocket handshake, so everything the page should be able to explain is reported after the
//! upgrade, as a close code.
//!
//! A page that also offers [`FLOW_PROTOCOL`] gets flow control ([`flow`]): the relay sends it
//! at most [`flow::WINDOW`] bytes it has not acknowledged, and the page acknowledges with text
//! frames as it consumes them, so a page that stops reading stops the relay reading the server.

use std::fmt;

use rustls_pki_types::ServerName;

use crate::secret::Secret;

pub mod flow;

pub use flow::PROTOCOL as FLOW_PROTOCOL;

/// The relay endpoint's path.
pub const PATH: &str = "/relay";

/// The largest frame either side sends or accepts (64 KiB). Chromium receives 64 KiB frames
/// fastest, and the bound keeps the relay's buffers small.
pub const MAX_FRAME: usize = 64 * 1024;

/// The relay's WebSocket subprotocol. A page that offers it (with its token, see
/// [`token_protocol`]) gets it back in `Sec-WebSocket-Protocol`.
pub const PROTOCOL: &str = "webpop";

/// The start of the subprotocol that carries the access token: `webpop.token.` and the token
/// in unpadded base64url, since a subprotocol may hold only letters, digits and a few signs.
pub const TOKEN_PROTOCOL_PREFIX: &str = "webpop.token.";

/// The subprotocol a page offers, next to [`PROTOCOL`], to present `token`. Headers stay out of
/// access logs, unlike the query string; the relay never answers with this one.
pub fn token_protocol(token: &Secret) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.expose());
    format!("{TOKEN_PROTOCOL_PREFIX}{encoded}")
}

/// The access token among the subprotocols a request offers (each `Sec-WebSocket-Protocol`
/// header value, comma-separated), if there is one.
///
/// # Errors
/// [`RequestError::BadToken`] when the token protocol is malformed or offered twice.
pub fn token_from_protocols<'a>(
    header_values: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Secret>, RequestError> {
    use base64::Engine as _;
    let mut found = None;
    for protocol in header_values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
    {
        let Some(encoded) = protocol.strip_prefix(TOKEN_PROTOCOL_PREFIX) else {
            continue;
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| RequestError::BadToken)?;
        let text = String::from_utf8(bytes).map_err(|_| RequestError::BadToken)?;
        let token = Secret::token(text).map_err(|_| RequestError::BadToken)?;
        if found.replace(token).is_some() {
            return Err(RequestError::Repeated(param::TOKEN));
        }
    }
    Ok(found)
}

/// The access token in a page address's fragment (`#token=...`, percent-encoded, possibly
/// among other `name=value` pairs), which a browser never sends to a server: how a relay's
/// operator hands the token to users (`https://relay.example/#token=...`).
pub fn token_from_fragment(fragment: &str) -> Option<Secret> {
    let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
    form_urlencoded::parse(fragment.as_bytes())
        .find(|(name, _)| name == param::TOKEN)
        .and_then(|(_, value)| Secret::token(value.into_owned()).ok())
        .filter(|token| !token.expose().is_empty())
}

/// Query parameter names.
pub mod param {
    /// The mail server's host name or IP address.
    pub const HOST: &str = "host";
    /// The mail server's TCP port.
    pub const PORT: &str = "port";
    /// The relay's access token, when the relay requires one. Still accepted, but a page sends
    /// it as a subprotocol instead ([`super::token_protocol`]): query strings end up in logs.
    pub const TOKEN: &str = "token";
}

/// Why a relay request could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A required parameter is absent.
    #[error("the relay request has no `{0}` parameter")]
    Missing(&'static str),
    /// A parameter appears more than once.
    #[error("the relay request has more than one `{0}` parameter")]
    Repeated(&'static str),
    /// The port is not a number from 1 to 65535.
    #[error("`{0}` is not a TCP port")]
    BadPort(String),
    /// The host is neither a DNS name nor an IP address.
    #[error("`{0}` is not a host name or IP address")]
    BadHost(String),
    /// The token holds a line break or NUL byte.
    #[error("the access token holds a forbidden byte")]
    BadToken,
}

/// A mail server to relay to: a validated host (DNS name or IP address) and a port.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Target {
    host: String,
    port: u16,
}

impl Target {
    /// Checks `host` (a DNS name, an IPv4 address, or an IPv6 address with or without brackets)
    /// and `port` (not 0). DNS names are lower-cased and lose a trailing dot.
    pub fn new(host: &str, port: u16) -> Result<Self, RequestError> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let bare = bare.strip_suffix('.').unwrap_or(bare);
        // One trailing dot is the root; a second is an empty label (and would make the name
        // change each time it is read back).
        if bare.is_empty() || bare.len() > 253 || bare.ends_with('.') {
            return Err(RequestError::BadHost(host.to_owned()));
        }
        match ServerName::try_from(bare) {
            Ok(ServerName::IpAddress(ip)) => Ok(Self {
                host: std::net::IpAddr::from(ip).to_string(),
                port: checked_port(port)?,
            }),
            Ok(_) => Ok(Self {
                host: bare.to_ascii_lowercase(),
                port: checked_port(port)?,
            }),
            Err(_) => Err(RequestError::BadHost(host.to_owned())),
        }
    }

    /// The host: a lower-case DNS name or an IP address in its canonical text form.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.host.parse().ok()
    }
}

fn checked_port(port: u16) -> Result<u16, RequestError> {
    if port == 0 {
        return Err(RequestError::BadPort("0".into()));
    }
    Ok(port)
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// What the page asks of the relay: where to connect, and the access token if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRequest {
    /// The mail server.
    pub target: Target,
    /// The relay's access token, if the relay requires one.
    pub token: Option<Secret>,
}

impl RelayRequest {
    /// A request for `target` without a token.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            token: None,
        }
    }

    /// Adds an access token.
    pub fn with_token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }

    /// The query string (without `?`) for [`PATH`].
    pub fn to_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair(param::HOST, self.target.host());
        query.append_pair(param::PORT, &self.target.port().to_string());
        if let Some(token) = &self.token {
            query.append_pair(param::TOKEN, token.expose());
        }
        query.finish()
    }

    /// Parses a query string (without `?`). Unknown parameters are ignored; repeated ones are
    /// refused, so two parts of a stack cannot read different values.
    pub fn from_query(query: &str) -> Result<Self, RequestError> {
        let (mut host, mut port, mut token) = (None, None, None);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let (slot, name) = match name.as_ref() {
                param::HOST => (&mut host, param::HOST),
                param::PORT => (&mut port, param::PORT),
                param::TOKEN => (&mut token, param::TOKEN),
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(RequestError::Repeated(name));
            }
        }
        let host = host.ok_or(RequestError::Missing(param::HOST))?;
        let port = port.ok_or(RequestError::Missing(param::PORT))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| RequestError::BadPort(port.clone()))?;
        let target = Target::new(&host, port)?;
        let token = token
            .map(|t| Secret::token(t).map_err(|_| RequestError::BadToken))
            .transpose()?;
        Ok(Self { target, token })
    }
}

/// Why the relay closed a WebSocket: the close code, and a reason a person can read.
///
/// Codes 4000–4999 are the relay's own (RFC 6455 leaves them to applications); the others are
/// RFC 6455's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The mail server closed the connection (1000).
    Done,
    /// The relay is shutting down (1001).
    ShuttingDown,
    /// The page sent a text frame; the relay carries bytes only (1003).
    TextFrame,
    /// The page sent a frame larger than [`MAX_FRAME`] (1009).
    FrameTooLarge,
    /// Something unexpected went wrong in the relay (1011).
    Internal,
    /// The relay's policy does not allow this host or port (4001).
    ForbiddenTarget,
    /// The host name could not be resolved (4002).
    DnsFailure,
    /// The mail server refused the connection or could not be reached (4003).
    ConnectRefused,
    /// The mail server did not answer in time (4004).
    ConnectTimeout,
    /// The relay or this client has too many connections open (4005).
    LimitReached,
    /// Nothing was sent either way for too long (4006).
    IdleTimeout,
    /// The session reached the relay's maximum lifetime (4007).
    LifetimeReached,
    /// The access token is missing or wrong (4008).
    Unauthorized,
    /// The request's query string is malformed (4009).
    BadRequest,
    /// The connection to the mail server failed mid-session (4010).
    UpstreamError,
    /// The page broke flow control: it acknowledged bytes it was never sent, or sent a text
    /// frame that is not an acknowledgement (4011; see [`flow`]).
    FlowViolation,
}

impl CloseReason {
    /// Every reason, for tables and tests.
    pub const ALL: [CloseReason; 16] = [
        Self::Done,
        Self::ShuttingDown,
        Self::TextFrame,
        Self::FrameTooLarge,
        Self::Internal,
        Self::ForbiddenTarget,
        Self::DnsFailure,
        Self::ConnectRefused,
        Self::ConnectTimeout,
        Self::LimitReached,
        Self::IdleTimeout,
        Self::LifetimeReached,
        Self::Unauthorized,
        Self::BadRequest,
        Self::UpstreamError,
        Self::FlowViolation,
    ];

    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            Self::Done => 1000,
            Self::ShuttingDown => 1001,
            Self::TextFrame => 1003,
            Self::FrameTooLarge => 1009,
            Self::Internal => 1011,
            Self::ForbiddenTarget => 4001,
            Self::DnsFailure => 4002,
            Self::ConnectRefused => 4003,
            Self::ConnectTimeout => 4004,
            Self::LimitReached => 4005,
            Self::IdleTimeout => 4006,
            Self::LifetimeReached => 4007,
            Self::Unauthorized => 4008,
            Self::BadRequest => 4009,
            Self::UpstreamError => 4010,
            Self::FlowViolation => 4011,
        }
    }

    /// The reason for a close code, if it is one of ours.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// A short reason a person can read, sent in the close frame (at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Done => "the mail server closed the connection",
            Self::ShuttingDown => "the relay is shutting down",
            Self::TextFrame => "the relay carries binary frames only",
            Self::FrameTooLarge => "frame larger than 64 KiB",
            Self::Internal => "internal relay error",
            Self::ForbiddenTarget => "this relay does not allow that server and port",
            Self::DnsFailure => "the server name could not be resolved",
            Self::ConnectRefused => "could not connect: the server refused or is unreachable",
            Self::ConnectTimeout => "could not connect: timed out",
            Self::LimitReached => "too many connections; try again later",
            Self::IdleTimeout => "closed after being idle too long",
            Self::LifetimeReached => "closed after reaching the maximum session time",
            Self::Unauthorized => "missing or wrong relay access token",
            Self::BadRequest => "malformed relay request",
            Self::UpstreamError => "the connection to the mail server failed",
            Self::FlowViolation => "the page broke the relay's flow control",
        }
    }

    /// A label for metrics and logs (`snake_case`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::ShuttingDown => "shutting_down",
            Self::TextFrame => "text_frame",
            Self::FrameTooLarge => "frame_too_large",
            Self::Internal => "internal",
            Self::ForbiddenTarget => "forbidden_target",
            Self::DnsFailure => "dns_failure",
            Self::ConnectRefused => "connect_refused",
            Self::ConnectTimeout => "connect_timeout",
            Self::LimitReached => "limit_reached",
            Self::IdleTimeout => "idle_timeout",
            Self::LifetimeReached => "lifetime_reached",
            Self::Unauthorized => "unauthorized",
            Self::BadRequest => "bad_request",
            Self::UpstreamError => "upstream_error",
            Self::FlowViolation => "flow_violation",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.code())
    }
}

/// A relay session that ended abnormally, in words for the person using the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The relay's policy refused the target.
    #[error("this relay does not allow {0}")]
    Forbidden(Target),
    /// The server name did not resolve.
    #[error("could not find the server {}", .0.host())]
    DnsFailure(Target),
    /// The server refused the connection or could not be reached.
    #[error("could not connect to {0}: refused or unreachable")]
    ConnectRefused(Target),
    /// The server did not answer in time.
    #[error("could not connect to {0}: timed out")]
    ConnectTimeout(Target),
    /// The relay, or this client, has too many connections open.
    #[error("the relay is busy (too many connections); try again later")]
    Busy,
    /// The access token is missing or wrong.
    #[error("the relay needs a valid access token")]
    Unauthorized,
    /// The session was closed by a timeout or because the relay is stopping.
    #[error("the relay closed the connection: {0}")]
    Closed(&'static str),
    /// The connection to the mail server failed mid-session.
    #[error("the connection to {0} failed")]
    ServerLost(Target),
    /// The WebSocket ended without a close frame (code 1006): the relay could not be reached,
    /// or the connection to it dropped.
    #[error("could not reach the relay, or the connection to it dropped")]
    Unreachable,
    /// Anything else: the code and reason as received (the reason is not shown: it is whatever
    /// the other end sent).
    #[error("the relay closed the connection unexpectedly (code {code})")]
    Other {
        /// The close code.
        code: u16,
        /// The close reason, as sent.
        reason: String,
    },
}

/// The close code a browser reports when the connection ended without a close frame.
const ABNORMAL_CLOSURE: u16 = 1006;

impl RelayError {
    /// The error for a close with `code` and `reason` of a session to `target`, or `None` for
    /// the normal end (the mail server closed the connection).
    pub fn from_close(target: &Target, code: u16, reason: &str) -> Option<Self> {
        let target = target.clone();
        Some(match CloseReason::from_code(code) {
            Some(CloseReason::Done) => return None,
            Some(CloseReason::ForbiddenTarget) => Self::Forbidden(target),
            Some(CloseReason::DnsFailure) => Self::DnsFailure(target),
            Some(CloseReason::ConnectRefused) => Self::ConnectRefused(target),
            Some(CloseReason::ConnectTimeout) => Self::ConnectTimeout(target),
            Some(CloseReason::LimitReached) => Self::Busy,
            Some(CloseReason::Unauthorized) => Self::Unauthorized,
            Some(CloseReason::UpstreamError) => Self::ServerLost(target),
            Some(
                r @ (CloseReason::ShuttingDown
                | CloseReason::IdleTimeout
                | CloseReason::LifetimeReached
                | CloseReason::TextFrame
                | CloseReason::FrameTooLarge
                | CloseReason::BadRequest
                | CloseReason::FlowViolation
                | CloseReason::Internal),
            ) => Self::Closed(r.reason()),
            None if code == ABNORMAL_CLOSURE => Self::Unreachable,
            None => Self::Other {
                code,
                reason: reason.to_owned(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_read_from_the_fragment_alone_or_among_other_pairs() {
        let read = |f: &str| token_from_fragment(f).map(|t| t.expose().to_owned());
        assert_eq!(read("#token=abc"), Some("abc".into()));
        assert_eq!(read("token=a%2Fb%2Bc%3D"), Some("a/b+c=".into()));
        assert_eq!(read("#view=inbox&token=t1"), Some("t1".into()));
        assert_eq!(read("#token="), None);
        assert_eq!(read("#tok=abc"), None);
        assert_eq!(read(""), None);
        assert_eq!(read("#token=a%0Ab"), None);
    }

    #[test]
    fn any_token_round_trips_through_a_subprotocol_made_of_token_characters() {
        for token in ["open sesame", "a/b+c==", "tok-9f8e7d", "ünïcødé"] {
            let protocol = token_protocol(&Secret::token(token).unwrap());
            assert!(
                protocol
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{protocol}"
            );
            let header = format!("{PROTOCOL}, {protocol}");
            let back = token_from_protocols([header.as_str()]).unwrap().unwrap();
            assert_eq!(back.expose(), token);
            // Split over two headers, too.
            let back = token_from_protocols([PROTOCOL, protocol.as_str()]).unwrap();
            assert_eq!(back.unwrap().expose(), token);
        }
        assert_eq!(token_from_protocols([PROTOCOL]).unwrap(), None);
        assert_eq!(token_from_protocols([]).unwrap(), None);
        assert!(token_from_protocols(["webpop.token.***"]).is_err());
        assert!(token_from_protocols(["webpop.token.YQ, webpop.token.Yg"]).is_err());
    }

    /// Found by fuzzing (relay_query): "host.." lost one dot per read, so a request written
    /// out and read back named another host.
    #[test]
    fn a_host_with_two_trailing_dots_is_refused_and_one_dot_reads_back_the_same() {
        assert!(matches!(
            Target::new("pop.example.com..", 995),
            Err(RequestError::BadHost(_))
        ));
        let one = Target::new("Pop.Example.com.", 995).unwrap();
        assert_eq!(one.host(), "pop.example.com");
        assert_eq!(Target::new(one.host(), 995).unwrap(), one);
        let request = RelayRequest::from_query("host=pop.example.com.&port=995").unwrap();
        let again = RelayRequest::from_query(&request.to_query()).unwrap();
        assert_eq!(again.target, request.target);
    }

    #[test]
    fn close_codes_are_distinct_round_trip_and_fit_a_close_frame() {
        let mut codes: Vec<u16> = CloseReason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CloseReason::ALL.len());
        for reason in CloseReason::ALL {
            assert_eq!(CloseReason::from_code(reason.code()), Some(reason));
            assert!(reason.reason().len() <= 123, "{reason:?}");
        }
        assert_eq!(CloseReason::from_code(1006), None);
    }

    #[test]
    fn query_round_trips_with_token_and_odd_bytes() {
        let request = RelayRequest::new(Target::new("Pop.Example.COM.", 995).unwrap())
            .with_token(Secret::token("a b&c=d/é").unwrap());
        let query = request.to_query();
        assert!(query.starts_with("host=pop.example.com&port=995&token="));
        assert_eq!(RelayRequest::from_query(&query).unwrap(), request);
    }

    #[test]
    fn ip_hosts_are_canonical() {
        assert_eq!(Target::new("[::1]", 995).unwrap().host(), "::1");
        assert_eq!(
            Target::new("::ffff:127.0.0.1", 995).unwrap().to_string(),
            "[::ffff:127.0.0.1]:995"
        );
        assert_eq!(
            Target::new("127.0.0.1", 110).unwrap().to_string(),
            "127.0.0.1:110"
        );
    }

    #[test]
    fn close_codes_become_words_for_the_user() {
        let t = Target::new("pop.example.com", 995).unwrap();
        let say = |code| RelayError::from_close(&t, code, "").map(|e| e.to_string());
        assert_eq!(say(1000), None);
        assert_eq!(
            say(4001).unwrap(),
            "this relay does not allow pop.example.com:995"
        );
        assert_eq!(
            say(4004).unwrap(),
            "could not connect to pop.example.com:995: timed out"
        );
        assert_eq!(
            say(4002).unwrap(),
            "could not find the server pop.example.com"
        );
        assert_eq!(
            say(4006).unwrap(),
            "the relay closed the connection: closed after being idle too long"
        );
        // bug: a relay that was down read "The relay closed the connection (code 1006: )".
        assert_eq!(
            RelayError::from_close(&t, 1006, "").unwrap().to_string(),
            "could not reach the relay, or the connection to it dropped"
        );
        assert_eq!(
            RelayError::from_close(&t, 1013, "<script>")
                .unwrap()
                .to_string(),
            "the relay closed the connection unexpectedly (code 1013)"
        );
        for reason in CloseReason::ALL {
            let _ = RelayError::from_close(&t, reason.code(), reason.reason());
        }
    }

    #[test]
    fn malformed_queries_are_refused() {
        use RequestError::*;
        for (query, want) in [
            ("port=995", Missing("host")),
            ("host=a.example", Missing("port")),
            ("host=a.example&port=99999", BadPort("99999".into())),
            ("host=a.example&port=0", BadPort("0".into())),
            ("host=a.example&port=-1", BadPort("-1".into())),
            ("host=a.example&host=b.example&port=995", Repeated("host")),
            ("host=bad_host!&port=995", BadHost("bad_host!".into())),
            ("host=&port=995", BadHost(String::new())),
            (
                "host=a.example%0d%0a&port=995",
                BadHost("a.example\r\n".into()),
            ),
            ("host=a.example&port=995&token=x%0Ay", BadToken),
        ] {
            assert_eq!(RelayRequest::from_query(query), Err(want), "{query}");
        }
    }
}
