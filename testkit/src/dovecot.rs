//! A private Dovecot 2.3 POP3 server for tests and benchmarks.
//!
//! [`Dovecot::start`] writes a self-contained configuration into a fresh temporary directory and
//! runs `dovecot -c CONF -F` as an ordinary child process: nothing in `/etc/dovecot` is read or
//! changed and no init system is involved. The server listens on 127.0.0.1 only, on two ports
//! chosen at runtime — [`Dovecot::pop3_port`] (plain, offers `STLS`; plaintext auth allowed) and
//! [`Dovecot::pop3s_port`] (implicit TLS) — with a freshly generated self-signed certificate for
//! `DNS:localhost` and `IP:127.0.0.1`. Every instance has its own `instance_name`, `base_dir`,
//! ports and files, so tests can run many in parallel. [`Dovecot::stop`] or dropping the value
//! stops the server (SIGTERM to the master's PID, SIGKILL after 15 s) and deletes the directory.
//! A tiny `sh` watchdog also stops it if the test process is killed without unwinding.
//!
//! Users live in a passwd-file with `{PLAIN}` passwords, which is what lets Dovecot offer
//! `CRAM-MD5`, `DIGEST-MD5` and `APOP` besides `USER/PASS`, `PLAIN` and `LOGIN`.
//!
//! # Message order
//!
//! Messages go into `Maildir/cur/` as `<1700000000+seq>.M<seq>P<pid>.webpop-testkit:2,` where
//! `seq` grows with every message written by this instance. Dovecot gives new Maildir files UIDs
//! in file-name order, and POP3 numbers follow UIDs, so POP3 message *n* of a fresh session is the
//! *n*-th of [`Dovecot::maildir_files`] (a test pins this by `RETR`-ing every message).
//!
//! # Who runs it
//!
//! - **As root** (CI containers, this project's sandboxes): Dovecot's own processes run as the
//!   Debian users `dovecot` and `dovenull` (`default_internal_user`, `default_login_user`), and mail
//!   is owned by uid/gid 5000 (see [`DovecotBuilder::mail_owner`]); the Maildir and raw-log
//!   directories are `chown`ed to it and the temp dir is made world-traversable (0755).
//! - **As an ordinary user**: everything runs as that user. The configuration sets
//!   `default_internal_user`, `default_internal_group` and `default_login_user` to the current
//!   user and group, turns off the `chroot` of the login, anvil and ipc services (chroot needs root),
//!   and sets `first_valid_uid`/`first_valid_gid` to the current ids. The user needs nothing but
//!   the `dovecot` binary (`dovecot-core` + `dovecot-pop3d`) on `PATH` or in `/usr/sbin`; ports
//!   are ephemeral (> 1024). If Dovecot still refuses, `start` returns its log in the error.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use webpop_shared::session::Fingerprint;

/// The only address the server listens on.
pub const HOST: &str = "127.0.0.1";

/// The uid and gid that own mail when the harness runs as root.
pub const ROOT_MAIL_OWNER: (u32, u32) = (5000, 5000);

/// How long [`Dovecot::start`] waits for both ports to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The RFC 7919 `ffdhe2048` group. Dovecot 2.3 insists on `ssl_dh`, and generating parameters
/// with `openssl dhparam` takes far too long for a test.
const FFDHE2048_PEM: &str = "-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
";

/// A mailbox to create before the server starts.
#[derive(Debug, Clone)]
struct UserSpec {
    name: String,
    password: String,
    messages: Vec<Vec<u8>>,
}

/// Configures a [`Dovecot`] before starting it. Get one from [`Dovecot::builder`].
#[derive(Debug, Clone, Default)]
pub struct DovecotBuilder {
    users: Vec<UserSpec>,
    mail_owner: Option<(u32, u32)>,
    extra_config: String,
}

impl DovecotBuilder {
    /// Adds a user with a password and the initial contents of their mailbox, in POP3 order.
    ///
    /// Names and passwords must not contain `:`, whitespace or control characters (passwd-file).
    pub fn user(
        mut self,
        name: &str,
        password: &str,
        messages: impl IntoIterator<Item = Vec<u8>>,
    ) -> Self {
        self.users.push(UserSpec {
            name: name.to_owned(),
            password: password.to_owned(),
            messages: messages.into_iter().collect(),
        });
        self
    }

