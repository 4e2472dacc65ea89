//! Compares WebSocket-to-TCP relays side by side in one run: webpop-proxy, websocat and
//! websockify, each in front of the same local TCP source, plus two references: direct TCP, and
//! socat relaying plain TCP to TCP, the floor of any relay that copies bytes in user space (what
//! relaying costs with no WebSocket work at all).
//!
//! Measured: a large download (MB/s and the relay's CPU seconds per GiB), small request/response
//! round trips (p50/p99), and the WebSocket relays' memory growth per idle connection at each
//! connection count asked for; then ours against websocat, with targets. Everything listens on
//! 127.0.0.1. The source, this client and every relay are separate processes, so each relay's CPU
//! time and memory can be read from `/proc` alone; websockify and socat fork per connection, so a
//! relay's figures are those of its whole process tree.

#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use clap::{Parser, Subcommand};
use futures_util::{stream, SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use webpop_testkit::ws::{self, Ws};

use webpop_bench::relay_process::{
    accept_counted, describe, exit_when_stdin_closes, free_port, proc_kib, raise_open_files_limit,
    runtime, until_interrupted, Helper, RelayProcess,
};

const KIB: u64 = 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// Connecting plus the WebSocket handshake plus one echo, for one connection.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// One small round trip; anything near this is a hang, not a slow relay.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a relay (Python imports included) may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long exiting connections and processes may take to go away.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Idle connections opened at once.
const OPEN_CONCURRENCY: usize = 32;
/// Unmeasured round trips on each connection before the measured ones.
const WARM_UP_ROUND_TRIPS: usize = 100;
/// Round trips per endpoint before moving on to the next, so that bursts of load from elsewhere
/// on the machine hit all endpoints alike.
const ROUND_TRIP_BLOCK: usize = 100;
/// File descriptors a relay process needs besides two per relayed connection.
const SPARE_FDS: u64 = 20;

/// What a client asks the source for, in the first byte it sends.
mod request {
    /// Followed by a big-endian `u64` byte count: the source sends that many bytes, then waits
    /// for the client to close.
    pub const DOWNLOAD: u8 = b'D';
    /// The source echoes every following byte.
    pub const ECHO: u8 = b'E';
    /// The source answers with the number of its other open connections (big-endian `u64`).
    pub const COUNT: u8 = b'C';
}

#[derive(Parser, Debug)]
#[command(about = "WebSocket relay benchmark: webpop-proxy against websocat and websockify")]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// The webpop-proxy binary.
    #[arg(long, default_value = "target/release/webpop-proxy")]
    ours: PathBuf,
    /// The websocat 1.x binary.
    #[arg(long, default_value = "websocat")]
    websocat: PathBuf,
    /// websockify's launcher script (from PyPI).
    #[arg(long, default_value = "websockify")]
    websockify: PathBuf,
    /// socat, for the plain TCP-to-TCP reference row (reported as unavailable if missing).
    #[arg(long, default_value = "socat")]
    socat: PathBuf,
    /// A quick check that everything works: 1 round, 64 MiB, 1,000 round trips, 100 and 1,000
    /// idle connections. Flags given explicitly still win.
    #[arg(long)]
    quick: bool,
    /// Download rounds (relays interleaved); the median is reported [default: 3].
    #[arg(long)]
    rounds: Option<usize>,
    /// Bytes downloaded per round [default: 1 GiB].
    #[arg(long)]
    download_bytes: Option<u64>,
    /// Measured round trips per endpoint [default: 10,000].
    #[arg(long)]
    round_trips: Option<usize>,
    /// Bytes per round-trip message.
    #[arg(long, default_value_t = 16)]
    message_size: usize,
    /// Idle connection counts, ascending, comma-separated [default: 1000,9990].
    #[arg(long, value_delimiter = ',')]
    idle: Option<Vec<usize>>,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Runs the TCP source (started by the benchmark itself) and prints its port.
    #[command(hide = true)]
    Source,
}

/// The run's sizes, after `--quick` and explicit flags.
struct Plan {
    rounds: usize,
    download_bytes: u64,
    round_trips: usize,
    message_size: usize,
    idle: Vec<usize>,
}

