//! `webpop-test-env`: a private Dovecot and a relay on 127.0.0.1 for the browser tests, plus a
//! small control API the test page calls to check and change the server side.
//!
//! It prints one line, the control API's base URL, and runs until its standard input closes.
//!
//! Usage: `webpop-test-env [COUNT] [--web-root DIR] [--e2e-fixtures DIR]`
//! - `COUNT` (default 300): messages in the `browser` and `stls` mailboxes.
//! - `--web-root DIR` (or `WEBPOP_TEST_ENV_WEB_ROOT`): the relay also serves `DIR` (the built
//!   `dist/`) at `/`, so the web app and `/relay` are same-origin; `/env` then gives its URL as
//!   `web`.
//! - `--e2e-fixtures DIR` (or `WEBPOP_TEST_ENV_E2E_FIXTURES`): adds the user `e2e` (same
//!   password) whose mailbox holds [`E2E_CORPUS`] generated messages and then every `*.eml` file
//!   in `DIR`, with each `CANARY` in them replaced by the origin of a "canary" HTTP server on
//!   127.0.0.1 and line endings made CRLF. The canary answers everything harmlessly and records
//!   every request: mail that is shown must never reach it. Fixtures should carry newer dates
//!   than the corpus (2023) so that they head the message list.
//!
//! Control API (CORS open, 127.0.0.1 only):
//! - `GET /env`: JSON with the relay URL, POP3 ports, users and password, certificate
//!   fingerprint; with the options above also `web`, `canary` and `e2e` (user, password, message
//!   count, each fixture's file name and subject, the oldest message's subject).
//! - `GET /canary`: JSON list of the requests the canary has seen (method, path, headers of
//!   interest), oldest first.
//! - `GET /digests/{user}`: JSON list of the SHA-256 (hex) of every message in a mailbox.
//! - `POST /add/{user}/{seed}`: adds a generated message; returns its digest.
//! - `POST /relay/stop`, `POST /relay/start`: stops the relay (open sessions are closed at once)
//!   and starts it again on the same port.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::cors::CorsLayer;
use webpop_testkit::corpus;
use webpop_testkit::dovecot::Dovecot;
use webpop_testkit::local_relay::LocalRelay;

/// One mailbox per group of tests, so tests that delete mail do not disturb the others:
/// `browser` and `stls` get the full corpus (the command-line count), the rest 40 messages.
const USERS: [&str; 9] = [
    "browser", "stls", "faults", "policy", "quota", "space", "upgrade", "large", "cancel",
];
const FULL: [&str; 2] = ["browser", "stls"];
const PASSWORD: &str = "browser-test-password";
/// The end-to-end tests' user (only with `--e2e-fixtures`).
const E2E_USER: &str = "e2e";
/// Generated messages in the `e2e` mailbox, before the fixtures.
const E2E_CORPUS: usize = 200;
/// The placeholder in fixture files that becomes the canary's origin.
const CANARY_PLACEHOLDER: &[u8] = b"CANARY";

struct Env {
    dovecot: Dovecot,
    relay_addr: SocketAddr,
    relay: Mutex<Option<LocalRelay>>,
    web_root: Option<PathBuf>,
    canary: Option<Canary>,
    e2e: Option<Value>,
}

#[derive(Debug, Default)]
struct Options {
    count: Option<usize>,
    web_root: Option<PathBuf>,
    e2e_fixtures: Option<PathBuf>,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        web_root: std::env::var_os("WEBPOP_TEST_ENV_WEB_ROOT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        e2e_fixtures: std::env::var_os("WEBPOP_TEST_ENV_E2E_FIXTURES")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        ..Options::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<PathBuf> {
            inline
                .clone()
                .or_else(|| args.next())
                .map(PathBuf::from)
                .with_context(|| format!("{name} wants a directory"))
        };
        match flag.as_str() {
            "--web-root" => o.web_root = Some(value("--web-root")?),
            "--e2e-fixtures" => o.e2e_fixtures = Some(value("--e2e-fixtures")?),
            "-h" | "--help" => {
                println!("usage: webpop-test-env [COUNT] [--web-root DIR] [--e2e-fixtures DIR]");
                std::process::exit(0);
            }
            _ if o.count.is_none() && !arg.starts_with('-') => {
                o.count = Some(
                    arg.parse()
                        .context("the argument is the number of messages")?,
                );
            }
            _ => bail!("unexpected argument {arg:?} (see --help)"),
        }
    }
    for dir in [&mut o.web_root, &mut o.e2e_fixtures].into_iter().flatten() {
        *dir = dir
            .canonicalize()
            .with_context(|| format!("no such directory: {}", dir.display()))?;
    }
    Ok(o)
}

