//! The `webpop-proxy` binary itself: `--help` documents every option, and its logs, even at
//! `RUST_LOG=trace`, record each session's target, bytes, duration and close reason but never
//! payload bytes or the access token. SIGTERM stops it cleanly.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use webpop_shared::relay::{token_protocol, CloseReason, PROTOCOL};
use webpop_shared::secret::Secret;

/// The relay binary on 127.0.0.1 logging at `trace`, serving `web_root`, that may reach
/// `port` on loopback.
fn traced_relay(port: u16, web_root: &std::path::Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(["--listen", "127.0.0.1:0", "--allow-private-targets"])
        .args(["--allow-port", &port.to_string()])
        .arg("--web-root")
        .arg(web_root)
        .env("RUST_LOG", "trace");
    command
}

#[test]
fn help_documents_every_option() {
    let out = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--web-root",
        "--tls-cert",
        "--tls-key",
        "--allow-port",
        "--allow-host",
        "--deny-host",
        "--allow-private-targets",
        "--allow-origin",
        "--token",
        "--token-file",
        "--trusted-proxy",
        "--connect-timeout",
        "--idle-timeout",
        "--max-lifetime",
        "--max-connections",
        "--max-per-ip",
        "--max-http-connections",
        "--max-http-per-ip",
        "--header-timeout",
        "--drain-timeout",
        "--threads",
        "--demo",
        "--public-host",
        "--nat64-prefix",
        "--sessions-per-minute",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(help.contains("[env: WEBPOP_LISTEN="));
}

#[tokio::test]
async fn logs_record_sessions_without_payload_or_token_and_sigterm_stops_it() {
    let echo = echo_server().await;
    let web_root = tempfile::tempdir().unwrap();
    let mut command = traced_relay(echo.port(), web_root.path());
    command.env("WEBPOP_TOKEN", "tok-9f8e7d");
    let relay = RelayBinary::spawn(command).await;
    let addr = relay.addr;

    let marker = b"PAYLOAD-MARKER-5a7c";
    let url = format!(
        "ws://{addr}/relay?host=127.0.0.1&port={}&token=tok-9f8e7d",
        echo.port()
    );
    let mut ws = ws_connect(&url, None, None).await.unwrap();
    assert_eq!(round_trip(&mut ws, marker).await, marker);
    ws.close(None).await.unwrap();
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (exit, log) = relay.sigterm().await;
    assert!(exit.success(), "{exit}");

    let ended = log
        .lines()
        .find(|l| l.contains("relay session ended"))
        .unwrap_or_else(|| panic!("no session line in\n{log}"));
    for field in [
        format!("target=127.0.0.1:{}", echo.port()),
        format!("to_server={}", marker.len()),
        format!("to_client={}", marker.len()),
        "duration_ms=".to_owned(),
        "reason=\"client_closed\"".to_owned(),
    ] {
        assert!(ended.contains(&field), "no {field} in {ended}");
    }
    let hex = hex::encode(marker);
    assert!(!log.contains("PAYLOAD-MARKER"), "payload in the log");
    assert!(
        !log.to_lowercase().contains(&hex),
        "payload (hex) in the log"
    );
    assert!(!log.contains("tok-9f8e7d"), "token in the log");
    assert!(log.contains("SIGTERM"), "{log}");
}

/// The web app never sent the token, so a relay started with `--token-file` refused it; and a
/// token in the query string lands in reverse proxies' access logs. The page now offers it as a
/// WebSocket subprotocol, next to the plain one the relay answers with.
#[tokio::test]
async fn a_token_file_relay_admits_the_token_as_a_subprotocol_and_never_logs_it() {
    let echo = echo_server().await;
    let web_root = tempfile::tempdir().unwrap();
    let token = "s3cret/tok+en=";
    let token_file = web_root.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let mut command = traced_relay(echo.port(), web_root.path());
    command.arg("--token-file").arg(&token_file);
    let relay = RelayBinary::spawn(command).await;
    let addr = relay.addr;
    let url = format!("ws://{addr}/relay?host=127.0.0.1&port={}", echo.port());
    let right = token_protocol(&Secret::token(token).unwrap());
    let wrong = token_protocol(&Secret::token("s3cret/tok+en").unwrap());
    for offered in [vec![PROTOCOL], vec![PROTOCOL, wrong.as_str()]] {
        let (mut ws, picked) = ws_connect_protocols(&url, &offered).await.unwrap();
        assert_eq!(picked.as_deref(), Some(PROTOCOL));
        assert_eq!(
            close_code(&mut ws).await,
            CloseReason::Unauthorized.code(),
            "{offered:?}"
        );
    }
    let (mut ws, picked) = ws_connect_protocols(&url, &[PROTOCOL, &right])
        .await
        .unwrap();
    assert_eq!(
        picked.as_deref(),
        Some(PROTOCOL),
        "never the token's protocol"
    );
    assert_eq!(round_trip(&mut ws, b"through").await, b"through");
    ws.close(None).await.unwrap();
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (_, log) = relay.sigterm().await;
    assert!(log.contains("relay session ended"), "{log}");
    assert!(!log.contains("s3cret"), "token in the log");
    let encoded = right.trim_start_matches("webpop.token.");
    assert!(!log.contains(encoded), "encoded token in the log");
}
