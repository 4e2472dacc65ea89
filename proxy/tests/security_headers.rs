//! The security headers (Content-Security-Policy, nosniff, Referrer-Policy, COOP, HSTS over
//! TLS) on every response the relay serves: the page, its files, errors, health, metrics and a
//! refused relay request. The policy allows trunk's inline start-up script by its hash, read
//! from the web root's index.html.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use common::{tls_certificate, tls_connector, LocalRelay};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use webpop_proxy::{RelayConfig, ServeOptions};

/// `dist/index.html` as `scripts/wasm-env trunk build --release --offline` writes it (trunk
/// 0.21): the app starts from one inline module script.
const TRUNK_INDEX: &str = include_str!("fixtures/trunk-index.html");

/// A relay serving a web root that holds `index.html` = `index`; dropping it stops the relay.
struct Served {
    addr: SocketAddr,
    root: tempfile::TempDir,
    _relay: LocalRelay,
}

async fn serve(index: &str, options: ServeOptions) -> Served {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), index).unwrap();
    std::fs::write(
        root.path().join("webpop-frontend-0123456789abcdef_bg.wasm"),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();
    let relay = LocalRelay::start_with(
        "127.0.0.1:0".parse().unwrap(),
        RelayConfig::default(),
        options,
        Duration::from_secs(1),
        Some(root.path()),
    )
    .await
    .unwrap();
    Served {
        addr: relay.addr(),
        root,
        _relay: relay,
    }
}

/// Sends `request` (whole, head and blank line) and returns the response.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

async fn get(addr: SocketAddr, path: &str, extra: &str) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    exchange(
        tcp,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"),
    )
    .await
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    let mut found = head.lines().filter_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    });
    let first = found.next();
    assert!(found.next().is_none(), "{name} is sent twice:\n{head}");
    first
}

/// The value of directive `name` in the response's Content-Security-Policy.
fn directive(response: &str, name: &str) -> String {
    let csp = header(response, "content-security-policy")
        .unwrap_or_else(|| panic!("no Content-Security-Policy:\n{response}"));
    csp.split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {csp}"))
        .to_owned()
}

/// The text of every inline `<script>` in trunk's index.html, found naively (this fixture has
/// no tricks).
fn inline_scripts(html: &str) -> Vec<&str> {
    html.split("<script")
        .skip(1)
        .filter_map(|rest| {
            let (attributes, rest) = rest.split_once('>')?;
            let (text, _) = rest.split_once("</script>")?;
            (!attributes.contains("src=")).then_some(text)
        })
        .collect()
}