impl Plan {
    fn new(args: &Args) -> Result<Self> {
        let quick = args.quick;
        let plan = Self {
            rounds: args.rounds.unwrap_or(if quick { 1 } else { 3 }),
            download_bytes: args.download_bytes.unwrap_or(if quick {
                64 * 1024 * KIB
            } else {
                GIB
            }),
            round_trips: args
                .round_trips
                .unwrap_or(if quick { 1_000 } else { 10_000 }),
            message_size: args.message_size,
            idle: args.idle.clone().unwrap_or_else(|| {
                if quick {
                    vec![100, 1_000]
                } else {
                    vec![1_000, 9_990]
                }
            }),
        };
        ensure!(plan.rounds > 0, "--rounds must be at least 1");
        ensure!(
            plan.download_bytes > 0,
            "--download-bytes must be at least 1"
        );
        ensure!(plan.round_trips > 0, "--round-trips must be at least 1");
        ensure!(plan.message_size > 0, "--message-size must be at least 1");
        ensure!(
            !plan.idle.is_empty() && plan.idle.windows(2).all(|w| w[0] < w[1]) && plan.idle[0] > 0,
            "--idle must be ascending counts above 0"
        );
        Ok(plan)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = runtime()?;
    match args.role {
        Some(Role::Source) => runtime.block_on(run_source()),
        None => {
            let plan = Plan::new(&args)?;
            runtime.block_on(until_interrupted(
                run_benchmark(&args, &plan),
                "interrupted; the relays were stopped",
            ))
        }
    }
}

// --- The TCP source -----------------------------------------------------------------------------

/// Serves [`request`]s on 127.0.0.1 until its stdin closes (when the benchmark exits, however it
/// exits).
async fn run_source() -> Result<()> {
    raise_open_files_limit()?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    println!("{}", listener.local_addr()?.port());
    exit_when_stdin_closes();
    let open = Arc::new(AtomicU64::new(0));
    accept_counted(listener, "source", open, |stream, open| async move {
        let _ = serve(stream, &open).await;
    })
    .await
}

/// Serves one source connection.
async fn serve(mut stream: TcpStream, open: &AtomicU64) -> Result<()> {
    stream.set_nodelay(true)?;
    match stream.read_u8().await? {
        request::DOWNLOAD => {
            let mut left = stream.read_u64().await?;
            let chunk = vec![0x5a; 256 * KIB as usize];
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                stream.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            // Closing first could reset the connection with data still in flight.
            let mut sink = [0; 4096];
            while stream.read(&mut sink).await? > 0 {}
        }
        request::ECHO => {
            let (mut rx, mut tx) = stream.split();
            tokio::io::copy(&mut rx, &mut tx).await?;
        }
        request::COUNT => {
            stream
                .write_u64(open.load(Ordering::SeqCst).saturating_sub(1))
                .await?
        }
        other => bail!("unknown request byte {other:#x}"),
    }
    Ok(())
}

/// The source process, started from this same binary.
struct Source {
    port: u16,
    _process: Helper,
}

impl Source {
    async fn start() -> Result<Self> {
        let process = Helper::start("source", "the source", START_TIMEOUT).await?;
        let port = process
            .line
            .trim()
            .parse()
            .context("the source printed no port")?;
        Ok(Self {
            port,
            _process: process,
        })
    }

    fn addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.port).into()
    }

    /// How many connections the source has open (not counting this query's own).
    async fn open_connections(&self) -> Result<u64> {
        timeout(ROUND_TRIP_TIMEOUT, async {
            let mut stream = TcpStream::connect(self.addr()).await?;
            stream.write_u8(request::COUNT).await?;
            anyhow::Ok(stream.read_u64().await?)
        })
        .await
        .context("the source did not answer")?
    }

    /// Waits until no connection is left open at the source, so the next test starts clean.
    async fn wait_idle(&self) -> Result<()> {
        let start = Instant::now();
        loop {
            let open = self.open_connections().await?;
            if open == 0 {
                return Ok(());
            }
            if start.elapsed() > SETTLE_TIMEOUT {
                bail!("{open} connections still open at the source");
            }
            sleep(Duration::from_millis(50)).await;
        }
    }
}

// --- Relays -------------------------------------------------------------------------------------

