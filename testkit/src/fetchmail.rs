//! Debian's fetchmail 6 as a baseline POP3 client for the benchmark.
//!
//! [`Fetchmail::run`] writes an rcfile (mode 0600) into a fresh temp dir that also serves as
//! `HOME` and `FETCHMAILHOME` (so parallel runs share no lock or `.fetchids` file), runs
//! `fetchmail -f RC --nosyslog --bsmtp FILE` once (no daemon) over implicit TLS, and returns the
//! wall time and the BSMTP file. The rcfile is
//!
//! ```text
//! poll 127.0.0.1 with proto POP3 port PORT
//!   user "USER" there with password "PASS" is "webpop" here
//!   options keep fetchall ssl sslcertck sslcertfile "CERT.pem" sslcommonname "localhost"
//! ```
//!
//! `sslcertck` really verifies the server: fetchmail 6.4.37 matches the host name against DNS
//! names only (an `IP:127.0.0.1` SAN does not count), hence `sslcommonname "localhost"` while
//! still connecting to 127.0.0.1. (`sslfingerprint` would also work but wants an MD5 fingerprint.)
//! Fetchmail authenticates with `AUTH CRAM-MD5` when offered, then sends `STAT`, and for each
//! message `LIST n` and `RETR n`, each waiting for the reply: no pipelining.
//!
//! # What fetchmail changes (6.4.37, seen against Dovecot 2.3)
//!
//! BSMTP output is, per message, `MAIL FROM:<return-path>` (with ` BODY=7BIT` or
//! ` BODY=8BITMIME` when the message declares a transfer encoding), `RCPT TO:<webpop@localhost>`,
//! `DATA`, the dot-stuffed message with CRLF line ends, and a `.` line; no `QUIT`. [`parse_bsmtp`]
//! undoes this framing. Compared with the original, the message
//!
//! - starts with a three-line `Received: from 127.0.0.1 [127.0.0.1] by HOST with POP3
//!   (fetchmail-6.4.37) for <…> (single-drop); DATE` field — see
//!   [`BsmtpMessage::without_fetchmail_received`];
//! - lacks every `Return-Path:` header field (fetchmail turns it into `MAIL FROM`) — see
//!   [`expected_after_fetchmail`];
//! - has every line longer than 8191 octets **corrupted**: after each 8191 octets fetchmail
//!   inserts two junk bytes (seen: `\0` and `\x8c`) and a CRLF. [`compare`] counts these.
//!
//! Dot lines (`.`, `..`, `.x`), `From ` lines, 8bit and non-UTF-8 bodies and multi-MB
//! attachments come through intact.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where and how fetchmail connects. Implicit TLS (`ssl`), certificate checked.
#[derive(Debug, Clone)]
pub struct Fetchmail {
    /// An IP address (use 127.0.0.1).
    pub host: String,
    /// The implicit-TLS (pop3s) port, e.g. [`crate::dovecot::Dovecot::pop3s_port`] or a
    /// [`crate::delay_proxy::DelayProxy`] in front of it.
    pub port: u16,
    /// POP3 user.
    pub user: String,
    /// POP3 password.
    pub password: String,
    /// PEM file of the server certificate, the only trust anchor.
    pub cert_pem: PathBuf,
    /// The DNS name the certificate must carry (default `localhost`).
    pub common_name: String,
    /// More rcfile options appended to the `options` line, e.g. `"fetchsizelimit 0"`.
    pub extra_options: String,
    /// Give up after this long (default 10 minutes).
    pub timeout: Duration,
}

impl Fetchmail {
    /// Settings for fetching `user`'s mail from a [`crate::dovecot::Dovecot`] over pop3s.
    pub fn for_dovecot(server: &crate::dovecot::Dovecot, user: &str, password: &str) -> Self {
        Self {
            host: server.host().to_string(),
            port: server.pop3s_port(),
            user: user.to_string(),
            password: password.to_string(),
            cert_pem: server.cert_pem_path(),
            common_name: "localhost".into(),
            extra_options: String::new(),
            timeout: Duration::from_secs(600),
        }
    }

