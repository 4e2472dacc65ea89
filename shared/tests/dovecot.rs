//! Full sessions against a real Dovecot on 127.0.0.1 (see `webpop_testkit::dovecot`): logins,
//! a pipelined download compared byte-for-byte with Dovecot's files, deletion semantics, and
//! certificate trust.

use std::collections::HashMap;
use std::time::Duration;

use rustls::pki_types::UnixTime;
use tokio::net::TcpStream;
use webpop_shared::connection::ConnectionError;
use webpop_shared::pop3::{AuthMethod, Command, Event, Reply, RespCode};
use webpop_shared::secret::Credentials;
use webpop_shared::session::{
    CertProblem, Fingerprint, Security, SessionConfig, SessionError, Trust,
};
use webpop_shared::tokio_transport::{self, TcpConnection};
use webpop_testkit::corpus;
use webpop_testkit::dovecot::Dovecot;

const USER: &str = "alice";
const PASSWORD: &str = "correct-horse-battery-staple";

fn creds() -> Credentials {
    Credentials::new(USER, PASSWORD).unwrap()
}

fn trusting(server: &Dovecot) -> Trust {
    Trust::default().with_root(server.cert_der().to_vec())
}

async fn connect(
    server: &Dovecot,
    security: Security,
    trust: Trust,
) -> Result<TcpConnection, ConnectionError> {
    let addr = match security {
        Security::ImplicitTls => server.pop3s_addr(),
        _ => server.pop3_addr(),
    };
    tokio_transport::connect(addr, SessionConfig::new("localhost", security).trust(trust)).await
}

async fn stat(conn: &mut TcpConnection) -> (u32, u64) {
    match conn.run(Command::Stat).await.unwrap() {
        Reply::Stat(s) => (s.count, s.size),
        other => panic!("STAT gave {other:?}"),
    }
}

fn small_mailbox() -> Vec<Vec<u8>> {
    corpus::generate(12, 7)
}

#[tokio::test]
async fn every_login_method_over_implicit_tls_and_stls() {
    let mail = small_mailbox();
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    for security in [Security::ImplicitTls, Security::StartTls] {
        for method in [
            AuthMethod::UserPass,
            AuthMethod::Apop,
            AuthMethod::Plain,
            AuthMethod::Login,
            AuthMethod::CramMd5,
            AuthMethod::Auto,
        ] {
            let mut conn = connect(&server, security, trusting(&server)).await.unwrap();
            assert!(conn.session().tls_parameters().is_some());
            assert!(
                conn.capabilities().pipelining,
                "Dovecot advertises PIPELINING"
            );
            if security == Security::StartTls {
                assert!(!conn.capabilities().stls, "CAPA was asked again under TLS");
            }
            conn.login(creds(), method)
                .await
                .unwrap_or_else(|e| panic!("{security:?} {method:?}: {e}"));
            assert_eq!(stat(&mut conn).await.0, mail.len() as u32);
            conn.quit().await.unwrap();
        }
    }
}

#[tokio::test]
async fn wrong_password_is_a_typed_auth_failure() {
    let server = Dovecot::start(&[(USER, PASSWORD, &small_mailbox())]).unwrap();
    for method in [AuthMethod::UserPass, AuthMethod::Plain, AuthMethod::CramMd5] {
        let mut conn = connect(&server, Security::ImplicitTls, trusting(&server))
            .await
            .unwrap();
        let wrong = Credentials::new(USER, "wrong").unwrap();
        match conn.login(wrong, method).await {
            Err(ConnectionError::Rejected { error, .. }) => {
                assert_eq!(error.code, Some(RespCode::Auth), "{method:?}: {error:?}");
                assert!(!error.code.unwrap().is_temporary());
            }
            Err(other) => panic!("{method:?}: expected a rejection, got {other}"),
            Ok(()) => panic!("{method:?}: a wrong password was accepted"),
        }
    }
}

