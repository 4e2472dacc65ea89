//! `webpop-test-env`: a private Dovecot and a relay on 127.0.0.1 for the browser tests, plus a
//! small control API the test page calls to check and change the server side.
//!
//! It prints one line, the control API's base URL, and runs until its standard input closes.
//!
//! Control API (CORS open, 127.0.0.1 only):
//! - `GET /env`: JSON with the relay URL, POP3 ports, users and password, certificate
//!   fingerprint.
//! - `GET /digests/{user}`: JSON list of the SHA-256 (hex) of every message in a mailbox.
//! - `POST /add/{user}/{seed}`: adds a generated message; returns its digest.
//! - `POST /relay/stop`, `POST /relay/start`: stops the relay (open sessions are closed at once)
//!   and starts it again on the same port.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::extract::{Path, State};
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

struct Env {
    dovecot: Dovecot,
    relay_addr: SocketAddr,
    relay: Mutex<Option<LocalRelay>>,
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
    Json(json!({
        "relay": format!("ws://{}/relay", env.relay_addr),
        "host": "127.0.0.1",
        "server_name": "localhost",
        "pop3_port": d.pop3_port(),
        "pop3s_port": d.pop3s_port(),
        "user": USERS[0],
        "users": USERS,
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
    let ports = [env.dovecot.pop3_port(), env.dovecot.pop3s_port()];
    match LocalRelay::start(env.relay_addr, &ports).await {
        Ok(relay) => {
            *env.relay.lock().unwrap() = Some(relay);
            Json(json!({ "ok": true }))
        }
        Err(e) => Json(json!({ "ok": false, "error": e.to_string() })),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()
        .context("the argument is the number of messages")?
        .unwrap_or(300);
    let full = corpus::generate(count, 2026);
    let small = corpus::generate(40, 7);
    let dovecot = tokio::task::spawn_blocking(move || {
        let users: Vec<(&str, &str, &[Vec<u8>])> = USERS
            .iter()
            .map(|u| {
                let mail: &[Vec<u8>] = if FULL.contains(u) { &full } else { &small };
                (*u, PASSWORD, mail)
            })
            .collect();
        Dovecot::start(&users)
    })
    .await??;
    let ports = [dovecot.pop3_port(), dovecot.pop3s_port()];
    let relay = LocalRelay::start("127.0.0.1:0".parse()?, &ports).await?;
    let env = Arc::new(Env {
        dovecot,
        relay_addr: relay.addr(),
        relay: Mutex::new(Some(relay)),
    });
    let app = Router::new()
        .route("/env", get(env_json))
        .route("/digests/{user}", get(digests))
        .route("/add/{user}/{seed}", post(add))
        .route("/relay/stop", post(relay_stop))
        .route("/relay/start", post(relay_start))
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
