//! The web app's files, health and metrics over plain HTTP/1.1, and HTTPS when given a
//! certificate.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use webpop_proxy::RelayConfig;

/// Sends one request with `Connection: close` and extra header lines, returns the response.
async fn request(addr: std::net::SocketAddr, path: &str, headers: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    response
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    String::from_utf8(request(addr, path, "").await).unwrap()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response
        .split("\r\n\r\n")
        .next()?
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        })
        .map(|(_, v)| v.trim())
}

#[tokio::test]
async fn serves_the_web_root_with_types_caching_and_compression_and_shuts_down() {
    let mut relay = LocalRelay::with_config(RelayConfig::default())
        .await
        .unwrap();
    let root = relay.web_root();
    std::fs::write(
        root.join("app-0123456789abcdef_bg.wasm"),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();
    std::fs::write(root.join("app-0123456789abcdef.js"), "x".repeat(4000)).unwrap();
    let addr = relay.addr();

    let index = get(addr, "/").await;
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
    assert!(index.ends_with("<title>webpop</title>"), "{index}");
    assert_eq!(header(&index, "content-type"), Some("text/html"));
    assert_eq!(header(&index, "cache-control"), Some("no-cache"));
    assert_eq!(header(&index, "x-content-type-options"), Some("nosniff"));

    let wasm = get(addr, "/app-0123456789abcdef_bg.wasm").await;
    assert_eq!(header(&wasm, "content-type"), Some("application/wasm"));
    assert_eq!(
        header(&wasm, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    let js = request(
        addr,
        "/app-0123456789abcdef.js",
        "Accept-Encoding: gzip\r\n",
    )
    .await;
    let js_head = String::from_utf8_lossy(&js);
    assert_eq!(
        header(&js_head, "content-encoding"),
        Some("gzip"),
        "{js_head}"
    );
    assert!(
        js.len() < 1000,
        "4000 bytes were not compressed: {}",
        js.len()
    );

    let missing = get(addr, "/no-such-file.js").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");

    let health = get(addr, "/healthz").await;
    assert!(
        health.starts_with("HTTP/1.1 200 OK\r\n") && health.ends_with("ok\n"),
        "{health}"
    );

    let metrics = get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    for family in [
        "webpop_relay_connections_open 0",
        "webpop_relay_connections_total 0",
        "webpop_relay_bytes_to_server_total 0",
        "webpop_relay_bytes_to_client_total 0",
        "webpop_relay_refused_total{reason=\"forbidden_target\"} 0",
        "webpop_relay_connect_seconds_count 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == family),
            "no {family} in\n{metrics}"
        );
    }

    tokio::time::timeout(Duration::from_secs(10), relay.stop().unwrap())
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();
}

/// The offline shell's fixed-name files: the service worker is revalidated on every load (never
/// the year-long caching of hashed names, or a new version would not reach browsers), and the
/// web app manifest and icons get their registered types.
#[tokio::test]
async fn serves_the_service_worker_uncached_and_the_manifest_with_its_type() {
    let mut relay = LocalRelay::with_config(RelayConfig::default())
        .await
        .unwrap();
    let root = relay.web_root();
    std::fs::write(
        root.join("sw.js"),
        "self.addEventListener('fetch', () => {});",
    )
    .unwrap();
    std::fs::write(root.join("manifest.webmanifest"), r#"{"name":"webpop"}"#).unwrap();
    std::fs::write(
        root.join("icon.svg"),
        "<svg xmlns='http://www.w3.org/2000/svg'/>",
    )
    .unwrap();
    let addr = relay.addr();

    let sw = get(addr, "/sw.js").await;
    assert!(sw.starts_with("HTTP/1.1 200 OK\r\n"), "{sw}");
    assert_eq!(header(&sw, "content-type"), Some("text/javascript"));
    assert_eq!(header(&sw, "cache-control"), Some("no-cache"));

    let manifest = get(addr, "/manifest.webmanifest").await;
    assert_eq!(
        header(&manifest, "content-type"),
        Some("application/manifest+json")
    );
    assert_eq!(header(&manifest, "cache-control"), Some("no-cache"));

    let icon = get(addr, "/icon.svg").await;
    assert_eq!(header(&icon, "content-type"), Some("image/svg+xml"));

    tokio::time::timeout(Duration::from_secs(10), relay.stop().unwrap())
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();
}
