//! The demo mailbox: a small POP3-over-TLS server on 127.0.0.1 with sample messages (plain,
//! HTML with remote and inline images, attachments, non-ASCII text), started by
//! `webpop-proxy --demo` so a newcomer can try webpop at once. The relay may reach exactly this
//! server, and `/demo.json` tells the page how (address, account, certificate fingerprint).
//!
//! It serves what webpop uses — CAPA, USER/PASS, STAT, LIST, UIDL, TOP, RETR, DELE, RSET, NOOP,
//! QUIT, pipelined. Each POP3 connection gets its own copy of the sample mail: DELE and QUIT
//! work, but one visitor's deletions never show to another (or to the same visitor later).

mod mailbox;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;
use webpop_shared::session::Fingerprint;

pub use mailbox::sample_messages;

/// The demo account's user name.
pub const USER: &str = "demo";
/// The demo account's password (it protects nothing: the server holds only sample mail).
pub const PASSWORD: &str = "demo";

/// A running demo server.
#[derive(Debug, Clone)]
pub struct Demo {
    addr: SocketAddr,
    fingerprint: String,
}

impl Demo {
    /// Starts the server on 127.0.0.1 (a free port) with a fresh self-signed certificate for
    /// `localhost`.
    pub async fn start() -> std::io::Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(std::io::Error::other)?;
        let fingerprint = Fingerprint::of(certified.cert.der()).to_string();
        let addr = server::start(
            certified,
            Arc::new(mailbox::Mailbox::new(sample_messages().to_vec())),
        )
        .await?;
        Ok(Self { addr, fingerprint })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SHA-256 fingerprint of its certificate, colon-separated hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// What the page needs to offer the demo account (served as `/demo.json`).
    pub fn describe(&self) -> serde_json::Value {
        json!({
            "host": self.addr.ip().to_string(),
            "port": self.addr.port(),
            "server_name": "localhost",
            "security": "tls",
            "user": USER,
            "password": PASSWORD,
            "cert_sha256": self.fingerprint,
        })
    }
}