/// The relays compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Plain TCP to TCP: a reference, not a WebSocket relay.
    Socat,
    Ours,
    Websocat,
    Websockify,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Socat, Kind::Ours, Kind::Websocat, Kind::Websockify];

    fn name(self) -> &'static str {
        match self {
            Kind::Socat => "socat (no WebSocket)",
            Kind::Ours => "webpop-proxy",
            Kind::Websocat => "websocat",
            Kind::Websockify => "websockify",
        }
    }

    fn exe(self, args: &Args) -> &Path {
        match self {
            Kind::Socat => &args.socat,
            Kind::Ours => &args.ours,
            Kind::Websocat => &args.websocat,
            Kind::Websockify => &args.websockify,
        }
    }

    /// Whether its memory per idle connection is measured. socat is a reference for the cost of
    /// copying bytes; what an idle connection costs matters only for the WebSocket relays.
    fn in_idle_test(self) -> bool {
        self != Kind::Socat
    }

    /// The command line that makes this relay listen on `port` and relay to the source, each
    /// configured as its documentation suggests for a WebSocket-to-TCP relay (socat: TCP to TCP).
    fn command(self, exe: &Path, port: u16, source: u16, web_root: &Path) -> Command {
        let listen = format!("127.0.0.1:{port}");
        let target = format!("127.0.0.1:{source}");
        let mut command = Command::new(exe);
        match self {
            // One child process per connection (`fork`), like websockify. 1 MiB buffers rather
            // than the default 8 KiB, so that small reads do not make it look slower than
            // copying has to be; TCP_NODELAY on both sides, as ours sets it.
            Kind::Socat => {
                command.args([
                    "-b",
                    "1048576",
                    &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay"),
                    &format!("TCP:{target},nodelay"),
                ]);
            }
            Kind::Ours => {
                // Only the flags below configure it, whatever this shell has set.
                for (name, _) in std::env::vars_os() {
                    if name.to_string_lossy().starts_with("WEBPOP_") {
                        command.env_remove(name);
                    }
                }
                command
                    .args(["--listen", &listen, "--web-root"])
                    .arg(web_root)
                    .args([
                        "--allow-private-targets",
                        "--allow-port",
                        &source.to_string(),
                    ])
                    .args(["--max-connections", "20000", "--max-per-ip", "20000"])
                    .args(["--sessions-per-minute", "0"])
                    .args(["--idle-timeout", "1h"]);
            }
            // Its default 64 KiB buffer makes the same frame size as ours; -E closes both
            // directions when one ends, as ours does.
            Kind::Websocat => {
                command.args([
                    "--binary",
                    "-E",
                    &format!("ws-l:{listen}"),
                    &format!("tcp:{target}"),
                ]);
            }
            Kind::Websockify => {
                command.args([&listen, &target]);
            }
        }
        command
    }

    /// Where clients reach the source through this relay listening on `port`.
    fn endpoint(self, port: u16, source: u16) -> Endpoint {
        match self {
            Kind::Socat => Endpoint::Tcp((Ipv4Addr::LOCALHOST, port).into()),
            Kind::Ours => Endpoint::WebSocket(format!(
                "ws://127.0.0.1:{port}/relay?host=127.0.0.1&port={source}"
            )),
            Kind::Websocat | Kind::Websockify => {
                Endpoint::WebSocket(format!("ws://127.0.0.1:{port}/"))
            }
        }
    }
}

/// A running relay process (and, for websockify and socat, its children: its own process group).
struct Relay {
    endpoint: Endpoint,
    process: RelayProcess,
}

impl Relay {
    /// Starts a relay in front of `source` and checks that an echo goes through it.
    async fn start(kind: Kind, args: &Args, source: &Source, scratch: &Path) -> Result<Self> {
        let port = free_port()?;
        let web_root = scratch.join("web-root");
        fs::create_dir_all(&web_root)?;
        let log = scratch.join(format!("{}-{port}.log", kind.name()));
        let exe = kind.exe(args);
        let command = kind.command(exe, port, source.port, &web_root);
        let mut process = RelayProcess::spawn(command, exe, log)?;
        process.wait_listening(port, START_TIMEOUT).await?;
        let relay = Self {
            endpoint: kind.endpoint(port, source.port),
            process,
        };
        let mut probe = timeout(OPEN_TIMEOUT, Echo::open(&relay.endpoint))
            .await
            .map_err(|_| anyhow!("no echo through it within {OPEN_TIMEOUT:?}"))?
            .with_context(|| format!("no echo through it: {}", relay.process.log_tail()))?;
        probe.round_trip(b"probe").await?;
        Ok(relay)
    }

    fn stats(&self) -> Result<TreeStats> {
        TreeStats::read(self.process.pid)
    }

