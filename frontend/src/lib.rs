//! webpop's web app: the yew UI ([`app`], [`components`]) over the browser glue — the relay
//! connection ([`net`]), the IndexedDB mail store ([`store`]), a sync between them ([`sync`],
//! [`mail`]) — the UI's state logic ([`state`]), which is tested natively, and the plain data
//! they all share ([`model`]). The protocol and sync logic it drives lives in `webpop-shared`.
//! The sync runs in a dedicated Web Worker ([`worker`]); the page renders.
//!
//! It compiles natively too (so `cargo clippy --workspace` covers it), but only runs in a
//! browser.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod components;
pub mod download;
pub mod mail;
pub mod model;
pub mod net;
pub mod state;
pub mod store;
pub mod sync;
pub mod worker;
