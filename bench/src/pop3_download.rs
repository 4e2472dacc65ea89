//! Downloads the benchmark mailbox (2,000 messages, ~100 MB) from a private Dovecot over
//! implicit TLS with webpop's native driver and with fetchmail 6, interleaved in one run, on
//! loopback and at 10 ms RTT through a user-space delay proxy, and prints the time ratios.
//!
//! Every message webpop downloads is compared byte-for-byte with Dovecot's file; fetchmail's
//! BSMTP output is compared too, and its mismatches are counted and printed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use webpop_bench::mailbox::Mailbox;
use webpop_shared::pop3::{AuthMethod, Command, Event, Options, Reply};
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Security, SessionConfig, Trust};
use webpop_shared::tokio_transport;
use webpop_testkit::corpus;
use webpop_testkit::delay_proxy::DelayProxy;
use webpop_testkit::dovecot::Dovecot;
use webpop_testkit::fetchmail::{self, Fetchmail};

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

#[derive(Parser, Debug)]
#[command(about = "POP3 download benchmark: webpop's native driver against fetchmail")]
struct Args {
    /// Interleaved rounds (webpop, fetchmail) on loopback.
    #[arg(long, default_value_t = 3)]
    loopback_rounds: usize,
    /// Interleaved rounds at 10 ms RTT (fetchmail takes ~50 s per round there).
    #[arg(long, default_value_t = 1)]
    delayed_rounds: usize,
    /// Messages in the mailbox.
    #[arg(long, default_value_t = corpus::BENCH_MESSAGES)]
    messages: usize,
    /// Approximate mailbox size in bytes.
    #[arg(long, default_value_t = corpus::BENCH_TOTAL_BYTES)]
    bytes: usize,
    /// Most RETRs in flight for webpop.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
}

struct Network {
    name: &'static str,
    target: f64,
    rounds: usize,
    addr: SocketAddr,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let Mailbox {
        mail,
        total,
        server,
    } = Mailbox::start(args.messages, args.bytes, 20261126, USER, PASSWORD)?;
    let stored: Vec<Vec<u8>> = (1..=mail.len())
        .map(|n| server.stored_message(USER, n))
        .collect::<Result<_>>()?;
    let _guard = runtime.enter();
    let delayed = DelayProxy::start_blocking(server.pop3s_addr(), Duration::from_millis(5))?;

    println!(
        "mailbox: {} messages, {:.1} MB; Dovecot on 127.0.0.1, implicit TLS",
        stored.len(),
        total as f64 / 1e6
    );
    let networks = [
        Network {
            name: "loopback",
            target: 1.5,
            rounds: args.loopback_rounds,
            addr: server.pop3s_addr(),
        },
        Network {
            name: "10 ms RTT",
            target: 10.0,
            rounds: args.delayed_rounds,
            addr: delayed.addr(),
        },
    ];
    let mut all_met = true;
    for net in &networks {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut fetchmail_mismatches = (0, 0);
        for round in 1..=net.rounds {
            let t =
                runtime.block_on(webpop_download(&server, net.addr, &stored, args.in_flight))?;
            eprintln!(
                "  {} round {round}: webpop {:.2} s",
                net.name,
                t.as_secs_f64()
            );
            ours.push(t);

            let run = Fetchmail::for_dovecot(&server, USER, PASSWORD)
                .via_port(net.addr.port())
                .run()?;
            let fetched = run.messages()?;
            let cmp = fetchmail::compare(&stored, &fetched);
            if cmp.missing > 0 || cmp.extra > 0 {
                bail!(
                    "fetchmail fetched {} messages, expected {}",
                    fetched.len(),
                    stored.len()
                );
            }
            fetchmail_mismatches = (cmp.differing.len(), cmp.mismatched_bytes);
            eprintln!(
                "  {} round {round}: fetchmail {:.2} s",
                net.name,
                run.elapsed.as_secs_f64()
            );
            theirs.push(run.elapsed);
        }
        let (a, b) = (median(&mut ours), median(&mut theirs));
        let ratio = b.as_secs_f64() / a.as_secs_f64();
        let met = ratio >= net.target;
        all_met &= met;
        println!(
            "{:>10}: webpop {:6.2} s ({:6.1} MB/s) | fetchmail {:6.2} s ({:6.1} MB/s) | \
             webpop is {:5.1}x faster (target {:.1}x: {}) | webpop: all {} messages byte-identical | \
             fetchmail: {} messages differ ({} bytes)",
            net.name,
            a.as_secs_f64(),
            total as f64 / 1e6 / a.as_secs_f64(),
            b.as_secs_f64(),
            total as f64 / 1e6 / b.as_secs_f64(),
            ratio,
            net.target,
            if met { "met" } else { "MISSED" },
            stored.len(),
            fetchmail_mismatches.0,
            fetchmail_mismatches.1,
        );
    }
    if !all_met {
        println!("some targets were missed");
    }
    Ok(())
}

/// One full download: connect, log in, LIST, pipeline every RETR, verify, QUIT.
async fn webpop_download(
    server: &Dovecot,
    addr: SocketAddr,
    stored: &[Vec<u8>],
    in_flight: usize,
) -> Result<Duration> {
    let start = Instant::now();
    let config = SessionConfig::new("localhost", Security::ImplicitTls)
        .trust(Trust::default().with_root(server.cert_der().to_vec()))
        .pop3_options(Options::default().max_in_flight(in_flight));
    let mut conn = tokio_transport::connect(addr, config).await?;
    conn.login(Credentials::new(USER, PASSWORD)?, AuthMethod::Auto)
        .await?;
    let Reply::Listing(list) = conn.run(Command::List(None)).await? else {
        bail!("LIST gave no listing");
    };
    let mut handles = std::collections::HashMap::new();
    for entry in &list {
        handles.insert(conn.send(Command::Retr(entry.msg))?, entry.msg as usize);
    }
    for _ in 0..list.len() {
        match conn.next_event().await? {
            Event::Reply {
                handle,
                reply: Reply::Message(body),
            } => {
                let n = handles.get(&handle).context("reply to an unknown RETR")?;
                if body != stored[n - 1] {
                    bail!("message {n} differs from Dovecot's file");
                }
            }
            other => bail!("unexpected event {other:?}"),
        }
    }
    conn.quit().await?;
    Ok(start.elapsed())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}