    /// Waits until the relay is a single process again, as every relay here is with no
    /// connection open (websockify's and socat's per-connection children have exited and been
    /// reaped, and their CPU time has moved into the parent's `cutime`/`cstime`), and returns its
    /// figures.
    async fn settle(&self) -> Result<TreeStats> {
        let start = Instant::now();
        loop {
            let stats = self.stats()?;
            if stats.processes == 1 || start.elapsed() > SETTLE_TIMEOUT {
                return Ok(stats);
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.process.stop(SETTLE_TIMEOUT).await;
    }
}

// --- /proc --------------------------------------------------------------------------------------

/// CPU time and memory of a process and all its descendants, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
struct TreeStats {
    processes: usize,
    /// `utime + stime + cutime + cstime` summed over the tree, in clock ticks. A child's time
    /// moves into its parent's `cutime`/`cstime` when the parent reaps it, so the sum neither
    /// loses an exited child nor counts one twice.
    cpu_ticks: u64,
    /// `VmRSS` summed over the tree. Forked children share pages with their parent, so for a
    /// forking relay this overstates memory; `pss_kib` does not.
    rss_kib: u64,
    /// Proportional set size (`smaps_rollup`): shared pages divided among their sharers.
    pss_kib: u64,
}

impl TreeStats {
    fn read(root: u32) -> Result<Self> {
        let mut parents = Vec::new();
        for entry in fs::read_dir("/proc")? {
            let Some(pid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Ok(stat) = ProcStat::read(pid) {
                parents.push((pid, stat));
            }
        }
        let root_stat = ProcStat::read(root).context("the relay process is gone")?;
        let mut tree = vec![(root, root_stat)];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i].0;
            tree.extend(parents.iter().filter(|(_, s)| s.ppid == parent).copied());
            i += 1;
        }
        let mut stats = Self::default();
        for (pid, stat) in tree {
            stats.processes += 1;
            stats.cpu_ticks += stat.ticks;
            stats.rss_kib += proc_kib(pid, "status", "VmRSS:");
            stats.pss_kib += proc_kib(pid, "smaps_rollup", "Pss:");
        }
        Ok(stats)
    }

    fn cpu_seconds_since(&self, before: &Self) -> f64 {
        self.cpu_ticks.saturating_sub(before.cpu_ticks) as f64
            / rustix::param::clock_ticks_per_second() as f64
    }
}

/// The fields of `/proc/<pid>/stat` used here.
#[derive(Debug, Clone, Copy)]
struct ProcStat {
    ppid: u32,
    /// utime + stime + cutime + cstime.
    ticks: u64,
}

impl ProcStat {
    fn read(pid: u32) -> Result<Self> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name (field 2) may hold spaces and parentheses; fields 3.. follow the
        // last ')'.
        let rest = text.rsplit_once(')').context("malformed stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field =
            |n: usize| -> Result<u64> { Ok(fields.get(n - 3).context("short stat")?.parse()?) };
        Ok(Self {
            ppid: field(4)? as u32,
            ticks: field(14)? + field(15)? + field(16)? + field(17)?,
        })
    }
}

// --- Clients ------------------------------------------------------------------------------------

/// Where a client connects: a plain TCP address (the source itself, or socat in front of it), or
/// a WebSocket relay's URL.
#[derive(Debug, Clone)]
enum Endpoint {
    Tcp(SocketAddr),
    WebSocket(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
            Endpoint::WebSocket(url) => f.write_str(url),
        }
    }
}

/// Opens a WebSocket to a relay with `config`, with Nagle off as a browser has it.
async fn open_ws(url: &str, config: WebSocketConfig) -> Result<Ws> {
    let options = ws::Options {
        config: Some(config),
        ..ws::Options::default()
    };
    Ok(ws::open(url, &options).await?.0)
}

/// Downloads `bytes` from the source through `endpoint`; returns the time from request to last
/// byte.
async fn download(endpoint: &Endpoint, bytes: u64) -> Result<Duration> {
    let mut ask = vec![request::DOWNLOAD];
    ask.extend(bytes.to_be_bytes());
    let mut got = 0;
    match endpoint {
        Endpoint::Tcp(addr) => {
            let mut tcp = TcpStream::connect(addr).await?;
            let start = Instant::now();
            tcp.write_all(&ask).await?;
            let mut buf = vec![0; 256 * KIB as usize];
            while got < bytes {
                match tcp.read(&mut buf).await? {
                    0 => bail!("closed after {got} bytes"),
                    n => got += n as u64,
                }
            }
            Ok(start.elapsed())
        }
        Endpoint::WebSocket(url) => {
            let mut ws = open_ws(url, WebSocketConfig::default()).await?;
            let start = Instant::now();
            ws.send(Message::binary(ask)).await?;
            while got < bytes {
                match ws.next().await.context("closed early")?? {
                    Message::Binary(data) => got += data.len() as u64,
                    Message::Close(_) => bail!("closed after {got} bytes"),
                    _ => {}
                }
            }
            let elapsed = start.elapsed();
            ensure!(got == bytes, "received {got} bytes, asked for {bytes}");
            let _ = timeout(ROUND_TRIP_TIMEOUT, ws.close(None)).await;
            Ok(elapsed)
        }
    }
}