    /// The same settings with another port (e.g. a delay proxy in front of the server).
    pub fn via_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The rcfile contents.
    pub fn rcfile(&self) -> String {
        let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        format!(
            "poll {host} with proto POP3 port {port}\n  \
             user \"{user}\" there with password \"{pw}\" is \"webpop\" here\n  \
             options keep fetchall ssl sslcertck sslcertfile \"{cert}\" sslcommonname \"{cn}\" {extra}\n",
            host = self.host,
            port = self.port,
            user = q(&self.user),
            pw = q(&self.password),
            cert = q(&self.cert_pem.display().to_string()),
            cn = q(&self.common_name),
            extra = self.extra_options,
        )
    }

    /// Runs fetchmail once and waits for it. Fails if fetchmail reports an error (exit status
    /// other than 0 "mail fetched" or 1 "no mail"), with its output in the error.
    pub fn run(&self) -> Result<FetchmailRun> {
        let dir = tempfile::Builder::new()
            .prefix("webpop-fetchmail-")
            .tempdir()
            .context("creating fetchmail's temp dir")?;
        let rc = dir.path().join("fetchmailrc");
        fs::write(&rc, self.rcfile())?;
        // fetchmail refuses an rcfile that others can read.
        fs::set_permissions(&rc, fs::Permissions::from_mode(0o600))?;
        let bsmtp = dir.path().join("out.bsmtp");
        let log = dir.path().join("fetchmail.log");
        let log_file = fs::File::create(&log)?;

        let start = Instant::now();
        let mut child = Command::new("fetchmail")
            .arg("-f")
            .arg(&rc)
            .arg("--nosyslog")
            .arg("--bsmtp")
            .arg(&bsmtp)
            .env("HOME", dir.path())
            .env("FETCHMAILHOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("running fetchmail (is it installed?)")?;
        let pid = child.id();
        // Wait on another thread so the exit is seen at once (an exact wall time) while this
        // thread enforces the timeout.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send((status, start.elapsed()));
        });
        let (status, elapsed) = match rx.recv_timeout(self.timeout) {
            Ok((status, elapsed)) => (status?, elapsed),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                let _ = rx.recv_timeout(Duration::from_secs(10));
                bail!(
                    "fetchmail timed out after {:?}:\n{}",
                    self.timeout,
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let output = fs::read_to_string(&log).unwrap_or_default();
        match status.code() {
            Some(0) | Some(1) => {}
            _ => bail!("fetchmail failed ({status}):\n{output}"),
        }
        Ok(FetchmailRun {
            elapsed,
            bsmtp,
            output,
            _dir: dir,
        })
    }
}

/// The result of one fetchmail run. Owns the temp dir holding the BSMTP file.
#[derive(Debug)]
pub struct FetchmailRun {
    /// Wall time from spawning fetchmail to its exit.
    pub elapsed: Duration,
    /// The BSMTP file fetchmail wrote (absent if there was no mail).
    pub bsmtp: PathBuf,
    /// What fetchmail printed.
    pub output: String,
    _dir: tempfile::TempDir,
}

impl FetchmailRun {
    /// Reads and parses the BSMTP file.
    pub fn messages(&self) -> Result<Vec<BsmtpMessage>> {
        if !self.bsmtp.exists() {
            return Ok(Vec::new());
        }
        parse_bsmtp(&fs::read(&self.bsmtp)?)
    }

    /// The BSMTP file's path.
    pub fn bsmtp_path(&self) -> &Path {
        &self.bsmtp
    }
}

/// One message from a BSMTP file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BsmtpMessage {
    /// The `MAIL FROM:` line's argument, e.g. `<a@b> BODY=8BITMIME`.
    pub mail_from: String,
    /// The `RCPT TO:` arguments.
    pub rcpt_to: Vec<String>,
    /// The message after `DATA`, dot-stuffing undone, line ends as written (CRLF).
    pub data: Vec<u8>,
}

