//! The mailbox the download benchmarks run against: generated mail served by a private Dovecot.

use anyhow::Result;
use webpop_testkit::corpus;
use webpop_testkit::dovecot::Dovecot;

/// Generated mail and the Dovecot that serves it.
pub struct Mailbox {
    /// The messages, oldest first.
    pub mail: Vec<Vec<u8>>,
    /// Their size in bytes, all together.
    pub total: usize,
    /// The server holding them.
    pub server: Dovecot,
}

impl Mailbox {
    /// Generates `messages` messages of about `bytes` in all from `seed` (saying so on stderr:
    /// it takes a while) and starts a Dovecot that serves them to `user` with `password`.
    pub fn start(
        messages: usize,
        bytes: usize,
        seed: u64,
        user: &str,
        password: &str,
    ) -> Result<Self> {
        eprintln!(
            "generating {messages} messages (~{} MB)…",
            bytes / 1_000_000
        );
        let mail = corpus::generate_sized(messages, bytes, seed);
        let total = mail.iter().map(Vec::len).sum();
        let server = Dovecot::start(&[(user, password, &mail)])?;
        Ok(Self {
            mail,
            total,
            server,
        })
    }
}