/// An echo connection to the source, direct or through a relay.
enum Echo {
    Tcp(TcpStream),
    Ws(Box<Ws>),
}

impl Echo {
    async fn open(endpoint: &Endpoint) -> Result<Self> {
        Self::open_with(endpoint, WebSocketConfig::default()).await
    }

    async fn open_with(endpoint: &Endpoint, config: WebSocketConfig) -> Result<Self> {
        Ok(match endpoint {
            Endpoint::Tcp(addr) => {
                let mut tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                tcp.write_u8(request::ECHO).await?;
                Self::Tcp(tcp)
            }
            Endpoint::WebSocket(url) => {
                let mut ws = open_ws(url, config).await?;
                ws.send(Message::binary(vec![request::ECHO])).await?;
                Self::Ws(Box::new(ws))
            }
        })
    }

    /// Sends `message` and waits until all of it has come back.
    async fn round_trip(&mut self, message: &[u8]) -> Result<()> {
        let mut back = Vec::with_capacity(message.len());
        let exchange = async {
            match self {
                Self::Tcp(tcp) => {
                    tcp.write_all(message).await?;
                    back.resize(message.len(), 0);
                    tcp.read_exact(&mut back).await?;
                }
                Self::Ws(ws) => back = ws::round_trip(ws, message).await?,
            }
            anyhow::Ok(())
        };
        timeout(ROUND_TRIP_TIMEOUT, exchange)
            .await
            .context("round trip timed out")??;
        ensure!(back == message, "the echo differs from what was sent");
        Ok(())
    }
}

// --- The benchmark ------------------------------------------------------------------------------

/// One endpoint (direct TCP or a relay) and what was measured through it.
struct Row {
    name: &'static str,
    kind: Option<Kind>,
    /// `None` when the relay could not be started.
    endpoint: Option<Endpoint>,
    /// Why the relay could not be started.
    unavailable: Option<String>,
    /// Per round: seconds, and the relay's CPU seconds.
    downloads: Vec<(f64, Option<f64>)>,
    download_error: Option<String>,
    round_trips: Vec<Duration>,
    round_trip_error: Option<String>,
    idle: Vec<IdleStage>,
    idle_error: Option<String>,
}

/// Memory growth of a relay holding `connections` idle connections, per connection.
struct IdleStage {
    connections: usize,
    rss_kib: f64,
    pss_kib: f64,
}

impl Row {
    fn new(name: &'static str, kind: Option<Kind>) -> Self {
        Self {
            name,
            kind,
            endpoint: None,
            unavailable: None,
            downloads: Vec::new(),
            download_error: None,
            round_trips: Vec::new(),
            round_trip_error: None,
            idle: Vec::new(),
            idle_error: None,
        }
    }

    /// Median MB/s and median relay CPU seconds per GiB.
    fn download_medians(&self, bytes: u64) -> Option<(f64, Option<f64>)> {
        let mut rates: Vec<f64> = self
            .downloads
            .iter()
            .map(|(secs, _)| bytes as f64 / 1e6 / secs)
            .collect();
        let mut cpu: Vec<f64> = self
            .downloads
            .iter()
            .filter_map(|(_, cpu)| cpu.map(|c| c * GIB as f64 / bytes as f64))
            .collect();
        Some((median(&mut rates)?, median(&mut cpu)))
    }