    /// The uid and gid that own the mail when running as root (default [`ROOT_MAIL_OWNER`]).
    /// Ignored when not running as root: then mail belongs to the current user.
    pub fn mail_owner(mut self, uid: u32, gid: u32) -> Self {
        self.mail_owner = Some((uid, gid));
        self
    }

    /// Appends raw lines to the generated `dovecot.conf` (later settings override earlier ones),
    /// e.g. `"pop3_logout_format = ..."` or a `protocol pop3 { ... }` block.
    pub fn extra_config(mut self, text: &str) -> Self {
        self.extra_config.push_str(text);
        self.extra_config.push('\n');
        self
    }

    /// Writes the configuration, certificate and mailboxes, starts Dovecot and waits until both
    /// ports accept connections (up to 20 s). On failure the error contains Dovecot's log.
    pub fn start(self) -> Result<Dovecot> {
        Dovecot::start_with(self)
    }
}

/// Who the processes and the mail belong to.
#[derive(Debug, Clone)]
struct Identity {
    /// Running as root: Dovecot drops privileges to the Debian users.
    root: bool,
    mail_uid: u32,
    mail_gid: u32,
    internal_user: String,
    internal_group: String,
    login_user: String,
}

impl Identity {
    fn detect(mail_owner: Option<(u32, u32)>) -> Result<Self> {
        // /proc/self is owned by the effective uid/gid: no libc (and no unsafe) needed.
        let me = fs::metadata("/proc/self").context("reading /proc/self to learn our uid")?;
        if me.uid() == 0 {
            let (mail_uid, mail_gid) = mail_owner.unwrap_or(ROOT_MAIL_OWNER);
            Ok(Self {
                root: true,
                mail_uid,
                mail_gid,
                internal_user: "dovecot".into(),
                internal_group: "dovecot".into(),
                login_user: "dovenull".into(),
            })
        } else {
            let user = command_output("id", &["-un"])?;
            let group = command_output("id", &["-gn"])?;
            Ok(Self {
                root: false,
                mail_uid: me.uid(),
                mail_gid: me.gid(),
                internal_user: user.clone(),
                internal_group: group,
                login_user: user,
            })
        }
    }
}

