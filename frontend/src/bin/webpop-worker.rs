//! webpop's sync worker: a dedicated Web Worker that runs the sync for the page
//! ([`webpop_frontend::worker`]). trunk builds it from the `data-type="worker"` link in
//! `index.html` and writes a loader, `/webpop-worker_loader.js`, which the page starts.

#![forbid(unsafe_code)]

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast as _, JsValue};
use webpop_frontend::worker::message::{Command, Event};
use webpop_frontend::worker::serve::Server;

fn main() {
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let poster = scope.clone();
    // The page names the worker after its tab, so the tab's own news is not news to it.
    let server = Server::new(scope.name(), move |event: Event| {
        let _ = poster.post_message(&JsValue::from_str(&event.to_text()));
    });
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            if let Some(command) = e.data().as_string().as_deref().and_then(Command::from_text) {
                server.handle(command);
            }
        });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    let _ = scope.post_message(&JsValue::from_str(&Event::Ready.to_text()));
}
