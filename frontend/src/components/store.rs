//! The mail store for the views that read it themselves, and the sync worker's client for the
//! form that signs in, as contexts the root provides: no global, and a view that needs one says
//! so with [`use_store`] or [`use_sync`].

use std::rc::Rc;

use yew::prelude::*;

use crate::store::MailStore;
use crate::worker::client::SyncClient;

/// The store once it is open (`None` before, or when the browser refused to open it).
#[derive(Clone, Default)]
pub struct StoreContext(pub Option<Rc<MailStore>>);

impl PartialEq for StoreContext {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// The store, if it is open.
#[hook]
pub fn use_store() -> Option<Rc<MailStore>> {
    use_context::<StoreContext>().and_then(|c| c.0)
}

/// The sync worker's client.
#[derive(Clone)]
pub struct SyncContext(pub Rc<SyncClient>);

impl PartialEq for SyncContext {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// The sync worker's client, where the root provides it.
#[hook]
pub fn use_sync() -> Option<Rc<SyncClient>> {
    use_context::<SyncContext>().map(|c| c.0)
}
