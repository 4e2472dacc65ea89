//! webpop's browser glue, beneath the UI: the relay connection ([`net`]), the IndexedDB mail
//! store ([`store`]) and a sync between them ([`sync`]). The protocol and sync logic it drives
//! lives in `webpop-shared`.
//!
//! It compiles natively too (so `cargo clippy --workspace` covers it), but only runs in a
//! browser.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod net;
pub mod store;
pub mod sync;
