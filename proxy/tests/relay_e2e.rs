//! End to end: WebSocket clients through the relay to a TCP echo server and to a real Dovecot
//! over TLS, with the POP3 session from `webpop-shared` driving it. Everything crossing the
//! relay is recorded, and none of it may hold the password or any message's plaintext.

mod common;

use common::*;
use webpop_shared::connection::Connection;
use webpop_shared::pop3::{AuthMethod, Command, Reply};
use webpop_shared::relay::MAX_FRAME;
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Security, SessionConfig, Trust};
use webpop_shared::tokio_transport::unix_now;
use webpop_testkit::corpus;
use webpop_testkit::dovecot::Dovecot;

const USER: &str = "carol";
const PASSWORD: &str = "relay-sees-only-ciphertext-7Qx";

#[tokio::test]
async fn bytes_round_trip_through_the_relay_to_a_tcp_server() {
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(loopback_config(&[echo.port()]))
        .await
        .unwrap();
    let mut ws = relay.connect(echo).await.unwrap();
    for size in [1, 100, 4096, MAX_FRAME] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(round_trip(&mut ws, &data).await, data, "{size} bytes");
    }
    let metrics = relay.relay().metrics().render();
    assert!(
        metrics.contains("webpop_relay_connections_open 1"),
        "{metrics}"
    );
    ws.close(None).await.unwrap();
}

/// Longer than any generated line, so a match cannot be a coincidence of short strings.
fn plaintext_samples(message: &[u8]) -> Vec<&[u8]> {
    message
        .split(|b| *b == b'\n')
        .filter(|line| line.len() >= 24)
        .take(5)
        .collect()
}

#[tokio::test]
async fn pop3_over_tls_through_the_relay_shows_the_relay_only_ciphertext() {
    let mail = corpus::generate(24, 31);
    let server = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    for security in [Security::ImplicitTls, Security::StartTls] {
        let target = match security {
            Security::ImplicitTls => server.pop3s_addr(),
            _ => server.pop3_addr(),
        };
        // The relay reaches Dovecot through a tap that records the relay's TCP side.
        let (tap, tcp_side) = tcp_tap(target).await;
        let relay = LocalRelay::with_config(loopback_config(&[tap.port()]))
            .await
            .unwrap();
        let mut socket = relay_socket(relay.connect(tap).await.unwrap(), tap);
        let ws_side = socket.record();
        let config = SessionConfig::new("localhost", security)
            .trust(Trust::default().with_root(server.cert_der().to_vec()));
        let mut conn = Connection::start(socket, config, unix_now()).await.unwrap();
        conn.login(
            Credentials::new(USER, PASSWORD).unwrap(),
            AuthMethod::UserPass,
        )
        .await
        .unwrap();
        let mut fetched = 0;
        for n in 1..=mail.len() as u32 {
            match conn.run(Command::Retr(n)).await.unwrap() {
                Reply::Message(body) => {
                    assert_eq!(body, server.stored_message(USER, n as usize).unwrap());
                    fetched += 1;
                }
                other => panic!("RETR {n} gave {other:?}"),
            }
        }
        conn.quit().await.unwrap();
        assert_eq!(fetched, mail.len());
        // Let the tap and the recorder see the last bytes.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;

        let recorded: Vec<Vec<u8>> = ws_side.all().into_iter().chain(tcp_side.all()).collect();
        let total: usize = recorded.iter().map(Vec::len).sum();
        let mail_bytes: usize = mail.iter().map(Vec::len).sum();
        assert!(
            total > mail_bytes,
            "{security:?}: only {total} bytes recorded"
        );
        for bytes in &recorded {
            assert!(
                !contains(bytes, PASSWORD.as_bytes()),
                "{security:?}: password seen"
            );
            for word in [&b"PASS "[..], b"RETR ", b"USER carol"] {
                assert!(!contains(bytes, word), "{security:?}: POP3 command seen");
            }
            for (i, message) in mail.iter().enumerate() {
                for sample in plaintext_samples(message) {
                    assert!(
                        !contains(bytes, sample),
                        "{security:?}: plaintext of message {} seen",
                        i + 1
                    );
                }
            }
        }
        // Both recordings saw the same bytes: the relay forwards exactly, adding nothing. (The
        // client may hang up before the server's last TLS record reaches it, so towards the
        // client its recording is a prefix of the server's.)
        let (ws_up, ws_down) = (
            ws_side.to_server.lock().unwrap().clone(),
            ws_side.to_client.lock().unwrap().clone(),
        );
        let (tcp_up, tcp_down) = (
            tcp_side.to_server.lock().unwrap().clone(),
            tcp_side.to_client.lock().unwrap().clone(),
        );
        assert!(ws_up == tcp_up, "{security:?}: bytes to the server differ");
        assert!(
            tcp_down.starts_with(&ws_down),
            "{security:?}: bytes to the client differ"
        );
        assert!(
            tcp_down.len() - ws_down.len() < 200,
            "{security:?}: bytes missing"
        );
    }
}
