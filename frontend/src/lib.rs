//! webpop's browser glue, beneath the UI: the relay connection ([`net`]). The protocol and sync
//! logic it drives lives in `webpop-shared`.
//!
//! It compiles natively too (so `cargo clippy --workspace` covers it), but only runs in a
//! browser.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod net;
