//! The demo's POP3 server: TLS (tokio-rustls), one task per connection, commands answered in
//! order (so pipelining works) by the shared [`ServerSession`]. Each connection works on its own
//! copy of the sample mail.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use webpop_shared::pop3::server_side::{
    ServerOptions, ServerSession, Step, BYE, LOGGED_IN, WRONG_PASSWORD,
};

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

/// The demo account, and CAPA naming this server.
fn options() -> ServerOptions {
    let mut options = ServerOptions::new(USER, PASSWORD);
    options
        .capabilities
        .push("IMPLEMENTATION webpop-demo".to_owned());
    options
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
    let mut session = ServerSession::new(options());
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
        match session.handle(&line) {
            Step::Reply { reply, .. } => write.write_all(&reply).await?,
            Step::Pass { accepted: true } => {
                session.open(mailbox.snapshot());
                write.write_all(LOGGED_IN).await?;
            }
            Step::Pass { accepted: false } => write.write_all(WRONG_PASSWORD).await?,
            // Deletions end with this connection's copy of the mailbox: the demo is shared by
            // every visitor, and none may delete mail for the others.
            Step::Quit { .. } => {
                write.write_all(BYE).await?;
                return write.shutdown().await;
            }
            _ => write.write_all(b"-ERR unknown command\r\n").await?,
        }
    }
}
