//! Writing to the page without an extra copy, for pages connected over plain TCP.
//!
//! Frames from the relay to the page are not masked, so a binary frame is a header in front of
//! the mail server's bytes. Here the bytes read from the server are written to the page's
//! socket straight from the read buffer, headers and payloads together in one vectored write,
//! instead of being copied into tungstenite's write buffer first. (Behind the relay's own TLS
//! the bytes must be encrypted in user space anyway, so that mode uses tungstenite's sink.)
//!
//! tungstenite still reads and checks the page's frames. What it writes (close frames, pongs)
//! goes into a small queue that [`Client`] sends between batches, so frames never interleave.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::{Buf as _, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use webpop_shared::relay::MAX_FRAME;

use super::splice::{send_more, Pipe};

/// Most bytes of control frames queued before the page is considered abusive (a ping flood).
const CONTROL_LIMIT: usize = 64 * 1024;

/// Control frames tungstenite wrote, waiting to be sent.
#[derive(Debug, Default)]
struct Control {
    queued: Mutex<Vec<u8>>,
    ready: Notify,
}

/// The page's socket as the relay writes to it.
#[derive(Debug)]
pub(crate) struct Client {
    tcp: Arc<TcpStream>,
    control: Arc<Control>,
    /// Set while data frames are being written: if that write is abandoned halfway, nothing
    /// more may be written (a close frame would land inside a frame's payload).
    mid_frame: AtomicBool,
}

/// The byte stream tungstenite runs on: reads come from the page's socket (after any bytes
/// hyper read ahead); writes are queued for [`Client::send_control`].
#[derive(Debug)]
pub(crate) struct ClientIo {
    tcp: Arc<TcpStream>,
    read_ahead: Bytes,
    control: Arc<Control>,
}

/// Splits the page's socket into tungstenite's stream and the writing side.
pub(super) fn split(tcp: TcpStream, read_ahead: Bytes) -> (ClientIo, Client) {
    let tcp = Arc::new(tcp);
    let control = Arc::new(Control::default());
    let io = ClientIo {
        tcp: Arc::clone(&tcp),
        read_ahead,
        control: Arc::clone(&control),
    };
    (
        io,
        Client {
            tcp,
            control,
            mid_frame: AtomicBool::new(false),
        },
    )
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.read_ahead.is_empty() {
            let n = this.read_ahead.len().min(buf.remaining());
            buf.put_slice(&this.read_ahead[..n]);
            this.read_ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        loop {
            ready!(this.tcp.poll_read_ready(cx))?;
            match this.tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut queued = self
            .control
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if queued.len() + data.len() > CONTROL_LIMIT {
            return Poll::Ready(Err(io::Error::other("too many control frames queued")));
        }
        queued.extend_from_slice(data);
        self.control.ready.notify_one();
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A binary frame header for `len` payload bytes (server to client: never masked), as
/// tungstenite writes it.
fn header(len: usize) -> io::Result<([u8; 14], usize)> {
    let mut buf = [0u8; 14];
    let mut rest = &mut buf[..];
    FrameHeader {
        is_final: true,
        opcode: OpCode::Data(Data::Binary),
        ..FrameHeader::default()
    }
    .format(len as u64, &mut rest)
    .map_err(io::Error::other)?;
    let n = 14 - rest.len();
    Ok((buf, n))
}

impl Client {
    /// Completes when tungstenite has queued a control frame.
    pub(super) async fn control_queued(&self) {
        self.control.ready.notified().await;
    }

    /// Sends the control frames tungstenite queued, if any.
    pub(super) async fn send_control(&self) -> io::Result<()> {
        if self.mid_frame.load(Ordering::Relaxed) {
            return Err(io::Error::other("a data frame was cut short"));
        }
        let queued = std::mem::take(
            &mut *self
                .control
                .queued
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.write_all(&[&queued]).await
    }

    /// Sends `data` as binary frames of at most [`MAX_FRAME`], in one vectored write when the
    /// socket takes it.
    pub(super) async fn send_frames(&self, data: &[u8]) -> io::Result<()> {
        let headers = data
            .chunks(MAX_FRAME)
            .map(|c| header(c.len()))
            .collect::<io::Result<Vec<_>>>()?;
        let mut parts: Vec<&[u8]> = Vec::with_capacity(headers.len() * 2);
        for ((h, n), chunk) in headers.iter().zip(data.chunks(MAX_FRAME)) {
            parts.push(&h[..*n]);
            parts.push(chunk);
        }
        self.mid_frame.store(true, Ordering::Relaxed);
        self.write_all(&parts).await?;
        self.mid_frame.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Sends the `len` bytes waiting in `pipe` as binary frames of at most [`MAX_FRAME`]: each
    /// header written by the relay, each payload spliced from the pipe.
    pub(super) async fn send_piped(&self, pipe: &Pipe, len: usize) -> io::Result<()> {
        self.mid_frame.store(true, Ordering::Relaxed);
        let mut left = len;
        while left > 0 {
            let chunk = left.min(MAX_FRAME);
            let (h, n) = header(chunk)?;
            send_more(&self.tcp, &h[..n]).await?;
            left -= chunk;
            pipe.drain_to(&self.tcp, chunk, left > 0).await?;
        }
        self.mid_frame.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Writes `parts` in order, resuming after partial writes.
    async fn write_all(&self, parts: &[&[u8]]) -> io::Result<()> {
        let (mut part, mut offset) = (0, 0);
        while part < parts.len() {
            if parts[part].len() == offset {
                part += 1;
                offset = 0;
                continue;
            }
            let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&parts[part][offset..]))
                .chain(parts[part + 1..].iter().map(|p| IoSlice::new(p)))
                .collect();
            self.tcp.writable().await?;
            let mut written = match self.tcp.try_write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            while written > 0 {
                let left = parts[part].len() - offset;
                if written >= left {
                    written -= left;
                    part += 1;
                    offset = 0;
                } else {
                    offset += written;
                    written = 0;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::header;

    #[test]
    fn headers_use_the_shortest_length_form() {
        let h = |len| {
            let (buf, n) = header(len).unwrap();
            buf[..n].to_vec()
        };
        assert_eq!(h(5), [0x82, 5]);
        assert_eq!(h(126), [0x82, 126, 0, 126]);
        assert_eq!(h(65_535), [0x82, 126, 0xff, 0xff]);
        assert_eq!(h(65_536), [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
