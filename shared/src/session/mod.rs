//! TLS and POP3 composed: a sans-I/O session that takes and gives the bytes of the wire.
//!
//! The session does its own TLS with rustls (ring, webpki-roots), so in the browser the relay
//! only ever carries ciphertext. It runs the start of a session by itself: the greeting, STLS
//! when asked for, and CAPA, then reports [`SessionEvent::Ready`]; from there the caller sends
//! POP3 commands.

mod error;
mod trust;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::ClientConnection;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::ClientConfig;

pub use error::SessionError;
pub use trust::{BadFingerprint, CertProblem, Fingerprint, Trust};

use crate::pop3::{self, Capabilities, Command, Event, Greeting, Handle, Reply};
use crate::secret::Credentials;
use trust::Verifier;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// TLS from the first byte (RFC 8314; port 995).
    ImplicitTls,
    /// Plaintext greeting, then STLS (RFC 2595; port 110). Refused if the server does not offer it.
    StartTls,
    /// No encryption at all. Allowed only when the host is a loopback address: for tests.
    InsecurePlaintextLoopbackOnly,
}

/// What a session connects to and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The server's name as dialled: checked against its certificate.
    pub host: String,
    /// How the connection is protected.
    pub security: Security,
    /// Extra trust for private or self-signed servers.
    pub trust: Trust,
    /// POP3 limits.
    pub pop3: pop3::Options,
}

impl SessionConfig {
    /// A config with the web PKI and default limits.
    pub fn new(host: impl Into<String>, security: Security) -> Self {
        Self {
            host: host.into(),
            security,
            trust: Trust::default(),
            pop3: pop3::Options::default(),
        }
    }

    /// Sets the trust settings.
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// Sets the POP3 options.
    pub fn pop3_options(mut self, options: pop3::Options) -> Self {
        self.pop3 = options;
        self
    }
}

/// What the session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The connection is set up (TLS up, CAPA read): log in now.
    Ready {
        /// The server's greeting.
        greeting: Greeting,
        /// What the server offers (empty if it does not support CAPA).
        capabilities: Capabilities,
    },
    /// An event for a command the caller sent.
    Pop3(Event),
}

/// Where the automatic start of the session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Greeting,
    Capa(Handle),
    Stls(Handle),
    Handshake,
    Done,
}

/// rustls asks the time to check certificate dates; the session never reads a clock itself.
#[derive(Debug)]
struct FixedTime(UnixTime);

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// A sans-I/O TLS+POP3 session.
///
/// Call order, like [`pop3::Client`]: [`Session::handle_input`] with bytes from the socket,
/// [`Session::poll_event`] until `Ok(None)`, [`Session::poll_transmit`] and write what it gives.
/// Send commands with [`Session::send`] or [`Session::login`] after [`SessionEvent::Ready`].
pub struct Session {
    client: pop3::Client,
    security: Security,
    tls_config: Arc<ClientConfig>,
    verifier: Arc<Verifier>,
    server_name: ServerName<'static>,
    tls: Option<ClientConnection>,
    setup: Setup,
    out: Vec<u8>,
    plain: Vec<u8>,
    pending_events: VecDeque<SessionEvent>,
    error: Option<SessionError>,
}

impl std::fmt::Debug for Session {
    /// Shows the session's shape, never its buffers (see `Client`'s `Debug`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("security", &self.security)
            .field("server_name", &self.server_name)
            .field("tls", &self.tls_parameters())
            .field("client", &self.client)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// ring's provider, preferring ChaCha20-Poly1305 where AES has no hardware help (wasm32: the
/// page decrypts every byte of mail, and ChaCha20 is several times faster there). Servers that
/// honour the client's preference (Dovecot by default) then pick it.
fn crypto_provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if cfg!(target_arch = "wasm32") {
        provider.cipher_suites.sort_by_key(|suite| {
            !matches!(
                suite.suite(),
                rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            )
        });
    }
    provider
}

