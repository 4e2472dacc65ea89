//! Test and benchmark support for webpop.
//!
//! - [`corpus`]: a deterministic mail corpus with every awkward feature a POP3 client must carry
//!   byte-for-byte (non-UTF-8 8bit bodies, 20 KB lines, dot lines, multi-MB attachments).
//! - [`dovecot`]: a private Dovecot 2.3 POP3 server on 127.0.0.1 with a fresh self-signed
//!   certificate, plain+STLS and implicit-TLS ports, and access to its Maildir and raw logs.
//! - [`delay_proxy`]: a TCP proxy that adds latency without limiting throughput.
//! - [`fetchmail`]: runs Debian's fetchmail against a server as a baseline, and parses its BSMTP.
//! - [`faulty_pop3`]: a POP3-over-TLS server that injects faults (drops, stalls, garbage, `-ERR`,
//!   over-long lines) at chosen protocol phases, and records what it deleted and when.
//! - [`memory_store`]: a mail store in memory, for running the sync host natively.
//! - `local_relay` (feature `relay`, on by default): the in-process relay on 127.0.0.1 for the
//!   relay's tests, the fault matrix, the browser tests and the benchmarks.
//! - `ws` (feature `relay`): the WebSocket test client that opens relay sessions.
//! - [`nginx`]: a private nginx load balancer with WebSocket upgrade in front of relays.
//!
//! What needs the relay crate (`webpop-proxy`, and with it axum and hyper) is behind the `relay`
//! feature, so that `webpop-shared`'s tests can use the rest without building the relay.
//!
//! Everything talks to 127.0.0.1 only. The Dovecot and fetchmail parts need the Debian packages
//! `dovecot-core`, `dovecot-pop3d` and `fetchmail` (and `openssl` for one test).
//!
//! ```no_run
//! use webpop_testkit::{corpus, dovecot::Dovecot, fetchmail::{self, Fetchmail}};
//!
//! let mail = corpus::generate(50, 1);
//! let server = Dovecot::start(&[("alice", "secret", &mail)])?;
//! // Connect to server.pop3s_addr() trusting server.cert_der() (SAN IP 127.0.0.1, DNS localhost),
//! // or to server.pop3_addr() and STLS. Then check what the client got against
//! // server.stored_message("alice", n) or mail[n - 1], and server.maildir_files("alice") after DELE.
//!
//! let run = Fetchmail::for_dovecot(&server, "alice", "secret").run()?;
//! let cmp = fetchmail::compare(&mail, &run.messages()?);
//! println!("fetchmail: {:?}, {} of {} intact", run.elapsed, cmp.identical, mail.len());
//! # Ok::<(), anyhow::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod corpus;
pub mod delay_proxy;
pub mod dovecot;
pub mod faulty_pop3;
pub mod fetchmail;
#[cfg(feature = "relay")]
pub mod local_relay;
pub mod memory_store;
pub mod nginx;
#[cfg(feature = "relay")]
pub mod ws;
