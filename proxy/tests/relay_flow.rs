//! Flow control (`webpop.flow.v1`): a page that stops reading stops the relay reading the mail
//! server, a page that keeps acknowledging gets every byte, and a page that lies about what it
//! consumed is closed. Pages that do not offer it keep the old behaviour (`relay_limits.rs`).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use webpop_shared::relay::flow::{self, Grants};
use webpop_shared::relay::{token_protocol, CloseReason, FLOW_PROTOCOL, MAX_FRAME, PROTOCOL};
use webpop_shared::secret::Secret;

/// What the source server sends: far more than the window and the kernel's socket buffers.
const TOTAL: u64 = 64 * 1024 * 1024;

/// The byte at `offset` of the source's stream.
fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// A server on 127.0.0.1 that writes [`TOTAL`] bytes of [`pattern`] to its first client as
/// fast as it can, counting what the kernel took, then closes.
async fn source() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let written = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::clone(&written);
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut n: u64 = 0;
        while n < TOTAL {
            let chunk: Vec<u8> = (0..16 * 1024u64).map(|i| pattern(n + i)).collect();
            if tcp.write_all(&chunk).await.is_err() {
                return;
            }
            n += chunk.len() as u64;
            counter.store(n, Ordering::SeqCst);
        }
        let _ = tcp.shutdown().await;
    });
    (addr, written)
}

/// In the browser, frames the page has not asked for pile up in its memory: the relay read the
/// server as fast as the page's socket drained, and a browser drains it whether or not the app
/// consumed anything. With flow control the relay sends no more than the window, and stops
/// reading the server, until the page acknowledges.
#[tokio::test]
async fn a_page_that_stops_reading_stops_the_relay_reading_the_server() {
    let (server, written) = source().await;
    let relay = LocalRelay::with_config(loopback_config(&[server.port()]))
        .await
        .unwrap();
    let url = relay.url("127.0.0.1", server.port());
    let (mut ws, picked) = ws_connect_protocols(&url, &[PROTOCOL, FLOW_PROTOCOL])
        .await
        .unwrap();
    assert_eq!(picked.as_deref(), Some(FLOW_PROTOCOL));
    stop_reading_then_consume(&mut ws, &relay, &written).await;
}

/// The same through the relay's own TLS, where frames go out through tungstenite rather than
/// straight to the page's socket.
#[tokio::test]
async fn a_page_behind_the_relays_own_tls_also_stops_the_relay_reading_the_server() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    let (server, written) = source().await;
    let relay = LocalRelay::with_options(
        loopback_config(&[server.port()]),
        webpop_proxy::ServeOptions {
            tls: Some(webpop_proxy::tls::acceptor(&cert, &key).unwrap()),
            ..webpop_proxy::ServeOptions::default()
        },
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let url = format!(
        "wss://localhost:{}/relay?host=127.0.0.1&port={}",
        relay.addr().port(),
        server.port()
    );
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("{PROTOCOL}, {FLOW_PROTOCOL}").parse().unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        FLOW_PROTOCOL
    );
    stop_reading_then_consume(&mut ws, &relay, &written).await;
}

