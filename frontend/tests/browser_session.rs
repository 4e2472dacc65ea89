//! In headless Chromium (wasm-bindgen-test), against the real relay and a real Dovecot started
//! by `webpop-test-env` (see `scripts/test`): TLS in wasm, implicit and STLS, through the relay's
//! WebSocket; certificate problems with their fingerprint; relay refusals as typed errors.
#![cfg(target_arch = "wasm32")]

use serde_json::Value;
use wasm_bindgen_test::*;
use webpop_frontend::net::{self, RelayConnection};
use webpop_shared::connection::ConnectionError;
use webpop_shared::pop3::{AuthMethod, Command, Reply};
use webpop_shared::relay::{RelayError, RelayRequest, Target};
use webpop_shared::secret::Credentials;
use webpop_shared::session::{Fingerprint, Security, SessionConfig, SessionError, Trust};

mod common;
use common::{digest, get, s};

wasm_bindgen_test_configure!(run_in_browser);

fn port(v: &Value, key: &str) -> u16 {
    v[key].as_u64().unwrap() as u16
}

async fn open(
    env: &Value,
    security: Security,
    pinned: bool,
) -> Result<RelayConnection, ConnectionError> {
    let port = match security {
        Security::ImplicitTls => port(env, "pop3s_port"),
        _ => port(env, "pop3_port"),
    };
    let request = RelayRequest::new(Target::new(&s(env, "host"), port).unwrap());
    let mut trust = Trust::default();
    if pinned {
        trust = trust.with_pin(s(env, "cert_sha256").parse::<Fingerprint>().unwrap());
    }
    let config = SessionConfig::new(s(env, "server_name"), security).trust(trust);
    net::open(
        &s(env, "relay"),
        &request,
        config,
        rustls_pki_types::UnixTime::now(),
    )
    .await
}

#[wasm_bindgen_test]
async fn pop3_over_tls_in_wasm_through_the_relay_both_ways() {
    let env = get("/env").await;
    let digests = get(&format!("/digests/{}", s(&env, "user"))).await;
    let first = digests[0].as_str().unwrap().to_owned();
    for security in [Security::ImplicitTls, Security::StartTls] {
        let mut conn = open(&env, security, true).await.unwrap();
        assert!(conn.capabilities().uidl);
        conn.login(
            Credentials::new(s(&env, "user"), s(&env, "password")).unwrap(),
            AuthMethod::Auto,
        )
        .await
        .unwrap();
        match conn.run(Command::Stat).await.unwrap() {
            Reply::Stat(stat) => assert_eq!(stat.count as usize, digests.as_array().unwrap().len()),
            other => panic!("{other:?}"),
        }
        match conn.run(Command::Retr(1)).await.unwrap() {
            Reply::Message(raw) => assert_eq!(digest(&raw), first, "{security:?}"),
            other => panic!("{other:?}"),
        }
        conn.quit().await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn an_untrusted_certificate_comes_with_its_fingerprint() {
    let env = get("/env").await;
    match open(&env, Security::ImplicitTls, false).await {
        Err(ConnectionError::Session(SessionError::Certificate { fingerprint, .. })) => {
            assert_eq!(fingerprint.to_string(), s(&env, "cert_sha256"));
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn relay_refusals_are_typed_and_readable() {
    let env = get("/env").await;
    let request = RelayRequest::new(Target::new("127.0.0.1", 25).unwrap());
    let config = SessionConfig::new("localhost", Security::ImplicitTls);
    match net::open(
        &s(&env, "relay"),
        &request,
        config,
        rustls_pki_types::UnixTime::now(),
    )
    .await
    {
        Err(ConnectionError::Relay(error @ RelayError::Forbidden(_))) => {
            assert_eq!(error.to_string(), "this relay does not allow 127.0.0.1:25");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