impl Session {
    /// A session for a new connection. `now` is used to check certificate dates.
    pub fn new(config: SessionConfig, now: UnixTime) -> Result<Self, SessionError> {
        let provider = Arc::new(crypto_provider());
        let verifier = Arc::new(
            Verifier::new(&config.trust, provider.clone()).map_err(SessionError::BadTrust)?,
        );
        let tls_config = Arc::new(Self::tls_config(provider, verifier.clone(), now)?);
        let server_name =
            ServerName::try_from(config.host.clone()).map_err(|_| SessionError::BadServerName {
                host: config.host.clone(),
            })?;
        let mut session = Self {
            client: pop3::Client::new(config.pop3),
            security: config.security,
            tls_config,
            verifier,
            server_name,
            tls: None,
            setup: Setup::Greeting,
            out: Vec::new(),
            plain: vec![0; 16 * 1024],
            pending_events: VecDeque::new(),
            error: None,
        };
        match config.security {
            Security::ImplicitTls => session.start_tls()?,
            Security::StartTls => {}
            Security::InsecurePlaintextLoopbackOnly => {
                if !is_loopback(&config.host) {
                    return Err(SessionError::PlaintextNotLoopback { host: config.host });
                }
                session.client.allow_plaintext_credentials();
            }
        }
        Ok(session)
    }

    fn tls_config(
        provider: Arc<CryptoProvider>,
        verifier: Arc<Verifier>,
        now: UnixTime,
    ) -> Result<ClientConfig, SessionError> {
        Ok(
            ClientConfig::builder_with_details(provider, Arc::new(FixedTime(now)))
                .with_safe_default_protocol_versions()
                .map_err(SessionError::BadTrust)?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        )
    }

    fn start_tls(&mut self) -> Result<(), SessionError> {
        let conn = ClientConnection::new(self.tls_config.clone(), self.server_name.clone())
            .map_err(SessionError::Tls)?;
        self.tls = Some(conn);
        Ok(())
    }

    // ---- getters ----

    /// The POP3 client inside, for its state and capabilities.
    pub fn pop3(&self) -> &pop3::Client {
        &self.client
    }

    /// The negotiated TLS version and cipher suite, once TLS is up.
    pub fn tls_parameters(&self) -> Option<(rustls::ProtocolVersion, rustls::CipherSuite)> {
        let tls = self.tls.as_ref()?;
        Some((
            tls.protocol_version()?,
            tls.negotiated_cipher_suite()?.suite(),
        ))
    }

    // ---- input ----

