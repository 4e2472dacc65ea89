//! What webpop's benchmark binaries share. Each binary (`pop3-download`, `relay-bench`,
//! `relay-abuse`, `browser-sync`) measures against a baseline in the same run; the servers,
//! corpus, in-process relay and WebSocket client they drive come from `webpop-testkit`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod mailbox;
pub mod relay_process;
