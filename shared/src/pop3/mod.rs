//! A sans-I/O POP3 client: RFC 1939 with CAPA and PIPELINING (RFC 2449), STLS (RFC 2595),
//! SASL AUTH (RFC 5034, RFC 7628) and response codes (RFC 3206).
//!
//! It owns no socket and reads no clock: the caller moves bytes (see [`Client`]).

mod capabilities;
mod client;
mod command;
mod error;
mod reader;
mod response;
mod sasl;
pub mod server_side;

pub use capabilities::{Capabilities, Expire, LoginDelay};
pub use client::{
    AuthMethod, Client, Event, Greeting, Handle, ListEntry, Options, Reply, Stat, State, UidEntry,
};
pub use command::Command;
pub use error::Error;
pub use response::{RespCode, ServerError};
pub use sasl::{OAuthBearer, SaslAuth};

#[cfg(test)]
mod tests;