    /// A round-trip percentile, only if every round trip completed.
    fn percentile(&self, p: f64, expected: usize) -> Option<Duration> {
        if self.round_trips.len() != expected {
            return None;
        }
        let mut sorted = self.round_trips.clone();
        sorted.sort();
        let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).max(1);
        sorted.get(rank - 1).copied()
    }

    /// Why a figure is missing.
    fn why_not(&self, error: &Option<String>) -> String {
        match (&self.unavailable, error) {
            (Some(e), _) => format!("unavailable: {e}"),
            (None, Some(e)) => format!("failed: {e}"),
            (None, None) => "not measured".to_owned(),
        }
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

async fn run_benchmark(args: &Args, plan: &Plan) -> Result<()> {
    let hard_limit = raise_open_files_limit()?;
    if let Some(&n) = plan.idle.last() {
        let needed = 2 * n as u64 + SPARE_FDS;
        if needed > hard_limit {
            eprintln!(
                "warning: {n} idle connections need ~{needed} fds in one relay process, \
                 more than the hard limit of {hard_limit}"
            );
        }
    }
    let scratch = tempfile::tempdir()?;
    let source = Source::start().await?;
    let mut rows = vec![Row::new("direct TCP", None)];
    rows[0].endpoint = Some(Endpoint::Tcp(source.addr()));
    rows.extend(Kind::ALL.map(|k| Row::new(k.name(), Some(k))));

    // Downloads and round trips share one process per relay; idle tests get fresh ones.
    let mut relays: Vec<Option<Relay>> = Vec::new();
    for row in &mut rows {
        let Some(kind) = row.kind else {
            relays.push(None);
            continue;
        };
        match Relay::start(kind, args, &source, scratch.path()).await {
            Ok(relay) => {
                eprintln!("{} relays {}", kind.name(), relay.endpoint);
                row.endpoint = Some(relay.endpoint.clone());
                relays.push(Some(relay));
            }
            Err(e) => {
                let e = describe(&e);
                eprintln!("{}: unavailable: {e}", kind.name());
                row.unavailable = Some(e);
                relays.push(None);
            }
        }
    }

    let limit = Duration::from_secs(60) + Duration::from_secs_f64(plan.download_bytes as f64 / 5e6);
    for round in 1..=plan.rounds {
        for (row, relay) in rows.iter_mut().zip(&relays) {
            let Some(endpoint) = &row.endpoint else {
                continue;
            };
            if row.download_error.is_some() {
                continue;
            }
            match measure_download(endpoint, relay.as_ref(), plan.download_bytes, limit).await {
                Ok((secs, cpu)) => {
                    eprintln!(
                        "  download round {round}: {:<20} {:7.1} MB/s{}",
                        row.name,
                        plan.download_bytes as f64 / 1e6 / secs,
                        cpu.map(|c| format!(", relay CPU {c:.2} s"))
                            .unwrap_or_default()
                    );
                    row.downloads.push((secs, cpu));
                }
                Err(e) => {
                    let e = describe(&e);
                    eprintln!("  download round {round}: {}: failed: {e}", row.name);
                    row.download_error = Some(e);
                }
            }
        }
    }

    measure_round_trips(&mut rows, plan).await;
    for relay in relays.into_iter().flatten() {
        relay.stop().await;
    }
    source.wait_idle().await?;

    for row in &mut rows {
        let Some(kind) = row
            .kind
            .filter(|k| k.in_idle_test() && row.unavailable.is_none())
        else {
            continue;
        };
        if let Err(e) = measure_idle(row, kind, args, &source, scratch.path(), &plan.idle).await {
            let e = describe(&e);
            eprintln!("  idle: {}: {e}", kind.name());
            row.idle_error = Some(e);
        }
        source.wait_idle().await?;
    }

    report(&rows, plan);
    Ok(())
}

/// One download through `endpoint`: seconds, and the relay's CPU seconds (of its process tree,
/// read once the connection and any per-connection child are gone).
async fn measure_download(
    endpoint: &Endpoint,
    relay: Option<&Relay>,
    bytes: u64,
    limit: Duration,
) -> Result<(f64, Option<f64>)> {
    let before = match relay {
        Some(relay) => Some(relay.settle().await?),
        None => None,
    };
    let elapsed = timeout(limit, download(endpoint, bytes))
        .await
        .map_err(|_| anyhow!("no complete download within {limit:?}"))??;
    let cpu = match (relay, before) {
        (Some(relay), Some(before)) => Some(relay.settle().await?.cpu_seconds_since(&before)),
        _ => None,
    };
    Ok((elapsed.as_secs_f64(), cpu))
}

/// Round trips on one connection per endpoint, in blocks that take turns, so that the machine's
/// drift affects every endpoint alike.
async fn measure_round_trips(rows: &mut [Row], plan: &Plan) {
    let mut conns = Vec::new();
    for row in rows.iter_mut() {
        let Some(endpoint) = &row.endpoint else {
            conns.push(None);
            continue;
        };
        let opened = async {
            let mut echo = timeout(OPEN_TIMEOUT, Echo::open(endpoint))
                .await
                .context("open timed out")??;
            for i in 0..WARM_UP_ROUND_TRIPS {
                echo.round_trip(&message(i, plan.message_size)).await?;
            }
            anyhow::Ok(echo)
        };
        match opened.await {
            Ok(echo) => conns.push(Some(echo)),
            Err(e) => {
                row.round_trip_error = Some(describe(&e));
                conns.push(None);
            }
        }
    }
    let mut done = 0;
    while done < plan.round_trips {
        let block = ROUND_TRIP_BLOCK.min(plan.round_trips - done);
        for (row, conn) in rows.iter_mut().zip(&mut conns) {
            let Some(echo) = conn else { continue };
            for i in done..done + block {
                let msg = message(i, plan.message_size);
                let start = Instant::now();
                if let Err(e) = echo.round_trip(&msg).await {
                    let e = describe(&e);
                    row.round_trip_error = Some(format!("after {i} round trips: {e}"));
                    break;
                }
                row.round_trips.push(start.elapsed());
            }
            if row.round_trip_error.is_some() {
                *conn = None;
            }
        }
        done += block;
        if done % (10 * ROUND_TRIP_BLOCK) == 0 || done == plan.round_trips {
            eprintln!("  round trips: {done} of {} each", plan.round_trips);
        }
    }
}

/// A round-trip message that differs from the previous one.
fn message(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|j| (i + j) as u8).collect()
}

