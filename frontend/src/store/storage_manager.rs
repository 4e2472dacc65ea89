//! The browser's `navigator.storage` (StorageManager), feature-detected.
//!
//! Not every engine has all of it: WebKitGTK has no `estimate()`, insecure origins have no
//! `navigator.storage` at all, and Firefox answers `persist()` only after the person answers a
//! permission prompt. So nothing here fails or waits on a prompt by itself: a missing method is
//! "unknown", and only [`request_persistence`] (called when the person asks) may prompt.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;

/// How much the browser lets this site store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Space {
    /// Bytes in use.
    pub usage: f64,
    /// Bytes allowed.
    pub quota: f64,
}

impl Space {
    /// Bytes still free.
    pub fn available(&self) -> f64 {
        (self.quota - self.usage).max(0.0)
    }
}

/// Whether the browser promised to keep this site's storage under pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// It promised (`persisted()` or `persist()` answered true).
    Persistent,
    /// It made no promise: it may clear the storage when space runs low.
    BestEffort,
    /// This browser cannot be asked (no `persist()` / `persisted()`).
    Unsupported,
}

impl Persistence {
    /// True only when the browser promised.
    pub fn is_persistent(self) -> bool {
        self == Self::Persistent
    }
}

/// `navigator.storage`, when the page (or the sync worker) has one.
fn manager() -> Option<JsValue> {
    let navigator = Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
    let storage = Reflect::get(&navigator, &JsValue::from_str("storage")).ok()?;
    (!storage.is_undefined() && !storage.is_null()).then_some(storage)
}

/// Calls `navigator.storage.<method>()` when it exists and awaits its promise; `None` when the
/// method is missing or failed.
async fn call(method: &str) -> Option<JsValue> {
    let storage = manager()?;
    let function: Function = Reflect::get(&storage, &JsValue::from_str(method))
        .ok()?
        .dyn_into()
        .ok()?;
    let promise: Promise = function.call0(&storage).ok()?.dyn_into().ok()?;
    JsFuture::from(promise).await.ok()
}

fn number(object: &JsValue, field: &str) -> Option<f64> {
    Reflect::get(object, &JsValue::from_str(field))
        .ok()?
        .as_f64()
}

/// The browser's estimate of this site's usage and quota; `None` when the browser does not
/// give one (then only a write that fails says the storage is full).
pub async fn estimate() -> Option<Space> {
    let estimate = call("estimate").await?;
    let quota = number(&estimate, "quota")?;
    Some(Space {
        usage: number(&estimate, "usage").unwrap_or(0.0),
        quota,
    })
}

/// Whether storage is persistent already (`persisted()`, which never prompts).
pub async fn persisted() -> Persistence {
    answer(call("persisted").await)
}

/// Asks the browser to keep this site's storage (`persist()`). Firefox shows a permission prompt
/// and answers only when the person does, so call this only when the person asked for it, and
/// never wait for it before anything else.
pub async fn request_persistence() -> Persistence {
    answer(call("persist").await)
}

fn answer(value: Option<JsValue>) -> Persistence {
    match value.and_then(|v| v.as_bool()) {
        Some(true) => Persistence::Persistent,
        Some(false) => Persistence::BestEffort,
        None => Persistence::Unsupported,
    }
}

/// True where WebKit's rule applies: Safari deletes a site's storage after 7 days of use of the
/// browser without a visit, unless the site was added to the Home Screen (or storage is
/// persistent, which the caller checks). WebKit is told apart by its `Apple Computer, Inc.`
/// vendor string, which Chromium and Firefox do not use.
pub fn webkit_may_evict_unvisited_sites() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let navigator = window.navigator();
    let vendor = Reflect::get(&navigator, &JsValue::from_str("vendor"))
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    if vendor != "Apple Computer, Inc." {
        return false;
    }
    // A Home Screen web app: iOS's `navigator.standalone`, or the display-mode media query.
    let standalone = Reflect::get(&navigator, &JsValue::from_str("standalone"))
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let display_standalone = window
        .match_media("(display-mode: standalone)")
        .ok()
        .flatten()
        .is_some_and(|m| m.matches());
    !(standalone || display_standalone)
}