fn command_output(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!("{program} {args:?} failed: {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A running private Dovecot. Stops (and deletes its files) on drop.
#[derive(Debug)]
pub struct Dovecot {
    child: Option<Child>,
    pop3_port: u16,
    pop3s_port: u16,
    cert_der: Vec<u8>,
    cert_pem: String,
    identity: Identity,
    users: Vec<String>,
    next_seq: AtomicU64,
    // Declared last so the directory is removed after the process has been stopped in `drop`.
    dir: tempfile::TempDir,
}

impl Dovecot {
    /// A builder, for users added one by one or other options.
    pub fn builder() -> DovecotBuilder {
        DovecotBuilder::default()
    }

    /// Starts a server with these `(user, password, messages)` mailboxes.
    ///
    /// ```no_run
    /// # use webpop_testkit::{corpus, dovecot::Dovecot};
    /// let mail = corpus::generate(20, 1);
    /// let server = Dovecot::start(&[("alice", "secret", &mail)])?;
    /// let addr = server.pop3s_addr(); // implicit TLS; trust server.cert_der()
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn start(users: &[(&str, &str, &[Vec<u8>])]) -> Result<Self> {
        users
            .iter()
            .fold(Self::builder(), |b, (name, password, messages)| {
                b.user(name, password, messages.iter().cloned())
            })
            .start()
    }

    fn start_with(builder: DovecotBuilder) -> Result<Self> {
        for u in &builder.users {
            let bad = |s: &str| {
                s.is_empty()
                    || s.chars()
                        .any(|c| c == ':' || c == '%' || c.is_whitespace() || c.is_control())
            };
            if bad(&u.name) || bad(&u.password) || u.name.contains('/') {
                bail!(
                    "user name or password unusable in a passwd-file: {:?}",
                    u.name
                );
            }
        }
        let identity = Identity::detect(builder.mail_owner)?;
        let dir = tempfile::Builder::new()
            .prefix("webpop-dovecot-")
            .tempdir()
            .context("creating the Dovecot temp dir")?;
        // The mail processes (uid 5000 when root) and Dovecot's own users must traverse it.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;

        let cert =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string(), HOST.to_string()])
                .context("generating the self-signed certificate")?;
        let cert_pem = cert.cert.pem();
        let cert_der = cert.cert.der().to_vec();
        write_file(&dir.path().join("cert.pem"), cert_pem.as_bytes(), 0o644)?;
        write_file(
            &dir.path().join("key.pem"),
            cert.key_pair.serialize_pem().as_bytes(),
            0o600,
        )?;
        write_file(&dir.path().join("dh.pem"), FFDHE2048_PEM.as_bytes(), 0o644)?;

        let mut passwd = String::new();
        for u in &builder.users {
            let _ = writeln!(
                passwd,
                "{name}:{{PLAIN}}{pw}:{uid}:{gid}::{home}::",
                name = u.name,
                pw = u.password,
                uid = identity.mail_uid,
                gid = identity.mail_gid,
                home = dir.path().join("home").join(&u.name).display(),
            );
        }
        // Read by the auth process, which runs as `dovecot` when we are root.
        write_file(&dir.path().join("passwd"), passwd.as_bytes(), 0o644)?;

        let mut server = Dovecot {
            child: None,
            pop3_port: 0,
            pop3s_port: 0,
            cert_der,
            cert_pem,
            identity,
            users: builder.users.iter().map(|u| u.name.clone()).collect(),
            next_seq: AtomicU64::new(0),
            dir,
        };
        for u in &builder.users {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(server.maildir(&u.name).join(sub))?;
            }
            fs::create_dir_all(server.rawlog_dir(&u.name))?;
            for m in &u.messages {
                server.add_message(&u.name, m)?;
            }
            server.chown_tree(&server.dir.path().join("home").join(&u.name))?;
            server.chown_tree(&server.rawlog_dir(&u.name))?;
        }

        // A port picked by binding :0 can be taken by someone else before Dovecot binds it;
        // retry with new ports when that happens.
        let mut last_err = None;
        for _ in 0..4 {
            match server.launch(&builder.extra_config) {
                Ok(()) => return Ok(server),
                Err(LaunchError::PortTaken(e)) => last_err = Some(e),
                Err(LaunchError::Other(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("Dovecot did not start")))
    }

    fn launch(&mut self, extra_config: &str) -> std::result::Result<(), LaunchError> {
        let (p, ps) = free_port_pair().map_err(|e| LaunchError::Other(e.into()))?;
        self.pop3_port = p;
        self.pop3s_port = ps;
        let conf = self.config(extra_config);
        let conf_path = self.dir.path().join("dovecot.conf");
        let log_path = self.log_path();
        let stderr_path = self.dir.path().join("dovecot.stderr");
        let prepare = || -> Result<Child> {
            let _ = fs::remove_file(&log_path);
            write_file(&conf_path, conf.as_bytes(), 0o644)?;
            let stderr = fs::File::create(&stderr_path)?;
            let child = Command::new("sh")
                .arg("-c")
                .arg(WATCHDOG_SCRIPT)
                .arg("sh")
                .arg(dovecot_binary())
                .arg("-c")
                .arg(&conf_path)
                .arg("-F")
                .stdin(Stdio::piped())
                .stdout(stderr.try_clone()?)
                .stderr(stderr)
                .spawn()
                .context("spawning dovecot (is dovecot-core installed?)")?;
            Ok(child)
        };
        let child = prepare().map_err(LaunchError::Other)?;
        self.child = Some(child);

        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = self.kill();
                let log = self.log();
                let msg = e.context(format!(
                    "Dovecot in {} did not become ready.\n--- log ---\n{log}",
                    self.dir.path().display()
                ));
                if log.contains("Address already in use") {
                    Err(LaunchError::PortTaken(msg))
                } else {
                    Err(LaunchError::Other(msg))
                }
            }
        }
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut plain_ok, mut tls_ok) = (false, false);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("dovecot exited during start-up: {status}");
            }
            if !plain_ok {
                plain_ok = greeting_ok(self.pop3_addr());
            }
            if !tls_ok {
                tls_ok =
                    TcpStream::connect_timeout(&self.pop3s_addr(), Duration::from_secs(2)).is_ok();
            }
            if plain_ok && tls_ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("ports not ready after {START_TIMEOUT:?} (plain: {plain_ok}, tls: {tls_ok})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn config(&self, extra: &str) -> String {
        let d = self.dir.path().display();
        let id = &self.identity;
        let instance = self
            .dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("webpop-{}", std::process::id()));
        let mut c = format!(
            "# Generated by webpop-testkit; see testkit/src/dovecot.rs.
instance_name = {instance}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = pop3
listen = {HOST}
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
ssl_dh = <{d}/dh.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 digest-md5 apop
auth_verbose = yes
default_internal_user = {iu}
default_internal_group = {ig}
default_login_user = {lu}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
  default_fields = uid={uid} gid={gid} home={d}/home/%u mail=maildir:{d}/home/%u/Maildir
}}
protocol pop3 {{
  pop3_uidl_format = %08Xu%08Xv
  rawlog_dir = {d}/rawlog/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {HOST}
    port = {p}
  }}
  inet_listener pop3s {{
    address = {HOST}
    port = {ps}
    ssl = yes
  }}
}}
",
            iu = id.internal_user,
            ig = id.internal_group,
            lu = id.login_user,
            uid = id.mail_uid,
            gid = id.mail_gid,
            p = self.pop3_port,
            ps = self.pop3s_port,
        );
        if !id.root {
            // chroot(2) needs root; these services chroot by default.
            c.push_str(
                "mail_privileged_group =
service pop3-login {
  chroot =
}
service anvil {
  chroot =
}
service ipc {
  chroot =
}
service old-stats {
  chroot =
}
",
            );
        }
        c.push_str(extra);
        c
    }

    fn chown_tree(&self, path: &Path) -> io::Result<()> {
        if !self.identity.root {
            return Ok(());
        }
        let (uid, gid) = (self.identity.mail_uid, self.identity.mail_gid);
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        if path.is_dir() {
            for entry in fs::read_dir(path)? {
                self.chown_tree(&entry?.path())?;
            }
        }
        Ok(())
    }

    /// Always [`HOST`], `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        HOST
    }

    /// The plain POP3 port (offers `STLS`; `USER/PASS` allowed without TLS).
    pub fn pop3_port(&self) -> u16 {
        self.pop3_port
    }

    /// The implicit-TLS POP3 port (pop3s).
    pub fn pop3s_port(&self) -> u16 {
        self.pop3s_port
    }

    /// `127.0.0.1:pop3_port`.
    pub fn pop3_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.pop3_port)
    }

    /// `127.0.0.1:pop3s_port`.
    pub fn pop3s_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.pop3s_port)
    }

    /// The server certificate (DER), self-signed, SAN `DNS:localhost` and `IP:127.0.0.1`.
    /// Add it as the only trust anchor, or pin [`Self::cert_sha256`].
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The server certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Path of the certificate PEM file (for tools such as `openssl s_client` or fetchmail).
    pub fn cert_pem_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// SHA-256 of [`Self::cert_der`].
    pub fn cert_sha256(&self) -> [u8; 32] {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.cert_der);
        d.as_ref().try_into().expect("a SHA-256 digest is 32 bytes")
    }

    /// SHA-256 of the certificate as upper-case hex pairs joined by `:` (OpenSSL's style, and
    /// what the page pins).
    pub fn cert_sha256_hex(&self) -> String {
        Fingerprint(self.cert_sha256()).to_string()
    }

    /// The instance's temp dir (config, certificate, log, mail, raw logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of Dovecot's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.log")
    }

    /// Dovecot's log and anything it printed, for error messages and debugging.
    pub fn log(&self) -> String {
        let mut s = fs::read_to_string(self.log_path()).unwrap_or_default();
        if let Ok(e) = fs::read_to_string(self.dir.path().join("dovecot.stderr")) {
            if !e.is_empty() {
                s.push_str("--- stderr ---\n");
                s.push_str(&e);
            }
        }
        s
    }

    /// The users this server was started with.
    pub fn users(&self) -> &[String] {
        &self.users
    }

    /// `user`'s Maildir.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("home").join(user).join("Maildir")
    }

    /// Where Dovecot writes `user`'s raw session logs: for each POP3 session a
    /// `<date>-<time>-<pid>.in` file (bytes the client sent, after TLS) and `.out` (server replies).
    pub fn rawlog_dir(&self, user: &str) -> PathBuf {
        self.dir.path().join("rawlog").join(user)
    }

    /// The raw-log files of `user`, sorted by name (≈ by time).
    pub fn rawlog_files(&self, user: &str) -> io::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.rawlog_dir(user))?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()?;
        v.sort();
        Ok(v)
    }

    /// `user`'s logged-in POP3 sessions so far, oldest first, as recorded in the raw logs.
    /// A session's files are complete once the client has had the reply to `QUIT`.
    pub fn rawlog_sessions(&self, user: &str) -> io::Result<Vec<RawlogSession>> {
        Ok(self
            .rawlog_files(user)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "in"))
            .map(|input| RawlogSession {
                output: input.with_extension("out"),
                input,
            })
            .collect())
    }

    /// The message files currently in `user`'s Maildir (`new/` and `cur/`), in POP3 order for a
    /// session that starts now.
    pub fn maildir_files(&self, user: &str) -> io::Result<Vec<PathBuf>> {
        let mut v = Vec::new();
        for sub in ["new", "cur"] {
            for e in fs::read_dir(self.maildir(user).join(sub))? {
                let path = e?.path();
                if path.is_file() {
                    v.push(path);
                }
            }
        }
        // Dovecot may append flags after ':' (e.g. ":2,S" once a message was RETRed);
        // the part before it is what fixes the order.
        v.sort_by_key(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.split(':').next().unwrap_or_default().to_owned()
        });
        Ok(v)
    }

    /// The bytes Dovecot stores for POP3 message `n` (1-based) of a session that starts now.
    pub fn stored_message(&self, user: &str, n: usize) -> Result<Vec<u8>> {
        let files = self.maildir_files(user)?;
        let path = n
            .checked_sub(1)
            .and_then(|i| files.get(i))
            .ok_or_else(|| anyhow!("{user} has {} messages, no message {n}", files.len()))?;
        Ok(fs::read(path)?)
    }

    /// Delivers one more message to `user` (also while the server runs): it becomes the last one
    /// in POP3 order for sessions that start afterwards. Returns the file's path.
    pub fn add_message(&self, user: &str, message: &[u8]) -> Result<PathBuf> {
        let maildir = self.maildir(user);
        if !maildir.join("cur").is_dir() {
            bail!("no such user: {user}");
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let base = format!(
            "{}.M{seq:06}P{}.webpop-testkit",
            1_700_000_000 + seq,
            std::process::id()
        );
        // Maildir delivery: write in tmp/, then rename, so Dovecot never sees a partial file.
        let tmp = maildir.join("tmp").join(&base);
        write_file(&tmp, message, 0o600)?;
        self.chown_tree(&tmp)?;
        let dest = maildir.join("cur").join(format!("{base}:2,"));
        fs::rename(&tmp, &dest)?;
        Ok(dest)
    }

    /// Changes `user`'s password while the server runs (Dovecot rereads a passwd-file that
    /// changed): the next login with the old one is refused, as when the person changed it
    /// at the provider.
    pub fn set_password(&self, user: &str, password: &str) -> Result<()> {
        if password.is_empty()
            || password.contains(':')
            || password.chars().any(char::is_whitespace)
        {
            bail!("password unusable in a passwd-file");
        }
        let path = self.dir.path().join("passwd");
        let text = fs::read_to_string(&path)?;
        let prefix = format!("{user}:{{PLAIN}}");
        let mut found = false;
        let lines: Vec<String> = text
            .lines()
            .map(|line| match line.strip_prefix(&prefix) {
                Some(rest) => {
                    found = true;
                    let after = rest.split_once(':').map_or("", |(_, a)| a);
                    format!("{prefix}{password}:{after}")
                }
                None => line.to_owned(),
            })
            .collect();
        if !found {
            bail!("no such user: {user}");
        }
        // Dovecot rereads the file when its mtime (whole seconds) or size changed, and stats it
        // at most once per wall-clock second. So the new file must not share the old one's
        // second, and a lookup made in the second of the change may still see the old
        // password: return only once that second is over.
        if fs::metadata(&path)?.mtime() >= unix_seconds() {
            sleep_into_next_second();
        }
        // Written beside and renamed, so the auth process never reads half a file.
        let tmp = self.dir.path().join("passwd.new");
        write_file(&tmp, (lines.join("\n") + "\n").as_bytes(), 0o644)?;
        fs::rename(&tmp, &path)?;
        sleep_into_next_second();
        Ok(())
    }

    /// Stops the server and waits for it; the temp dir is deleted when `self` is dropped.
    pub fn stop(mut self) -> Result<()> {
        self.kill()
    }

    fn kill(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // Closing the watchdog's stdin makes it send SIGTERM to the master's PID, which stops
        // its login, auth and pop3 children (SIGKILL would orphan them), and wait for it.
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Dovecot ignored SIGTERM: kill the master by the PID it recorded, then the watchdog.
        if let Ok(pid) = fs::read_to_string(self.dir.path().join("run").join("master.pid")) {
            let _ = Command::new("kill")
                .args(["-KILL", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
        child.kill()?;
        child.wait()?;
        Ok(())
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// One POP3 session's raw log: the decrypted bytes after login, one timestamp per line.
///
/// Dovecot (`rawlog_dir`) prefixes every line with `<seconds>.<microseconds> `, the time of the
/// event-loop iteration that read (`.in`) or wrote (`.out`) it. Lines that arrived in one read
/// share a timestamp, so pipelined commands show up as one group in [`Self::input_reads`]. Two
/// separate reads inside the same microsecond would merge; that only ever overstates batching
/// for commands sent back to back, never understates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawlogSession {
    /// `<date>-<time>.<pid>.<n>.in`: what the client sent (after `USER`/`PASS`/`AUTH`).
    pub input: PathBuf,
    /// `<date>-<time>.<pid>.<n>.out`: what the server sent, including message bodies.
    pub output: PathBuf,
}

impl RawlogSession {
    /// The client's commands grouped by the read that delivered them.
    pub fn input_reads(&self) -> io::Result<Vec<Vec<String>>> {
        Ok(parse_rawlog(&fs::read(&self.input)?))
    }
}

/// Splits a Dovecot raw log into groups of lines with the same timestamp (see
/// [`RawlogSession`]); lines are returned without timestamp and CRLF, lossily as UTF-8.
pub fn parse_rawlog(log: &[u8]) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut last_time: Option<&[u8]> = None;
    for line in log.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (time, text) = match line.iter().position(|&b| b == b' ') {
            Some(sp) if line[..sp].iter().all(|b| b.is_ascii_digit() || *b == b'.') => {
                (&line[..sp], &line[sp + 1..])
            }
            // Not timestamped: a continuation of the previous read.
            _ => (last_time.unwrap_or_default(), line),
        };
        let text = String::from_utf8_lossy(text).into_owned();
        match groups.last_mut() {
            Some(g) if last_time == Some(time) => g.push(text),
            _ => groups.push(vec![text]),
        }
        last_time = Some(time);
    }
    groups
}

/// Runs `"$@"` (dovecot) and stops it when our end of the shell's stdin closes — on `stop`, on
/// drop, and also when the test process dies without running destructors (killed by a harness
/// timeout), so no Dovecot outlives its test. std cannot send SIGTERM or set a parent-death
/// signal without unsafe code; `kill(1)` in the shell can.
///
/// The pipe is kept on fd 3: a non-interactive shell gives background jobs /dev/null as stdin.
pub(crate) const WATCHDOG_SCRIPT: &str = r#"exec 3<&0
"$@" 3<&- &
pid=$!
(read -r _ <&3; kill -TERM "$pid" 2>/dev/null) &
watcher=$!
exec 3<&-
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
exit "$status""#;

enum LaunchError {
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

fn dovecot_binary() -> PathBuf {
    let sbin = Path::new("/usr/sbin/dovecot");
    if sbin.exists() {
        sbin.to_path_buf()
    } else {
        PathBuf::from("dovecot")
    }
}

/// Two distinct free ports on 127.0.0.1 (both bound at once so they differ).
fn free_port_pair() -> io::Result<(u16, u16)> {
    let a = TcpListener::bind((HOST, 0))?;
    let b = TcpListener::bind((HOST, 0))?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

fn greeting_ok(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let ok = BufReader::new(&stream).read_line(&mut line).is_ok() && line.starts_with("+OK");
    let _ = (&stream).write_all(b"QUIT\r\n");
    ok
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    fs::write(path, data).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Seconds since the Unix epoch, as file times count them.
fn unix_seconds() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// Sleeps until a little past the start of the next wall-clock second.
fn sleep_into_next_second() {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_millis();
    std::thread::sleep(Duration::from_millis(u64::from(1_020 - into)));
}

#[cfg(test)]
mod tests;
