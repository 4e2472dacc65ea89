//! The browser half of `scripts/bench browser` (bench/src/browser_sync.rs): one full sync into
//! IndexedDB, timed in the page, with the page's memory; then, when the benchmark asks for it
//! (`ceiling_port`), the browser's own ceiling in the same page: plain JavaScript receiving the
//! same bytes through the same relay into IndexedDB (`common/ceiling.js`, which says why that
//! is fair). Built with `WEBPOP_BENCH_ENV` (JSON from the benchmark); without it (as in
//! `scripts/test`) the test does nothing.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsCast as _;
use wasm_bindgen_test::*;
use webpop_frontend::net;
use webpop_frontend::store::MailStore;
use webpop_frontend::sync::{self, Cancel};
use webpop_shared::pop3::AuthMethod;
use webpop_shared::relay::{RelayRequest, Target, FLOW_PROTOCOL, PROTOCOL};
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Fingerprint, Security, SessionConfig, Trust};
use webpop_shared::sync::{EngineConfig, PlanOptions, SyncEvent};

mod common;
use common::hooked_store::Hooked;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen::prelude::wasm_bindgen(module = "/tests/common/ceiling.js")]
extern "C" {
    /// The browser's ceiling: plain JavaScript receives length-prefixed messages from `url`
    /// into a fresh IndexedDB database `db`, 100 records per transaction. Resolves to
    /// `{ messages, bytes, elapsedMs }`.
    fn ceiling(url: &str, protocols: js_sys::Array, db: &str) -> js_sys::Promise;
}

/// Runs [`ceiling`] through `relay` to the bench's byte source on `port` and prints its
/// `CEILING` line.
async fn run_ceiling(relay: &str, port: u16, label: &str) {
    let request = RelayRequest::new(Target::new("127.0.0.1", port).unwrap());
    let url = format!("{relay}?{}", request.to_query());
    // Offered as webpop offers them, so the relay runs the same flow control.
    let protocols: js_sys::Array = [PROTOCOL, FLOW_PROTOCOL]
        .iter()
        .map(|p| wasm_bindgen::JsValue::from_str(p))
        .collect();
    let promise = ceiling(&url, protocols, &format!("bench-ceiling-{label}"));
    let result = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .unwrap_or_else(|e| panic!("the JavaScript ceiling failed: {e:?}"));
    let number = |k: &str| {
        js_sys::Reflect::get(&result, &k.into())
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN)
    };
    console_log!(
        "CEILING label={label} messages={} bytes={} elapsed_ms={:.0}",
        number("messages"),
        number("bytes"),
        number("elapsedMs"),
    );
}

/// `performance.memory.usedJSHeapSize` (Chromium only) and the wasm memory, in bytes.
fn memory() -> (f64, f64) {
    let js_heap = web_sys::window()
        .and_then(|w| w.performance())
        .and_then(|p| js_sys::Reflect::get(&p, &"memory".into()).ok())
        .and_then(|m| js_sys::Reflect::get(&m, &"usedJSHeapSize".into()).ok())
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    let wasm = wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| {
            m.buffer()
                .dyn_into::<js_sys::ArrayBuffer>()
                .map(|b| b.byte_length())
                .unwrap_or(0)
        })
        .unwrap_or(0);
    (js_heap, f64::from(wasm))
}

#[wasm_bindgen_test]
async fn bench_full_sync_into_indexeddb() {
    let Some(env) = option_env!("WEBPOP_BENCH_ENV") else {
        return;
    };
    let env: serde_json::Value = serde_json::from_str(env).unwrap();
    let text = |k: &str| env[k].as_str().unwrap().to_owned();
    let db = format!("bench-{}", text("label"));
    MailStore::delete(&db).await.unwrap();
    let opened = MailStore::open(&db).await.unwrap();
    // The same sync with every IndexedDB write skipped: what storing costs.
    let store = if env["discard_writes"].as_bool() == Some(true) {
        Hooked::new(&opened).discard_writes()
    } else {
        Hooked::new(&opened)
    };
    let request =
        RelayRequest::new(Target::new("127.0.0.1", env["port"].as_u64().unwrap() as u16).unwrap());
    let trust = Trust::default().with_pin(text("cert_sha256").parse::<Fingerprint>().unwrap());
    let config = SessionConfig::new("localhost", Security::ImplicitTls).trust(trust);
    let started = js_sys::Date::now();
    let mut conn = net::open(
        &text("relay"),
        &request,
        config,
        rustls_pki_types::UnixTime::now(),
    )
    .await
    .unwrap();
    conn.login(
        Credentials::new(text("user"), text("password")).unwrap(),
        AuthMethod::Auto,
    )
    .await
    .unwrap();
    let engine = EngineConfig {
        plan: PlanOptions {
            large_message: u64::MAX,
            ..PlanOptions::default()
        },
        now: (started / 1000.0) as u64,
        ..EngineConfig::default()
    };
    let peak = std::rc::Rc::new(std::cell::Cell::new((0.0f64, 0.0f64)));
    let seen = std::rc::Rc::clone(&peak);
    let mut bytes = 0;
    let report = sync::run(
        conn,
        &store,
        &text("user"),
        engine,
        &Cancel::new(),
        async |e| {
            if let SyncEvent::Progress(p) = e {
                bytes = p.bytes_done;
                let (js, wasm) = memory();
                let (pj, pw) = seen.get();
                seen.set((pj.max(js), pw.max(wasm)));
            }
        },
    )
    .await
    .unwrap();
    let elapsed = js_sys::Date::now() - started;
    let (js, wasm) = peak.get();
    console_log!(
        "BENCH label={} messages={} bytes={} elapsed_ms={:.0} peak_js_heap={:.0} peak_wasm_memory={:.0}",
        text("label"),
        report.stored,
        bytes,
        elapsed,
        js,
        wasm
    );
    opened.close();
    MailStore::delete(&db).await.unwrap();
    if let Some(port) = env["ceiling_port"].as_u64() {
        run_ceiling(&text("relay"), port as u16, &text("label")).await;
    }
}
