//! webpop's web app. Built for the browser by trunk (see `index.html` and `Trunk.toml` at the repo
//! root); it also compiles natively so `cargo clippy --workspace` and `cargo test` cover it.

#![forbid(unsafe_code)]

/// Lets the service worker (`/sw.js`) cache the app shell, so the page loads offline.
fn register_service_worker() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let navigator = window.navigator();
    // Absent where the page is not a secure context (plain http to a non-local host).
    if js_sys::Reflect::has(&navigator, &"serviceWorker".into()).unwrap_or(false) {
        let _ = navigator.service_worker().register("/sw.js");
    }
}

fn main() {
    webpop_frontend::net::adopt_token_from_fragment();
    register_service_worker();
    yew::Renderer::<webpop_frontend::app::App>::new().render();
}
