//! webpop's browser-independent core: the sans-I/O POP3 client ([`pop3`]), credentials that
//! stay out of logs ([`secret`]), the TLS+POP3 session ([`session`]), the relay's wire
//! contract ([`relay`]), one connection over any byte transport ([`connection`]; the tokio one
//! in `tokio_transport`), the sync engine's planning and retry logic ([`sync`]), the reader's
//! sanitised HTML ([`reader`]) and the export formats ([`export`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connection;
pub mod export;
pub mod mime;
pub mod pop3;
pub mod reader;
pub mod relay;
pub mod secret;
pub mod session;
pub mod sync;
#[cfg(feature = "tokio")]
pub mod tokio_transport;