/// Opens idle connections through a fresh relay up to each count in `counts` and records the
/// relay's memory growth per connection. Each connection first echoes one byte, so that it
/// really reaches the source, as a mail session would.
async fn measure_idle(
    row: &mut Row,
    kind: Kind,
    args: &Args,
    source: &Source,
    scratch: &Path,
    counts: &[usize],
) -> Result<()> {
    let relay = Relay::start(kind, args, source, scratch).await?;
    source.wait_idle().await?;
    let base = relay.settle().await?;
    let endpoint = &relay.endpoint;
    // Our own buffers are not measured, but 10,000 of tungstenite's default 128 KiB add up.
    let config = WebSocketConfig::default().read_buffer_size(4 * KIB as usize);
    let mut held = Vec::new();
    for &count in counts {
        let mut opening = stream::iter(held.len()..count)
            .map(|_| async move {
                let mut echo = timeout(OPEN_TIMEOUT, Echo::open_with(endpoint, config))
                    .await
                    .context("timed out")??;
                echo.round_trip(&[1]).await?;
                anyhow::Ok(echo)
            })
            .buffer_unordered(OPEN_CONCURRENCY);
        let mut failure = None;
        while let Some(opened) = opening.next().await {
            match opened {
                Ok(echo) => held.push(echo),
                Err(e) => {
                    failure = Some(e.context(format!("failed at {}", held.len())));
                    break;
                }
            }
        }
        drop(opening);
        if let Some(e) = failure {
            drop(held);
            relay.stop().await;
            return Err(e);
        }
        let at_source = source.open_connections().await?;
        ensure!(
            at_source == count as u64,
            "{count} connections open through the relay, but {at_source} at the source"
        );
        let now = relay.stats()?;
        let per_conn = |after: u64, before: u64| after.saturating_sub(before) as f64 / count as f64;
        let stage = IdleStage {
            connections: count,
            rss_kib: per_conn(now.rss_kib, base.rss_kib),
            pss_kib: per_conn(now.pss_kib, base.pss_kib),
        };
        eprintln!(
            "  idle: {:<20} {count:>6} connections: {:.1} KB RSS each ({} processes)",
            kind.name(),
            stage.rss_kib,
            now.processes
        );
        row.idle.push(stage);
    }
    drop(held);
    relay.stop().await;
    Ok(())
}

// --- Output -------------------------------------------------------------------------------------

