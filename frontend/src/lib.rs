//! webpop's browser glue, beneath the UI: the relay connection ([`net`]), the IndexedDB mail
//! store ([`store`]), a sync between them ([`sync`]), and the UI's state logic ([`state`]). The
//! protocol and sync logic it drives lives in `webpop-shared`.
//!
//! It compiles natively too (so `cargo clippy --workspace` covers it), but only runs in a
//! browser.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod net;
pub mod state;
pub mod store;
pub mod sync;
