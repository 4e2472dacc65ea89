//! Limits: session caps overall and per client, idle and lifetime timeouts (on tokio's paused
//! clock), bounded memory with a client that stops reading, and frame rules.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use webpop_proxy::{RelayConfig, ServeOptions};
use webpop_shared::relay::{CloseReason, MAX_FRAME};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Waits (real time) until the relay counts `n` open sessions.
async fn until_open(relay: &LocalRelay, n: u64) {
    for _ in 0..500 {
        if relay.relay().metrics().open_sessions() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the relay never had {n} sessions open");
}

#[tokio::test]
async fn per_client_and_global_caps_refuse_with_limit_reached_and_free_on_close() {
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(RelayConfig {
        max_sessions: 3,
        max_sessions_per_client: 2,
        ..loopback_config(&[echo.port()])
    })
    .await
    .unwrap();
    let url = relay.url("127.0.0.1", echo.port());
    let open = |source: &'static str| {
        let url = url.clone();
        async move { ws_connect(&url, None, Some(ip(source))).await.unwrap() }
    };

    let mut a1 = open("127.0.0.2").await;
    let _a2 = open("127.0.0.2").await;
    assert_eq!(round_trip(&mut a1, b"a1").await, b"a1");
    let mut a3 = open("127.0.0.2").await;
    assert_eq!(close_code(&mut a3).await, CloseReason::LimitReached.code());

    let _b1 = open("127.0.0.3").await;
    until_open(&relay, 3).await;
    let mut c1 = open("127.0.0.4").await;
    assert_eq!(close_code(&mut c1).await, CloseReason::LimitReached.code());

    // Closing one session frees its slot, for its client and overall.
    a1.close(None).await.unwrap();
    until_open(&relay, 2).await;
    let mut c2 = open("127.0.0.4").await;
    assert_eq!(round_trip(&mut c2, b"c2").await, b"c2");
    let metrics = relay.relay().metrics().render();
    assert!(
        metrics.contains("webpop_relay_refused_total{reason=\"limit_reached\"} 2"),
        "{metrics}"
    );
}

/// One client could start sessions as fast as it liked, one password guess each, until mail
/// providers banned the relay's shared address for everyone. (Refilling over time is tested on
/// a paused clock in `limits.rs`; here a token takes 30 s to come back, far longer than the test.)
#[tokio::test]
async fn one_client_cannot_start_relay_sessions_faster_than_its_rate() {
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(RelayConfig {
        new_sessions_per_client_per_minute: 2,
        ..loopback_config(&[echo.port()])
    })
    .await
    .unwrap();
    let url = relay.url("127.0.0.1", echo.port());
    for _ in 0..2 {
        let mut ws = ws_connect(&url, None, Some(ip("127.0.0.5"))).await.unwrap();
        assert_eq!(round_trip(&mut ws, b"guess").await, b"guess");
        ws.close(None).await.unwrap();
    }
    // Closed sessions still count: the cap is on starting them.
    let mut third = ws_connect(&url, None, Some(ip("127.0.0.5"))).await.unwrap();
    assert_eq!(
        close_code(&mut third).await,
        CloseReason::LimitReached.code()
    );
    let mut other = ws_connect(&url, None, Some(ip("127.0.0.6"))).await.unwrap();
    assert_eq!(round_trip(&mut other, b"mine").await, b"mine");
}