fn report(rows: &[Row], plan: &Plan) {
    let bytes = plan.download_bytes;
    let expected = plan.round_trips;
    println!();
    println!(
        "relays on 127.0.0.1, each its own process, in front of one TCP source (another process);"
    );
    println!(
        "relay CPU = utime+stime of the relay's process tree, reaped children included (/proc)"
    );

    println!();
    println!(
        "download of {} MiB, median of {} interleaved round(s)",
        bytes / (1024 * KIB),
        plan.rounds
    );
    println!("  {:<22}{:>10}{:>12}", "", "MB/s", "CPU s/GiB");
    for row in rows {
        match row.download_medians(bytes) {
            Some((rate, cpu)) => println!(
                "  {:<22}{rate:>10.1}{:>12}",
                row.name,
                cpu.map_or("-".to_owned(), |c| format!("{c:.3}"))
            ),
            None => println!("  {:<22}{}", row.name, row.why_not(&row.download_error)),
        }
    }

    println!();
    println!(
        "round trips: {} x {} B per endpoint, after {WARM_UP_ROUND_TRIPS} unmeasured",
        plan.round_trips, plan.message_size
    );
    println!(
        "  {:<22}{:>10}{:>10}{:>16}",
        "", "p50 µs", "p99 µs", "p50 vs direct"
    );
    let direct_p50 = rows[0].percentile(50.0, expected);
    for row in rows {
        match (
            row.percentile(50.0, expected),
            row.percentile(99.0, expected),
        ) {
            (Some(p50), Some(p99)) => {
                let added = direct_p50.map_or("-".to_owned(), |d| {
                    format!("{:+.1}", (p50.as_secs_f64() - d.as_secs_f64()) * 1e6)
                });
                println!(
                    "  {:<22}{:>10.1}{:>10.1}{added:>16}",
                    row.name,
                    p50.as_secs_f64() * 1e6,
                    p99.as_secs_f64() * 1e6
                );
            }
            _ => println!("  {:<22}{}", row.name, row.why_not(&row.round_trip_error)),
        }
    }

    println!();
    println!("idle connections: relay memory growth per connection, KB (1 KB = 1024 B)");
    if plan.idle.contains(&9_990) {
        println!("  9990 stands for 10k: at 2 fds per relayed connection it is the most one relay");
        println!("  process can hold under the 20,000 open-files hard limit");
    }
    let header: String = plan
        .idle
        .iter()
        .map(|n| format!("{:>22}", format!("RSS (PSS) @ {n}")))
        .collect();
    println!("  {:<22}{header}", "");
    for row in rows
        .iter()
        .filter(|r| r.kind.is_some_and(Kind::in_idle_test))
    {
        let mut line = format!("  {:<22}", row.name);
        for stage in &row.idle {
            line += &format!(
                "{:>22}",
                format!("{:.1} ({:.1})", stage.rss_kib, stage.pss_kib)
            );
        }
        if row.idle.len() < plan.idle.len() {
            line += &format!("  {}", row.why_not(&row.idle_error));
        }
        println!("{line}");
    }

    println!();
    println!("ours against websocat:");
    let find = |kind| {
        rows.iter()
            .find(|r| r.kind == Some(kind))
            .expect("a row per relay")
    };
    let (ours, websocat, socat) = (find(Kind::Ours), find(Kind::Websocat), find(Kind::Socat));
    let cpu = |row: &Row| row.download_medians(bytes).and_then(|(_, cpu)| cpu);
    print_target(
        "CPU per GiB, ours / websocat",
        cpu(ours).zip(cpu(websocat)).map(|(a, b)| a / b),
        0.4,
        "",
    );
    // How low the ratio above can go: socat does nothing but copy bytes through user space.
    print_figure(
        "CPU per GiB, socat floor / websocat",
        cpu(socat).zip(cpu(websocat)).map(|(a, b)| a / b),
    );
    let p50 = |row: &Row| row.percentile(50.0, expected).map(|d| d.as_secs_f64());
    print_target(
        "p50 round trip, ours / websocat",
        p50(ours).zip(p50(websocat)).map(|(a, b)| a / b),
        1.0,
        "",
    );
    let most = *plan.idle.last().expect("at least one count");
    print_target(
        &format!("our RSS per idle connection at {most}"),
        ours.idle
            .iter()
            .find(|s| s.connections == most)
            .map(|s| s.rss_kib),
        16.0,
        " KB",
    );
}

/// Prints a figure that has no target.
fn print_figure(what: &str, value: Option<f64>) {
    let value = value.map_or("not measured".to_owned(), |v| format!("{v:.2}"));
    println!("  {what:<40} {value}");
}

/// Prints a figure against its upper bound.
fn print_target(what: &str, value: Option<f64>, target: f64, unit: &str) {
    let verdict = match value {
        Some(v) if v <= target => format!("{v:.2}{unit} (target <= {target}{unit}: met)"),
        Some(v) => format!("{v:.2}{unit} (target <= {target}{unit}: MISSED)"),
        None => "not measured".to_owned(),
    };
    println!("  {what:<40} {verdict}");
}
