//! Abuse of the relay, with figures: many concurrent sessions, connection churn, slowloris
//! upgrades and floods of requests for disallowed targets.
//!
//! Each scenario starts a fresh release `webpop-proxy` (its own process, in its own process
//! group) in front of a TCP echo server (another process), on 127.0.0.1 only. A legitimate
//! client (its own thread and runtime in this process) does WebSocket round trips through the
//! relay the whole time on one long session, and opens a fresh session every 250 ms; its
//! latency is measured first with no abuse (the baseline), then under abuse, then after it. The
//! relay's RSS (`/proc/<pid>/status`) and `/metrics` are sampled every 200 ms. Every loop is
//! bounded in count and time.
//!
//! `--quick` is a bounded run of about a minute; the defaults are the long run
//! (`scripts/bench abuse`).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{stream, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::time::{sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use webpop_testkit::ws::{self, close_code, Ws};

use webpop_bench::relay_process::{
    accept_counted, describe, exit_when_stdin_closes, free_port, proc_kib, raise_open_files_limit,
    runtime, until_interrupted, Helper, RelayProcess,
};

/// Connecting, the WebSocket handshake and one echo; also one round trip on its own. Anything
/// near this is a failure, not a slow relay.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the relay may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long sessions may take to go away once their clients left.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between the legitimate client's round trips.
const LEGIT_GAP: Duration = Duration::from_millis(10);
/// How often the legitimate client opens a fresh session.
const LEGIT_PROBE_EVERY: Duration = Duration::from_millis(250);
/// How often the relay's RSS and metrics are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// Connections being opened at once by a load generator.
const OPEN_CONCURRENCY: usize = 64;
/// The relay's files besides two per session: stdio, listener, epoll, signals, a metrics scrape.
const SPARE_FDS: u64 = 30;
/// The relay's default cap on sessions per client address.
const PER_IP: usize = 32;
/// The relay's default caps on HTTP connections not yet upgraded: overall, per client address.
const HTTP_CAP: usize = 1024;
const HTTP_CAP_PER_IP: usize = 64;
/// Sessions the legitimate client may hold at once (its long one and a probe).
const LEGIT_SESSIONS: u64 = 2;

#[derive(Parser, Debug)]
#[command(about = "Relay abuse: concurrent sessions, churn, slowloris, forbidden-target floods")]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// The webpop-proxy binary (release build).
    #[arg(long, default_value = "target/release/webpop-proxy")]
    proxy: PathBuf,
    /// The bounded version: 1,000 connections, 2 x 2.5 s of churn, 200 slowloris connections
    /// against a 2 s header deadline, a 5 s forbidden flood. Flags given explicitly still win.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run, comma-separated [default: all, in this order].
    #[arg(long, value_enum, value_delimiter = ',')]
    scenarios: Option<Vec<Scenario>>,
    /// Seconds of the legitimate client alone before each abuse [default: 5; quick 2].
    #[arg(long)]
    baseline_seconds: Option<f64>,
    /// Seconds the legitimate client goes on after each abuse ended [default: 3; quick 2].
    #[arg(long)]
    after_seconds: Option<f64>,
    /// connections: sessions to open and hold; capped by the relay's open-files limit (2 per
    /// session) [default: 10,000; quick 1,000].
    #[arg(long)]
    connections: Option<usize>,
    /// connections: seconds to hold them [default: 15; quick 2].
    #[arg(long)]
    hold_seconds: Option<f64>,
    /// connections: waves of that many sessions in all, the held one first; the others open
    /// and close at once. RSS after each tells memory kept for reuse from a leak.
    #[arg(long, default_value_t = 3)]
    waves: usize,
    /// churn: seconds per round (two rounds, to tell a leak from allocator retention)
    /// [default: 30; quick 2.5].
    #[arg(long)]
    churn_seconds: Option<f64>,
    /// churn: concurrent open/close loops, each from its own address.
    #[arg(long, default_value_t = 16)]
    churn_workers: usize,
    /// slowloris: un-upgraded connections (3/4 send their request a byte at a time, 1/4 send
    /// nothing); past the relay's cap of 1,024 in the long run [default: 2,000; quick 200].
    #[arg(long)]
    slowloris: Option<usize>,
    /// slowloris: how many source addresses they come from; one run per value given. From one
    /// address they meet the per-client cap (64); spread out, the overall cap (1,024)
    /// [default: 1,40; quick 1,4].
    #[arg(long, value_delimiter = ',')]
    slowloris_sources: Option<Vec<usize>>,
    /// slowloris: connections that complete the upgrade, then never send [default: 100; quick 20].
    #[arg(long)]
    slowloris_upgraded: Option<usize>,
    /// slowloris: the relay's --header-timeout, seconds [default: 10; quick 2].
    #[arg(long)]
    header_timeout: Option<f64>,
    /// slowloris: the relay's --idle-timeout, seconds, for the upgraded ones [default: 15;
    /// quick 3].
    #[arg(long)]
    idle_timeout: Option<f64>,
    /// forbidden: seconds of the flood [default: 30; quick 5].
    #[arg(long)]
    forbidden_seconds: Option<f64>,
    /// forbidden: concurrent request loops, each from its own address.
    #[arg(long, default_value_t = 16)]
    forbidden_workers: usize,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Runs the TCP echo server (started by the benchmark itself) and prints its ports.
    #[command(hide = true)]
    Echo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Connections,
    Churn,
    Slowloris,
    Forbidden,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Connections,
        Scenario::Churn,
        Scenario::Slowloris,
        Scenario::Forbidden,
    ];
}

/// The run's sizes, after `--quick` and explicit flags.
#[derive(Debug)]
struct Plan {
    scenarios: Vec<Scenario>,
    baseline: Duration,
    after: Duration,
    connections: usize,
    hold: Duration,
    waves: usize,
    churn: Duration,
    churn_workers: usize,
    slowloris: usize,
    slowloris_sources: Vec<usize>,
    slowloris_upgraded: usize,
    header_timeout: Duration,
    idle_timeout: Duration,
    forbidden: Duration,
    forbidden_workers: usize,
}

