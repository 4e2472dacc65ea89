//! webpop's browser-independent core: the sans-I/O POP3 client ([`pop3`]), credentials that
//! stay out of logs ([`secret`]), the TLS+POP3 session ([`session`]) and the relay's wire
//! contract ([`relay`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod pop3;
pub mod relay;
pub mod secret;
pub mod session;

#[cfg(feature = "tokio")]
pub mod driver;