impl BsmtpMessage {
    /// [`Self::data`] without the `Received:` field fetchmail puts first (if it is there).
    pub fn without_fetchmail_received(&self) -> &[u8] {
        let d = &self.data[..];
        if !d.starts_with(b"Received: ") {
            return d;
        }
        // The field runs until a line that does not start with white space.
        let mut end = 0;
        loop {
            let Some(nl) = d[end..].iter().position(|&b| b == b'\n') else {
                return d;
            };
            end += nl + 1;
            if !matches!(d.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        let field = &d[..end];
        if field.windows(11).any(|w| w == b"(fetchmail-") {
            &d[end..]
        } else {
            d
        }
    }
}

/// Splits fetchmail's BSMTP output into messages (see the [module documentation](self)).
pub fn parse_bsmtp(bsmtp: &[u8]) -> Result<Vec<BsmtpMessage>> {
    let mut messages = Vec::new();
    let mut current: Option<BsmtpMessage> = None;
    let mut in_data = false;
    for (lineno, line) in bsmtp.split_inclusive(|&b| b == b'\n').enumerate() {
        if in_data {
            let msg = current.as_mut().expect("DATA follows MAIL FROM");
            if line == b".\r\n" || line == b".\n" || line == b"." {
                in_data = false;
                messages.extend(current.take());
                continue;
            }
            msg.data
                .extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        let upper = text.to_ascii_uppercase();
        if let Some(arg) = upper.strip_prefix("MAIL FROM:").map(|_| &text[10..]) {
            if current.is_some() {
                bail!("line {}: MAIL FROM without DATA before it", lineno + 1);
            }
            current = Some(BsmtpMessage {
                mail_from: arg.trim().to_string(),
                rcpt_to: Vec::new(),
                data: Vec::new(),
            });
        } else if upper.starts_with("RCPT TO:") {
            let Some(msg) = current.as_mut() else {
                bail!("line {}: RCPT TO before MAIL FROM", lineno + 1);
            };
            msg.rcpt_to.push(text[8..].trim().to_string());
        } else if upper == "DATA" {
            if current.is_none() {
                bail!("line {}: DATA before MAIL FROM", lineno + 1);
            }
            in_data = true;
        } else if upper.is_empty()
            || upper == "QUIT"
            || upper == "RSET"
            || upper.starts_with("HELO")
            || upper.starts_with("EHLO")
        {
        } else {
            bail!("line {}: unexpected BSMTP line {text:?}", lineno + 1);
        }
    }
    if in_data || current.is_some() {
        bail!("BSMTP ends inside a message");
    }
    Ok(messages)
}

/// `original` with every `Return-Path:` header field removed — what fetchmail delivers apart from
/// its `Received:` field, when no line is longer than 8191 octets.
pub fn expected_after_fetchmail(original: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(original.len());
    let mut rest = original;
    let mut dropping = false;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let (line, tail) = rest.split_at(nl + 1);
        if line == b"\r\n" || line == b"\n" {
            out.extend_from_slice(rest);
            return out;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            dropping = line.len() >= 12 && line[..12].eq_ignore_ascii_case(b"Return-Path:");
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out.extend_from_slice(rest);
    out
}

/// How fetchmail's output compares with the original mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Messages compared (pairs present on both sides).
    pub compared: usize,
    /// Messages identical after removing fetchmail's `Received:` and the `Return-Path:` fields.
    pub identical: usize,
    /// 0-based indices of the messages that differ.
    pub differing: Vec<usize>,
    /// Sum over differing messages of the octets outside their common prefix and suffix (on
    /// the longer side): the span from the first to the last difference, not a count of bad
    /// bytes — two corruptions 12 KB apart count 12 KB.
    pub mismatched_bytes: usize,
    /// Originals with no fetched counterpart.
    pub missing: usize,
    /// Fetched messages beyond the originals.
    pub extra: usize,
}

/// Compares fetched messages with the originals, in order.
pub fn compare(originals: &[Vec<u8>], fetched: &[BsmtpMessage]) -> Comparison {
    let mut c = Comparison {
        compared: originals.len().min(fetched.len()),
        missing: originals.len().saturating_sub(fetched.len()),
        extra: fetched.len().saturating_sub(originals.len()),
        ..Comparison::default()
    };
    for (i, (orig, got)) in originals.iter().zip(fetched).enumerate() {
        let want = expected_after_fetchmail(orig);
        let got = got.without_fetchmail_received();
        if want == got {
            c.identical += 1;
        } else {
            c.differing.push(i);
            c.mismatched_bytes += mismatch_bytes(&want, got);
        }
    }
    c
}

/// Octets outside the common prefix and suffix of `a` and `b`, on the longer side.
pub fn mismatch_bytes(a: &[u8], b: &[u8]) -> usize {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    let suffix = ra
        .iter()
        .rev()
        .zip(rb.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    ra.len().max(rb.len()) - suffix
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{corpus, dovecot::Dovecot};

    #[test]
    fn parses_framing_and_unstuffs_dots() {
        let bsmtp = b"MAIL FROM:<a@example.test> BODY=8BITMIME\r\n\
            RCPT TO:<x@localhost>\r\nRCPT TO:<y@localhost>\r\nDATA\r\n\
            Received: from 127.0.0.1 [127.0.0.1]\r\n\tby vm with POP3 (fetchmail-6.4.37)\r\n\
            \tfor <x@localhost> (single-drop); Thu, 26 Nov 2026 18:44:59 +0000 (UTC)\r\n\
            Subject: s\r\n\r\n..\r\n...\r\n..x\r\nFrom me\r\n.\r\n\
            MAIL FROM:<>\r\nRCPT TO:<x@localhost>\r\nDATA\r\nA: b\r\n\r\n.\r\n";
        let m = parse_bsmtp(bsmtp).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mail_from, "<a@example.test> BODY=8BITMIME");
        assert_eq!(m[0].rcpt_to, ["<x@localhost>", "<y@localhost>"]);
        assert_eq!(
            m[0].without_fetchmail_received(),
            b"Subject: s\r\n\r\n.\r\n..\r\n.x\r\nFrom me\r\n"
        );
        assert_eq!(m[1].mail_from, "<>");
        assert_eq!(m[1].without_fetchmail_received(), b"A: b\r\n\r\n");
        assert!(parse_bsmtp(b"MAIL FROM:<>\r\nDATA\r\nx\r\n").is_err());
        assert!(parse_bsmtp(b"HELLO\r\n").is_err());
    }

    #[test]
    fn return_path_removal_and_mismatch_count() {
        let orig =
            b"Return-Path: <a@b>\r\nX: 1\r\nReturn-Path:\r\n <c@d>\r\n\r\nReturn-Path: body\r\n";
        assert_eq!(
            expected_after_fetchmail(orig),
            b"X: 1\r\n\r\nReturn-Path: body\r\n"
        );
        assert_eq!(mismatch_bytes(b"abcXYZdef", b"abcQdef"), 3);
        assert_eq!(mismatch_bytes(b"same", b"same"), 0);
    }

    #[test]
    fn fetches_from_real_dovecot() {
        // 24 messages: every small kind twice, including dot lines and 20 KB lines.
        let mail = corpus::generate(24, 77);
        let server = Dovecot::start(&[("fm", "fm-secret", &mail)]).expect("starting Dovecot");
        let run = Fetchmail::for_dovecot(&server, "fm", "fm-secret")
            .run()
            .expect("running fetchmail");
        let fetched = run.messages().expect("parsing BSMTP");
        assert_eq!(fetched.len(), mail.len(), "{}", run.output);
        assert!(
            fetched[0].rcpt_to == ["<webpop@localhost>"],
            "{:?}",
            fetched[0]
        );

        let cmp = compare(&mail, &fetched);
        assert_eq!((cmp.missing, cmp.extra), (0, 0));
        // Messages without lines over 8191 octets must come through intact; the others are
        // fetchmail's to mangle (see the module docs), and the benchmark reports them.
        for (i, m) in mail.iter().enumerate() {
            let has_long_line = m.split(|&b| b == b'\n').any(|l| l.len() > 8_000);
            if !has_long_line {
                assert!(
                    !cmp.differing.contains(&i),
                    "message {i} ({:?}) differs after fetchmail",
                    corpus::kind(i)
                );
            }
        }
        // Fetchmail keeps the mail on the server (`keep`).
        assert_eq!(server.maildir_files("fm").unwrap().len(), mail.len());
    }
}
