//! Abuse, bounded: many concurrent sessions, churn, slowloris upgrades and floods of requests
//! for disallowed targets, each while a legitimate client does round trips through the relay
//! (its long session, and a fresh session now and then). The legitimate client must never fail
//! nor wait long, the abuse must be cut where the relay's limits say, and every session slot and
//! buffered byte must come back. Weaknesses these found have tests of their own: one address
//! could take every slot for connections not yet upgraded, many addresses together could too
//! (newcomers were dropped; now the longest waiter for headers is evicted), and idle sessions
//! kept a read buffer (all fixed).
//! `scripts/bench abuse` (bench/src/relay_abuse.rs) runs the long versions against a release
//! relay and prints figures.
//!
//! The tests take turns (one relay under abuse at a time), so their timings do not depend on
//! each other.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use webpop_proxy::client_ip::TrustedProxies;
use webpop_proxy::policy::{HostPattern, TargetPolicy};
use webpop_proxy::{RelayConfig, ServeOptions};
use webpop_shared::relay::CloseReason;

/// One abuse test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The most a legitimate round trip or fresh session may take, on a loaded 2-core machine with
/// a debug build: far above what it takes (about a millisecond), far below a hang.
const LEGIT_BOUND: Duration = Duration::from_secs(2);
/// The most any single abuse operation may take before it counts as hung.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// A loopback source address `127.<block>.0.<i+1>`: each stands for one client.
fn source(block: u8, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        block,
        (i / 250) as u8,
        (i % 250 + 1) as u8,
    ))
}

/// Raises this process's open-files limit (a fresh machine's soft limit may be 1,024) and
/// returns how many it may hold.
fn open_files(wanted: u64) -> u64 {
    rlimit::increase_nofile_limit(wanted).unwrap_or(1024)
}

/// This process's resident memory, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Waits until the relay has at most `n` sessions open.
async fn until_open_at_most(relay: &LocalRelay, n: u64) {
    let start = Instant::now();
    while relay.relay().metrics().open_sessions() > n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} sessions still open",
            relay.relay().metrics().open_sessions()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the legitimate client saw.
#[derive(Debug, Default)]
struct Seen {
    round_trips: usize,
    slowest_round_trip: Duration,
    sessions: usize,
    slowest_session: Duration,
    failures: Vec<String>,
}