fn sha256_source(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Every header the relay promises, on one response; `tls`: whether HSTS must be there.
fn assert_security_headers(what: &str, response: &str, tls: bool) {
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    let csp = header(response, "content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy:\n{head}"));
    assert!(
        !csp.split([' ', ';'])
            .any(|source| source == "'unsafe-eval'"),
        "{what}: {csp}"
    );
    let script_src = directive(response, "script-src");
    assert!(
        script_src.starts_with("'self' 'wasm-unsafe-eval'")
            && !script_src.contains("unsafe-inline"),
        "{what}: script-src {script_src}"
    );
    for (name, value) in [
        ("default-src", "'none'"),
        ("object-src", "'none'"),
        ("base-uri", "'none'"),
        ("frame-ancestors", "'none'"),
    ] {
        assert_eq!(directive(response, name), value, "{what}: {name}");
    }
    assert!(
        directive(response, "connect-src").starts_with("'self'"),
        "{what}: {csp}"
    );
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin-allow-popups"),
        ("x-frame-options", "DENY"),
    ] {
        assert_eq!(
            header(response, name),
            Some(value),
            "{what}: {name}\n{head}"
        );
    }
    let hsts = header(response, "strict-transport-security");
    if tls {
        assert_eq!(hsts, Some("max-age=31536000"), "{what}: HSTS\n{head}");
    } else {
        assert_eq!(hsts, None, "{what}: HSTS over plain HTTP\n{head}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_the_csp_allows_trunks_inline_script() {
    let scripts = inline_scripts(TRUNK_INDEX);
    assert!(
        !scripts.is_empty(),
        "the fixture holds trunk's inline script"
    );
    let served = serve(TRUNK_INDEX, ServeOptions::default()).await;
    let addr = served.addr;

    let index = get(addr, "/", "").await;
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
    assert_security_headers("index.html", &index, false);
    let script_src = directive(&index, "script-src");
    // Computed apart (Python's hashlib over the script's text) when the fixture was taken.
    assert!(
        script_src.contains("'sha256-fB31EYLQDZ+qKCW7InhugVVM+WpcgJFcBMwzzG77EN0='"),
        "{script_src}"
    );
    for script in &scripts {
        assert!(
            script_src.contains(&sha256_source(script)),
            "script-src {script_src} misses the inline script {script:?}"
        );
    }
    assert_eq!(
        directive(&index, "connect-src"),
        format!("'self' ws://{addr} wss://{addr}")
    );
    // What a message shown in the reader's srcdoc frame needs from the page's policy too.
    assert_eq!(
        directive(&index, "img-src"),
        "'self' data: blob: https: http:"
    );
    assert_eq!(directive(&index, "style-src"), "'self' 'unsafe-inline'");

    let asset = get(addr, "/webpop-frontend-0123456789abcdef_bg.wasm", "").await;
    assert!(asset.starts_with("HTTP/1.1 200 OK\r\n"), "{asset}");
    assert_security_headers("a hashed asset", &asset, false);

    let missing = get(addr, "/no-such-file.js", "").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    assert_security_headers("a 404", &missing, false);

    let health = get(addr, "/healthz", "").await;
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert_security_headers("/healthz", &health, false);

    let metrics = get(addr, "/metrics", "").await;
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert_security_headers("/metrics", &metrics, false);

    // A WebSocket upgrade from another site's page: refused by the relay, headers still there.
    let refused = get(
        addr,
        "/relay?host=127.0.0.1&port=995",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://evil.example\r\n",
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");
    assert_security_headers("a refused /relay request", &refused, false);

    // A request that is not an upgrade at all.
    let not_upgrade = get(addr, "/relay?host=127.0.0.1&port=995", "").await;
    assert!(not_upgrade.starts_with("HTTP/1.1 4"), "{not_upgrade}");
    assert_security_headers("a plain GET /relay", &not_upgrade, false);
}

/// A new build deployed under a running relay has a new inline script (it names the new hashed
/// files): the page must not be served with the old build's hash, or the app would not start.
#[tokio::test]
async fn a_new_index_html_under_a_running_relay_gets_its_own_script_hash() {
    let served = serve("<script>alert(1)</script>", ServeOptions::default()).await;
    let before = get(served.addr, "/", "").await;
    assert!(directive(&before, "script-src").contains(&sha256_source("alert(1)")));

    let rebuilt = "<!doctype html><script type=\"module\">import init from '/new.js';</script>";
    write_changed(&served.root.path().join("index.html"), rebuilt).await;
    let after = get(served.addr, "/", "").await;
    let script_src = directive(&after, "script-src");
    assert!(
        script_src.contains(&sha256_source("import init from '/new.js';")),
        "{script_src}"
    );
    assert!(
        !script_src.contains(&sha256_source("alert(1)")),
        "{script_src}"
    );
}

/// Writes `text` to `path` so that its modification time differs from the previous version's
/// even on a file system with coarse timestamps.
async fn write_changed(path: &Path, text: &str) {
    let before = std::fs::metadata(path).unwrap().modified().unwrap();
    loop {
        std::fs::write(path, text).unwrap();
        if std::fs::metadata(path).unwrap().modified().unwrap() != before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn over_tls_every_response_also_carries_hsts() {
    let files = tls_certificate();
    let options = ServeOptions {
        tls: Some(webpop_proxy::tls::acceptor(&files.cert, &files.key).unwrap()),
        ..ServeOptions::default()
    };
    let served = serve(TRUNK_INDEX, options).await;

    let connector = tls_connector(&files.der);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    for path in ["/", "/no-such-file.js", "/healthz"] {
        let tcp = TcpStream::connect(served.addr).await.unwrap();
        let tls = connector.connect(name.clone(), tcp).await.unwrap();
        let port = served.addr.port();
        let response = exchange(
            tls,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_security_headers(path, &response, true);
        assert_eq!(
            directive(&response, "connect-src"),
            format!("'self' wss://localhost:{port}"),
            "{path}"
        );
    }
}