/// Like a browser, the page takes every frame off its socket but consumes (and so acknowledges)
/// none, until the [`source`] has not written for a second: it must then be blocked, with the
/// page holding at most the window. Then the page consumes what it holds and what follows,
/// acknowledging as it goes: every byte arrives, in order, then the server's end.
async fn stop_reading_then_consume<S>(
    ws: &mut WebSocketStream<S>,
    relay: &LocalRelay,
    written: &AtomicU64,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut held: Vec<u8> = Vec::new();
    let (mut last, mut still) = (0, 0);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < give_up {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Binary(data))) => held.extend_from_slice(&data),
                // Everything came: the relay held nothing back.
                Some(Ok(Message::Close(_))) => break,
                other => panic!("after {} bytes: {other:?}", held.len()),
            },
            _ = tick.tick() => {
                let now = written.load(Ordering::SeqCst);
                still = if now == last && now > 0 { still + 1 } else { 0 };
                last = now;
                if still >= 10 {
                    break;
                }
            }
        }
    }
    let forwarded = metric(relay, "webpop_relay_bytes_to_client_total");
    eprintln!(
        "the source stalled after {last} bytes; the relay forwarded {forwarded}; the page holds {}",
        held.len()
    );
    assert!(
        held.len() <= flow::WINDOW as usize + MAX_FRAME,
        "the page holds {} bytes it did not ask for",
        held.len()
    );
    assert!(
        last < TOTAL / 2,
        "the source wrote {last} of {TOTAL} bytes towards a page that consumed nothing"
    );
    assert!(
        relay.relay().metrics().buffered_bytes() <= webpop_proxy::relay::READ_SIZE as u64,
        "the relay's memory grew"
    );

    let mut grants = Grants::new();
    let mut seen: u64 = 0;
    let mut consume = |data: &[u8], seen: &mut u64| {
        if let Some(at) = data
            .iter()
            .zip(*seen..)
            .position(|(b, offset)| *b != pattern(offset))
        {
            panic!("byte {} is wrong", *seen + at as u64);
        }
        *seen += data.len() as u64;
        grants.consumed(data.len())
    };
    if let Some(ack) = consume(&held, &mut seen) {
        ws.send(Message::text(ack.to_string())).await.unwrap();
    }
    while seen < TOTAL {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Binary(data)))) => {
                assert!(data.len() <= MAX_FRAME);
                if let Some(ack) = consume(&data, &mut seen) {
                    ws.send(Message::text(ack.to_string())).await.unwrap();
                }
            }
            other => panic!("after {seen} bytes: {other:?}"),
        }
    }
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => {
            assert_eq!(u16::from(frame.code), CloseReason::Done.code());
        }
        other => panic!("no close frame after the data: {other:?}"),
    }
    assert_eq!(written.load(Ordering::SeqCst), TOTAL);
}

/// A relay picks one subprotocol, and the browser accepts only one it offered: flow control
/// when the page offers it, the plain protocol otherwise, never the token's.
#[tokio::test]
async fn the_relay_answers_with_flow_control_only_when_the_page_offers_it() {
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(loopback_config(&[echo.port()]))
        .await
        .unwrap();
    let url = relay.url("127.0.0.1", echo.port());
    let token = token_protocol(&Secret::token("tok").unwrap());
    for (offered, want) in [
        (vec![PROTOCOL], Some(PROTOCOL)),
        (vec![PROTOCOL, FLOW_PROTOCOL], Some(FLOW_PROTOCOL)),
        (vec![FLOW_PROTOCOL, PROTOCOL], Some(FLOW_PROTOCOL)),
        (vec![PROTOCOL, &token, FLOW_PROTOCOL], Some(FLOW_PROTOCOL)),
        (vec![FLOW_PROTOCOL], Some(FLOW_PROTOCOL)),
        (vec![], None),
    ] {
        let (mut ws, picked) = ws_connect_protocols(&url, &offered).await.unwrap();
        assert_eq!(picked.as_deref(), want, "{offered:?}");
        assert_eq!(round_trip(&mut ws, b"hello").await, b"hello");
        ws.close(None).await.unwrap();
    }
}

/// A page could acknowledge bytes it never received, to make the relay read on without bound,
/// or send other text; either ends the session with its own close code.
#[tokio::test]
async fn a_page_that_acknowledges_more_than_it_received_is_closed() {
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(loopback_config(&[echo.port()]))
        .await
        .unwrap();
    let url = relay.url("127.0.0.1", echo.port());
    let open = || async {
        let (ws, picked) = ws_connect_protocols(&url, &[PROTOCOL, FLOW_PROTOCOL])
            .await
            .unwrap();
        assert_eq!(picked.as_deref(), Some(FLOW_PROTOCOL));
        ws
    };

    // Five bytes received and acknowledged; one more is one too many.
    let mut ws = open().await;
    assert_eq!(round_trip(&mut ws, b"hello").await, b"hello");
    ws.send(Message::text("ack 5")).await.unwrap();
    assert_eq!(round_trip(&mut ws, b"again").await, b"again");
    ws.send(Message::text("ack 6")).await.unwrap();
    assert_eq!(close_code(&mut ws).await, CloseReason::FlowViolation.code());

    for text in [
        "ack 4294967295",
        "ack 18446744073709551617",
        "ack 0",
        "ack -1",
        "USER alice",
        "",
    ] {
        let mut ws = open().await;
        assert_eq!(round_trip(&mut ws, b"hi").await, b"hi");
        ws.send(Message::text(text)).await.unwrap();
        assert_eq!(
            close_code(&mut ws).await,
            CloseReason::FlowViolation.code(),
            "{text:?}"
        );
    }
    // A session is counted once its close handshake is over.
    let closed = "webpop_relay_closed_total{reason=\"flow_violation\"}";
    for _ in 0..100 {
        if metric(&relay, closed) == 7 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&relay, closed), 7);
}
