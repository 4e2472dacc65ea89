//! The views: the account form, the message list and the reader. They get data and callbacks;
//! the root component ([`crate::app`]) owns the state.

pub mod account_form;
pub mod message_list;
pub mod reader;
