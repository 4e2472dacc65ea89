//! The sync off the main thread: a dedicated Web Worker (`src/bin/webpop-worker.rs`, built by
//! trunk from the `data-type="worker"` link in `index.html`) runs the connection through the
//! relay, TLS, POP3, the MIME summaries and the IndexedDB writes; the page only renders.
//!
//! - [`message`]: the typed commands and events that cross, both ways.
//! - [`client`]: the page's side (starts the worker, or runs the sync in the page where there
//!   is none).
//! - [`serve`]: the worker's side.
//! - [`reporting`]: the store the worker syncs into, which tells the page each batch's rows.
//! - [`lock`]: one sync per account across tabs (Web Locks, or a `localStorage` lease).

pub mod client;
pub mod lock;
pub mod message;
pub mod reporting;
pub mod serve;
