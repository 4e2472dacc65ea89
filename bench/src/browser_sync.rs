//! Headless Chromium syncs the benchmark mailbox (2,000 messages, ~100 MB) from a private
//! Dovecot through webpop's relay into IndexedDB. In the same page and run, the browser's own
//! ceiling: plain JavaScript receives the same message bytes through the same relay from a tiny
//! TCP source in this process ([`ByteSource`]) and writes them to IndexedDB, 100 records per
//! transaction (`frontend/tests/common/ceiling.js` says why that is fair). webpop's ratio to it
//! is the target (≥ 0.7). fetchmail downloads the same mailbox in the same run, printed for
//! context (its old target is retired). On loopback, and at 10 ms RTT through user-space delay
//! proxies in front of Dovecot and the source. Prints the page's peak memory too. On loopback
//! the page also runs the same sync with every IndexedDB write skipped: what storing costs.
//!
//! The browser side is `frontend/tests/bench_sync.rs`, run by wasm-bindgen-test-runner with
//! `WEBPOP_BENCH_ENV` describing the target.

use std::io::{BufWriter, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::json;
use webpop_bench::mailbox::Mailbox;
use webpop_testkit::corpus;
use webpop_testkit::delay_proxy::DelayProxy;
use webpop_testkit::fetchmail::Fetchmail;
use webpop_testkit::local_relay::LocalRelay;

/// webpop's throughput as a share of the browser's own ceiling that the issue asks for.
const CEILING_TARGET: f64 = 0.7;

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

#[derive(Parser, Debug)]
#[command(about = "Browser sync benchmark: headless Chromium into IndexedDB against fetchmail")]
struct Args {
    /// Messages in the mailbox.
    #[arg(long, default_value_t = corpus::BENCH_MESSAGES)]
    messages: usize,
    /// Approximate mailbox size in bytes.
    #[arg(long, default_value_t = corpus::BENCH_TOTAL_BYTES)]
    bytes: usize,
    /// Skip the 10 ms RTT run (fetchmail takes about a minute there).
    #[arg(long)]
    loopback_only: bool,
}

struct Measured {
    seconds: f64,
    bytes: f64,
}

impl Measured {
    /// MB/s.
    fn rate(&self) -> f64 {
        self.bytes / self.seconds / 1e6
    }
}

/// The JavaScript ceiling's byte source: every connection gets each message as a 4-byte
/// big-endian length and its bytes (the very bytes Dovecot serves), then a length of 0. The
/// relay carries them to the page like any POP3 server's.
struct ByteSource {
    addr: SocketAddr,
}

impl ByteSource {
    fn start(mail: Arc<Vec<Vec<u8>>>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the byte source")?;
        let addr = listener.local_addr()?;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mail = Arc::clone(&mail);
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    let mut out = BufWriter::with_capacity(256 * 1024, stream);
                    let sent = mail.iter().try_for_each(|m| {
                        let len = u32::try_from(m.len()).unwrap_or(u32::MAX);
                        out.write_all(&len.to_be_bytes())?;
                        out.write_all(m)
                    });
                    // A page that went away is its own failure, reported there.
                    let _ = sent
                        .and_then(|()| out.write_all(&0u32.to_be_bytes()))
                        .and_then(|()| out.flush());
                });
            }
        });
        Ok(Self { addr })
    }
}

/// A result line of the browser half (`BENCH label=…` or `CEILING label=…`): its `name=` field.
fn field(line: &str, name: &str) -> Result<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .with_context(|| format!("no {name} in {line}"))?
        .parse()
        .with_context(|| format!("bad {name} in {line}"))
}

/// What one run of the browser half measured: webpop's sync, the page's peak JS heap and wasm
/// memory, and the JavaScript ceiling when it was asked for.
struct Page {
    webpop: Measured,
    js_heap: f64,
    wasm_memory: f64,
    ceiling: Option<Measured>,
}

