//! Moving bytes between the page's WebSocket and the mail server's TCP connection.
//!
//! Each direction holds at most one read in user space (towards the page up to
//! [`READ_SIZE`], sent as 64 KiB frames in one write; towards the server one frame): the next
//! read happens only after the previous one was fully written, so a slow reader on either side
//! stalls the other side's TCP window instead of growing the relay's memory. Buffers are
//! allocated when data arrives and dropped after a short read, so an idle session holds none.
//! While a download streams to a plain-TCP page, its reads go through a kernel pipe instead
//! (see [`super::splice`]), which holds at most the same [`READ_SIZE`].
//!
//! A page that asked for flow control ([`webpop_shared::relay::flow`]) also bounds what is in
//! flight towards it: the relay reads the server only as far as the page's credit reaches, and
//! waits for its acknowledgements when there is none left, so a page that stops consuming (a
//! browser's WebSocket takes every frame whether or not the app wants it) stops the server's
//! TCP stream too; a session waiting for credit holds no buffer. Acknowledgements are read
//! with the page's other frames, so a session whose page floods the server with bytes the
//! server does not read cannot take acknowledgements either, and ends by the idle timeout.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use bytes::{BufMut as _, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Duration, Instant};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use webpop_shared::relay::flow::{Ack, Credit};
use webpop_shared::relay::{CloseReason, MAX_FRAME};

use super::direct::Client;
use super::session::Ws;
use super::splice::Pipe;
use super::Relay;
use super::READ_SIZE;

/// How long the end of a session may wait for a page to take what is queued for it.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// What a session reserves for its next read after reading only a little (a POP3 response, a
/// short TLS record): sessions that exchange small messages never ask the allocator for
/// [`READ_SIZE`] per read. A read that fills half of it is followed by `READ_SIZE` ones.
const SMALL_READ: usize = 16 * 1024;

/// Bytes counted in the `buffered` gauge while held; uncounted when dropped, also when a
/// direction is abandoned halfway through a write.
struct Held<'a> {
    metrics: &'a crate::metrics::Metrics,
    bytes: isize,
}

impl<'a> Held<'a> {
    fn new(metrics: &'a crate::metrics::Metrics, bytes: usize) -> Self {
        let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
        metrics.buffer(bytes);
        Self { metrics, bytes }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.metrics.buffer(-self.bytes);
    }
}

/// How a session ended and what it carried.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Why the relay ended it; `None` when the client closed or went away.
    pub(super) reason: Option<CloseReason>,
    pub(super) to_server: u64,
    pub(super) to_client: u64,
}

