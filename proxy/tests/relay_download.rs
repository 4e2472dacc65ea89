//! A bulk download through the relay: every byte arrives in order in frames of at most 64 KiB,
//! on Linux without a copy in the relay (splice), and a small reply after it still arrives. The
//! session lets go of its pipe once the download ends. (One test in its own binary, so the
//! count of open file descriptors is this test's alone.)

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use webpop_shared::relay::MAX_FRAME;

/// Bytes the server streams before it waits for the client.
const DOWNLOAD: u64 = 64 * 1024 * 1024;
const REPLY: &[u8] = b"+OK bye\r\n";

fn byte_at(i: u64) -> u8 {
    (i % 251) as u8
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_download_arrives_whole_in_frames_without_copies_and_the_pipe_is_released() {
    // A server that streams DOWNLOAD numbered bytes, then answers one byte with REPLY.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        // The session is open (both sockets exist) before the download starts.
        let mut go = [0u8; 1];
        tcp.read_exact(&mut go).await.unwrap();
        let mut n = 0;
        while n < DOWNLOAD {
            let chunk: Vec<u8> = (n..(n + 256 * 1024).min(DOWNLOAD)).map(byte_at).collect();
            tcp.write_all(&chunk).await.unwrap();
            n += chunk.len() as u64;
        }
        tcp.read_exact(&mut go).await.unwrap();
        tcp.write_all(REPLY).await.unwrap();
        let _ = tcp.read(&mut go).await;
    });
    let relay = LocalRelay::with_config(loopback_config(&[source.port()]))
        .await
        .unwrap();
    let mut ws = relay.connect(source).await.unwrap();
    ws.send(Message::binary(b"g".to_vec())).await.unwrap();

    let mut seen: u64 = 0;
    let mut frames = 0;
    let mut fds_during = 0;
    while seen < DOWNLOAD {
        match ws.next().await {
            Some(Ok(Message::Binary(data))) => {
                assert!(data.len() <= MAX_FRAME, "a frame of {} bytes", data.len());
                assert!(seen + data.len() as u64 <= DOWNLOAD, "more than was sent");
                if let Some(i) = (0..data.len()).find(|&i| data[i] != byte_at(seen + i as u64)) {
                    panic!("byte {} differs", seen + i as u64);
                }
                seen += data.len() as u64;
                frames += 1;
                fds_during = fds_during.max(open_fds());
            }
            other => panic!("expected data, got {other:?}"),
        }
    }
    assert!(frames >= DOWNLOAD as usize / MAX_FRAME);

    // A small exchange after the download.
    ws.send(Message::binary(b"q".to_vec())).await.unwrap();
    match ws.next().await {
        Some(Ok(Message::Binary(data))) => assert_eq!(&data[..], REPLY),
        other => panic!("expected the reply, got {other:?}"),
    }

    if cfg!(target_os = "linux") {
        // How much goes through the pipe depends on how fast the server writes: on a loaded
        // machine its reads come short, and each short read ends a stream (21 of 64 MiB went
        // through it in one run under load). The pipe must have been used, and released below.
        let spliced = metric(&relay, "webpop_relay_bytes_spliced_total");
        assert!(
            spliced > 0,
            "none of {DOWNLOAD} bytes went through the pipe"
        );
        // The short reply ended the stream: the pipe's two descriptors are closed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while open_fds() + 2 > fds_during {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} descriptors open after the download, {fds_during} during it",
                open_fds()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(
        metric(&relay, "webpop_relay_bytes_to_client_total"),
        DOWNLOAD + REPLY.len() as u64
    );
    assert_eq!(relay.relay().metrics().buffered_bytes(), 0);
    ws.close(None).await.unwrap();
}
