//! Write transactions with a chosen durability, through web-sys: rexie has no way to pass
//! IndexedDB's `durability` option, and a batch that the server may delete once it is
//! committed must be on disk, not only in the browser's cache, when the commit is reported.
//!
//! A second connection to the same database carries these transactions; it is opened after
//! rexie's (so the schema is already current) and closed with it.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::{js_err, StoreError};

/// How long a write waits for the disk before it counts as committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The browser's default: committed once the browser has the data (fast; a crash of the
    /// operating system or a power cut may still lose it).
    Default,
    /// Committed only once the data is flushed to disk (`durability: "strict"`).
    Strict,
}

impl Durability {
    /// The name IndexedDB uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Strict => "strict",
        }
    }
}

/// A raw connection to the database, for [`Writer`]s.
#[derive(Debug)]
pub struct RawDb(web_sys::IdbDatabase);

impl RawDb {
    /// Opens `name` at its current version (no upgrade: rexie has done that).
    pub async fn open(name: &str) -> Result<Self, StoreError> {
        let factory: web_sys::IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
            .map_err(js_err)?
            .dyn_into()
            .map_err(|_| StoreError::Failed("this browser has no IndexedDB".into()))?;
        let request = factory.open(name).map_err(js_err)?;
        if !settle(&request, "success", &["error", "blocked"]).await? {
            return Err(StoreError::Failed(
                "the browser would not open the mail store a second time".into(),
            ));
        }
        let db = request
            .result()
            .map_err(js_err)?
            .dyn_into::<web_sys::IdbDatabase>()
            .map_err(js_err)?;
        Ok(Self(db))
    }

    /// Starts a read-write transaction on `stores` with `durability`.
    pub fn writer(&self, stores: &[&str], durability: Durability) -> Result<Writer, StoreError> {
        let names = stores
            .iter()
            .map(|s| JsValue::from_str(s))
            .collect::<Array>();
        let options = Object::new();
        Reflect::set(&options, &"durability".into(), &durability.as_str().into())
            .map_err(js_err)?;
        // `transaction(names, mode, options)`: web-sys has it only behind an unstable flag.
        let open: Function = Reflect::get(&self.0, &"transaction".into())
            .map_err(js_err)?
            .dyn_into()
            .map_err(js_err)?;
        let tx = open
            .call3(&self.0, &names, &"readwrite".into(), &options)
            .map_err(js_err)?
            .dyn_into::<web_sys::IdbTransaction>()
            .map_err(js_err)?;
        Ok(Writer { tx })
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.0.close();
    }
}

/// One write transaction: queue puts, then [`Writer::commit`].
#[derive(Debug)]
pub struct Writer {
    tx: web_sys::IdbTransaction,
}

impl Writer {
    /// Queues a put of `value` into `store` (keyed by the store's key path).
    pub fn put(&self, store: &str, value: &JsValue) -> Result<(), StoreError> {
        self.tx
            .object_store(store)
            .map_err(js_err)?
            .put(value)
            .map(|_| ())
            .map_err(js_err)
    }

    /// The durability the browser gave the transaction (`"strict"`, `"relaxed"`, `"default"`),
    /// or `None` where the browser does not say.
    pub fn durability(&self) -> Option<String> {
        Reflect::get(&self.tx, &"durability".into())
            .ok()
            .and_then(|d| d.as_string())
    }

    /// Waits until the transaction has committed; an abort (a full disk, most often) is an
    /// error and nothing of the transaction was saved.
    pub async fn commit(self) -> Result<(), StoreError> {
        match settle(&self.tx, "complete", &["abort"]).await? {
            true => Ok(()),
            false => Err(match self.tx.error() {
                Some(e) if e.name() == "QuotaExceededError" => StoreError::QuotaExceeded,
                _ => StoreError::Aborted,
            }),
        }
    }
}

/// Waits for `target`'s `ok` event (true) or the first of `fail` (false). The handlers are
/// set before this returns to the event loop, so no event is missed.
async fn settle(target: &JsValue, ok: &str, fail: &[&str]) -> Result<bool, StoreError> {
    let mut handlers = Ok(());
    let promise = Promise::new(&mut |resolve, reject| {
        let mut set = |event: &str, f: &Function| {
            if handlers.is_ok() {
                handlers = Reflect::set(target, &format!("on{event}").into(), f).map(|_| ());
            }
        };
        set(ok, &resolve);
        for event in fail {
            set(event, &reject);
        }
    });
    handlers.map_err(js_err)?;
    Ok(JsFuture::from(promise).await.is_ok())
}
