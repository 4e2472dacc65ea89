//! The stall timeout, decided once in the connection ([`webpop_shared::connection::StallTimer`])
//! for the page and the native transports alike: a server that stops sending while a reply is due
//! ends the session after the stall limit, and every byte that comes starts the wait anew. On
//! tokio's paused clock, against real sockets on 127.0.0.1.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::time::Instant;
use webpop_shared::connection::{ConnectionError, STALL_LIMIT};
use webpop_shared::session::{Security, SessionConfig};
use webpop_shared::tokio_transport;

/// A server on 127.0.0.1 that sends `parts`, each after its pause, then holds the connection
/// open and silent.
async fn server(parts: Vec<(Duration, &'static [u8])>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        for (pause, bytes) in parts {
            tokio::time::sleep(pause).await;
            socket.write_all(bytes).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        drop(socket);
    });
    addr
}

fn plaintext() -> SessionConfig {
    SessionConfig::new("localhost", Security::InsecurePlaintextLoopbackOnly)
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_greets_stalls_the_session_after_the_stall_limit() {
    let addr = server(Vec::new()).await;
    let started = Instant::now();
    let result = tokio_transport::connect(addr, plaintext()).await;
    assert!(
        matches!(result, Err(ConnectionError::Stalled(limit)) if limit == STALL_LIMIT),
        "{result:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= STALL_LIMIT && waited < STALL_LIMIT + Duration::from_secs(1),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn bytes_that_keep_coming_slowly_are_not_a_stall() {
    // The greeting in two parts a minute apart (each within the limit), then nothing: the wait
    // for the reply to CAPA is the one that stalls.
    let minute = Duration::from_secs(60);
    let addr = server(vec![(minute, b"+OK hel"), (minute, b"lo\r\n")]).await;
    let started = Instant::now();
    let result = tokio_transport::connect(addr, plaintext()).await;
    assert!(
        matches!(result, Err(ConnectionError::Stalled(_))),
        "{result:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= 2 * minute + STALL_LIMIT && waited < 2 * minute + STALL_LIMIT + minute,
        "{waited:?}"
    );
}
