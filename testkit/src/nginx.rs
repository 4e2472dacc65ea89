//! A private nginx on 127.0.0.1 in front of relays: a load balancer with WebSocket upgrade that
//! sets `X-Forwarded-For`, as a self-hoster would run it.
//!
//! Runs Debian's `/usr/sbin/nginx` in the foreground as one process (`master_process off`) with
//! its configuration, logs and temp files in a temp dir, under the same `sh` watchdog as
//! [`crate::dovecot`], so it stops when dropped or when the test process dies.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::dovecot::WATCHDOG_SCRIPT;

/// How nginx spreads sessions over the relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Round robin.
    RoundRobin,
    /// By client address (consistent hashing): one client always reaches the same relay.
    ClientAddress,
}

/// A running nginx balancing over some upstream servers.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on a free port of 127.0.0.1, proxying every path (WebSocket upgrades
    /// included) to `upstreams`, with `X-Forwarded-For` set to `$proxy_add_x_forwarded_for`.
    pub fn start(upstreams: &[SocketAddr], balance: Balance) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut last_error = None;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match launch(dir.path(), addr, upstreams, balance) {
                Ok(child) => {
                    return Ok(Self {
                        child: Some(child),
                        addr,
                        dir,
                    })
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nginx did not start")))
    }

    /// Where nginx listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Closing the watchdog's stdin makes it stop nginx and exit.
            drop(child.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config(dir: &Path, addr: SocketAddr, upstreams: &[SocketAddr], balance: Balance) -> String {
    let d = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {u};\n"))
        .collect();
    let hash = match balance {
        Balance::RoundRobin => "",
        Balance::ClientAddress => "        hash $remote_addr consistent;\n",
    };
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' close;
    }}
    upstream relays {{
{hash}{servers}    }}
    server {{
        listen {addr};
        location / {{
            proxy_pass http://relays;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"#
    )
}

fn nginx_binary() -> PathBuf {
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.exists() {
        sbin.to_path_buf()
    } else {
        PathBuf::from("nginx")
    }
}

fn launch(
    dir: &Path,
    addr: SocketAddr,
    upstreams: &[SocketAddr],
    balance: Balance,
) -> Result<Child> {
    let conf = dir.join("nginx.conf");
    fs::write(&conf, config(dir, addr, upstreams, balance))?;
    let _ = fs::remove_file(dir.join("error.log"));
    let stderr = fs::File::create(dir.join("stderr.log"))?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("sh")
        .arg(nginx_binary())
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::piped())
        .stdout(stderr.try_clone()?)
        .stderr(stderr)
        .spawn()
        .context("spawning nginx (is the Debian package nginx installed?)")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            let log = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
                + &fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            bail!("nginx exited ({status}): {log}");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(child.stdin.take());
    let _ = child.kill();
    bail!("nginx did not listen on {addr} within 20 s")
}
