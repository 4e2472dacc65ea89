//! The root's callbacks, made once when it is created. A child whose props hold the same
//! callbacks and the same data is not rendered again, so a scroll renders only the list and a
//! progress event only the sync bar (callbacks made in `view` would differ on every render).

use web_sys::HtmlElement;
use yew::html::Scope;
use yew::prelude::*;

use super::{App, ListMsg, Msg};
use crate::components::add_account::SignedIn;
use crate::state::inbox::Action;
use crate::state::scheduler::SyncAction;

/// Every callback the root hands to its children.
pub(super) struct Callbacks {
    pub on_account: Callback<Option<String>>,
    pub on_search: Callback<String>,
    pub on_sync_now: Callback<()>,
    pub on_add_account: Callback<()>,
    pub on_status: Callback<String>,
    pub on_cancel: Callback<()>,
    pub on_added: Callback<SignedIn>,
    pub on_close_form: Callback<()>,
    pub on_scroll: Callback<Event>,
    pub on_select: Callback<usize>,
    pub on_mark_unread: Callback<()>,
    pub on_delete: Callback<()>,
    pub on_fetch_whole: Callback<()>,
    pub on_close_reader: Callback<()>,
    pub on_password_dismissed: Callback<()>,
}

impl Callbacks {
    pub(super) fn new(link: &Scope<App>) -> Self {
        let inbox =
            |action: fn() -> Action| link.callback(move |()| Msg::List(ListMsg::Inbox(action())));
        Self {
            on_account: link.callback(|a| Msg::List(ListMsg::Inbox(Action::ShowAccount(a)))),
            on_search: link.callback(|q| Msg::List(ListMsg::Inbox(Action::Search(q)))),
            on_sync_now: link.callback(|()| Msg::SyncShown),
            on_add_account: link.callback(|()| Msg::ShowForm(true)),
            on_status: link.callback(Msg::Status),
            on_cancel: link.callback(|()| Msg::Sync(SyncAction::Cancel)),
            on_added: link.callback(|added| Msg::AccountAdded(Box::new(added))),
            on_close_form: link.callback(|()| Msg::ShowForm(false)),
            on_scroll: link.callback(|e: Event| {
                let list = e.target_unchecked_into::<HtmlElement>();
                Msg::List(ListMsg::Scrolled(
                    list.scroll_top().max(0) as u32,
                    list.client_height().max(0) as u32,
                ))
            }),
            on_select: link.callback(|i| Msg::List(ListMsg::Inbox(Action::Select(i)))),
            on_mark_unread: inbox(|| Action::MarkRead(false)),
            on_delete: inbox(|| Action::Delete),
            on_fetch_whole: link.callback(|()| Msg::FetchWhole),
            on_close_reader: link.callback(|()| Msg::List(ListMsg::CloseReader)),
            on_password_dismissed: link.callback(|()| Msg::Sync(SyncAction::PasswordDismissed)),
        }
    }
}
