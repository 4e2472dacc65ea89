//! What the relay benchmarks (`relay-bench`, `relay-abuse`) share: raising the open-files limit,
//! stopping on a signal, the helper process each starts from its own binary (a TCP source or
//! echo server) and the relay processes they measure.

use std::fs::{self, File};
use std::future::Future;
use std::io::Read as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rustix::process::{Pid, Resource, Rlimit, Signal};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::{sleep, timeout};

/// A single-threaded runtime: each of these processes is one client or one server.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `run` to the end, or until SIGINT or SIGTERM, then fails with `message`. The run is then
/// dropped, which stops the relays: they run in process groups of their own, out of reach of the
/// terminal's Ctrl-C.
pub async fn until_interrupted<T>(
    run: impl Future<Output = Result<T>>,
    message: &str,
) -> Result<T> {
    tokio::select! {
        result = run => result,
        signal = interrupted() => {
            signal?;
            bail!("{message}")
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// Raises this process's soft open-files limit to the hard limit and returns it. Children inherit
/// it, so relays started afterwards get it too.
pub fn raise_open_files_limit() -> Result<u64> {
    let limit = rustix::process::getrlimit(Resource::Nofile);
    rustix::process::setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .context("cannot raise the open-files limit")?;
    Ok(limit.maximum.unwrap_or(u64::MAX))
}

/// A port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A short error text: the error and its causes, leaving out a cause that only repeats what came
/// before.
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if !text.contains(&cause) {
            if !text.is_empty() {
                text += ": ";
            }
            text += &cause;
        }
    }
    text
}

/// A `kB` line of a `/proc/<pid>/` file (`VmRSS:` of `status`, say); 0 when absent (as for a
/// zombie) or unreadable.
pub fn proc_kib(pid: u32, file: &str, key: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// --- The helper process (TCP source, echo server) ------------------------------------------------

/// In the helper process: exits the process when its stdin closes (when the benchmark exits,
/// however it exits).
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
}

/// In the helper process: accepts connections on `listener` forever, each served by `serve` in a
/// task of its own, and counts those open in `open`. `what` names the server in its messages.
pub async fn accept_counted<F, Fut>(
    listener: TcpListener,
    what: &str,
    open: Arc<AtomicU64>,
    serve: F,
) -> Result<()>
where
    F: Fn(TcpStream, Arc<AtomicU64>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: the client will see a failure.
                eprintln!("{what}: accept failed: {e}");
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let open = Arc::clone(&open);
        open.fetch_add(1, Ordering::SeqCst);
        let served = serve(stream, Arc::clone(&open));
        tokio::spawn(async move {
            served.await;
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// The helper process, started from this same binary with `role` as its argument: it prints
/// one line (its ports) and runs until its stdin closes.
pub struct Helper {
    /// The line it printed on start.
    pub line: String,
    _child: Child,
    /// Held open: the helper exits when it closes.
    _stdin: ChildStdin,
}

impl Helper {
    /// Starts it and reads its line; `what` names it in errors ("the source").
    pub async fn start(role: &str, what: &str, start_timeout: Duration) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        timeout(start_timeout, BufReader::new(stdout).read_line(&mut line))
            .await
            .with_context(|| format!("{what} did not start"))??;
        let stdin = child.stdin.take().expect("piped");
        Ok(Self {
            line,
            _child: child,
            _stdin: stdin,
        })
    }
}

// --- Relay processes ----------------------------------------------------------------------------

/// A relay process in a process group of its own (its children, if it forks, with it), its
/// output in a log file. Dropping it kills the group.
pub struct RelayProcess {
    child: Child,
    /// Its process id, which is also its process group's.
    pub pid: u32,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl RelayProcess {
    /// Spawns `command` (the program `exe`) with stdin closed and stdout and stderr into `log`.
    pub fn spawn(mut command: Command, exe: &Path, log: PathBuf) -> Result<Self> {
        let out = File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let pid = child.id().context("the relay exited at once")?;
        Ok(Self { child, pid, log })
    }

    /// Waits until the relay accepts connections on `port`, at most `limit`.
    pub async fn wait_listening(&mut self, port: u16, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_err()
        {
            if let Some(status) = self.child.try_wait()? {
                bail!("exited ({status}): {}", self.log_tail());
            }
            if start.elapsed() >= limit {
                bail!("not listening after {limit:?}: {}", self.log_tail());
            }
            sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The relay's last log line, to explain a failure.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        let _ = File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        last.unwrap_or("(no output)").trim().to_owned()
    }

    /// Kills the group and waits (at most `limit`) for the relay to exit.
    pub async fn stop(mut self, limit: Duration) {
        self.kill_group();
        let _ = timeout(limit, self.child.wait()).await;
    }

    fn kill_group(&self) {
        // Process group 1 would mean "every process": never signal that.
        if self.pid > 1 {
            if let Some(pid) = Pid::from_raw(self.pid as i32) {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill_group();
    }
}
