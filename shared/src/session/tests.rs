//! Session behaviour that needs no TLS peer; TLS itself is proven against Dovecot in
//! `shared/tests/dovecot.rs`.

use super::*;

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_790_000_000))
}

fn events(s: &mut Session) -> Result<Vec<SessionEvent>, SessionError> {
    let mut all = Vec::new();
    while let Some(e) = s.poll_event()? {
        all.push(e);
    }
    Ok(all)
}

#[test]
fn plaintext_mode_is_refused_for_a_remote_host() {
    let config = SessionConfig::new("pop.example.org", Security::InsecurePlaintextLoopbackOnly);
    assert!(matches!(
        Session::new(config, now()),
        Err(SessionError::PlaintextNotLoopback { .. })
    ));
    for host in ["127.0.0.1", "::1", "localhost", "127.1.2.3"] {
        let config = SessionConfig::new(host, Security::InsecurePlaintextLoopbackOnly);
        assert!(Session::new(config, now()).is_ok(), "{host}");
    }
}

#[test]
fn bad_server_name() {
    let config = SessionConfig::new("not a host", Security::ImplicitTls);
    assert!(matches!(
        Session::new(config, now()),
        Err(SessionError::BadServerName { .. })
    ));
}

#[test]
fn plain_port_without_stls_is_refused_with_an_explanation() {
    let mut s = Session::new(SessionConfig::new("localhost", Security::StartTls), now()).unwrap();
    s.handle_input(b"+OK hello\r\n").unwrap();
    assert!(events(&mut s).unwrap().is_empty());
    assert_eq!(s.poll_transmit().unwrap(), b"CAPA\r\n");
    s.handle_input(b"+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n")
        .unwrap();
    let e = events(&mut s).unwrap_err();
    assert_eq!(e, SessionError::StlsNotOffered);
    assert!(e.to_string().contains("password would travel in the clear"));
    // Sticky, and nothing more is sent.
    assert_eq!(s.poll_event().unwrap_err(), e);
    assert_eq!(s.poll_transmit(), None);
}

#[test]
fn stls_refused() {
    let mut s = Session::new(SessionConfig::new("localhost", Security::StartTls), now()).unwrap();
    s.handle_input(b"+OK hello\r\n").unwrap();
    events(&mut s).unwrap();
    s.poll_transmit();
    s.handle_input(b"-ERR what\r\n").unwrap();
    events(&mut s).unwrap();
    assert_eq!(s.poll_transmit().unwrap(), b"STLS\r\n");
    s.handle_input(b"-ERR [SYS/TEMP] no TLS today\r\n").unwrap();
    assert!(matches!(events(&mut s), Err(SessionError::StlsRefused(_))));
}

#[test]
fn stls_accepted_starts_a_tls_handshake() {
    let mut s = Session::new(SessionConfig::new("localhost", Security::StartTls), now()).unwrap();
    s.handle_input(b"+OK hello\r\n").unwrap();
    events(&mut s).unwrap();
    s.poll_transmit();
    s.handle_input(b"+OK\r\nSTLS\r\n.\r\n").unwrap();
    events(&mut s).unwrap();
    assert_eq!(s.poll_transmit().unwrap(), b"STLS\r\n");
    s.handle_input(b"+OK begin\r\n").unwrap();
    assert!(events(&mut s).unwrap().is_empty());
    let hello = s.poll_transmit().unwrap();
    assert_eq!(hello[0], 0x16, "a TLS handshake record follows STLS");
    // Credentials are still refused: the handshake has not finished.
    let creds = Credentials::new("u", "p").unwrap();
    assert!(matches!(
        s.login(creds, pop3::AuthMethod::UserPass),
        Err(SessionError::Pop3(pop3::Error::CredentialsWithoutTls))
    ));
}

#[test]
fn plaintext_loopback_session_reaches_ready_and_logs_in() {
    let config = SessionConfig::new("127.0.0.1", Security::InsecurePlaintextLoopbackOnly);
    let mut s = Session::new(config, now()).unwrap();
    s.handle_input(b"+OK hi\r\n").unwrap();
    events(&mut s).unwrap();
    s.poll_transmit();
    s.handle_input(b"+OK\r\nUSER\r\n.\r\n").unwrap();
    assert!(matches!(
        events(&mut s).unwrap().as_slice(),
        [SessionEvent::Ready { .. }]
    ));
    s.login(Credentials::new("u", "p").unwrap(), pop3::AuthMethod::Auto)
        .unwrap();
    assert_eq!(s.poll_transmit().unwrap(), b"USER u\r\n");
}

#[test]
fn garbage_instead_of_tls_is_a_tls_error() {
    let mut s = Session::new(
        SessionConfig::new("localhost", Security::ImplicitTls),
        now(),
    )
    .unwrap();
    assert_eq!(s.poll_transmit().unwrap()[0], 0x16);
    let e = s.handle_input(b"+OK plaintext greeting\r\n").unwrap_err();
    assert!(matches!(e, SessionError::Tls(_)), "{e:?}");
    assert_eq!(s.poll_event().unwrap_err(), e);
}
