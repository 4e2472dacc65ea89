//! A user-space TCP proxy that adds latency without limiting throughput.
//!
//! Every chunk read from one side is stamped with its read time and written to the other side no
//! earlier than `read time + one_way`. Chunks queue up while they wait, so a bulk transfer keeps
//! streaming at full speed with a fixed added latency — like a long link, unlike a proxy that
//! sleeps before each write (which would cap throughput at one buffer per delay). A 5 ms one-way
//! delay gives a 10 ms round trip. End-of-stream (FIN) is delayed like data.
//!
//! Memory is bounded: at most [`MAX_IN_FLIGHT`] bytes wait per direction per connection; a reader
//! that gets ahead waits (TCP back-pressure), which only matters above ~3 GB/s at 5 ms.
//!
//! The proxy listens on 127.0.0.1 with a port chosen by the OS. Dropping the [`DelayProxy`]
//! closes the listener and every relayed connection.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Bytes that may wait in one direction of one connection.
pub const MAX_IN_FLIGHT: usize = 16 << 20;
/// Size of each read.
const CHUNK: usize = 64 << 10;
/// Chunks that may wait in one direction (small reads would otherwise queue without bound).
const MAX_CHUNKS: usize = 4096;

/// A running delay proxy. See the [module documentation](self).
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    // Dropping the sender stops the accept loop, which drops (aborts) every connection task.
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayProxy {
    /// Starts a proxy to `target` on the current tokio runtime and returns once it listens.
    ///
    /// ```no_run
    /// # async fn f(target: std::net::SocketAddr) -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let proxy = webpop_testkit::delay_proxy::DelayProxy::start(target, Duration::from_millis(5)).await?;
    /// let stream = tokio::net::TcpStream::connect(proxy.addr()).await?; // 10 ms RTT to target
    /// # Ok(()) }
    /// ```
    pub async fn start(target: SocketAddr, one_way: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel();
        tokio::spawn(serve(listener, target, one_way, rx));
        Ok(Self {
            addr,
            shutdown: Some(tx),
            thread: None,
        })
    }

    /// Like [`Self::start`], but runs the proxy on its own thread and runtime — for synchronous
    /// callers such as a benchmark driving fetchmail.
    pub fn start_blocking(target: SocketAddr, one_way: Duration) -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = rt.block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("delay-proxy".into())
            .spawn(move || rt.block_on(serve(listener, target, one_way, rx)))?;
        Ok(Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Where clients connect: `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        drop(self.shutdown.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    one_way: Duration,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                if let Ok((inbound, _)) = accepted {
                    connections.spawn(relay(inbound, target, one_way));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn relay(inbound: TcpStream, target: SocketAddr, one_way: Duration) -> io::Result<()> {
    let outbound = TcpStream::connect(target).await?;
    // Small writes (POP3 commands) must not wait for Nagle on top of the configured delay.
    inbound.set_nodelay(true)?;
    outbound.set_nodelay(true)?;
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    tokio::try_join!(
        pipe(in_read, out_write, one_way),
        pipe(out_read, in_write, one_way)
    )?;
    Ok(())
}

/// A chunk read at some time, due at `due`; `None` is end-of-stream.
type Delayed = (Instant, Option<Vec<u8>>, Option<OwnedSemaphorePermit>);

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) -> io::Result<()> {
    let budget = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let (tx, mut rx) = mpsc::channel::<Delayed>(MAX_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = from.read(&mut buf).await?;
            let due = Instant::now() + delay;
            if n == 0 {
                let _ = tx.send((due, None, None)).await;
                return Ok::<_, io::Error>(());
            }
            let permit = budget
                .clone()
                .acquire_many_owned(n as u32)
                .await
                .map_err(io::Error::other)?;
            if tx
                .send((due, Some(buf[..n].to_vec()), Some(permit)))
                .await
                .is_err()
            {
                // The writer failed; its error is the one to report.
                return Ok(());
            }
        }
    };
    let writer = async move {
        while let Some((due, data, _permit)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            match data {
                Some(d) => to.write_all(&d).await?,
                None => {
                    to.shutdown().await?;
                    break;
                }
            }
        }
        Ok::<_, io::Error>(())
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn round_trip_takes_at_least_twice_the_delay() {
        let target = echo_server().await;
        let delay = Duration::from_millis(40);
        let proxy = DelayProxy::start(target, delay).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        for _ in 0..3 {
            let t = std::time::Instant::now();
            s.write_all(b"ping\r\n").await.unwrap();
            let mut buf = [0u8; 6];
            s.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping\r\n");
            let rtt = t.elapsed();
            assert!(rtt >= 2 * delay, "round trip {rtt:?} < 2 × {delay:?}");
        }
    }

    #[tokio::test]
    async fn bulk_data_arrives_intact_and_eof_propagates() {
        let target = echo_server().await;
        let proxy = DelayProxy::start(target, Duration::from_millis(5))
            .await
            .unwrap();
        let s = TcpStream::connect(proxy.addr()).await.unwrap();
        let (mut r, mut w) = s.into_split();
        let data: Vec<u8> = (0..20_000_000u32)
            .map(|i| (i * 7 + i / 256) as u8)
            .collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert!(got == data, "data corrupted through the proxy");
    }

    #[test]
    fn blocking_variant_and_drop_closes() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let target = rt.block_on(echo_server());
        let delay = Duration::from_millis(30);
        let proxy = DelayProxy::start_blocking(target, delay).unwrap();
        let mut s = std::net::TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let t = std::time::Instant::now();
        s.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert!(t.elapsed() >= 2 * delay);

        drop(proxy);
        // The relayed connection is closed. (Whether the port refuses connections is not
        // checked: another test may already have been given the same port.)
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    }
}
