//! Scale-out: two relays behind a real nginx (Debian) on 127.0.0.1. POP3 sessions work through
//! it, and the per-client cap counts the address nginx puts in `X-Forwarded-For`, not nginx's.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use webpop_proxy::client_ip::TrustedProxies;
use webpop_proxy::RelayConfig;
use webpop_shared::connection::Connection;
use webpop_shared::pop3::{AuthMethod, Command, Reply};
use webpop_shared::relay::CloseReason;
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Security, SessionConfig, Trust};
use webpop_shared::tokio_transport::unix_now;
use webpop_testkit::corpus;
use webpop_testkit::dovecot::Dovecot;
use webpop_testkit::nginx::{Balance, Nginx};

const USER: &str = "dave";
const PASSWORD: &str = "behind-the-balancer";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn relay_config(ports: &[u16]) -> RelayConfig {
    RelayConfig {
        trusted_proxies: TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]),
        max_sessions_per_client: 1,
        ..loopback_config(ports)
    }
}

fn url(nginx: SocketAddr, target: SocketAddr) -> String {
    format!(
        "ws://{nginx}/relay?host={}&port={}",
        target.ip(),
        target.port()
    )
}

#[tokio::test]
async fn pop3_sessions_work_through_nginx_and_per_client_caps_use_x_forwarded_for() {
    let mail = corpus::generate(6, 11);
    let dovecot = Dovecot::start(&[(USER, PASSWORD, &mail)]).unwrap();
    let echo = echo_server().await;
    let ports = [dovecot.pop3s_addr().port(), echo.port()];
    let relays = [
        LocalRelay::with_config(relay_config(&ports)).await.unwrap(),
        LocalRelay::with_config(relay_config(&ports)).await.unwrap(),
    ];
    let upstreams: Vec<SocketAddr> = relays.iter().map(|r| r.addr()).collect();
    let nginx =
        tokio::task::spawn_blocking(move || Nginx::start(&upstreams, Balance::ClientAddress))
            .await
            .unwrap()
            .unwrap();

    // A full POP3 session over TLS, through nginx and a relay.
    let ws = ws_connect(
        &url(nginx.addr(), dovecot.pop3s_addr()),
        None,
        Some(ip("127.0.0.2")),
    )
    .await
    .unwrap();
    let socket = relay_socket(ws, dovecot.pop3s_addr());
    let config = SessionConfig::new("localhost", Security::ImplicitTls)
        .trust(Trust::default().with_root(dovecot.cert_der().to_vec()));
    let mut conn = Connection::start(socket, config, unix_now()).await.unwrap();
    conn.login(Credentials::new(USER, PASSWORD).unwrap(), AuthMethod::Auto)
        .await
        .unwrap();
    for n in 1..=mail.len() {
        match conn.run(Command::Retr(n as u32)).await.unwrap() {
            Reply::Message(body) => assert_eq!(body, dovecot.stored_message(USER, n).unwrap()),
            other => panic!("RETR {n} gave {other:?}"),
        }
    }
    conn.quit().await.unwrap();

    // Every session reaches its relay from nginx's 127.0.0.1. One session each from five
    // client addresses: with two relays, at least one relay holds several at once, which a
    // cap of one per client allows only if it counts the forwarded addresses.
    let clients = [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.5",
        "127.0.0.6",
    ];
    let mut open = Vec::new();
    for client in clients {
        let mut ws = ws_connect(&url(nginx.addr(), echo), None, Some(ip(client)))
            .await
            .unwrap();
        assert_eq!(
            round_trip(&mut ws, client.as_bytes()).await,
            client.as_bytes()
        );
        open.push(ws);
    }
    let per_relay: Vec<u64> = relays
        .iter()
        .map(|r| r.relay().metrics().open_sessions())
        .collect();
    assert_eq!(per_relay.iter().sum::<u64>(), 5, "{per_relay:?}");
    assert!(per_relay.iter().any(|n| *n >= 2), "{per_relay:?}");

    // A second session from a client that has one open reaches the same relay (nginx hashes
    // the client address) and is refused by the per-client cap, with the relay's close code
    // passed through nginx.
    let mut again = ws_connect(&url(nginx.addr(), echo), None, Some(ip("127.0.0.3")))
        .await
        .unwrap();
    assert_eq!(
        close_code(&mut again).await,
        CloseReason::LimitReached.code()
    );

    // Once that client's session ends, it may open another.
    let first = open.remove(1);
    drop(first);
    let mut admitted = None;
    for _ in 0..100 {
        let mut ws = ws_connect(&url(nginx.addr(), echo), None, Some(ip("127.0.0.3")))
            .await
            .unwrap();
        use futures_util::SinkExt as _;
        ws.send(tokio_tungstenite::tungstenite::Message::binary(
            b"back".to_vec(),
        ))
        .await
        .unwrap();
        use futures_util::StreamExt as _;
        match ws.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(data))) => {
                admitted = Some(data);
                break;
            }
            // The relay has not yet seen the first session end.
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(
        admitted.as_deref(),
        Some(&b"back"[..]),
        "{}",
        nginx.error_log()
    );
}