impl Plan {
    fn new(args: &Args) -> Result<Self> {
        let q = args.quick;
        let secs = |v: Option<f64>, long: f64, quick: f64| -> Result<Duration> {
            let s = v.unwrap_or(if q { quick } else { long });
            ensure!(s.is_finite() && s > 0.0, "durations must be above 0 s");
            Ok(Duration::from_secs_f64(s))
        };
        let plan = Self {
            scenarios: args
                .scenarios
                .clone()
                .unwrap_or_else(|| Scenario::ALL.to_vec()),
            baseline: secs(args.baseline_seconds, 5.0, 2.0)?,
            after: secs(args.after_seconds, 3.0, 2.0)?,
            connections: args.connections.unwrap_or(if q { 1_000 } else { 10_000 }),
            hold: secs(args.hold_seconds, 15.0, 2.0)?,
            waves: args.waves.max(1),
            churn: secs(args.churn_seconds, 30.0, 2.5)?,
            churn_workers: args.churn_workers,
            slowloris: args.slowloris.unwrap_or(if q { 200 } else { 2_000 }),
            slowloris_sources: args.slowloris_sources.clone().unwrap_or_else(|| {
                if q {
                    vec![1, 4]
                } else {
                    vec![1, 40]
                }
            }),
            slowloris_upgraded: args.slowloris_upgraded.unwrap_or(if q { 20 } else { 100 }),
            header_timeout: secs(args.header_timeout, 10.0, 2.0)?,
            idle_timeout: secs(args.idle_timeout, 15.0, 3.0)?,
            forbidden: secs(args.forbidden_seconds, 30.0, 5.0)?,
            forbidden_workers: args.forbidden_workers,
        };
        ensure!(plan.connections > 0, "--connections must be at least 1");
        ensure!(
            (1..=250).contains(&plan.churn_workers),
            "--churn-workers must be 1 to 250"
        );
        ensure!(
            (1..=250).contains(&plan.forbidden_workers),
            "--forbidden-workers must be 1 to 250"
        );
        ensure!(
            !plan.slowloris_sources.is_empty()
                && plan.slowloris_sources.iter().all(|n| (1..=250).contains(n)),
            "--slowloris-sources must be 1 to 250"
        );
        Ok(plan)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = runtime()?;
    match args.role {
        Some(Role::Echo) => runtime.block_on(run_echo()),
        None => {
            let plan = Plan::new(&args)?;
            runtime.block_on(until_interrupted(
                run(&args, &plan),
                "interrupted; the relay and the echo server were stopped",
            ))
        }
    }
}

/// A loopback source address: `127.<block>.x.y`, a different one for each `i` below 62,500.
/// Linux routes all of 127/8 to loopback, so each stands for one client.
fn source(block: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, block, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// Source-address blocks, one per kind of client.
mod block {
    pub const HELD: u8 = 1;
    pub const CHURN: u8 = 2;
    pub const SLOWLORIS: u8 = 3;
    pub const UPGRADED: u8 = 4;
    pub const FORBIDDEN: u8 = 5;
}

// --- The echo server ----------------------------------------------------------------------------

/// Echoes every byte on one port and answers its number of open echo connections on another,
/// until its stdin closes (when the benchmark exits, however it exits).
async fn run_echo() -> Result<()> {
    raise_open_files_limit()?;
    let echo = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let count = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    println!(
        "{} {}",
        echo.local_addr()?.port(),
        count.local_addr()?.port()
    );
    exit_when_stdin_closes();
    let open = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&open);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = count.accept().await {
            let _ = stream.write_u64(counted.load(Ordering::SeqCst)).await;
        }
    });
    accept_counted(echo, "echo", open, |mut stream, _| async move {
        let _ = stream.set_nodelay(true);
        let (mut rx, mut tx) = stream.split();
        let _ = tokio::io::copy(&mut rx, &mut tx).await;
    })
    .await
}

/// The echo server process, started from this same binary.
struct Echo {
    port: u16,
    count_port: u16,
    _process: Helper,
}

impl Echo {
    async fn start() -> Result<Self> {
        let process = Helper::start("echo", "the echo server", START_TIMEOUT).await?;
        let line = &process.line;
        let mut ports = line.split_whitespace().map(str::parse::<u16>);
        let (Some(Ok(port)), Some(Ok(count_port))) = (ports.next(), ports.next()) else {
            bail!("the echo server printed no ports: {line:?}");
        };
        Ok(Self {
            port,
            count_port,
            _process: process,
        })
    }

    /// Echo connections open now.
    async fn open(&self) -> Result<u64> {
        timeout(OP_TIMEOUT, async {
            let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.count_port)).await?;
            anyhow::Ok(stream.read_u64().await?)
        })
        .await
        .context("the echo server did not answer")?
    }
}

// --- The relay ----------------------------------------------------------------------------------

/// A `webpop-proxy` process, in a process group of its own.
struct Relay {
    port: u16,
    process: RelayProcess,
}

