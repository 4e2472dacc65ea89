//! In headless Chromium (wasm-bindgen-test), against the relay and the `big_message` server of
//! `webpop-test-env`: with flow control, a page that stops reading holds at most the relay's
//! window, however much the server has to send.
#![cfg(target_arch = "wasm32")]

use futures_util::future::{select, Either};
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen_test::*;
use webpop_frontend::net;
use webpop_shared::pop3::{AuthMethod, Command, Event, Reply};
use webpop_shared::relay::flow::WINDOW;
use webpop_shared::relay::{RelayRequest, Target, MAX_FRAME};
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Fingerprint, Security, SessionConfig, Trust};

mod common;
use common::{digest, get, s};

wasm_bindgen_test_configure!(run_in_browser);

/// bug: the browser's WebSocket queued every frame the relay sent, whether or not the sync
/// wanted more, and the relay read the server as fast as the browser drained the socket: a
/// sync whose window was full (the engine stops reading) still filled the page's memory with
/// everything the server had to send.
#[wasm_bindgen_test]
async fn a_page_that_stops_reading_holds_at_most_the_flow_control_window() {
    let env = get("/env").await;
    let big = &env["big_message"];
    let size = big["size"].as_u64().unwrap();
    assert!(size > 4 * u64::from(WINDOW), "{size} bytes");
    let port = big["pop3s_port"].as_u64().unwrap() as u16;
    let request = RelayRequest::new(Target::new(&s(big, "host"), port).unwrap());
    let trust = Trust::default().with_pin(s(big, "cert_sha256").parse::<Fingerprint>().unwrap());
    let config = SessionConfig::new("localhost", Security::ImplicitTls).trust(trust);
    let mut conn = net::open(
        &s(&env, "relay"),
        &request,
        config,
        rustls_pki_types::UnixTime::now(),
    )
    .await
    .unwrap();
    conn.login(
        Credentials::new(s(big, "user"), s(big, "password")).unwrap(),
        AuthMethod::Auto,
    )
    .await
    .unwrap();
    assert!(
        conn.transport_mut().flow_control(),
        "the relay did not agree to flow control"
    );

    // The RETR goes out and the session reads for a moment; then the page stops reading, as
    // a sync does while its window is full.
    let handle = conn.send(Command::Retr(1)).unwrap();
    {
        let reading = std::pin::pin!(conn.next_event());
        if let Either::Left((event, _)) = select(reading, TimeoutFuture::new(100)).await {
            panic!("the whole message came at once: {event:?}");
        }
    }
    // Until what the page holds has not grown for a second (a debug-built server may take a
    // while to start sending).
    let (mut held, mut still) = (0, 0);
    for _ in 0..600 {
        TimeoutFuture::new(100).await;
        let now = conn.transport_mut().unconsumed_bytes();
        still = if now == held && now > 0 { still + 1 } else { 0 };
        held = now;
        if still >= 10 {
            break;
        }
    }
    console_log!(
        "a page that stopped reading holds {held} bytes (window {WINDOW}, message {size})"
    );
    assert!(held > 0, "the relay sent nothing while the page waited");
    assert!(
        held <= u64::from(WINDOW) + MAX_FRAME as u64,
        "the page holds {held} bytes it did not ask for"
    );

    // Reading again, the rest comes, whole.
    let resumed = js_sys::Date::now();
    loop {
        match conn.next_event().await.unwrap() {
            Event::Reply {
                handle: h,
                reply: Reply::Message(raw),
            } if h == handle => {
                console_log!(
                    "the rest of the message came in {:.0} ms",
                    js_sys::Date::now() - resumed
                );
                assert_eq!(raw.len() as u64, size);
                assert_eq!(digest(&raw), s(big, "digest"));
                break;
            }
            _ => continue,
        }
    }
    assert_eq!(conn.transport_mut().unconsumed_bytes(), 0);
    conn.quit().await.unwrap();
}