/// A relay whose HTTP timeouts are far away, so on a paused clock only the timer under test
/// can fire.
async fn paused_relay(echo: SocketAddr, idle: Duration, lifetime: Duration) -> LocalRelay {
    let options = ServeOptions {
        header_timeout: Duration::from_secs(24 * 3600),
        ..ServeOptions::default()
    };
    LocalRelay::with_options(
        RelayConfig {
            idle_timeout: idle,
            max_lifetime: lifetime,
            connect_timeout: Duration::from_secs(24 * 3600),
            ..loopback_config(&[echo.port()])
        },
        options,
        Duration::from_secs(1),
    )
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_is_closed_after_the_idle_timeout() {
    let echo = echo_server().await;
    let relay = paused_relay(echo, Duration::from_secs(300), Duration::from_secs(86_400)).await;
    let mut ws = relay.connect(echo).await.unwrap();
    assert_eq!(round_trip(&mut ws, b"hello").await, b"hello");
    let quiet_since = tokio::time::Instant::now();
    let code = close_code_within(&mut ws, Duration::from_secs(86_400)).await;
    assert_eq!(code, CloseReason::IdleTimeout.code());
    assert!(quiet_since.elapsed() >= Duration::from_secs(300));
    assert!(quiet_since.elapsed() < Duration::from_secs(330));
}

#[tokio::test(start_paused = true)]
async fn a_busy_session_is_closed_at_its_maximum_lifetime() {
    let echo = echo_server().await;
    let relay = paused_relay(echo, Duration::from_secs(60), Duration::from_secs(600)).await;
    let started = tokio::time::Instant::now();
    let ws = relay.connect(echo).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    // Activity every 10 s keeps the 60 s idle timer from firing; reading happens separately,
    // so the client never waits on the relay with its own clock stopped.
    let pinger = tokio::spawn(async move {
        loop {
            if sink.send(Message::binary(b"ping".to_vec())).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
    let code = loop {
        match stream.next().await {
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    pinger.abort();
    assert_eq!(code, CloseReason::LifetimeReached.code());
    assert!(started.elapsed() >= Duration::from_secs(600));
}

#[tokio::test]
async fn a_client_that_stops_reading_does_not_grow_the_relays_memory() {
    // A server that writes a numbered byte stream as fast as it can, counting what it wrote.
    let written = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = listener.local_addr().unwrap();
    let counter = Arc::clone(&written);
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut n: u64 = 0;
        loop {
            let chunk: Vec<u8> = (0..16 * 1024).map(|i| ((n + i) % 251) as u8).collect();
            if tcp.write_all(&chunk).await.is_err() {
                break;
            }
            n += chunk.len() as u64;
            counter.store(n, Ordering::SeqCst);
        }
    });
    let relay = LocalRelay::with_config(loopback_config(&[source.port()]))
        .await
        .unwrap();
    let mut ws = relay.connect(source).await.unwrap();

    // Wait until the source is blocked: kernel buffers are full and the relay stopped reading.
    let mut last = 0;
    let mut stable = 0;
    while stable < 10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = written.load(Ordering::SeqCst);
        stable = if now == last && now > 0 {
            stable + 1
        } else {
            0
        };
        last = now;
    }
    let buffered = relay.relay().metrics().buffered_bytes();
    assert!(
        buffered <= webpop_proxy::relay::READ_SIZE as u64,
        "the relay holds {buffered} bytes for a stalled client"
    );
    assert!(
        last < 256 * 1024 * 1024,
        "the source wrote {last} bytes into a stalled relay"
    );

    // Reading resumes and every byte arrives in order.
    let mut seen: u64 = 0;
    while seen < last {
        match ws.next().await {
            Some(Ok(Message::Binary(data))) => {
                assert!(data.len() <= MAX_FRAME);
                for (i, b) in data.iter().enumerate() {
                    assert_eq!(
                        u64::from(*b),
                        (seen + i as u64) % 251,
                        "byte {}",
                        seen + i as u64
                    );
                }
                seen += data.len() as u64;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn text_frames_and_oversize_frames_close_with_their_codes() {
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(loopback_config(&[echo.port()]))
        .await
        .unwrap();

    let mut ws = relay.connect(echo).await.unwrap();
    ws.send(Message::text("USER alice")).await.unwrap();
    assert_eq!(close_code(&mut ws).await, CloseReason::TextFrame.code());

    let mut ws = relay.connect(echo).await.unwrap();
    let exactly = vec![7u8; MAX_FRAME];
    assert_eq!(round_trip(&mut ws, &exactly).await, exactly);
    ws.send(Message::binary(vec![7u8; MAX_FRAME + 1]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, CloseReason::FrameTooLarge.code());
}