#[tokio::test]
async fn pipelined_download_is_byte_for_byte_equal_to_dovecots_files() {
    let mail = corpus::generate(520, 2026);
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    let mut conn = connect(&server, Security::ImplicitTls, trusting(&server))
        .await
        .unwrap();
    conn.login(creds(), AuthMethod::Auto).await.unwrap();

    let uids = match conn.run(Command::Uidl(None)).await.unwrap() {
        Reply::Uids(uids) => uids,
        other => panic!("{other:?}"),
    };
    let sizes = match conn.run(Command::List(None)).await.unwrap() {
        Reply::Listing(entries) => entries,
        other => panic!("{other:?}"),
    };
    assert_eq!(uids.len(), mail.len());
    assert_eq!(sizes.len(), mail.len());

    let mut wanted = HashMap::new();
    for entry in &sizes {
        wanted.insert(conn.send(Command::Retr(entry.msg)).unwrap(), entry.msg);
    }
    let mut done = 0;
    while done < sizes.len() {
        match conn.next_event().await.unwrap() {
            Event::Reply {
                handle,
                reply: Reply::Message(body),
            } => {
                let n = wanted[&handle];
                let stored = server.stored_message(USER, n as usize).unwrap();
                assert!(body == stored, "message {n} differs from Dovecot's file");
                assert_eq!(body.len() as u64, sizes[n as usize - 1].size);
                done += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    conn.quit().await.unwrap();

    // Dovecot's raw log shows RETRs arriving many to a read: the client pipelined.
    let session = server.rawlog_sessions(USER).unwrap().pop().unwrap();
    let biggest_read = session
        .input_reads()
        .unwrap()
        .iter()
        .map(|read| read.iter().filter(|l| l.starts_with("RETR")).count())
        .max()
        .unwrap();
    assert!(
        biggest_read >= 8,
        "at most {biggest_read} RETRs arrived together"
    );
}

#[tokio::test]
async fn uidl_and_top_zero() {
    let mail = small_mailbox();
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    let mut conn = connect(&server, Security::StartTls, trusting(&server))
        .await
        .unwrap();
    conn.login(creds(), AuthMethod::Auto).await.unwrap();
    let all = match conn.run(Command::Uidl(None)).await.unwrap() {
        Reply::Uids(uids) => uids,
        other => panic!("{other:?}"),
    };
    let one = match conn.run(Command::Uidl(Some(3))).await.unwrap() {
        Reply::Uid(uid) => uid,
        other => panic!("{other:?}"),
    };
    assert_eq!(all[2], one);
    let top = match conn.run(Command::Top { msg: 3, lines: 0 }).await.unwrap() {
        Reply::Message(m) => m,
        other => panic!("{other:?}"),
    };
    let stored = server.stored_message(USER, 3).unwrap();
    let header_end = stored.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(top, stored[..header_end]);
}

#[tokio::test]
async fn dele_then_quit_removes_and_dele_then_drop_keeps() {
    let mail = small_mailbox();
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    let before = server.maildir_files(USER).unwrap();

    // DELE, then the connection drops without QUIT: nothing is removed.
    let mut conn = connect(&server, Security::ImplicitTls, trusting(&server))
        .await
        .unwrap();
    conn.login(creds(), AuthMethod::Auto).await.unwrap();
    conn.run(Command::Dele(1)).await.unwrap();
    conn.run(Command::Dele(2)).await.unwrap();
    conn.abort();
    // Dovecot notices the drop asynchronously; its mailbox lock proves it is done with it.
    let mut conn = loop {
        let mut conn = connect(&server, Security::ImplicitTls, trusting(&server))
            .await
            .unwrap();
        match conn.login(creds(), AuthMethod::Auto).await {
            Ok(()) => break conn,
            Err(ConnectionError::Rejected { error, .. }) if error.code == Some(RespCode::InUse) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(server.maildir_files(USER).unwrap().len(), before.len());
    assert_eq!(stat(&mut conn).await.0, mail.len() as u32);

    // DELE, then QUIT: the message is gone.
    conn.run(Command::Dele(1)).await.unwrap();
    conn.quit().await.unwrap();
    let after = server.maildir_files(USER).unwrap();
    assert_eq!(after.len(), before.len() - 1);
    assert!(!after.iter().any(|p| p.file_name() == before[0].file_name()));
}

#[tokio::test]
async fn certificate_trust_pinning_and_typed_refusals() {
    let server = Dovecot::start(&[(USER, PASSWORD, &small_mailbox())]).unwrap();
    let fingerprint = Fingerprint(server.cert_sha256());

    // Pinned: accepted though no authority signed it.
    let mut conn = connect(
        &server,
        Security::ImplicitTls,
        Trust::default().with_pin(fingerprint),
    )
    .await
    .unwrap();
    conn.login(creds(), AuthMethod::Auto).await.unwrap();

    // Not pinned: refused, and the error names the fingerprint so a UI can offer to trust it.
    for security in [Security::ImplicitTls, Security::StartTls] {
        match connect(&server, security, Trust::default()).await {
            Err(ConnectionError::Session(SessionError::Certificate {
                problem,
                fingerprint: fp,
            })) => {
                assert_eq!(problem, CertProblem::UnknownIssuer);
                assert_eq!(fp, fingerprint);
                let text = SessionError::Certificate {
                    problem,
                    fingerprint: fp,
                }
                .to_string();
                assert!(text.contains(&fingerprint.to_string()), "{text}");
            }
            Err(other) => panic!("{security:?}: expected a certificate error, got {other}"),
            Ok(_) => panic!("{security:?}: expected a certificate error, the session started"),
        }
    }

    // Trusted root, but dialled under a name the certificate does not carry.
    let config =
        SessionConfig::new("mail.example.org", Security::ImplicitTls).trust(trusting(&server));
    match tokio_transport::connect(server.pop3s_addr(), config).await {
        Err(ConnectionError::Session(SessionError::Certificate { problem, .. })) => {
            assert_eq!(problem, CertProblem::WrongName)
        }
        Err(other) => panic!("expected a wrong-name error, got {other}"),
        Ok(_) => panic!("expected a wrong-name error, the session started"),
    }

    // Trusted root, checked as of a date after the certificate expires (rcgen's default
    // validity ends in 4096).
    let far_future = UnixTime::since_unix_epoch(Duration::from_secs(70_000_000_000));
    let tcp = TcpStream::connect(server.pop3s_addr()).await.unwrap();
    let config = SessionConfig::new("localhost", Security::ImplicitTls).trust(trusting(&server));
    match tokio_transport::start_at(tcp, config, far_future).await {
        Err(ConnectionError::Session(SessionError::Certificate { problem, .. })) => {
            assert_eq!(problem, CertProblem::Expired)
        }
        Err(other) => panic!("expected an expiry error, got {other}"),
        Ok(_) => panic!("expected an expiry error, the session started"),
    }
}
