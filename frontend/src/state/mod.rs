//! The web app's state logic, free of the DOM so it is tested natively: accounts and their
//! form, errors in words, the inbox (selection, search, accounts, keyboard), the sync queue and
//! its schedule, the virtualized list's window, and the progress line.

pub mod account;
pub mod explain;
pub mod inbox;
pub mod progress;
pub mod scheduler;
pub mod window;
