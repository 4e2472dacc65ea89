//! Access control: malformed upgrade requests, the Origin allowlist, and the access token.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use webpop_proxy::relay::Origins;

use webpop_proxy::host::AllowedHosts;
use webpop_proxy::{RelayConfig, ServeOptions};
use webpop_shared::relay::{CloseReason, RelayRequest, Target};
use webpop_shared::secret::Secret;

/// Sends a raw HTTP request and returns the status line.
async fn status_line(addr: std::net::SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    let read_line = async {
        while !response.windows(2).any(|w| w == b"\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read_line).await;
    let text = String::from_utf8_lossy(&response);
    text.lines().next().unwrap_or("").to_owned()
}

/// A relay with a token that admits one public host name, `mail.example.com`.
async fn guarded_relay(echo_port: u16) -> LocalRelay {
    LocalRelay::with_options(
        RelayConfig {
            token: Some(Secret::token("t").unwrap()),
            ..loopback_config(&[echo_port])
        },
        ServeOptions {
            allowed_hosts: AllowedHosts::default().with_names(["mail.example.com".to_owned()]),
            ..ServeOptions::default()
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn malformed_upgrade_requests_get_http_errors_and_no_session() {
    let relay = LocalRelay::with_config(loopback_config(&[995]))
        .await
        .unwrap();
    let addr = relay.addr();
    let path = "/relay?host=127.0.0.1&port=995";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases = [
        (
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
            "426",
        ),
        (
            format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n{key}Content-Length: 0\r\n\r\n"),
            "405",
        ),
        (
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n{key}\r\n"),
            "426",
        ),
        (
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"),
            "400",
        ),
        (
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not-base64\r\n\r\n"),
            "400",
        ),
        (
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nSec-WebSocket-Version: 13\r\n{key}\r\n"),
            "426",
        ),
        ("HELLO\r\n\r\n".to_owned(), "400"),
        ("GET /relay HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken header line\r\n\r\n".to_owned(), "400"),
    ];
    for (request, status) in cases {
        let line = status_line(addr, &request).await;
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status} ")),
            "{request:?} got {line:?}"
        );
    }
    assert_eq!(relay.relay().metrics().open_sessions(), 0);
}

#[tokio::test]
async fn websockets_from_a_foreign_origin_are_refused_and_the_own_origin_is_admitted() {
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(RelayConfig {
        origins: Origins::default().allow(["https://app.example.com".to_owned()]),
        ..loopback_config(&[echo.port()])
    })
    .await
    .unwrap();
    let url = relay.url("127.0.0.1", echo.port());
    for origin in [
        "https://evil.example",
        "http://127.0.0.1:1",
        "null",
        "https://app.example.com.evil.example",
    ] {
        match ws_connect(&url, Some(origin), None).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin}");
            }
            Err(e) => panic!("{origin}: {e}"),
            Ok(_) => panic!("{origin} was admitted"),
        }
    }
    let own = format!("http://{}", relay.addr());
    for origin in [own.as_str(), "https://app.example.com"] {
        let mut ws = ws_connect(&url, Some(origin), None).await.unwrap();
        assert_eq!(round_trip(&mut ws, b"ok").await, b"ok", "{origin}");
    }
    let metrics = relay.relay().metrics().render();
    assert!(
        metrics.contains("webpop_relay_refused_total{reason=\"forbidden_origin\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthorized_and_the_right_one_admitted() {
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(RelayConfig {
        token: Some(Secret::token("open sesame").unwrap()),
        ..loopback_config(&[echo.port()])
    })
    .await
    .unwrap();
    let target = Target::new("127.0.0.1", echo.port()).unwrap();
    let base = format!("ws://{}/relay?", relay.addr());
    for token in [
        None,
        Some(""),
        Some("open sesam"),
        Some("open sesame!"),
        Some("OPEN SESAME"),
    ] {
        let mut request = RelayRequest::new(target.clone());
        if let Some(token) = token {
            request = request.with_token(Secret::token(token).unwrap());
        }
        let mut ws = ws_connect(&format!("{base}{}", request.to_query()), None, None)
            .await
            .unwrap();
        assert_eq!(
            close_code(&mut ws).await,
            CloseReason::Unauthorized.code(),
            "{token:?}"
        );
    }
    let request = RelayRequest::new(target).with_token(Secret::token("open sesame").unwrap());
    let mut ws = ws_connect(&format!("{base}{}", request.to_query()), None, None)
        .await
        .unwrap();
    assert_eq!(round_trip(&mut ws, b"in").await, b"in");
}

/// A WebSocket upgrade of `path` as a page served from `host` sends it (`Host` and `Origin`).
fn upgrade_request(path: &str, host: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

#[tokio::test]
async fn a_relay_reaching_private_addresses_refuses_rebound_host_names_unless_it_has_a_token() {
    let echo = echo_server().await;
    // Even a host name the operator made public is refused here: no token, private targets.
    let open = LocalRelay::with_options(
        loopback_config(&[echo.port()]),
        ServeOptions {
            allowed_hosts: AllowedHosts::default().with_names(["relay.example".to_owned()]),
            ..ServeOptions::default()
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let path = format!("/relay?host=127.0.0.1&port={}", echo.port());
    let upgrade = |host: &str| upgrade_request(&path, host);
    // A page on evil.example, its name rebound to the relay's address: not even answered.
    let line = status_line(open.addr(), &upgrade("evil.example:8080")).await;
    assert!(line.starts_with("HTTP/1.1 421 "), "{line}");
    let line = status_line(open.addr(), &upgrade("relay.example:8080")).await;
    assert!(line.starts_with("HTTP/1.1 403 "), "{line}");
    let line = status_line(open.addr(), &upgrade(&open.addr().to_string())).await;
    assert!(line.starts_with("HTTP/1.1 101 "), "{line}");

    // With a token, the token is the protection and any public host name may be used.
    let guarded = guarded_relay(echo.port()).await;
    let line = status_line(guarded.addr(), &upgrade("mail.example.com")).await;
    assert!(line.starts_with("HTTP/1.1 101 "), "{line}");
}

/// Nothing checked `Host`: a page on evil.example whose name rebinds to the relay's address
/// sends a matching `Origin` and `Host`, passed the Origin check, and could use the relay (and
/// read the app's files and metrics) as if it were the relay's own page, token or not.
#[tokio::test]
async fn a_page_whose_name_was_rebound_to_the_relay_gets_no_session_and_no_files() {
    let echo = echo_server().await;
    let relay = guarded_relay(echo.port()).await;
    let path = format!("/relay?host=127.0.0.1&port={}&token=t", echo.port());
    let upgrade = |host: &str| upgrade_request(&path, host);
    let get = |host: &str, path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    for host in [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
    ] {
        let line = status_line(relay.addr(), &upgrade(host)).await;
        assert!(line.starts_with("HTTP/1.1 421 "), "{host}: {line}");
        for page in ["/", "/index.html", "/healthz", "/metrics", "/demo.json"] {
            let line = status_line(relay.addr(), &get(host, page)).await;
            assert!(line.starts_with("HTTP/1.1 421 "), "{host}{page}: {line}");
        }
    }
    assert_eq!(relay.relay().metrics().open_sessions(), 0);
    // The relay's own names still work.
    for host in [
        relay.addr().to_string(),
        format!("localhost:{}", relay.addr().port()),
        "mail.example.com".to_owned(),
    ] {
        let line = status_line(relay.addr(), &upgrade(&host)).await;
        assert!(line.starts_with("HTTP/1.1 101 "), "{host}: {line}");
        let line = status_line(relay.addr(), &get(&host, "/")).await;
        assert!(line.starts_with("HTTP/1.1 200 "), "{host}: {line}");
    }
}