/// A legitimate client: a round trip every 5 ms on one long session, and a fresh session
/// (connect, upgrade, one round trip, close) every 100 ms, from 127.0.0.1.
struct Legit {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Legit {
    async fn start(url: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut ws = ws_connect(&url, None, None).await.unwrap();
        assert_eq!(round_trip(&mut ws, b"hello").await, b"hello");
        let long = {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            tokio::spawn(async move {
                let mut i = 0u8;
                while !stop.load(Ordering::SeqCst) {
                    i = i.wrapping_add(1);
                    let message = [i; 16];
                    let start = Instant::now();
                    let result = tokio::time::timeout(LEGIT_BOUND, async {
                        ws.send(Message::binary(message.to_vec()))
                            .await
                            .map_err(|e| e.to_string())?;
                        let mut back = Vec::new();
                        while back.len() < message.len() {
                            match ws.next().await {
                                Some(Ok(Message::Binary(data))) => back.extend_from_slice(&data),
                                other => return Err(format!("{other:?}")),
                            }
                        }
                        if back == message {
                            Ok(())
                        } else {
                            Err("the echo differs".to_owned())
                        }
                    })
                    .await;
                    let elapsed = start.elapsed();
                    let failure = match result {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(format!("round trip: {e}")),
                        Err(_) => Some(format!("round trip over {LEGIT_BOUND:?}")),
                    };
                    {
                        let mut seen = seen.lock().unwrap();
                        if let Some(failure) = failure {
                            seen.failures.push(failure);
                            return;
                        }
                        seen.round_trips += 1;
                        seen.slowest_round_trip = seen.slowest_round_trip.max(elapsed);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let _ = ws.close(None).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
            })
        };
        let fresh = {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let start = Instant::now();
                    let result = tokio::time::timeout(LEGIT_BOUND, async {
                        let mut ws = ws_connect(&url, None, None)
                            .await
                            .map_err(|e| e.to_string())?;
                        ws.send(Message::binary(b"fresh".to_vec()))
                            .await
                            .map_err(|e| e.to_string())?;
                        match ws.next().await {
                            Some(Ok(Message::Binary(data))) if data == b"fresh".as_slice() => {}
                            other => return Err(format!("{other:?}")),
                        }
                        Ok(ws)
                    })
                    .await;
                    let elapsed = start.elapsed();
                    match result {
                        Ok(Ok(mut ws)) => {
                            {
                                let mut seen = seen.lock().unwrap();
                                seen.sessions += 1;
                                seen.slowest_session = seen.slowest_session.max(elapsed);
                            }
                            let _ = ws.close(None).await;
                            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                                while let Some(Ok(_)) = ws.next().await {}
                            })
                            .await;
                        }
                        Ok(Err(e)) => seen.lock().unwrap().failures.push(format!("session: {e}")),
                        Err(_) => seen
                            .lock()
                            .unwrap()
                            .failures
                            .push(format!("session over {LEGIT_BOUND:?}")),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Self {
            stop,
            seen,
            tasks: vec![long, fresh],
        }
    }

    /// Stops it, checks it never failed nor waited long, and returns what it saw.
    async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        assert!(seen.failures.is_empty(), "legit client failed: {seen:?}");
        assert!(
            seen.round_trips > 0 && seen.sessions > 0,
            "legit client did nothing: {seen:?}"
        );
        seen
    }
}

/// Relay sessions to `url` from `from`: open, echo one byte, then held.
async fn open_session(url: &str, from: IpAddr) -> Ws {
    tokio::time::timeout(OP_TIMEOUT, async {
        let mut ws = ws_connect(url, None, Some(from)).await.unwrap();
        assert_eq!(round_trip(&mut ws, &[1]).await, [1]);
        ws
    })
    .await
    .expect("opening a session hung")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_sessions_keep_legit_round_trips_fast_and_all_slots_return() {
    let _turn = SERIAL.lock().await;
    // Four descriptors per session in this process: client, relay's two, echo server.
    let n = 500.min((open_files(4096).saturating_sub(100) / 4) as usize);
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(RelayConfig {
        max_sessions: n + 10,
        ..loopback_config(&[echo.port()])
    })
    .await
    .unwrap();
    let url = relay.url("127.0.0.1", echo.port());
    let legit = Legit::start(url.clone()).await;

    // 25 per address: under the per-client cap of 32, as many clients would be.
    let held: Vec<Ws> = futures_util::stream::iter(0..n)
        .map(|i| {
            let url = url.clone();
            async move { open_session(&url, source(21, i / 25)).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(held.len(), n);
    let open = relay.relay().metrics().open_sessions();
    assert!(open > n as u64, "{open} sessions open"); // the n held and the legit ones
    tokio::time::sleep(Duration::from_millis(500)).await;

    drop(held);
    until_open_at_most(&relay, 2).await;
    let seen = legit.finish().await;
    until_open_at_most(&relay, 0).await;
    assert_eq!(metric(&relay, "webpop_relay_buffered_bytes"), 0);
    eprintln!("{n} sessions: legit {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_no_session_no_buffer_and_no_memory_behind() {
    let _turn = SERIAL.lock().await;
    open_files(4096);
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(loopback_config(&[echo.port()]))
        .await
        .unwrap();
    let url = relay.url("127.0.0.1", echo.port());
    let legit = Legit::start(url.clone()).await;

    // Two rounds: memory a leak holds grows with each; memory an allocator keeps does not.
    let mut churned = 0;
    let mut rss = vec![rss_kib()];
    for _round in 0..2 {
        let ok = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(1);
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (url, ok) = (url.clone(), Arc::clone(&ok));
                tokio::spawn(async move {
                    let from = source(22, w);
                    // Bounded in count as well as in time.
                    while Instant::now() < deadline && ok.load(Ordering::SeqCst) < 100_000 {
                        tokio::time::timeout(OP_TIMEOUT, async {
                            let mut ws = ws_connect(&url, None, Some(from)).await.unwrap();
                            assert_eq!(round_trip(&mut ws, &[7]).await, [7]);
                            ws.close(None).await.unwrap();
                            while let Some(Ok(_)) = ws.next().await {}
                        })
                        .await
                        .expect("a churned session hung");
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        churned += ok.load(Ordering::SeqCst);
        until_open_at_most(&relay, 2).await;
        rss.push(rss_kib());
    }
    let seen = legit.finish().await;
    until_open_at_most(&relay, 0).await;
    assert_eq!(metric(&relay, "webpop_relay_buffered_bytes"), 0);
    let total = metric(&relay, "webpop_relay_connections_total") as usize;
    assert!(
        total >= churned + seen.sessions,
        "{total} sessions counted, {churned} churned"
    );
    assert!(churned >= 100, "only {churned} sessions churned");
    // Client, relay and echo server all live in this process: the bound is loose, a leak of
    // even a kilobyte per session over the second round would pass it only by luck.
    let growth = rss[2].saturating_sub(rss[1]);
    assert!(
        growth < 32 * 1024,
        "RSS grew by {growth} KiB over the second round of churn (KiB: {rss:?})"
    );
    eprintln!("churned {churned} sessions; RSS KiB {rss:?}; legit {seen:?}");
}

/// How a slow un-upgraded connection ended: the relay closed it after this long, counted from
/// when the TCP connection was established.
async fn slow_connection(
    relay: SocketAddr,
    from: IpAddr,
    dribble: bool,
    give_up: Duration,
) -> Duration {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let tcp = socket.connect(relay).await.unwrap();
    let start = Instant::now();
    let (mut rx, mut tx) = tcp.into_split();
    let request =
        b"GET /relay?host=127.0.0.1&port=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n";
    let mut sent = 0;
    let mut buf = [0u8; 512];
    let result = tokio::time::timeout(give_up, async {
        loop {
            tokio::select! {
                read = rx.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                () = tokio::time::sleep(Duration::from_millis(20)), if dribble && sent < request.len() => {
                    if tx.write_all(&request[sent..=sent]).await.is_err() {
                        return;
                    }
                    sent += 1;
                }
            }
        }
    })
    .await;
    assert!(result.is_ok(), "a slow connection was never cut");
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_cut_at_the_header_deadline_and_silent_sessions_at_idle() {
    let _turn = SERIAL.lock().await;
    open_files(4096);
    let header_timeout = Duration::from_secs(1);
    let idle_timeout = Duration::from_secs(1);
    let echo = echo_server().await;
    let relay = LocalRelay::with_options(
        RelayConfig {
            idle_timeout,
            ..loopback_config(&[echo.port()])
        },
        ServeOptions {
            header_timeout,
            max_http_connections: 128,
            ..ServeOptions::default()
        },
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let url = relay.url("127.0.0.1", echo.port());
    let legit = Legit::start(url.clone()).await;

    // 100 un-upgraded connections from 4 addresses: 50 send a request a byte every 20 ms (it
    // would take 1.6 s), 50 send nothing. All must be cut at the deadline.
    let slow: Vec<_> = (0..100)
        .map(|i| {
            let addr = relay.addr();
            tokio::spawn(slow_connection(
                addr,
                source(23, i % 4),
                i % 2 == 0,
                Duration::from_secs(15),
            ))
        })
        .collect();
    // 10 sessions that upgrade, then never send: cut at the idle timeout, with its close code.
    let silent: Vec<_> = (0..10)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut ws = ws_connect(&url, None, Some(source(24, i))).await.unwrap();
                let start = Instant::now();
                let code = close_code_within(&mut ws, Duration::from_secs(15)).await;
                (code, start.elapsed())
            })
        })
        .collect();

    for task in slow {
        let cut = task.await.unwrap();
        // Counted from when this client saw its connection, a little after the relay's clock
        // started: the lower bound only shows it was not dropped at once.
        assert!(
            cut >= header_timeout / 2 && cut <= header_timeout + Duration::from_secs(3),
            "a slow connection was cut after {cut:?} (deadline {header_timeout:?})"
        );
    }
    for task in silent {
        let (code, after) = task.await.unwrap();
        assert_eq!(code, CloseReason::IdleTimeout.code());
        assert!(
            after >= idle_timeout / 2 && after <= idle_timeout + Duration::from_secs(3),
            "a silent session was cut after {after:?} (idle timeout {idle_timeout:?})"
        );
    }
    let seen = legit.finish().await;
    until_open_at_most(&relay, 0).await;
    assert_eq!(metric(&relay, "webpop_relay_buffered_bytes"), 0);
    eprintln!("slowloris: legit {seen:?}");
}

/// Opens `n` TCP connections to `relay` from `from` that send nothing, and returns them.
async fn silent_connections(relay: SocketAddr, from: IpAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        held.push(socket.connect(relay).await.unwrap());
    }
    held
}

/// How many of `held` the relay has not closed, waiting up to `wait` for closes to show.
async fn still_open(held: &mut [TcpStream], wait: Duration) -> usize {
    tokio::time::sleep(wait).await;
    let mut open = 0;
    let mut buf = [0u8; 16];
    for tcp in held.iter_mut() {
        match tcp.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
            _ => {}
        }
    }
    open
}

/// Slowloris from one address used to take all 1,024 slots for connections not yet upgraded,
/// and every other client's connection was then dropped at accept until the header deadline
/// (for as long as the attacker kept reconnecting). Now one address gets at most
/// `max_http_connections_per_client` of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_http_slot() {
    let _turn = SERIAL.lock().await;
    open_files(8192);
    let echo = echo_server().await;
    // The defaults: 1,024 HTTP connections not yet upgraded, 10 s to send the headers.
    let relay = LocalRelay::with_config(loopback_config(&[echo.port()]))
        .await
        .unwrap();
    let url = relay.url("127.0.0.1", echo.port());
    let defaults = ServeOptions::default();

    // One address opens more connections than the whole cap and sends nothing.
    let mut held = silent_connections(
        relay.addr(),
        source(25, 0),
        defaults.max_http_connections + 100,
    )
    .await;
    let open = still_open(&mut held, Duration::from_millis(500)).await;
    assert!(
        open <= defaults.max_http_connections_per_client,
        "one address holds {open} un-upgraded connections, over its cap of {} (overall cap {})",
        defaults.max_http_connections_per_client,
        defaults.max_http_connections
    );

    // Another client still gets a session, well before the header deadline frees anything.
    let started = Instant::now();
    let result = tokio::time::timeout(LEGIT_BOUND, ws_connect(&url, None, None)).await;
    let mut ws = match result {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => panic!(
            "another client was refused while one address held {open} un-upgraded connections: {e}"
        ),
        Err(_) => panic!("another client got no session within {LEGIT_BOUND:?}"),
    };
    assert!(started.elapsed() < defaults.header_timeout);
    assert_eq!(round_trip(&mut ws, b"still served").await, b"still served");
    drop(held);
}

/// Slow clients from enough addresses (16 at the defaults: 1,024 / 64) used to fill every slot
/// for connections not yet upgraded, and until the header deadline cut them every new
/// connection, anyone's, was dropped at accept (`scripts/bench abuse`: 32 of 32 fresh sessions
/// failed while 40 addresses held the slots). Now a full cap evicts the connection that has
/// waited longest for its headers, and the newcomer gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_http_cap_evicts_the_oldest_slow_connection_so_new_sessions_get_through() {
    let _turn = SERIAL.lock().await;
    open_files(4096);
    let echo = echo_server().await;
    let relay = LocalRelay::with_options(
        loopback_config(&[echo.port()]),
        ServeOptions {
            max_http_connections: 64,
            max_http_connections_per_client: 16,
            ..ServeOptions::default()
        },
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let mut held = Vec::new();
    for i in 0..4 {
        held.extend(silent_connections(relay.addr(), source(28, i), 16).await);
    }
    assert_eq!(still_open(&mut held, Duration::from_millis(300)).await, 64);
    let url = relay.url("127.0.0.1", echo.port());
    let result = tokio::time::timeout(LEGIT_BOUND, ws_connect(&url, None, None)).await;
    let mut ws = match result {
        Ok(Ok(ws)) => ws,
        other => panic!("a new client got no session while 4 addresses held every slot: {other:?}"),
    };
    assert_eq!(round_trip(&mut ws, b"got in").await, b"got in");
    // Exactly one slow connection made room, the oldest.
    assert_eq!(still_open(&mut held, Duration::from_millis(300)).await, 63);
    assert_eq!(still_open(&mut held[..1], Duration::ZERO).await, 0);
}

/// A reverse proxy carries many clients' connections from one address: when trusted, it is not
/// held to the per-client cap on connections not yet upgraded (the overall cap still holds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_is_not_held_to_the_per_client_http_cap() {
    let _turn = SERIAL.lock().await;
    open_files(4096);
    let proxy = source(27, 0);
    let relay = LocalRelay::with_config(RelayConfig {
        trusted_proxies: TrustedProxies::new(vec![IpNet::from(proxy)]),
        ..loopback_config(&[1])
    })
    .await
    .unwrap();
    let per_client = ServeOptions::default().max_http_connections_per_client;
    let mut from_proxy = silent_connections(relay.addr(), proxy, per_client + 36).await;
    let mut from_client = silent_connections(relay.addr(), source(27, 1), per_client + 36).await;
    let wait = Duration::from_millis(500);
    assert_eq!(still_open(&mut from_proxy, wait).await, per_client + 36);
    assert_eq!(
        still_open(&mut from_client, Duration::ZERO).await,
        per_client
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forbidden_targets_is_refused_with_4001_and_reaches_nothing() {
    let _turn = SERIAL.lock().await;
    open_files(4096);
    let echo = echo_server().await;
    // No private targets: loopback only through the explicit range, and only the echo port.
    let policy = TargetPolicy::default()
        .ports([echo.port()])
        .allow(["127.0.0.1/32".parse::<HostPattern>().unwrap()]);
    let relay = LocalRelay::with_config(RelayConfig {
        policy,
        new_sessions_per_client_per_minute: 0,
        ..RelayConfig::default()
    })
    .await
    .unwrap();
    let legit = Legit::start(relay.url("127.0.0.1", echo.port())).await;

    // Refused by port, by the allow list, and as unspecified: every one on this machine, so
    // nothing could leave it even if the policy failed.
    let targets = [
        relay.url("127.0.0.1", 25),
        relay.url("127.0.0.2", echo.port()),
        relay.url("127.0.0.1", 995),
        relay.url("0.0.0.0", echo.port()),
    ];
    let total = 1_000;
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (targets, next) = (targets.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut codes = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        return codes;
                    }
                    let code = tokio::time::timeout(OP_TIMEOUT, async {
                        let mut ws =
                            ws_connect(&targets[i % targets.len()], None, Some(source(26, w)))
                                .await
                                .unwrap();
                        let code = close_code(&mut ws).await;
                        // Answer the close and read to the end, as a browser does.
                        while let Some(Ok(_)) = ws.next().await {}
                        code
                    })
                    .await
                    .expect("a refusal hung");
                    codes.push(code);
                }
            })
        })
        .collect();
    let mut codes = Vec::new();
    for worker in workers {
        codes.extend(worker.await.unwrap());
    }
    assert_eq!(codes.len(), total);
    assert!(
        codes
            .iter()
            .all(|&c| c == CloseReason::ForbiddenTarget.code()),
        "not all 4001: {:?}",
        codes
            .iter()
            .filter(|&&c| c != 4001)
            .take(10)
            .collect::<Vec<_>>()
    );
    let seen = legit.finish().await;
    until_open_at_most(&relay, 0).await;
    assert_eq!(
        metric(
            &relay,
            "webpop_relay_refused_total{reason=\"forbidden_target\"}"
        ),
        total as u64
    );
    // Only the legitimate client's sessions ever connected anywhere.
    assert_eq!(
        metric(&relay, "webpop_relay_connections_total") as usize,
        seen.sessions + 1
    );
    assert_eq!(metric(&relay, "webpop_relay_buffered_bytes"), 0);
}

/// The relay binary on 127.0.0.1 with `args`, admitting any number of new sessions a minute
/// (these tests open hundreds from 127.0.0.1).
async fn relay_binary(args: &[&str]) -> RelayBinary {
    let mut command = std::process::Command::new(BINARY);
    command
        .args(["--listen", "127.0.0.1:0", "--web-root"])
        .arg(std::env::temp_dir())
        .args(["--sessions-per-minute", "0"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    RelayBinary::spawn(command).await
}

/// Idle sessions that once received a few bytes kept a read buffer reserved while they waited
/// for more (up to 1 MiB of heap each: 10 GB of address space for 10,000 sessions), because a
/// read that found nothing after all kept what it had reserved. Measured on the binary, in its
/// data segment: growth per session between "open" and "open, one echo done, idle".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_holds_no_read_buffer() {
    let _turn = SERIAL.lock().await;
    open_files(4096);
    let echo = echo_server().await;
    let n = 200;
    let relay = relay_binary(&[
        "--allow-private-targets",
        "--allow-port",
        &echo.port().to_string(),
        "--max-per-ip",
        "1000",
    ])
    .await;
    let url = format!(
        "ws://{}/relay?host=127.0.0.1&port={}",
        relay.addr,
        echo.port()
    );
    let mut sessions = Vec::with_capacity(n + 1);
    for _ in 0..=n {
        sessions.push(ws_connect(&url, None, None).await.unwrap());
    }
    // One echo first, so the allocator has served a read once (its heap and thresholds grow
    // then, whatever the number of sessions); the rest are connected, nothing sent yet.
    assert_eq!(round_trip(&mut sessions[n], b"+OK").await, b"+OK");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = relay.status_kib("VmData:");
    for ws in &mut sessions[..n] {
        assert_eq!(round_trip(ws, b"+OK").await, b"+OK");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = relay.status_kib("VmData:");
    let per_session = after.saturating_sub(before) as f64 / n as f64;
    assert!(
        per_session < 4.0,
        "each idle session grew the relay's data by {per_session:.1} KiB after one echo \
         ({before} -> {after} KiB for {n})"
    );
}

/// After a download through the zero-copy pipe ended with a small reply, the session went back
/// to copying still marked as streaming, so while idle it kept the 16 KiB it had reserved for
/// its next read. Measured on the binary: data segment growth and open files per session that
/// downloaded through a pipe and is now idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_idle_after_a_spliced_download_holds_no_buffer_and_no_pipe() {
    const DOWNLOAD: usize = 2 * 1024 * 1024;
    let _turn = SERIAL.lock().await;
    open_files(4096);
    // Per connection: on "g", DOWNLOAD bytes as fast as possible; on "q", a POP3-sized reply.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                while tcp.read_exact(&mut byte).await.is_ok() {
                    let reply = match byte[0] {
                        b'g' => vec![b'x'; DOWNLOAD],
                        _ => b"+OK\r\n".to_vec(),
                    };
                    if tcp.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let relay = relay_binary(&[
        "--allow-private-targets",
        "--allow-port",
        &source.port().to_string(),
        "--max-per-ip",
        "1000",
    ])
    .await;
    let url = format!(
        "ws://{}/relay?host=127.0.0.1&port={}",
        relay.addr,
        source.port()
    );
    async fn download_then_reply(ws: &mut Ws) {
        ws.send(Message::binary(b"g".to_vec())).await.unwrap();
        let mut got = 0;
        while got < DOWNLOAD {
            match ws.next().await {
                Some(Ok(Message::Binary(data))) => got += data.len(),
                other => panic!("expected data, got {other:?}"),
            }
        }
        assert_eq!(got, DOWNLOAD);
        assert_eq!(round_trip(ws, b"q").await, b"+OK\r\n");
    }
    let n = 100;
    let mut sessions = Vec::with_capacity(n + 1);
    for _ in 0..=n {
        sessions.push(ws_connect(&url, None, None).await.unwrap());
    }
    // One session first, so the allocator has served a download once.
    download_then_reply(&mut sessions[n]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = || std::fs::read_dir(format!("/proc/{}/fd", relay.pid())).map_or(0, Iterator::count);
    let (data_before, files_before) = (relay.status_kib("VmData:"), open());
    for ws in &mut sessions[..n] {
        download_then_reply(ws).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (data_after, files_after) = (relay.status_kib("VmData:"), open());

    let metrics = {
        let mut tcp = TcpStream::connect(relay.addr).await.unwrap();
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        tcp.read_to_string(&mut text).await.unwrap();
        text
    };
    let spliced: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("webpop_relay_bytes_spliced_total ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no spliced bytes in\n{metrics}"));
    assert!(
        spliced >= (n * DOWNLOAD / 10) as u64,
        "only {spliced} bytes went through pipes: the test did not exercise them"
    );
    assert_eq!(files_after, files_before, "idle sessions still hold pipes");
    let per_session = data_after.saturating_sub(data_before) as f64 / n as f64;
    assert!(
        per_session < 4.0,
        "each idle session grew the relay's data by {per_session:.1} KiB after a download \
         ({data_before} -> {data_after} KiB for {n})"
    );
}