/// Runs the browser half once and parses its `BENCH` (and `CEILING`) lines.
fn browser_sync(env: &serde_json::Value) -> Result<Page> {
    // Its own target dir: the browser half is rebuilt whenever WEBPOP_BENCH_ENV changes.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("bench-wasm");
    let output = Command::new("scripts/wasm-env")
        .args(["cargo", "test", "--release", "-p", "webpop-frontend"])
        .args([
            "--target",
            "wasm32-unknown-unknown",
            "--test",
            "bench_sync",
            "--",
            "--nocapture",
        ])
        .env("WEBPOP_BENCH_ENV", env.to_string())
        .env("CARGO_TARGET_DIR", &target_dir)
        .env(
            "CHROMEDRIVER",
            std::env::var("CHROMEDRIVER").unwrap_or("/usr/bin/chromedriver".into()),
        )
        .env("WASM_BINDGEN_TEST_TIMEOUT", "900")
        .output()
        .context("running the browser half (scripts/wasm-env cargo test ...)")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let Some(line) = text.lines().find(|l| l.contains("BENCH label=")) else {
        bail!("the browser half printed no result:\n{text}");
    };
    let measured = |line: &str| -> Result<Measured> {
        Ok(Measured {
            seconds: field(line, "elapsed_ms")? / 1000.0,
            bytes: field(line, "bytes")?,
        })
    };
    let ceiling = match text.lines().find(|l| l.contains("CEILING label=")) {
        Some(line) => Some(measured(line)?),
        None if env.get("ceiling_port").is_some() => {
            bail!("the browser half printed no ceiling:\n{text}")
        }
        None => None,
    };
    Ok(Page {
        webpop: measured(line)?,
        js_heap: field(line, "peak_js_heap")?,
        wasm_memory: field(line, "peak_wasm_memory")?,
        ceiling,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let Mailbox {
        mail,
        total,
        server,
    } = Mailbox::start(args.messages, args.bytes, 2026, USER, PASSWORD)?;
    let mail = Arc::new(mail);
    let source = ByteSource::start(Arc::clone(&mail))?;
    let delay = Duration::from_millis(5);
    let delayed = DelayProxy::start_blocking(server.pop3s_addr(), delay)?;
    let delayed_source = DelayProxy::start_blocking(source.addr, delay)?;
    let relay = runtime.block_on(LocalRelay::start(
        "127.0.0.1:0".parse()?,
        &[
            server.pop3s_port(),
            delayed.addr().port(),
            source.addr.port(),
            delayed_source.addr().port(),
        ],
    ))?;

    // The fetchmail targets this benchmark had before the browser's ceiling replaced them.
    let mut networks = vec![("loopback", server.pop3s_port(), source.addr.port(), 0.7)];
    if !args.loopback_only {
        let (pop3, source) = (delayed.addr().port(), delayed_source.addr().port());
        networks.push(("10 ms RTT", pop3, source, 10.0));
    }
    println!(
        "mailbox: {} messages, {:.1} MB; relay on {}; Chromium syncs into IndexedDB, then plain JS \
         receives the same bytes through the relay into IndexedDB (the ceiling)",
        mail.len(),
        total as f64 / 1e6,
        relay.addr()
    );
    for (label, port, ceiling_port, old_target) in networks {
        let env = json!({
            "label": label.replace(' ', "-"),
            "relay": format!("ws://{}/relay", relay.addr()),
            "port": port,
            "user": USER,
            "password": PASSWORD,
            "cert_sha256": server.cert_sha256_hex(),
        });
        eprintln!("{label}: browser sync, then the JavaScript ceiling…");
        let mut with_ceiling = env.clone();
        with_ceiling["ceiling_port"] = ceiling_port.into();
        let Page {
            webpop: browser,
            js_heap,
            wasm_memory,
            ceiling,
        } = browser_sync(&with_ceiling)?;
        let ceiling = ceiling.context("no ceiling measured")?;
        if ceiling.bytes as usize != total {
            bail!(
                "the JavaScript ceiling received {} bytes, not the mailbox's {total}",
                ceiling.bytes
            );
        }
        // On loopback, the same sync with IndexedDB's writes skipped shows what storing costs.
        let unstored = if port == server.pop3s_port() {
            let mut env = env.clone();
            env["discard_writes"] = true.into();
            env["label"] = format!("{}-unstored", env["label"].as_str().unwrap_or("")).into();
            eprintln!("{label}: browser sync, IndexedDB writes skipped…");
            Some(browser_sync(&env)?.webpop)
        } else {
            None
        };
        eprintln!("{label}: fetchmail…");
        let fetchmail = Fetchmail::for_dovecot(&server, USER, PASSWORD)
            .via_port(port)
            .run()?;
        let fetchmail_seconds = fetchmail.elapsed.as_secs_f64();
        let browser_rate = browser.rate();
        let ceiling_rate = ceiling.rate();
        let fetchmail_rate = total as f64 / fetchmail_seconds / 1e6;
        let ratio = browser_rate / ceiling_rate;
        println!(
            "{label:>10}: webpop {:6.2} s ({browser_rate:5.1} MB/s) | JS ceiling {:6.2} s \
             ({ceiling_rate:5.1} MB/s) | ratio {ratio:5.2}× (target ≥ {CEILING_TARGET}×: {}) | \
             page peak: JS heap {:.1} MB, wasm memory {:.1} MB",
            browser.seconds,
            ceiling.seconds,
            if ratio >= CEILING_TARGET {
                "met"
            } else {
                "MISSED"
            },
            js_heap / 1e6,
            wasm_memory / 1e6,
        );
        println!(
            "{label:>10}: for context, fetchmail {fetchmail_seconds:6.2} s ({fetchmail_rate:5.1} MB/s) \
             | webpop/fetchmail {:5.2}× (the retired target was ≥ {old_target}×)",
            browser_rate / fetchmail_rate,
        );
        if let Some(unstored) = unstored {
            let rate = unstored.rate();
            println!(
                "{label:>10}: the same sync with IndexedDB writes skipped {:6.2} s ({rate:5.1} MB/s) \
                 | {:5.2}× the JS ceiling | storing costs {:.2} s",
                unstored.seconds,
                rate / ceiling_rate,
                browser.seconds - unstored.seconds,
            );
        }
    }
    drop(delayed);
    drop(delayed_source);
    Ok(())
}