/// A small HTTP server that answers every request harmlessly and records it.
struct Canary {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Value>>>,
}

impl Canary {
    async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback(canary_hit)
            .with_state(Arc::clone(&log));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, log })
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A 1×1 transparent PNG.
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

async fn canary_hit(State(log): State<Arc<Mutex<Vec<Value>>>>, request: Request) -> Response {
    let headers = request.headers();
    let h = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let fetch_dest = headers
        .get("sec-fetch-dest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = request.uri().to_string();
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    eprintln!("webpop-test-env: canary: {} {path}", request.method());
    log.lock().unwrap().push(json!({
        "method": request.method().as_str(),
        "path": path,
        "referer": h(header::REFERER),
        "origin": h(header::ORIGIN),
        "user_agent": h(header::USER_AGENT),
        "fetch_dest": fetch_dest,
        "time_ms": millis,
    }));
    let path = request.uri().path();
    let (content_type, body): (&str, &[u8]) = if path.ends_with(".png") || path.ends_with(".gif") {
        ("image/png", PIXEL_PNG)
    } else if path.ends_with(".css") {
        ("text/css", b"/* canary */\n")
    } else if path.ends_with(".js") {
        ("text/javascript", b"/* canary */\n")
    } else {
        ("text/plain; charset=utf-8", b"canary\n")
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (headers, body.to_vec()).into_response()
}

async fn canary_log(State(env): State<Arc<Env>>) -> Json<Value> {
    match &env.canary {
        Some(c) => Json(Value::Array(c.log.lock().unwrap().clone())),
        None => Json(json!([])),
    }
}

/// The fixture messages in `dir` (`*.eml`, by file name), with `CANARY` replaced by `origin` and
/// every line ending made CRLF.
fn load_fixtures(dir: &std::path::Path, origin: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml") && p.is_file())
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("{} has no .eml files", dir.display());
    }
    names
        .into_iter()
        .map(|path| {
            let raw =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((
                name,
                crlf(&replace(&raw, CANARY_PLACEHOLDER, origin.as_bytes())),
            ))
        })
        .collect()
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Every line ending as CRLF (bare LF and bare CR alike), ending with one.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if raw.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn subject(raw: &[u8]) -> String {
    webpop_shared::mime::summary(raw)
        .map(|s| s.subject)
        .unwrap_or_default()
}

fn digest(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn env_json(State(env): State<Arc<Env>>) -> Json<Value> {
    let d = &env.dovecot;
    let users: Vec<&str> = USERS
        .iter()
        .copied()
        .chain(env.e2e.as_ref().map(|_| E2E_USER))
        .collect();
    Json(json!({
        "web": env.web_root.as_ref().map(|_| format!("http://{}/", env.relay_addr)),
        "canary": env.canary.as_ref().map(Canary::origin),
        "e2e": env.e2e,
        "relay": format!("ws://{}/relay", env.relay_addr),
        "host": "127.0.0.1",
        "server_name": "localhost",
        "pop3_port": d.pop3_port(),
        "pop3s_port": d.pop3s_port(),
        "user": USERS[0],
        "users": users,
        "password": PASSWORD,
        "cert_sha256": d.cert_sha256_hex(),
    }))
}

async fn digests(State(env): State<Arc<Env>>, Path(user): Path<String>) -> Json<Value> {
    let n = env
        .dovecot
        .maildir_files(&user)
        .map(|f| f.len())
        .unwrap_or(0);
    let list: Vec<String> = (1..=n)
        .filter_map(|i| env.dovecot.stored_message(&user, i).ok())
        .map(|m| digest(&m))
        .collect();
    Json(json!(list))
}

async fn add(State(env): State<Arc<Env>>, Path((user, seed)): Path<(String, u64)>) -> Json<Value> {
    // Index 1 is a multipart/alternative message; the seed makes it new.
    let message = corpus::message(1, seed, 1.0);
    let ok = env.dovecot.add_message(&user, &message).is_ok();
    Json(json!({ "ok": ok, "digest": digest(&message) }))
}

async fn relay_stop(State(env): State<Arc<Env>>) -> Json<Value> {
    // Dropping the relay stops it.
    let relay = env.relay.lock().unwrap().take();
    drop(relay);
    // Let the listener close before answering.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Json(json!({ "ok": true }))
}

async fn relay_start(State(env): State<Arc<Env>>) -> Json<Value> {
    if env.relay.lock().unwrap().is_some() {
        return Json(json!({ "ok": true, "already": true }));
    }
    let ports = [env.dovecot.pop3_port(), env.dovecot.pop3s_port()];
    match LocalRelay::start_serving(env.relay_addr, &ports, env.web_root.as_deref()).await {
        Ok(relay) => {
            *env.relay.lock().unwrap() = Some(relay);
            Json(json!({ "ok": true }))
        }
        Err(e) => Json(json!({ "ok": false, "error": e.to_string() })),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let options = parse_args()?;
    let count = options.count.unwrap_or(300);
    let full = corpus::generate(count, 2026);
    let small = corpus::generate(40, 7);

    // The end-to-end mailbox: the corpus, then the fixtures (newest dates, last in POP3 order).
    let (canary, e2e_mail, e2e) = match &options.e2e_fixtures {
        None => (None, Vec::new(), None),
        Some(dir) => {
            let canary = Canary::start().await?;
            let fixtures = load_fixtures(dir, &canary.origin())?;
            let mut mail = corpus::generate(E2E_CORPUS, 11);
            let oldest = subject(&mail[0]);
            let listed: Vec<Value> = fixtures
                .iter()
                .map(|(file, raw)| json!({ "file": file, "subject": subject(raw) }))
                .collect();
            mail.extend(fixtures.into_iter().map(|(_, raw)| raw));
            let info = json!({
                "user": E2E_USER,
                "password": PASSWORD,
                "count": mail.len(),
                "corpus": E2E_CORPUS,
                "fixtures": listed,
                "oldest_subject": oldest,
            });
            (Some(canary), mail, Some(info))
        }
    };
    let with_e2e = e2e.is_some();
    let dovecot = tokio::task::spawn_blocking(move || {
        let mut users: Vec<(&str, &str, &[Vec<u8>])> = USERS
            .iter()
            .map(|u| {
                let mail: &[Vec<u8>] = if FULL.contains(u) { &full } else { &small };
                (*u, PASSWORD, mail)
            })
            .collect();
        if with_e2e {
            users.push((E2E_USER, PASSWORD, &e2e_mail));
        }
        Dovecot::start(&users)
    })
    .await??;
    let ports = [dovecot.pop3_port(), dovecot.pop3s_port()];
    let relay =
        LocalRelay::start_serving("127.0.0.1:0".parse()?, &ports, options.web_root.as_deref())
            .await?;
    let env = Arc::new(Env {
        dovecot,
        relay_addr: relay.addr(),
        relay: Mutex::new(Some(relay)),
        web_root: options.web_root,
        canary,
        e2e,
    });
    let app = Router::new()
        .route("/env", get(env_json))
        .route("/digests/{user}", get(digests))
        .route("/add/{user}/{seed}", post(add))
        .route("/relay/stop", post(relay_stop))
        .route("/relay/start", post(relay_start))
        .route("/canary", get(canary_log))
        .with_state(Arc::clone(&env))
        .layer(CorsLayer::very_permissive());
    let control = TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}", control.local_addr()?);
    let (closed, on_closed) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    axum::serve(control, app)
        .with_graceful_shutdown(async {
            let _ = on_closed.await;
        })
        .await?;
    drop(env);
    Ok(())
}
