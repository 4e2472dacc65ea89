//! The demo mailbox (`webpop-proxy --demo`): a POP3S server with sample mail that the relay may
//! reach, and nothing else on loopback; `/demo.json` describes it; a full session through the
//! relay reads every sample byte for byte.

mod common;

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use webpop_proxy::demo::{sample_messages, Demo, PASSWORD, USER};
use webpop_proxy::policy::TargetPolicy;
use webpop_proxy::RelayConfig;
use webpop_shared::connection::Connection;
use webpop_shared::mime;
use webpop_shared::pop3::{AuthMethod, Command, Reply};
use webpop_shared::relay::CloseReason;
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Fingerprint, Security, SessionConfig, Trust};
use webpop_shared::tokio_transport::unix_now;

async fn demo_relay() -> (Demo, LocalRelay) {
    let demo = Demo::start().await.unwrap();
    let relay = LocalRelay::with_config(RelayConfig {
        policy: TargetPolicy::default().also_allow(demo.addr()),
        demo: Some(demo.describe()),
        ..RelayConfig::default()
    })
    .await
    .unwrap();
    (demo, relay)
}

async fn session(demo: &Demo, relay: &LocalRelay) -> Connection<RelaySocket> {
    let socket = relay_socket(relay.connect(demo.addr()).await.unwrap(), demo.addr());
    let pin: Fingerprint = demo.fingerprint().parse().unwrap();
    let config = SessionConfig::new("localhost", Security::ImplicitTls)
        .trust(Trust::default().with_pin(pin));
    let mut conn = Connection::start(socket, config, unix_now()).await.unwrap();
    conn.login(Credentials::new(USER, PASSWORD).unwrap(), AuthMethod::Auto)
        .await
        .unwrap();
    conn
}

#[tokio::test]
async fn the_demo_mailbox_serves_every_sample_through_the_relay() {
    let (demo, relay) = demo_relay().await;
    let samples = sample_messages();
    let mut conn = session(&demo, &relay).await;
    let uids = match conn.run(Command::Uidl(None)).await.unwrap() {
        Reply::Uids(uids) => uids,
        other => panic!("{other:?}"),
    };
    assert_eq!(uids.len(), samples.len());
    for (i, sample) in samples.iter().enumerate() {
        match conn.run(Command::Retr(i as u32 + 1)).await.unwrap() {
            Reply::Message(raw) => assert_eq!(&raw, sample, "message {}", i + 1),
            other => panic!("{other:?}"),
        }
    }
    match conn.run(Command::Top { msg: 2, lines: 0 }).await.unwrap() {
        Reply::Message(raw) => assert!(raw.ends_with(b"\r\n\r\n") && samples[1].starts_with(&raw)),
        other => panic!("{other:?}"),
    }
    conn.quit().await.unwrap();
}

async fn count(conn: &mut Connection<RelaySocket>) -> usize {
    match conn.run(Command::Stat).await.unwrap() {
        Reply::Stat(stat) => stat.count as usize,
        other => panic!("{other:?}"),
    }
}

/// The demo is shared by every visitor of a relay: one visitor's DELE and QUIT used to delete
/// the message for everyone, until the relay restarted.
#[tokio::test]
async fn one_demo_visitors_deletions_never_show_to_another() {
    let (demo, relay) = demo_relay().await;
    let all = sample_messages().len();
    let mut deleter = session(&demo, &relay).await;
    let mut watcher = session(&demo, &relay).await;
    deleter.run(Command::Dele(1)).await.unwrap();
    deleter.run(Command::Dele(2)).await.unwrap();
    assert_eq!(count(&mut deleter).await, all - 2);
    deleter.quit().await.unwrap();
    assert_eq!(count(&mut watcher).await, all, "a session open at the time");
    watcher.quit().await.unwrap();
    let mut later = session(&demo, &relay).await;
    assert_eq!(count(&mut later).await, all, "a session opened later");
    later.quit().await.unwrap();
}

#[test]
fn the_samples_cover_html_inline_images_attachments_and_other_scripts() {
    let samples = sample_messages();
    let shown: Vec<mime::Display> = samples.iter().map(|m| mime::display(m).unwrap()).collect();
    assert!(shown.iter().any(|d| d
        .html
        .as_deref()
        .is_some_and(|h| h.contains("cid:logo@demo"))));
    assert!(shown.iter().any(|d| d
        .attachments
        .iter()
        .any(|a| a.inline && a.content_id.as_deref() == Some("logo@demo"))));
    assert!(shown.iter().any(|d| d
        .attachments
        .iter()
        .any(|a| a.name == "invoice-2026-11.pdf")));
    assert!(shown.iter().any(|d| d.subject.contains("Köln")));
    assert!(shown
        .iter()
        .any(|d| d.from[0].name.as_deref() == Some("山田太郎")));
}

#[tokio::test]
async fn the_relay_reaches_the_demo_and_nothing_else_on_loopback_and_describes_it() {
    let (demo, relay) = demo_relay().await;
    let echo = echo_server().await;
    let mut ws = ws_connect(&relay.url("127.0.0.1", echo.port()), None, None)
        .await
        .unwrap();
    assert_eq!(
        close_code(&mut ws).await,
        CloseReason::ForbiddenTarget.code()
    );

    let mut tcp = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
    tcp.write_all(b"GET /demo.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["port"], demo.addr().port());
    assert_eq!(json["user"], USER);
    assert_eq!(json["cert_sha256"], demo.fingerprint());
}
