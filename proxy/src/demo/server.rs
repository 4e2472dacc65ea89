//! The demo's POP3 server: TLS (tokio-rustls), one task per connection, commands answered in
//! order (so pipelining works). Each connection works on its own copy of the sample mail.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use webpop_shared::pop3::server_side::{dot_stuff, top};

use super::mailbox::Mailbox;
use super::{PASSWORD, USER};

/// The longest command line accepted.
const MAX_LINE: u64 = 1024;
/// A session with no command for this long is closed.
const IDLE: Duration = Duration::from_secs(120);

pub(super) async fn start(
    certified: rcgen::CertifiedKey,
    mailbox: Arc<Mailbox>,
) -> std::io::Result<SocketAddr> {
    let key = PrivateKeyDer::from_pem_slice(certified.key_pair.serialize_pem().as_bytes())
        .map_err(std::io::Error::other)?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(std::io::Error::other)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, mailbox) = (acceptor.clone(), Arc::clone(&mailbox));
            tokio::spawn(async move {
                let Ok(Ok(tls)) = tokio::time::timeout(IDLE, acceptor.accept(tcp)).await else {
                    return;
                };
                let _ = serve(tls, &mailbox).await;
            });
        }
    });
    Ok(addr)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    mailbox: &Mailbox,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    write
        .write_all(b"+OK webpop demo mailbox ready\r\n")
        .await?;
    let mut user_ok = false;
    let mut messages: Option<Vec<(String, Vec<u8>)>> = None;
    let mut deleted: Vec<bool> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match tokio::time::timeout(
            IDLE,
            (&mut read).take(MAX_LINE).read_until(b'\n', &mut line),
        )
        .await
        {
            Ok(Ok(n)) => n,
            _ => return Ok(()),
        };
        if n == 0 || !line.ends_with(b"\n") {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let mut words = text.split_ascii_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        let number = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
        let mut out = Vec::new();
        match (verb.as_str(), &messages) {
            ("CAPA", _) => out.extend_from_slice(
                b"+OK\r\nTOP\r\nUSER\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\nIMPLEMENTATION webpop-demo\r\n.\r\n",
            ),
            ("QUIT", _) => {
                // Deletions end with this connection's copy of the mailbox: the demo is shared
                // by every visitor, and none may delete mail for the others.
                write.write_all(b"+OK bye\r\n").await?;
                return write.shutdown().await;
            }
            ("NOOP", _) => out.extend_from_slice(b"+OK\r\n"),
            ("USER", None) => {
                user_ok = args.first() == Some(&USER);
                out.extend_from_slice(b"+OK\r\n");
            }
            ("PASS", None) => {
                if user_ok && args.first() == Some(&PASSWORD) {
                    let snapshot = mailbox.snapshot();
                    deleted = vec![false; snapshot.len()];
                    messages = Some(snapshot);
                    out.extend_from_slice(b"+OK maildrop ready\r\n");
                } else {
                    out.extend_from_slice(b"-ERR [AUTH] wrong user name or password\r\n");
                }
            }
            (_, None) => out.extend_from_slice(b"-ERR log in first\r\n"),
            (_, Some(all)) => {
                let live = |n: usize| {
                    n.checked_sub(1)
                        .filter(|i| *i < all.len() && !deleted[*i])
                        .map(|i| (i, &all[i]))
                };
                match verb.as_str() {
                    "STAT" => {
                        let (count, size) = (1..=all.len())
                            .filter_map(live)
                            .fold((0, 0), |(c, s), (_, m)| (c + 1, s + m.1.len()));
                        out.extend_from_slice(format!("+OK {count} {size}\r\n").as_bytes());
                    }
                    "LIST" | "UIDL" => {
                        let field = |i: usize, m: &(String, Vec<u8>)| {
                            if verb == "LIST" {
                                format!("{} {}", i + 1, m.1.len())
                            } else {
                                format!("{} {}", i + 1, m.0)
                            }
                        };
                        match (args.is_empty(), number(0).and_then(live)) {
                            (true, _) => {
                                out.extend_from_slice(b"+OK\r\n");
                                for (i, m) in (1..=all.len()).filter_map(live) {
                                    out.extend_from_slice(format!("{}\r\n", field(i, m)).as_bytes());
                                }
                                out.extend_from_slice(b".\r\n");
                            }
                            (false, Some((i, m))) => out
                                .extend_from_slice(format!("+OK {}\r\n", field(i, m)).as_bytes()),
                            (false, None) => out.extend_from_slice(b"-ERR no such message\r\n"),
                        }
                    }
                    "RETR" | "TOP" => match number(0).and_then(live) {
                        Some((_, m)) => {
                            let body = if verb == "TOP" {
                                match number(1) {
                                    Some(lines) => top(&m.1, lines),
                                    None => {
                                        write.write_all(b"-ERR TOP needs a line count\r\n").await?;
                                        continue;
                                    }
                                }
                            } else {
                                m.1.clone()
                            };
                            out.extend_from_slice(b"+OK\r\n");
                            dot_stuff(&mut out, &body);
                        }
                        None => out.extend_from_slice(b"-ERR no such message\r\n"),
                    },
                    "DELE" => match number(0).and_then(live) {
                        Some((i, _)) => {
                            deleted[i] = true;
                            out.extend_from_slice(b"+OK deleted\r\n");
                        }
                        None => out.extend_from_slice(b"-ERR no such message\r\n"),
                    },
                    "RSET" => {
                        deleted.iter_mut().for_each(|d| *d = false);
                        out.extend_from_slice(b"+OK\r\n");
                    }
                    _ => out.extend_from_slice(b"-ERR unknown command\r\n"),
                }
            }
        }
        write.write_all(&out).await?;
    }
}
