//! Serving HTTPS and WSS directly: given a certificate and key, the relay serves the web app
//! and relay sessions over TLS (tokio-rustls), and refuses a key that does not match.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use webpop_proxy::tls::{self, TlsError};
use webpop_proxy::ServeOptions;

#[tokio::test]
async fn serves_https_and_wss_with_a_given_certificate() {
    let files = tls_certificate();
    let echo = echo_server().await;
    let options = ServeOptions {
        tls: Some(tls::acceptor(&files.cert, &files.key).unwrap()),
        ..ServeOptions::default()
    };
    let relay = LocalRelay::with_options(
        loopback_config(&[echo.port()]),
        options,
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let connector = tls_connector(&files.der);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

    // HTTPS: the web app.
    let tcp = TcpStream::connect(relay.addr()).await.unwrap();
    let mut https = connector.connect(name.clone(), tcp).await.unwrap();
    https
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    https.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("<title>webpop</title>"));

    // WSS: a relay session.
    let tcp = TcpStream::connect(relay.addr()).await.unwrap();
    let wss = connector.connect(name, tcp).await.unwrap();
    let url = format!(
        "wss://localhost:{}/relay?host=127.0.0.1&port={}",
        relay.addr().port(),
        echo.port()
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url.into_client_request().unwrap(), wss)
        .await
        .unwrap();
    use futures_util::{SinkExt as _, StreamExt as _};
    ws.send(tokio_tungstenite::tungstenite::Message::binary(
        b"over tls".to_vec(),
    ))
    .await
    .unwrap();
    match ws.next().await {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(data))) => {
            assert_eq!(&data[..], b"over tls");
        }
        other => panic!("{other:?}"),
    }

    // Plain HTTP to the TLS port gets nothing served.
    let mut plain = TcpStream::connect(relay.addr()).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("webpop"));
}

#[tokio::test]
async fn a_key_that_does_not_match_or_a_missing_file_is_a_clear_error() {
    let a = tls_certificate();
    let b = tls_certificate();
    assert!(matches!(
        tls::acceptor(&a.cert, &b.key),
        Err(TlsError::Rustls(_))
    ));
    let missing = a.cert.with_file_name("missing.pem");
    let error = tls::acceptor(&missing, &a.key).err().unwrap();
    assert!(matches!(error, TlsError::Certificates { .. }));
    assert!(error.to_string().contains("missing.pem"), "{error}");
    assert!(matches!(
        tls::acceptor(&a.cert, &a.cert),
        Err(TlsError::Key { .. })
    ));
}
