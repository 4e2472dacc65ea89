//! The mail store for the views that read it themselves, as a context the root provides: no
//! global, and a view that needs the store says so with [`use_store`].

use std::rc::Rc;

use yew::prelude::*;

use crate::store::MailStore;

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
