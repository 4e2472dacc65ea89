//! Arbitrary server bytes reaching a TLS+POP3 session after a real TLS handshake (rustls on
//! both sides, in memory, the server's certificate pinned): either as the server's plaintext,
//! encrypted and cut into records at arbitrary points, or as raw bytes where TLS records belong.
//!
//! Properties: nothing panics, and a failed session stays failed.
#![no_main]

use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rustls::pki_types::{PrivatePkcs8KeyDer, UnixTime};
use rustls::{ServerConfig, ServerConnection};
use webpop_shared::pop3::{AuthMethod, Command};
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Fingerprint, Security, Session, SessionConfig, SessionEvent, Trust};

struct Pki {
    server: Arc<ServerConfig>,
    pin: Fingerprint,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = certified.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key.into())
            .unwrap();
        Pki {
            server: Arc::new(server),
            pin: Fingerprint::of(&cert),
        }
    })
}

/// Moves bytes both ways until neither side has more; false once either side failed.
fn pump(session: &mut Session, server: &mut ServerConnection) -> bool {
    for _ in 0..32 {
        let mut moved = false;
        while let Some(bytes) = session.poll_transmit() {
            moved = true;
            if server.read_tls(&mut bytes.as_slice()).is_err()
                || server.process_new_packets().is_err()
            {
                return false;
            }
            // What the session sent after the handshake (CAPA, login, commands) is read and
            // dropped: the fuzzer plays the server's side.
            let _ = std::io::copy(&mut server.reader(), &mut std::io::sink());
        }
        let mut wire = Vec::new();
        while server.wants_write() {
            if server.write_tls(&mut wire).is_err() {
                return false;
            }
        }
        if !wire.is_empty() {
            moved = true;
            if session.handle_input(&wire).is_err() {
                return false;
            }
        }
        if !drain(session) {
            return false;
        }
        if !moved {
            break;
        }
    }
    true
}

/// Reads events; once ready, queues a login and commands of every kind.
fn drain(session: &mut Session) -> bool {
    loop {
        match session.poll_event() {
            Ok(Some(SessionEvent::Ready { .. })) => {
                let _ = session.login(Credentials::new("user", "pass").unwrap(), AuthMethod::Auto);
                for command in [
                    Command::Stat,
                    Command::Uidl(None),
                    Command::List(None),
                    Command::Retr(1),
                    Command::Top { msg: 2, lines: 0 },
                    Command::Dele(1),
                    Command::Quit,
                ] {
                    let _ = session.send(command);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let pki = pki();
    let config = SessionConfig::new("localhost", Security::ImplicitTls)
        .trust(Trust::default().with_pin(pki.pin));
    let now = UnixTime::since_unix_epoch(Duration::from_secs(1_790_000_000));
    let mut session = Session::new(config, now).unwrap();
    let mut server = ServerConnection::new(Arc::clone(&pki.server)).unwrap();
    // The handshake, with no application data yet.
    assert!(
        pump(&mut session, &mut server),
        "the in-memory handshake failed"
    );
    assert!(!server.is_handshaking());

    let chunk = 1 + usize::from(selector >> 1);
    let mut failed = false;
    if selector & 1 == 0 {
        // The server's plaintext, encrypted in records of `chunk` bytes.
        for piece in data.chunks(chunk) {
            if server.writer().write_all(piece).is_err() || !pump(&mut session, &mut server) {
                failed = true;
                break;
            }
        }
    } else {
        // Raw bytes where TLS records belong.
        for piece in data.chunks(chunk) {
            if session.handle_input(piece).is_err() || !drain(&mut session) {
                failed = true;
                break;
            }
        }
    }
    if failed {
        // Sticky: a failed session never recovers on more input.
        assert!(session.handle_input(b"+OK\r\n").is_err() || session.poll_event().is_err());
    }
});