/// Relays until one side ends, a timeout fires, or the relay stops sessions. With `credit`
/// (the page asked for flow control), sends the page only what the credit allows.
pub(super) async fn run(
    relay: &Relay,
    ws: &mut Ws,
    direct: Option<&Client>,
    upstream: TcpStream,
    credit: Option<Credit>,
) -> Outcome {
    let config = &relay.config;
    let started = Instant::now();
    // Milliseconds after `started` of the last byte either way.
    let last_activity = AtomicU64::new(0);
    let touch = || {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_activity.store(ms, Relaxed);
    };
    let (to_server, to_client) = (AtomicU64::new(0), AtomicU64::new(0));
    let (server_read, mut server_write) = upstream.into_split();
    let (mut sink, mut stream) = ws.split();
    // Flow control: the page's credit (locked only between awaits), and a wake-up for the
    // reading side when an acknowledgement adds to it.
    let credit = credit.map(Mutex::new);
    let acked = Notify::new();
    let available = || {
        credit.as_ref().map_or(usize::MAX, |c| {
            c.lock().unwrap_or_else(PoisonError::into_inner).available()
        })
    };
    let record_sent = |n: usize| {
        if let Some(c) = &credit {
            c.lock().unwrap_or_else(PoisonError::into_inner).sent(n);
        }
    };

    let reason = {
        let down = async {
            // Reused while data keeps coming (a bulk download allocates once); dropped after a
            // short read, so a quiet session holds no buffer.
            let mut buf = BytesMut::new();
            // What to reserve for the next read.
            let mut want = SMALL_READ;
            // Whether the last read filled at least half of READ_SIZE: more is on its way.
            let mut streaming = false;
            // The pipe a streaming session splices through (plain-TCP pages on Linux), and
            // whether making one is worth trying.
            let mut pipe: Option<Pipe> = None;
            let mut may_splice = true;
            loop {
                // What the page may be sent now: with no credit left, wait for its
                // acknowledgement instead of the server (whose TCP window then fills).
                let allowed = available();
                if allowed == 0 {
                    // The page may take its time: wait without a buffer, like a quiet session.
                    buf = BytesMut::new();
                }
                let ready = match direct {
                    // Control frames tungstenite queued go out between batches.
                    Some(direct) => tokio::select! {
                        biased;
                        () = direct.control_queued() => {
                            if direct.send_control().await.is_err() {
                                return None;
                            }
                            continue;
                        }
                        () = acked.notified(), if allowed == 0 => continue,
                        ready = server_read.readable(), if allowed > 0 => ready,
                    },
                    None => tokio::select! {
                        () = acked.notified(), if allowed == 0 => continue,
                        ready = server_read.readable(), if allowed > 0 => ready,
                    },
                };
                if ready.is_err() {
                    return Some(CloseReason::UpstreamError);
                }
                // Streaming to a plain-TCP page: through the pipe, without copying.
                if let (Some(direct), Some(through)) = (direct, &pipe) {
                    let limit = READ_SIZE.min(allowed);
                    let n = match through.try_fill(server_read.as_ref(), limit) {
                        Ok(0) => return Some(CloseReason::Done),
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(_) => return Some(CloseReason::UpstreamError),
                    };
                    touch();
                    record_sent(n);
                    let held = Held::new(&relay.metrics, n);
                    let piped = direct.send_piped(through, n).await.is_ok();
                    drop(held);
                    if !piped {
                        return None;
                    }
                    // A small read (a POP3 reply, the end of a download) ends the stream: the
                    // session lets go of its pipe. Reads that merely found less than a full
                    // pipe (the relay outpacing the server), or all the page's credit allowed,
                    // keep it.
                    if n < SMALL_READ / 2 && n < limit {
                        pipe = None;
                        streaming = false;
                        want = SMALL_READ;
                    }
                    relay.metrics.to_client(n);
                    relay.metrics.spliced(n);
                    to_client.fetch_add(n as u64, Relaxed);
                    continue;
                }
                buf.reserve(want);
                // Whether the page's credit, rather than the usual read size, bounds this read.
                let cut = allowed < want;
                let limit = want.min(allowed);
                let n = match server_read.try_read_buf(&mut (&mut buf).limit(limit)) {
                    Ok(0) => return Some(CloseReason::Done),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        // Readiness left over from the last read, and nothing more came: unless
                        // data is streaming, the session waits without a buffer. (Keeping the
                        // one just reserved made every idle session that had ever received a
                        // byte hold READ_SIZE of heap.)
                        if !streaming {
                            buf = BytesMut::new();
                        }
                        continue;
                    }
                    Err(_) => return Some(CloseReason::UpstreamError),
                };
                touch();
                record_sent(n);
                let held = Held::new(&relay.metrics, n);
                // One read becomes frames of at most 64 KiB, written to the socket together.
                let sent = match direct {
                    Some(direct) => {
                        let sent = direct.send_frames(&buf).await.is_ok();
                        buf.clear();
                        sent
                    }
                    None => {
                        let mut sent = Ok(());
                        while !buf.is_empty() && sent.is_ok() {
                            let frame = buf.split_to(buf.len().min(MAX_FRAME)).freeze();
                            sent = sink.feed(Message::Binary(frame)).await;
                        }
                        if sent.is_ok() {
                            sent = sink.flush().await;
                        }
                        sent.is_ok()
                    }
                };
                drop(held);
                if !sent {
                    return None;
                }
                // A read that took all the credit allowed is a stream held back by the page.
                streaming = n >= READ_SIZE / 2 || (cut && n == limit);
                if !streaming {
                    buf = BytesMut::new();
                } else if direct.is_some() && may_splice {
                    // Data is streaming: the next reads go through a pipe (if one can be made).
                    match Pipe::new(READ_SIZE) {
                        Ok(made) => {
                            pipe = Some(made);
                            buf = BytesMut::new();
                        }
                        Err(e) => {
                            may_splice = false;
                            tracing::debug!(error = %e, "no pipe; this session copies");
                        }
                    }
                }
                want = if n >= SMALL_READ / 2 || cut {
                    READ_SIZE
                } else {
                    SMALL_READ
                };
                relay.metrics.to_client(n);
                to_client.fetch_add(n as u64, Relaxed);
            }
        };
        let up = async {
            while let Some(message) = stream.next().await {
                let data = match message {
                    Ok(Message::Binary(data)) => data,
                    // With flow control, text frames are the page's acknowledgements.
                    Ok(Message::Text(text)) => {
                        let Some(credit) = &credit else {
                            return Some(CloseReason::TextFrame);
                        };
                        let taken = Ack::parse(&text).and_then(|ack| {
                            credit
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .acked(ack)
                        });
                        if let Err(e) = taken {
                            tracing::debug!(error = %e, "flow control broken");
                            return Some(CloseReason::FlowViolation);
                        }
                        touch();
                        acked.notify_one();
                        continue;
                    }
                    Ok(Message::Close(_)) => return None,
                    Ok(_) => continue,
                    Err(WsError::Capacity(_)) => return Some(CloseReason::FrameTooLarge),
                    Err(_) => return None,
                };
                touch();
                let held = Held::new(&relay.metrics, data.len());
                let written = server_write.write_all(&data).await;
                drop(held);
                if written.is_err() {
                    return Some(CloseReason::UpstreamError);
                }
                relay.metrics.to_server(data.len());
                to_server.fetch_add(data.len() as u64, Relaxed);
            }
            None
        };
        let idle = async {
            loop {
                let last = Duration::from_millis(last_activity.load(Relaxed));
                let deadline = started + last + config.idle_timeout;
                if Instant::now() >= deadline {
                    return;
                }
                sleep_until(deadline).await;
            }
        };
        tokio::select! {
            reason = down => reason,
            reason = up => reason,
            () = idle => Some(CloseReason::IdleTimeout),
            () = sleep_until(started + config.max_lifetime) => Some(CloseReason::LifetimeReached),
            () = relay.stop_sessions.cancelled() => Some(CloseReason::ShuttingDown),
        }
    };
    let _ = server_write.shutdown().await;
    // A client's close frame was answered by tungstenite; make sure the answer goes out.
    // A close reply tungstenite queued goes out, unless the page stopped reading.
    let _ = tokio::time::timeout(FLUSH_WAIT, async {
        let _ = sink.flush().await;
        if let Some(direct) = direct {
            let _ = direct.send_control().await;
        }
    })
    .await;
    drop((sink, stream));
    Outcome {
        reason,
        to_server: to_server.into_inner(),
        to_client: to_client.into_inner(),
    }
}