impl Relay {
    /// Starts the relay with `flags` after the common ones (listen address, web root).
    async fn start(exe: &Path, scratch: &Path, flags: &[String]) -> Result<Self> {
        let port = free_port()?;
        let web_root = scratch.join("web-root");
        fs::create_dir_all(&web_root)?;
        fs::write(
            web_root.join("index.html"),
            "<!doctype html><title>webpop</title>",
        )?;
        let log = scratch.join(format!("webpop-proxy-{port}.log"));
        let mut command = Command::new(exe);
        // Only the flags below configure it, whatever this shell has set.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("WEBPOP_") {
                command.env_remove(name);
            }
        }
        command
            .args(["--listen", &format!("127.0.0.1:{port}"), "--web-root"])
            .arg(&web_root)
            .args(flags);
        let mut process = RelayProcess::spawn(command, exe, log)?;
        process
            .wait_listening(port, START_TIMEOUT)
            .await
            .context("the relay")?;
        Ok(Self { port, process })
    }

    fn addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.port).into()
    }

    fn url(&self, host: &str, port: u16) -> String {
        format!("ws://127.0.0.1:{}/relay?host={host}&port={port}", self.port)
    }

    /// The relay's open file descriptors.
    fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.process.pid)).map_or(0, Iterator::count)
    }

    /// The relay's resident memory, KiB.
    fn rss_kib(&self) -> u64 {
        proc_kib(self.process.pid, "status", "VmRSS:")
    }

    /// `/metrics`, as sample name (labels included) to value.
    async fn metrics(&self) -> Result<BTreeMap<String, f64>> {
        let text = timeout(Duration::from_secs(2), async {
            let mut tcp = TcpStream::connect(self.addr()).await?;
            let request = format!(
                "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.port
            );
            tcp.write_all(request.as_bytes()).await?;
            let mut text = String::new();
            tcp.read_to_string(&mut text).await?;
            anyhow::Ok(text)
        })
        .await
        .context("no answer within 2 s")??;
        let (head, body) = text.split_once("\r\n\r\n").context("no HTTP response")?;
        ensure!(
            head.starts_with("HTTP/1.1 200"),
            "{}",
            head.lines().next().unwrap_or("")
        );
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect())
    }

    /// Waits until the relay has at most `n` sessions open; returns how long that took.
    async fn settle_to(&self, n: u64) -> Result<Duration> {
        let start = Instant::now();
        loop {
            if let Ok(m) = self.metrics().await {
                if gauge(&m, "webpop_relay_connections_open") <= n as f64 {
                    return Ok(start.elapsed());
                }
            }
            ensure!(
                start.elapsed() < SETTLE_TIMEOUT,
                "sessions still open after {SETTLE_TIMEOUT:?}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.process.stop(Duration::from_secs(10)).await;
    }
}

/// The relay's peak resident memory, sampled every 100 ms until a deadline.
struct RssPeak {
    peak: Arc<AtomicU64>,
    watcher: tokio::task::JoinHandle<()>,
}

impl RssPeak {
    fn watch(relay: &Arc<Relay>, deadline: Instant) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let watcher = {
            let (relay, peak) = (Arc::clone(relay), Arc::clone(&peak));
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    peak.fetch_max(relay.rss_kib(), Ordering::Relaxed);
                    sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Self { peak, watcher }
    }

    /// Waits for the deadline; returns the peak, KiB.
    async fn finish(self) -> u64 {
        let _ = self.watcher.await;
        self.peak.load(Ordering::Relaxed)
    }
}

fn gauge(metrics: &BTreeMap<String, f64>, name: &str) -> f64 {
    metrics.get(name).copied().unwrap_or(0.0)
}

// --- WebSocket clients (webpop_testkit::ws) -----------------------------------------------------

/// Opens a relay session from `from` (any loopback address). Small read buffers: a load
/// generator holds thousands of these.
async fn open_ws(url: &str, from: Option<Ipv4Addr>) -> Result<Ws> {
    let options = ws::Options {
        source: from.map(IpAddr::V4),
        config: Some(WebSocketConfig::default().read_buffer_size(2048)),
        ..ws::Options::default()
    };
    Ok(ws::open(url, &options).await?.0)
}

/// Sends `data` and reads until all of it came back.
async fn round_trip(ws: &mut Ws, data: &[u8]) -> Result<()> {
    let back = ws::round_trip(ws, data).await?;
    ensure!(back == data, "the echo differs from what was sent");
    Ok(())
}

/// Closes politely, giving up after [`OP_TIMEOUT`].
async fn close_ws(ws: Ws) {
    let _ = timeout(OP_TIMEOUT, ws::close(ws)).await;
}

/// Counts of error texts, for the report.
#[derive(Default)]
struct Errors(Mutex<BTreeMap<String, usize>>);

impl Errors {
    fn add(&self, what: String) {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(what)
            .or_default() += 1;
    }

    fn summary(&self) -> String {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.is_empty() {
            return "none".to_owned();
        }
        let mut items: Vec<_> = map.iter().collect();
        items.sort_by(|a, b| b.1.cmp(a.1));
        items
            .iter()
            .take(4)
            .map(|(what, n)| format!("{n} x {what}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

// --- The legitimate client ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Baseline,
    Abuse,
    After,
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::Baseline, Phase::Abuse, Phase::After];

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Phase::Baseline,
            1 => Phase::Abuse,
            _ => Phase::After,
        }
    }
}

/// One operation of the legitimate client: when it started, in which phase, how long it took
/// (`None`: it failed).
#[derive(Debug, Clone, Copy)]
struct Op {
    phase: Phase,
    at: Instant,
    took: Option<Duration>,
}

/// What the legitimate client saw: its round trips and its fresh sessions.
#[derive(Default)]
struct LegitLog {
    round_trips: Vec<Op>,
    sessions: Vec<Op>,
}

struct LegitShared {
    phase: AtomicU8,
    stop: AtomicBool,
    log: Mutex<LegitLog>,
    errors: Errors,
}

/// A legitimate user of the relay, on its own thread and runtime, so the load generator's tasks
/// never delay it: round trips of 16 bytes on one long session, 10 ms apart, and a fresh session
/// (connect, upgrade, one round trip) every 250 ms.
struct Legit {
    shared: Arc<LegitShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Legit {
    /// Starts it against `url`; it stops by itself after `bound` at the latest.
    fn start(url: String, bound: Duration) -> Self {
        let shared = Arc::new(LegitShared {
            phase: AtomicU8::new(Phase::Baseline as u8),
            stop: AtomicBool::new(false),
            log: Mutex::default(),
            errors: Errors::default(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let started = Instant::now();
                let running = || !s.stop.load(Ordering::SeqCst) && started.elapsed() < bound;
                tokio::join!(
                    legit_round_trips(&s, &url, &running),
                    legit_sessions(&s, &url, &running)
                );
            });
        });
        Self {
            shared,
            thread: Some(thread),
        }
    }

    fn set_phase(&self, phase: Phase) {
        self.shared.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// What it saw between `from` and `to`, in words.
    fn window(&self, from: Instant, to: Instant) -> String {
        let log = lock(&self.shared.log);
        let rt = Stats::between(&log.round_trips, from, to);
        let ns = Stats::between(&log.sessions, from, to);
        format!(
            "legit round trips {} (p99 {}, max {}, {} failed), new sessions {} (max {}, {} failed)",
            rt.ok,
            fmt_dur(rt.p99),
            fmt_dur(rt.max),
            rt.failed,
            ns.ok,
            fmt_dur(ns.max),
            ns.failed
        )
    }

    /// Stops it and returns what it saw.
    fn finish(mut self) -> (LegitLog, String) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let log = std::mem::take(
            &mut *self
                .shared
                .log
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        (log, self.shared.errors.summary())
    }
}

impl Drop for Legit {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

async fn legit_round_trips(s: &LegitShared, url: &str, running: &impl Fn() -> bool) {
    let mut ws: Option<Ws> = None;
    let mut i: u8 = 0;
    while running() {
        let phase = Phase::from_u8(s.phase.load(Ordering::SeqCst));
        let conn = match ws.take() {
            Some(conn) => conn,
            None => match flatten(timeout(OP_TIMEOUT, open_ws(url, None)).await) {
                Ok(conn) => conn,
                Err(e) => {
                    s.errors.add(format!("long session: {}", describe(&e)));
                    lock(&s.log).round_trips.push(Op {
                        phase,
                        at: Instant::now(),
                        took: None,
                    });
                    sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let mut conn = conn;
        i = i.wrapping_add(1);
        let message: Vec<u8> = (0..16).map(|j| i.wrapping_add(j)).collect();
        let start = Instant::now();
        let result = flatten(timeout(OP_TIMEOUT, round_trip(&mut conn, &message)).await);
        let elapsed = start.elapsed();
        match result {
            Ok(()) => {
                lock(&s.log).round_trips.push(Op {
                    phase,
                    at: start,
                    took: Some(elapsed),
                });
                ws = Some(conn);
            }
            Err(e) => {
                s.errors.add(format!("round trip: {}", describe(&e)));
                lock(&s.log).round_trips.push(Op {
                    phase,
                    at: start,
                    took: None,
                });
            }
        }
        sleep(LEGIT_GAP).await;
    }
    if let Some(conn) = ws {
        close_ws(conn).await;
    }
}

async fn legit_sessions(s: &LegitShared, url: &str, running: &impl Fn() -> bool) {
    let mut next = tokio::time::Instant::now();
    while running() {
        sleep_until(next).await;
        next += LEGIT_PROBE_EVERY;
        let phase = Phase::from_u8(s.phase.load(Ordering::SeqCst));
        let start = Instant::now();
        let result = flatten(
            timeout(OP_TIMEOUT, async {
                let mut ws = open_ws(url, None).await?;
                round_trip(&mut ws, b"new session").await?;
                anyhow::Ok(ws)
            })
            .await,
        );
        let elapsed = start.elapsed();
        match result {
            Ok(ws) => {
                lock(&s.log).sessions.push(Op {
                    phase,
                    at: start,
                    took: Some(elapsed),
                });
                close_ws(ws).await;
            }
            Err(e) => {
                s.errors.add(format!("new session: {}", describe(&e)));
                lock(&s.log).sessions.push(Op {
                    phase,
                    at: start,
                    took: None,
                });
            }
        }
        // Never fall behind by more than one period.
        next = next.max(tokio::time::Instant::now());
    }
}

/// A timed-out operation as an error like any other.
fn flatten<T>(result: Result<Result<T>, tokio::time::error::Elapsed>) -> Result<T> {
    result.map_err(|_| anyhow!("timed out after {OP_TIMEOUT:?}"))?
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Latency figures of one kind of operation in one phase.
struct Stats {
    ok: usize,
    failed: usize,
    p50: Option<Duration>,
    p99: Option<Duration>,
    max: Option<Duration>,
}

impl Stats {
    fn of(ops: &[Op], phase: Phase) -> Self {
        Self::matching(ops, |op| op.phase == phase)
    }

    /// Of the operations that started between `from` and `to`.
    fn between(ops: &[Op], from: Instant, to: Instant) -> Self {
        Self::matching(ops, |op| op.at >= from && op.at <= to)
    }

    fn matching(ops: &[Op], keep: impl Fn(&Op) -> bool) -> Self {
        let mut ok: Vec<Duration> = ops
            .iter()
            .filter(|op| keep(op))
            .filter_map(|op| op.took)
            .collect();
        let failed = ops
            .iter()
            .filter(|op| keep(op) && op.took.is_none())
            .count();
        ok.sort();
        let pct = |p: f64| {
            let rank = ((p / 100.0 * ok.len() as f64).ceil() as usize).max(1);
            ok.get(rank - 1).copied()
        };
        Self {
            ok: ok.len(),
            failed,
            p50: pct(50.0),
            p99: pct(99.0),
            max: ok.last().copied(),
        }
    }
}

// --- Sampling the relay -------------------------------------------------------------------------

struct Sample {
    phase: Phase,
    rss_kib: u64,
    /// `None`: the scrape failed.
    metrics: Option<BTreeMap<String, f64>>,
}

/// Samples the relay's RSS and metrics every [`SAMPLE_EVERY`] until stopped (at most `bound`).
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn start(relay: &Arc<Relay>, legit: &Legit, bound: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (relay, shared, flag) = (
            Arc::clone(relay),
            Arc::clone(&legit.shared),
            Arc::clone(&stop),
        );
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut samples = Vec::new();
            while !flag.load(Ordering::SeqCst) && started.elapsed() < bound {
                let phase = Phase::from_u8(shared.phase.load(Ordering::SeqCst));
                let metrics = relay.metrics().await.ok();
                samples.push(Sample {
                    phase,
                    rss_kib: relay.rss_kib(),
                    metrics,
                });
                sleep(SAMPLE_EVERY).await;
            }
            samples
        });
        Self { stop, task }
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap_or_default()
    }
}

// --- Scenarios ----------------------------------------------------------------------------------

/// What a scenario hands back: its title, its own figures, and the relay's RSS at the points it
/// chose (label, KiB).
struct Outcome {
    title: String,
    figures: Vec<String>,
    rss: Vec<(String, u64)>,
}

/// Everything a scenario runs against.
struct Ctx<'a> {
    plan: &'a Plan,
    relay: &'a Arc<Relay>,
    echo: &'a Echo,
    legit: &'a Legit,
    fd_limit: u64,
}

/// One scenario's result, for the report.
struct Report {
    scenario: Scenario,
    outcome: Result<Outcome>,
    legit: LegitLog,
    legit_errors: String,
    samples: Vec<Sample>,
    log: PathBuf,
}

async fn run(args: &Args, plan: &Plan) -> Result<()> {
    let fd_limit = raise_open_files_limit()?;
    let proxy = args.proxy.clone();
    ensure!(
        proxy.is_file(),
        "{} not found: build it with cargo build --release -p webpop-proxy",
        proxy.display()
    );
    let scratch = tempfile::tempdir()?;
    let echo = Echo::start().await?;
    eprintln!(
        "echo server on 127.0.0.1:{}; open-files hard limit {fd_limit}",
        echo.port
    );
    let mut reports = Vec::new();
    for &scenario in &plan.scenarios {
        // Slowloris runs once per number of source addresses asked for.
        let variants = match scenario {
            Scenario::Slowloris => plan.slowloris_sources.clone(),
            _ => vec![1],
        };
        for sources in variants {
            eprintln!("== {scenario:?}");
            let report = run_scenario(
                scenario,
                sources,
                plan,
                &proxy,
                scratch.path(),
                &echo,
                fd_limit,
            )
            .await?;
            if let Err(e) = &report.outcome {
                eprintln!("   failed: {}", describe(e));
            }
            reports.push(report);
        }
    }
    println!();
    println!(
        "relay abuse: webpop-proxy (release, 1 thread) on 127.0.0.1, a TCP echo server and this \
         load generator each their own process; 2 fds per relayed session"
    );
    println!(
        "legit client: its own thread; round trips of 16 B on one long session every {} ms, and a \
         fresh session (connect + upgrade + 1 round trip) every {} ms",
        LEGIT_GAP.as_millis(),
        LEGIT_PROBE_EVERY.as_millis()
    );
    for report in &reports {
        print_report(report, plan);
    }
    // The logs are in the scratch directory, deleted now; a failed run keeps them.
    if reports.iter().any(|r| r.outcome.is_err()) {
        let keep = scratch.keep();
        println!();
        println!("relay logs kept in {}", keep.display());
        bail!("a scenario failed (see above)");
    }
    Ok(())
}

async fn run_scenario(
    scenario: Scenario,
    slowloris_sources: usize,
    plan: &Plan,
    proxy: &Path,
    scratch: &Path,
    echo: &Echo,
    fd_limit: u64,
) -> Result<Report> {
    let flags = relay_flags(scenario, plan, echo, fd_limit);
    let relay = Arc::new(Relay::start(proxy, scratch, &flags).await?);
    let log = relay.process.log.clone();
    let bound = Duration::from_secs(3600);
    let legit = Legit::start(relay.url("127.0.0.1", echo.port), bound);
    let sampler = Sampler::start(&relay, &legit, bound);
    sleep(plan.baseline).await;
    let ctx = Ctx {
        plan,
        relay: &relay,
        echo,
        legit: &legit,
        fd_limit,
    };
    legit.set_phase(Phase::Abuse);
    let outcome = match scenario {
        Scenario::Connections => connections(&ctx).await,
        Scenario::Churn => churn(&ctx).await,
        Scenario::Slowloris => slowloris(&ctx, slowloris_sources).await,
        Scenario::Forbidden => forbidden(&ctx).await,
    };
    // The scenario switched to After once its abuse was over; this covers a failed one.
    legit.set_phase(Phase::After);
    sleep(plan.after).await;
    let samples = sampler.finish().await;
    let (legit_log, legit_errors) = legit.finish();
    if let Ok(relay) = Arc::try_unwrap(relay) {
        relay.stop().await;
    }
    Ok(Report {
        scenario,
        outcome,
        legit: legit_log,
        legit_errors,
        samples,
        log,
    })
}

/// The relay's flags for a scenario. Each keeps the relay's defaults except what it is about.
fn relay_flags(scenario: Scenario, plan: &Plan, echo: &Echo, fd_limit: u64) -> Vec<String> {
    let echo_port = echo.port.to_string();
    let mut flags: Vec<String> = Vec::new();
    let mut add = |list: &[&str]| flags.extend(list.iter().map(|s| (*s).to_owned()));
    match scenario {
        Scenario::Forbidden => {
            // No private targets at all: loopback is reachable only by the explicit range, and
            // only on the echo port. Everything the flood asks for is refused by policy before
            // any connect (policy::check_request, then check_address, then connect).
            add(&["--allow-host", "127.0.0.1/32", "--allow-port", &echo_port]);
        }
        _ => add(&["--allow-private-targets", "--allow-port", &echo_port]),
    }
    // Flood and legitimate clients all come from 127.0.0.1: no cap on new sessions a minute.
    add(&["--sessions-per-minute", "0"]);
    match scenario {
        Scenario::Connections => {
            let sessions = connections_possible(plan.connections, fd_limit) as u64 + LEGIT_SESSIONS;
            add(&["--max-connections", &sessions.to_string()]);
        }
        Scenario::Slowloris => {
            add(&[
                "--header-timeout",
                &format!("{}ms", plan.header_timeout.as_millis()),
                "--idle-timeout",
                &format!("{}ms", plan.idle_timeout.as_millis()),
            ]);
        }
        Scenario::Churn | Scenario::Forbidden => {}
    }
    flags
}

/// How many abuse sessions fit in the relay's open-files limit next to the legitimate client's.
fn connections_possible(asked: usize, fd_limit: u64) -> usize {
    let most = (fd_limit.saturating_sub(SPARE_FDS) / 2).saturating_sub(LEGIT_SESSIONS);
    asked.min(usize::try_from(most).unwrap_or(usize::MAX))
}

/// Opens N sessions (32 per source address, the relay's per-client cap), each echoing one byte,
/// holds them, checks the per-client cap still refuses one more, then closes them all.
async fn connections(ctx: &Ctx<'_>) -> Result<Outcome> {
    let n = connections_possible(ctx.plan.connections, ctx.fd_limit);
    let mut figures = Vec::new();
    if n < ctx.plan.connections {
        figures.push(format!(
            "{} asked; {n} is the most the relay can hold next to the legit client's {} under \
             its open-files hard limit of {} (2 fds per session)",
            ctx.plan.connections, LEGIT_SESSIONS, ctx.fd_limit
        ));
    }
    let url = ctx.relay.url("127.0.0.1", ctx.echo.port);
    let rss_before = ctx.relay.rss_kib();
    let opening = Instant::now();
    let (held, opened) = open_many(&url, n).await;
    figures.push(format!(
        "{opened}; from {} addresses; meanwhile {}",
        n.div_ceil(PER_IP),
        ctx.legit.window(opening, Instant::now())
    ));
    let at_echo = ctx.echo.open().await?;
    let metrics = ctx.relay.metrics().await?;
    figures.push(format!(
        "held: relay connections_open {}, echo server connections {at_echo}",
        gauge(&metrics, "webpop_relay_connections_open")
    ));

    // The per-client cap still holds: one more from an address with 32 sessions is refused.
    if held.len() >= PER_IP {
        let code = timeout(OP_TIMEOUT, async {
            let mut ws = open_ws(&url, Some(source(block::HELD, 0))).await?;
            close_code(&mut ws).await
        })
        .await
        .map_err(|_| anyhow!("timed out"))??;
        figures.push(format!(
            "a 33rd session from one of those addresses: close code {}",
            code.map_or("none".to_owned(), |c| c.to_string())
        ));
    }

    let holding = Instant::now();
    let hold_until = holding + ctx.plan.hold;
    let mut rss_held = ctx.relay.rss_kib();
    while Instant::now() < hold_until {
        sleep(Duration::from_millis(250)).await;
        rss_held = rss_held.max(ctx.relay.rss_kib());
    }
    figures.push(format!(
        "while {} sessions were held: {}",
        held.len(),
        ctx.legit.window(holding, Instant::now())
    ));
    let count = held.len().max(1) as f64;
    figures.push(format!(
        "RSS per held session: {:.1} KB ({} KB over {} sessions)",
        rss_held.saturating_sub(rss_before) as f64 / count,
        rss_held.saturating_sub(rss_before),
        held.len()
    ));

    let closing = Instant::now();
    drop(held);
    let settled = ctx.relay.settle_to(LEGIT_SESSIONS).await?;
    sleep(Duration::from_secs(1)).await;
    figures.push(format!(
        "closed all at once: the relay was back to the legit client's sessions {:.2} s later; \
         from then to 1 s after, {}",
        settled.as_secs_f64(),
        ctx.legit.window(closing, Instant::now())
    ));
    let rss_after = ctx.relay.rss_kib();

    // Memory freed to the allocator but not to the system stays resident; it is reused if more
    // waves of the same size find the relay's RSS where the first left it, and leaked if each
    // adds to it.
    let mut rss = vec![
        ("before".into(), rss_before),
        (format!("{n} held"), rss_held),
        ("closed + 1 s".into(), rss_after),
    ];
    for wave in 2..=ctx.plan.waves {
        let opening = Instant::now();
        let (again, opened) = open_many(&url, n).await;
        let rss_again = ctx.relay.rss_kib();
        drop(again);
        ctx.relay.settle_to(LEGIT_SESSIONS).await?;
        sleep(Duration::from_secs(1)).await;
        let rss_after_again = ctx.relay.rss_kib();
        figures.push(format!(
            "wave {wave}: {opened}, then closed at once; RSS {:.1} MB held ({:+.1} MB against \
             the first wave), {:.1} MB after; {}",
            rss_again as f64 / 1024.0,
            (rss_again as f64 - rss_held as f64) / 1024.0,
            rss_after_again as f64 / 1024.0,
            ctx.legit.window(opening, Instant::now())
        ));
        rss.push((format!("wave {wave} held"), rss_again));
        rss.push(("closed + 1 s".into(), rss_after_again));
    }
    ctx.legit.set_phase(Phase::After);
    Ok(Outcome {
        title: format!(
            "connections: {n} concurrent sessions held {:.0} s",
            ctx.plan.hold.as_secs_f64()
        ),
        figures,
        rss,
    })
}

/// Opens `n` sessions to `url`, 32 per source address (the relay's per-client cap), each echoing
/// one byte; returns those that opened and a line saying how it went.
async fn open_many(url: &str, n: usize) -> (Vec<Ws>, String) {
    let errors = Errors::default();
    let start = Instant::now();
    let mut held = Vec::with_capacity(n);
    let mut opening = stream::iter(0..n)
        .map(|i| async move {
            let from = source(block::HELD, i / PER_IP);
            let opened = timeout(OP_TIMEOUT, async {
                let mut ws = open_ws(url, Some(from)).await?;
                round_trip(&mut ws, &[1]).await?;
                anyhow::Ok(ws)
            })
            .await;
            flatten(opened)
        })
        .buffer_unordered(OPEN_CONCURRENCY);
    while let Some(opened) = opening.next().await {
        match opened {
            Ok(ws) => held.push(ws),
            Err(e) => errors.add(describe(&e)),
        }
        let done = held.len();
        if done > 0 && done % 2_000 == 0 {
            eprintln!("   {done} sessions open");
        }
    }
    drop(opening);
    let secs = start.elapsed().as_secs_f64();
    let line = format!(
        "opened {} of {n} in {secs:.1} s ({:.0}/s), failed: {}",
        held.len(),
        held.len() as f64 / secs,
        errors.summary()
    );
    (held, line)
}

/// Sessions opened and closed as fast as the workers go: connect, upgrade, one byte echoed,
/// close handshake. Two rounds: a leak grows with every round, allocator retention does not.
async fn churn(ctx: &Ctx<'_>) -> Result<Outcome> {
    let url = ctx.relay.url("127.0.0.1", ctx.echo.port);
    let mut figures = Vec::new();
    let mut rss = vec![("before".to_owned(), ctx.relay.rss_kib())];
    let total_before = gauge(
        &ctx.relay.metrics().await?,
        "webpop_relay_connections_total",
    );
    let mut done_total = 0;
    for round in 1..=2 {
        let ok = AtomicUsize::new(0);
        let errors = Errors::default();
        let deadline = Instant::now() + ctx.plan.churn;
        // Bounded in count too: far more than any machine here opens in that time.
        let cap = (ctx.plan.churn.as_secs_f64() * 50_000.0) as usize;
        let watcher = RssPeak::watch(ctx.relay, deadline);
        let start = Instant::now();
        let workers = (0..ctx.plan.churn_workers).map(|w| {
            let (url, ok, errors) = (&url, &ok, &errors);
            async move {
                let from = source(block::CHURN, w);
                while Instant::now() < deadline && ok.load(Ordering::Relaxed) < cap {
                    let result = timeout(OP_TIMEOUT, async {
                        let mut ws = open_ws(url, Some(from)).await?;
                        round_trip(&mut ws, &[7]).await?;
                        ws.close(None).await?;
                        while let Some(Ok(_)) = ws.next().await {}
                        anyhow::Ok(())
                    })
                    .await;
                    match result {
                        Ok(Ok(())) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Err(e)) => errors.add(describe(&e)),
                        Err(_) => errors.add("timed out".into()),
                    }
                }
            }
        });
        futures_util::future::join_all(workers).await;
        let secs = start.elapsed().as_secs_f64();
        let peak = watcher.finish().await;
        let ok = ok.into_inner();
        done_total += ok;
        if round == 2 {
            ctx.legit.set_phase(Phase::After);
        }
        let settled = ctx.relay.settle_to(LEGIT_SESSIONS).await?;
        sleep(Duration::from_secs(1)).await;
        let m = ctx.relay.metrics().await?;
        figures.push(format!(
            "round {round}: {ok} sessions in {secs:.1} s = {:.0} sessions/s ({} workers); \
             failed: {}; settled {:.2} s after; buffered bytes {}",
            ok as f64 / secs,
            ctx.plan.churn_workers,
            errors.summary(),
            settled.as_secs_f64(),
            gauge(&m, "webpop_relay_buffered_bytes")
        ));
        rss.push((format!("round {round} peak"), peak));
        rss.push((format!("round {round} +1 s"), ctx.relay.rss_kib()));
    }
    let total_after = gauge(
        &ctx.relay.metrics().await?,
        "webpop_relay_connections_total",
    );
    figures.push(format!(
        "relay connections_total grew by {} ({} churned + the legit client's)",
        total_after - total_before,
        done_total
    ));
    let r1 = rss[2].1;
    let r2 = rss[4].1;
    figures.push(format!(
        "RSS after round 2 vs after round 1: {:+} KB ({:+.3} KB per 1,000 sessions of round 2)",
        r2 as i64 - r1 as i64,
        (r2 as f64 - r1 as f64) / (done_total as f64 / 2.0 / 1000.0).max(0.001)
    ));
    Ok(Outcome {
        title: format!(
            "churn: open/echo/close as fast as possible, 2 rounds of {:.1} s",
            ctx.plan.churn.as_secs_f64()
        ),
        figures,
        rss,
    })
}

/// How one slowloris connection ended.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// The relay closed it this long after it connected (0 if the connect itself failed).
    After(Duration),
    /// Still open when the client gave up.
    Never,
}

/// A request the relay would upgrade, minus its last two bytes.
fn partial_upgrade(relay_port: u16, echo_port: u16) -> Vec<u8> {
    let mut request = format!(
        "GET /relay?host=127.0.0.1&port={echo_port} HTTP/1.1\r\nHost: 127.0.0.1:{relay_port}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes();
    request.truncate(request.len() - 2);
    request
}

/// One un-upgraded connection: sends `request` a byte per `every` (nothing, if empty) and waits
/// for the relay to close it.
async fn slow_client(
    relay: SocketAddr,
    from: Ipv4Addr,
    request: Arc<Vec<u8>>,
    every: Duration,
    give_up: Duration,
    alive: Arc<AtomicUsize>,
) -> Cut {
    let connected = async {
        let socket = TcpSocket::new_v4()?;
        socket.bind((from, 0).into())?;
        socket.connect(relay).await
    };
    let Ok(Ok(tcp)) = timeout(OP_TIMEOUT, connected).await else {
        return Cut::After(Duration::ZERO);
    };
    let t0 = tokio::time::Instant::now();
    alive.fetch_add(1, Ordering::SeqCst);
    let (mut rx, mut tx) = tcp.into_split();
    let mut sent = 0;
    let mut next = t0 + every;
    let mut buf = [0u8; 1024];
    let cut = loop {
        tokio::select! {
            read = rx.read(&mut buf) => match read {
                Ok(0) | Err(_) => break Cut::After(t0.elapsed()),
                Ok(_) => {} // An error page before closing: keep reading to the end.
            },
            () = sleep_until(next), if sent < request.len() => {
                if tx.write_all(&request[sent..=sent]).await.is_err() {
                    break Cut::After(t0.elapsed());
                }
                sent += 1;
                next += every;
            },
            () = sleep_until(t0 + give_up) => break Cut::Never,
        }
    };
    alive.fetch_sub(1, Ordering::SeqCst);
    cut
}

/// Un-upgraded connections that send a partial upgrade a byte at a time, or nothing; and
/// upgraded sessions that never send. The first two must be cut at the header deadline (and
/// held under the HTTP connection cap), the last at the idle timeout.
async fn slowloris(ctx: &Ctx<'_>, sources: usize) -> Result<Outcome> {
    let plan = ctx.plan;
    let header = plan.header_timeout;
    let request = Arc::new(partial_upgrade(ctx.relay.port, ctx.echo.port));
    // Slow enough that the request would take twice the deadline.
    let every = header.mul_f64(2.0) / request.len() as u32;
    let give_up = header.max(plan.idle_timeout) + Duration::from_secs(20);
    let n = plan.slowloris;
    let dribbling = n * 3 / 4;
    let alive = Arc::new(AtomicUsize::new(0));
    let admitted = Arc::new(AtomicUsize::new(0));
    let connects = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
    let rss_before = ctx.relay.rss_kib();
    // The relay's descriptors besides its sessions' (two each): listener, logs, epoll...
    let open_before = gauge(&ctx.relay.metrics().await?, "webpop_relay_connections_open");
    let other_fds = ctx.relay.open_fds() as f64 - 2.0 * open_before;
    let start = Instant::now();

    let mut slow = Vec::with_capacity(n);
    for i in 0..n {
        let from = source(block::SLOWLORIS, i % sources);
        let (request, every) = if i < dribbling {
            (Arc::clone(&request), every)
        } else {
            (Arc::new(Vec::new()), Duration::MAX / 4)
        };
        let (alive, connects, relay) =
            (Arc::clone(&alive), Arc::clone(&connects), ctx.relay.addr());
        slow.push(tokio::spawn(async move {
            let permit = connects.acquire_owned().await;
            // The permit covers connecting only; the client then runs on its own.
            let task = slow_client(relay, from, request, every, give_up, alive);
            tokio::pin!(task);
            let cut = tokio::select! {
                cut = &mut task => Some(cut),
                () = sleep(Duration::from_millis(5)) => None,
            };
            drop(permit);
            match cut {
                Some(cut) => cut,
                None => task.await,
            }
        }));
    }

    let url = ctx.relay.url("127.0.0.1", ctx.echo.port);
    let mut upgraded = Vec::new();
    for k in 0..plan.slowloris_upgraded {
        // 16 per address: well under the per-client cap, so each holds a session slot.
        let from = source(block::UPGRADED, k / 16);
        let (url, admitted) = (url.clone(), Arc::clone(&admitted));
        upgraded.push(tokio::spawn(async move {
            let opened = Instant::now();
            let result = timeout(give_up, async {
                let mut ws = open_ws(&url, Some(from)).await?;
                let admitted_at = opened.elapsed();
                admitted.fetch_add(1, Ordering::SeqCst);
                let code = close_code(&mut ws).await;
                admitted.fetch_sub(1, Ordering::SeqCst);
                anyhow::Ok((admitted_at, code?, opened.elapsed()))
            })
            .await;
            match result {
                Ok(Ok(done)) => Ok(done),
                Ok(Err(e)) => Err(describe(&e)),
                Err(_) => Err("never closed".to_owned()),
            }
        }));
    }

    // How many un-upgraded connections the relay holds: its descriptors less two per session
    // (the upgraded ones, and the legit client's one or two). The clients' own view can be
    // higher: a connection the kernel completed but the relay has not accepted yet (its accept
    // queue overflowed) looks open to the client.
    let (mut relay_peak, mut alive_peak) = (0.0f64, 0);
    let watch_until = Instant::now() + header + Duration::from_secs(3);
    while Instant::now() < watch_until {
        let sessions = admitted.load(Ordering::SeqCst) as f64 + 1.0;
        let held = ctx.relay.open_fds() as f64 - other_fds - 2.0 * sessions;
        relay_peak = relay_peak.max(held);
        alive_peak = alive_peak.max(alive.load(Ordering::SeqCst));
        sleep(Duration::from_millis(50)).await;
    }
    let rss_during = ctx.relay.rss_kib();
    let during = ctx
        .legit
        .window(start + Duration::from_secs(1), start + header.mul_f64(0.9));

    let mut cuts = Vec::with_capacity(n);
    for (i, task) in slow.into_iter().enumerate() {
        cuts.push((i < dribbling, task.await?));
    }
    let mut up = Vec::new();
    for task in upgraded {
        up.push(task.await?);
    }
    ctx.legit.set_phase(Phase::After);
    let settled = ctx.relay.settle_to(LEGIT_SESSIONS).await;
    let rss_after = ctx.relay.rss_kib();

    let mut figures = Vec::new();
    figures.push(format!(
        "{n} un-upgraded connections from {sources} address(es) ({dribbling} sending {} B a byte \
         every {} ms, {} sending nothing); relay caps {HTTP_CAP} overall, {HTTP_CAP_PER_IP} per \
         address; header deadline {:.1} s",
        request.len(),
        every.as_millis(),
        n - dribbling,
        header.as_secs_f64()
    ));
    figures.push(format!(
        "un-upgraded connections held by the relay (its fds less 2 per session): peak \
         ~{relay_peak:.0}; caps {HTTP_CAP} overall and {HTTP_CAP_PER_IP} x {sources} \
         address(es) = {}; the clients saw at most {alive_peak} open",
        HTTP_CAP_PER_IP * sources
    ));
    figures.push(format!(
        "from 1 s to 0.9 x the deadline, while they were held: {during}"
    ));
    for (dribble, name) in [(true, "dribbling"), (false, "silent")] {
        let mine: Vec<Cut> = cuts
            .iter()
            .filter(|(d, _)| *d == dribble)
            .map(|(_, c)| *c)
            .collect();
        let at_once: Vec<Duration> = mine
            .iter()
            .filter_map(|c| match c {
                Cut::After(d) if *d < header / 2 => Some(*d),
                _ => None,
            })
            .collect();
        let mut at_deadline: Vec<Duration> = mine
            .iter()
            .filter_map(|c| match c {
                Cut::After(d) if *d >= header / 2 => Some(*d),
                _ => None,
            })
            .collect();
        at_deadline.sort();
        let never = mine.iter().filter(|c| matches!(c, Cut::Never)).count();
        let range = if at_deadline.is_empty() {
            String::new()
        } else {
            format!(
                " at {:.2} / {:.2} / {:.2} s (min / median / max)",
                at_deadline[0].as_secs_f64(),
                at_deadline[at_deadline.len() / 2].as_secs_f64(),
                at_deadline[at_deadline.len() - 1].as_secs_f64()
            )
        };
        figures.push(format!(
            "{name}: {} cut at the deadline{range}; {} closed at once (a cap was full); {never} never cut",
            at_deadline.len(),
            at_once.len()
        ));
    }
    if !up.is_empty() {
        let mut idle_cut: Vec<Duration> = Vec::new();
        let mut codes: BTreeMap<String, usize> = BTreeMap::new();
        for result in &up {
            match result {
                Ok((admitted, code, closed)) => {
                    let code = code.map_or("no close frame".to_owned(), |c| c.to_string());
                    *codes.entry(code.clone()).or_default() += 1;
                    if code == "4006" {
                        idle_cut.push(closed.saturating_sub(*admitted));
                    }
                }
                Err(e) => *codes.entry(e.clone()).or_default() += 1,
            }
        }
        idle_cut.sort();
        let range = if idle_cut.is_empty() {
            String::new()
        } else {
            format!(
                ", cut {:.2} / {:.2} s (min / max) after the upgrade",
                idle_cut[0].as_secs_f64(),
                idle_cut[idle_cut.len() - 1].as_secs_f64()
            )
        };
        figures.push(format!(
            "{} upgraded then silent (idle timeout {:.1} s): close codes {codes:?}{range}",
            up.len(),
            plan.idle_timeout.as_secs_f64()
        ));
    }
    match settled {
        Ok(t) => figures.push(format!(
            "sessions back to the legit client's {:.2} s after the last slow client ended",
            t.as_secs_f64()
        )),
        Err(e) => figures.push(format!("sessions did not settle: {}", describe(&e))),
    }
    Ok(Outcome {
        title: format!(
            "slowloris: {n} slow un-upgraded connections from {sources} address(es) + {} \
             upgraded-then-silent",
            plan.slowloris_upgraded
        ),
        figures,
        rss: vec![
            ("before".into(), rss_before),
            ("held, before deadline".into(), rss_during),
            ("all cut".into(), rss_after),
        ],
    })
}

/// Upgrade requests for targets the policy refuses, as fast as the workers go; each must be
/// closed with 4001. Every target is on loopback, so nothing could leave the machine even if
/// the policy failed.
async fn forbidden(ctx: &Ctx<'_>) -> Result<Outcome> {
    let e = ctx.echo.port;
    let targets = [
        ("127.0.0.1", 25u16), // port not allowed
        ("127.0.0.2", e),     // host not on the allow list
        ("127.0.0.1", 995),   // the default POP3 port, not allowed here
        ("0.0.0.0", e),       // unspecified, not on the allow list
    ];
    let urls: Vec<String> = targets.iter().map(|(h, p)| ctx.relay.url(h, *p)).collect();
    let before = ctx.relay.metrics().await?;
    let rss_before = ctx.relay.rss_kib();
    let codes: Mutex<BTreeMap<String, usize>> = Mutex::default();
    let done = AtomicUsize::new(0);
    let deadline = Instant::now() + ctx.plan.forbidden;
    let cap = (ctx.plan.forbidden.as_secs_f64() * 50_000.0) as usize;
    let watcher = RssPeak::watch(ctx.relay, deadline);
    let start = Instant::now();
    let workers = (0..ctx.plan.forbidden_workers).map(|w| {
        let (urls, codes, done) = (&urls, &codes, &done);
        async move {
            let from = source(block::FORBIDDEN, w);
            let mut i = w;
            while Instant::now() < deadline && done.load(Ordering::Relaxed) < cap {
                let url = &urls[i % urls.len()];
                i += 1;
                let result = timeout(OP_TIMEOUT, async {
                    let mut ws = open_ws(url, Some(from)).await?;
                    close_code(&mut ws).await
                })
                .await;
                let key = match result {
                    Ok(Ok(Some(code))) => code.to_string(),
                    Ok(Ok(None)) => "no close frame".to_owned(),
                    Ok(Err(e)) => describe(&e),
                    Err(_) => "timed out".to_owned(),
                };
                *lock(codes).entry(key).or_default() += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    futures_util::future::join_all(workers).await;
    let secs = start.elapsed().as_secs_f64();
    let peak = watcher.finish().await;
    ctx.legit.set_phase(Phase::After);
    let settled = ctx.relay.settle_to(LEGIT_SESSIONS).await?;
    sleep(Duration::from_secs(1)).await;
    let after = ctx.relay.metrics().await?;
    let done = done.into_inner();
    let codes = codes.into_inner().unwrap_or_else(PoisonError::into_inner);
    let refused = |m: &BTreeMap<String, f64>| {
        gauge(m, "webpop_relay_refused_total{reason=\"forbidden_target\"}")
    };
    let mut figures = vec![
        format!(
            "{done} requests in {secs:.1} s = {:.0} refusals/s ({} workers, targets {})",
            done as f64 / secs,
            ctx.plan.forbidden_workers,
            targets
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "close codes seen: {codes:?}; 4001 for {:.2}% of requests",
            100.0 * codes.get("4001").copied().unwrap_or(0) as f64 / done.max(1) as f64
        ),
        format!(
            "relay refused_total{{forbidden_target}} grew by {}; connections_total by {} (the \
             legit client's only); sessions settled {:.2} s after",
            refused(&after) - refused(&before),
            gauge(&after, "webpop_relay_connections_total")
                - gauge(&before, "webpop_relay_connections_total"),
            settled.as_secs_f64()
        ),
    ];
    let echo_open = ctx.echo.open().await?;
    figures.push(format!(
        "echo server connections after the flood: {echo_open} (the legit client's)"
    ));
    Ok(Outcome {
        title: format!(
            "forbidden: a {:.0} s flood of upgrades for disallowed targets",
            ctx.plan.forbidden.as_secs_f64()
        ),
        figures,
        rss: vec![
            ("before".into(), rss_before),
            ("flood peak".into(), peak),
            ("after + 1 s".into(), ctx.relay.rss_kib()),
        ],
    })
}

// --- Output -------------------------------------------------------------------------------------

fn fmt_dur(d: Option<Duration>) -> String {
    match d {
        None => "-".to_owned(),
        Some(d) if d < Duration::from_millis(1) => format!("{:.0} µs", d.as_secs_f64() * 1e6),
        Some(d) if d < Duration::from_secs(1) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
    }
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64()),
        _ => "-".to_owned(),
    }
}

/// Prints one scenario's tables.
fn print_report(report: &Report, plan: &Plan) {
    println!();
    let outcome = match &report.outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            println!("== {:?}: FAILED: {}", report.scenario, describe(e));
            println!("   relay log: {}", report.log.display());
            return;
        }
    };
    println!("== {}", outcome.title);
    let rt: Vec<Stats> = Phase::ALL
        .iter()
        .map(|p| Stats::of(&report.legit.round_trips, *p))
        .collect();
    let ns: Vec<Stats> = Phase::ALL
        .iter()
        .map(|p| Stats::of(&report.legit.sessions, *p))
        .collect();
    println!(
        "  {:<26}{:>14}{:>14}{:>10}{:>14}{:>10}",
        "legit client",
        format!("baseline {:.0}s", plan.baseline.as_secs_f64()),
        "under abuse",
        "ratio",
        "after",
        "ratio"
    );
    let line = |name: &str, s: &[Stats], f: &dyn Fn(&Stats) -> Option<Duration>| {
        println!(
            "  {name:<26}{:>14}{:>14}{:>10}{:>14}{:>10}",
            fmt_dur(f(&s[0])),
            fmt_dur(f(&s[1])),
            ratio(f(&s[1]), f(&s[0])),
            fmt_dur(f(&s[2])),
            ratio(f(&s[2]), f(&s[0]))
        );
    };
    line("round trip p50", &rt, &|s| s.p50);
    line("round trip p99", &rt, &|s| s.p99);
    line("round trip max", &rt, &|s| s.max);
    line("new session p50", &ns, &|s| s.p50);
    line("new session p99", &ns, &|s| s.p99);
    line("new session max", &ns, &|s| s.max);
    let count = |name: &str, s: &[Stats], f: &dyn Fn(&Stats) -> usize| {
        println!(
            "  {name:<26}{:>14}{:>14}{:>10}{:>14}",
            f(&s[0]),
            f(&s[1]),
            "",
            f(&s[2])
        );
    };
    count("round trips ok", &rt, &|s| s.ok);
    count("round trips failed", &rt, &|s| s.failed);
    count("new sessions ok", &ns, &|s| s.ok);
    count("new sessions failed", &ns, &|s| s.failed);
    if rt.iter().chain(&ns).any(|s| s.failed > 0) {
        println!("  legit failures: {}", report.legit_errors);
    }

    // The relay, from the samples.
    let of_phase = |p: Phase| report.samples.iter().filter(move |s| s.phase == p);
    let peak = |p: Phase, name: &str| {
        of_phase(p)
            .filter_map(|s| s.metrics.as_ref().map(|m| gauge(m, name)))
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            })
    };
    let fmt_peak = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    println!(
        "  {:<26}{:>14}{:>14}{:>10}{:>14}",
        "relay (sampled 5/s), peak", "baseline", "under abuse", "", "after"
    );
    let rss_peak = |p: Phase| of_phase(p).map(|s| s.rss_kib).max();
    println!(
        "  {:<26}{:>14}{:>14}{:>10}{:>14}",
        "RSS, KB",
        fmt_peak(rss_peak(Phase::Baseline).map(|v| v as f64)),
        fmt_peak(rss_peak(Phase::Abuse).map(|v| v as f64)),
        "",
        fmt_peak(rss_peak(Phase::After).map(|v| v as f64))
    );
    for (label, name) in [
        ("sessions open", "webpop_relay_connections_open"),
        ("buffered bytes", "webpop_relay_buffered_bytes"),
    ] {
        println!(
            "  {label:<26}{:>14}{:>14}{:>10}{:>14}",
            fmt_peak(peak(Phase::Baseline, name)),
            fmt_peak(peak(Phase::Abuse, name)),
            "",
            fmt_peak(peak(Phase::After, name))
        );
    }
    let scrape_failures = |p: Phase| of_phase(p).filter(|s| s.metrics.is_none()).count();
    println!(
        "  {:<26}{:>14}{:>14}{:>10}{:>14}",
        "/metrics scrapes failed",
        scrape_failures(Phase::Baseline),
        scrape_failures(Phase::Abuse),
        "",
        scrape_failures(Phase::After)
    );
    if let Some(last) = of_phase(Phase::After)
        .filter_map(|s| s.metrics.as_ref())
        .next_back()
    {
        println!(
            "  at the end: sessions open {}, buffered bytes {}",
            gauge(last, "webpop_relay_connections_open"),
            gauge(last, "webpop_relay_buffered_bytes")
        );
    }
    println!(
        "  relay RSS: {}",
        outcome
            .rss
            .iter()
            .map(|(label, kib)| format!("{label} {:.1} MB", *kib as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for figure in &outcome.figures {
        println!("  - {figure}");
    }
}
