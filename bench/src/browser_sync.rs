//! Headless Chromium syncs the benchmark mailbox (2,000 messages, ~100 MB) from a private
//! Dovecot through webpop's relay into IndexedDB; fetchmail downloads the same mailbox in the
//! same run. On loopback, and at 10 ms RTT through a user-space delay proxy in front of
//! Dovecot. Prints the throughput ratios and the page's peak memory. On loopback the page also
//! runs the same sync with every IndexedDB write skipped: what storing costs, and the ceiling.
//!
//! The browser side is `frontend/tests/bench_sync.rs`, run by wasm-bindgen-test-runner with
//! `WEBPOP_BENCH_ENV` describing the target.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::json;
use webpop_bench::mailbox::Mailbox;
use webpop_testkit::corpus;
use webpop_testkit::delay_proxy::DelayProxy;
use webpop_testkit::fetchmail::Fetchmail;
use webpop_testkit::local_relay::LocalRelay;

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

/// Runs the browser half once and parses its `BENCH` line.
fn browser_sync(env: &serde_json::Value) -> Result<(Measured, f64, f64)> {
    let target_dir = PathBuf::from("target/bench-wasm");
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
    let field = |name: &str| -> Result<f64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .with_context(|| format!("no {name} in {line}"))?
            .parse()
            .with_context(|| format!("bad {name} in {line}"))
    };
    Ok((
        Measured {
            seconds: field("elapsed_ms")? / 1000.0,
            bytes: field("bytes")?,
        },
        field("peak_js_heap")?,
        field("peak_wasm_memory")?,
    ))
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
    let delayed = DelayProxy::start_blocking(server.pop3s_addr(), Duration::from_millis(5))?;
    let relay = runtime.block_on(LocalRelay::start(
        "127.0.0.1:0".parse()?,
        &[server.pop3s_port(), delayed.addr().port()],
    ))?;

    let mut networks = vec![("loopback", server.pop3s_port(), 0.7)];
    if !args.loopback_only {
        networks.push(("10 ms RTT", delayed.addr().port(), 10.0));
    }
    println!(
        "mailbox: {} messages, {:.1} MB; relay on {}; Chromium syncs into IndexedDB",
        mail.len(),
        total as f64 / 1e6,
        relay.addr()
    );
    for (label, port, target) in networks {
        let env = json!({
            "label": label.replace(' ', "-"),
            "relay": format!("ws://{}/relay", relay.addr()),
            "port": port,
            "user": USER,
            "password": PASSWORD,
            "cert_sha256": server.cert_sha256_hex(),
        });
        eprintln!("{label}: browser sync…");
        let (browser, js_heap, wasm_memory) = browser_sync(&env)?;
        // On loopback, the same sync with IndexedDB's writes skipped shows what storing costs.
        let unstored = if port == server.pop3s_port() {
            let mut env = env.clone();
            env["discard_writes"] = true.into();
            env["label"] = format!("{}-unstored", env["label"].as_str().unwrap_or("")).into();
            eprintln!("{label}: browser sync, IndexedDB writes skipped…");
            Some(browser_sync(&env)?.0)
        } else {
            None
        };
        eprintln!("{label}: fetchmail…");
        let fetchmail = Fetchmail::for_dovecot(&server, USER, PASSWORD)
            .via_port(port)
            .run()?;
        let fetchmail_seconds = fetchmail.elapsed.as_secs_f64();
        let browser_rate = browser.bytes / browser.seconds / 1e6;
        let fetchmail_rate = total as f64 / fetchmail_seconds / 1e6;
        let ratio = browser_rate / fetchmail_rate;
        println!(
            "{label:>10}: browser {:6.2} s ({browser_rate:5.1} MB/s) | fetchmail {fetchmail_seconds:6.2} s \
             ({fetchmail_rate:5.1} MB/s) | ratio {ratio:5.2}× (target ≥ {target}×: {}) | \
             page peak: JS heap {:.1} MB, wasm memory {:.1} MB",
            browser.seconds,
            if ratio >= target { "met" } else { "MISSED" },
            js_heap / 1e6,
            wasm_memory / 1e6,
        );
        if let Some(unstored) = unstored {
            let rate = unstored.bytes / unstored.seconds / 1e6;
            println!(
                "{label:>10}: the same sync with IndexedDB writes skipped {:6.2} s ({rate:5.1} MB/s) \
                 | ratio {:5.2}× | storing costs {:.2} s",
                unstored.seconds,
                rate / fetchmail_rate,
                browser.seconds - unstored.seconds,
            );
        }
    }
    drop(delayed);
    Ok(())
}