    /// Takes bytes read from the socket.
    pub fn handle_input(&mut self, wire: &[u8]) -> Result<(), SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.feed(wire);
        self.sticky(result)
    }

    fn feed(&mut self, mut wire: &[u8]) -> Result<(), SessionError> {
        if self.tls.is_none() {
            self.client.handle_input(wire);
            return Ok(());
        }
        while let (false, Some(tls)) = (wire.is_empty(), self.tls.as_mut()) {
            // read_tls takes at most one buffer's worth; decrypting in between keeps it draining.
            tls.read_tls(&mut wire)
                .map_err(|e| SessionError::Tls(rustls::Error::General(e.to_string())))?;
            if let Err(e) = tls.process_new_packets() {
                return Err(self.tls_error(e));
            }
            self.drain_plaintext();
        }
        self.after_tls_progress()
    }

    fn drain_plaintext(&mut self) {
        let Some(tls) = &mut self.tls else { return };
        loop {
            match tls.reader().read(&mut self.plain) {
                Ok(0) => {
                    // close_notify: the server ended the session.
                    self.client.handle_eof();
                    break;
                }
                Ok(n) => self.client.handle_input(&self.plain[..n]),
                // WouldBlock: nothing more decrypted yet.
                Err(_) => break,
            }
        }
    }

    fn after_tls_progress(&mut self) -> Result<(), SessionError> {
        let handshaken = self.tls.as_ref().is_some_and(|t| !t.is_handshaking());
        if handshaken && !self.client.is_secure() {
            self.client.tls_established();
            if self.setup == Setup::Handshake {
                // RFC 2595 §4: capabilities may differ under TLS; ask again.
                self.setup = Setup::Capa(self.client.send(Command::Capa)?);
            }
        }
        Ok(())
    }

    fn tls_error(&self, e: rustls::Error) -> SessionError {
        match (&e, self.verifier.refused()) {
            (rustls::Error::InvalidCertificate(ce), Some(refusal)) => SessionError::Certificate {
                problem: refusal
                    .problem
                    .unwrap_or_else(|| CertProblem::from_rustls(ce)),
                fingerprint: refusal.fingerprint,
            },
            _ => SessionError::Tls(e),
        }
    }

    /// Records that the server closed the connection.
    pub fn handle_eof(&mut self) {
        if let Some(tls) = &mut self.tls {
            // Lets rustls note the end of the stream; a missing close_notify is not our concern
            // because POP3 replies are self-delimiting and checked by the client.
            let _ = tls.read_tls(&mut &[][..]);
        }
        self.client.handle_eof();
    }

    // ---- commands ----

    /// Queues a command.
    pub fn send(&mut self, command: Command) -> Result<Handle, SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        Ok(self.client.send(command)?)
    }

    /// Logs in with a password; see [`pop3::Client::login`].
    pub fn login(
        &mut self,
        credentials: Credentials,
        method: pop3::AuthMethod,
    ) -> Result<Handle, SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        Ok(self.client.login(credentials, method)?)
    }

    // ---- output ----

    /// Bytes to write to the socket, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let plain = self.client.poll_transmit();
        match &mut self.tls {
            None => {
                if let Some(plain) = plain {
                    self.out.extend_from_slice(&plain);
                }
            }
            Some(tls) => {
                if let Some(plain) = plain {
                    // rustls buffers plaintext written before the handshake ends; it cannot fail.
                    let _ = tls.writer().write_all(&plain);
                }
                while tls.wants_write() {
                    if tls.write_tls(&mut self.out).is_err() {
                        break;
                    }
                }
            }
        }
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out))
    }

    // ---- events ----

    /// The next event, `Ok(None)` if more input is needed.
    pub fn poll_event(&mut self) -> Result<Option<SessionEvent>, SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.next_event();
        self.sticky(result)
    }

    fn sticky<T>(&mut self, result: Result<T, SessionError>) -> Result<T, SessionError> {
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }

    fn next_event(&mut self) -> Result<Option<SessionEvent>, SessionError> {
        loop {
            if let Some(event) = self.pending_events.pop_front() {
                return Ok(Some(event));
            }
            let Some(event) = self.client.poll_event()? else {
                return Ok(None);
            };
            if let Some(event) = self.on_event(event)? {
                return Ok(Some(event));
            }
        }
    }

    /// Runs the session's own start-up steps; passes other events on.
    fn on_event(&mut self, event: Event) -> Result<Option<SessionEvent>, SessionError> {
        match (self.setup, event) {
            (Setup::Greeting, Event::GreetingRejected(e)) => Err(SessionError::Refused(e)),
            (Setup::Greeting, Event::Greeting(_)) => {
                self.setup = Setup::Capa(self.client.send(Command::Capa)?);
                Ok(None)
            }
            (Setup::Capa(h), Event::Reply { handle, reply }) if h == handle => {
                let caps = match reply {
                    Reply::Capabilities(caps) => caps,
                    _ => Capabilities::default(),
                };
                if self.needs_stls() {
                    if !caps.stls {
                        return Err(SessionError::StlsNotOffered);
                    }
                    self.setup = Setup::Stls(self.client.send(Command::Stls)?);
                    return Ok(None);
                }
                Ok(Some(self.ready(caps)))
            }
            (Setup::Capa(h), Event::Rejected { handle, .. }) if h == handle => {
                if self.needs_stls() {
                    // No CAPA: STLS may still work; its own reply decides.
                    self.setup = Setup::Stls(self.client.send(Command::Stls)?);
                    return Ok(None);
                }
                Ok(Some(self.ready(Capabilities::default())))
            }
            (Setup::Stls(h), Event::Reply { handle, .. }) if h == handle => {
                self.setup = Setup::Handshake;
                self.start_tls()?;
                Ok(None)
            }
            (Setup::Stls(h), Event::Rejected { handle, error }) if h == handle => {
                Err(SessionError::StlsRefused(error))
            }
            (_, event) => Ok(Some(SessionEvent::Pop3(event))),
        }
    }

    fn needs_stls(&self) -> bool {
        self.security == Security::StartTls && self.tls.is_none()
    }

    fn ready(&mut self, capabilities: Capabilities) -> SessionEvent {
        self.setup = Setup::Done;
        SessionEvent::Ready {
            greeting: self.client.greeting().cloned().unwrap_or(Greeting {
                text: String::new(),
                apop_timestamp: None,
            }),
            capabilities,
        }
    }
}

/// Whether `host` names this machine: a loopback IP, or `localhost`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;
