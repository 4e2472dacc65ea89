//! The views: the top bar, the sync bar, the password prompt, the account form, the message
//! list and the reader. They get data and callbacks; the root component ([`crate::app`]) owns
//! the state, and provides the store as a context ([`store`]) to the views that read it.

pub mod account_form;
pub mod add_account;
pub mod export;
pub mod header;
pub mod message_list;
pub mod password_prompt;
pub mod reader;
pub mod store;
pub mod sync_bar;
