//! What the browser tests share: the test environment's control API (`webpop-test-env`, whose URL
//! is fixed when the tests are built) and a digest to compare messages by.
// Each test file uses a part of it.
#![allow(dead_code)]

pub mod hooked_store;

use gloo_net::http::Request;
use serde_json::Value;

/// The control API of the test environment, fixed when the tests were built.
pub fn control() -> &'static str {
    env!(
        "WEBPOP_TEST_ENV",
        "build the browser tests with WEBPOP_TEST_ENV set (scripts/test does)"
    )
}

/// Calls the control API (`GET` or `POST`) and reads its JSON answer.
pub async fn call(method: &str, path: &str) -> Value {
    let url = format!("{}{path}", control());
    let request = if method == "POST" {
        Request::post(&url)
    } else {
        Request::get(&url)
    };
    request.send().await.unwrap().json().await.unwrap()
}

/// `GET path` of the control API.
pub async fn get(path: &str) -> Value {
    call("GET", path).await
}

/// The string `key` of `v`.
pub fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

/// SHA-256 of `bytes`, in lowercase hex (as the control API's `/digests`).
pub fn digest(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
