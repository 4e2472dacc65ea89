//! Shutdown: the relay stops accepting at once, lets open sessions go on for the drain period,
//! then closes the rest with "shutting down"; a relay with nothing open stops at once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use webpop_proxy::ServeOptions;
use webpop_shared::relay::CloseReason;

#[tokio::test]
async fn open_sessions_drain_then_close_with_going_away() {
    let echo = echo_server().await;
    let mut relay = LocalRelay::with_options(
        loopback_config(&[echo.port()]),
        ServeOptions::default(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let mut ws = relay.connect(echo).await.unwrap();
    assert_eq!(round_trip(&mut ws, b"before").await, b"before");

    let started = Instant::now();
    let server = relay.stop().unwrap();
    // New connections are refused as soon as the listener is gone.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(relay.addr()).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        refused,
        "the relay still accepts connections while draining"
    );
    // The open session keeps working during the drain period...
    assert_eq!(round_trip(&mut ws, b"during").await, b"during");
    // ...and is closed with 1001 when it ends.
    assert_eq!(close_code(&mut ws).await, CloseReason::ShuttingDown.code());
    assert!(started.elapsed() >= Duration::from_secs(2));
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server did not stop after draining")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn sessions_that_end_during_the_drain_let_the_relay_stop_early() {
    let echo = echo_server().await;
    let mut relay = LocalRelay::with_options(
        loopback_config(&[echo.port()]),
        ServeOptions::default(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let mut ws = relay.connect(echo).await.unwrap();
    assert_eq!(round_trip(&mut ws, b"x").await, b"x");
    let server = relay.stop().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    ws.close(None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server waited the full drain period")
        .unwrap()
        .unwrap();
}
