//! The root's side of the inbox: reading the list from the store, carrying out the inbox's
//! effects (open, delete, mark read) in the store, and keeping the selection in view.

use std::rc::Rc;

use web_sys::{HtmlElement, HtmlInputElement};
use yew::prelude::*;

use super::{tasks, App, Msg};
use crate::components::message_list::ROW_PX;
use crate::components::reader::Opened;
use crate::state::inbox::{self, Action, Effect};
use crate::state::window::scroll_into_view;

/// What happens to the list and the reader.
pub enum ListMsg {
    /// An inbox action (keyboard, click, search, account choice).
    Inbox(Action),
    /// The list scrolled (to this many pixels, in a view this high).
    Scrolled(u32, u32),
    /// A key was pressed outside a text field.
    Key(String),
    /// "/" was pressed: focus the search box.
    FocusSearch,
    /// A message was read from the store (account, UIDL, its bytes and whether only its
    /// headers are stored).
    MessageLoaded(String, String, Option<(Vec<u8>, bool)>),
    /// Close the reader (narrow screens).
    CloseReader,
    /// The window was resized: the list's height is measured again after the next render.
    Resized,
}

impl App {
    /// Applies `msg`; true when the page changes.
    pub(super) fn update_list(&mut self, ctx: &Context<Self>, msg: ListMsg) -> bool {
        match msg {
            ListMsg::Inbox(action) => {
                let opening = matches!(action, Action::Select(_) | Action::Open);
                let effect = self.inbox.apply(action);
                if !(opening && effect == Effect::None) {
                    self.apply_effect(ctx, effect);
                }
                true
            }
            ListMsg::Key(key) => {
                if let Some(action) = inbox::key_action(&key) {
                    let moved = matches!(action, Action::Next | Action::Previous);
                    let effect = self.inbox.apply(action);
                    if moved {
                        self.scroll_to_selected();
                    }
                    self.apply_effect(ctx, effect);
                }
                true
            }
            ListMsg::FocusSearch => {
                if let Some(input) = self.search_ref.cast::<HtmlInputElement>() {
                    let _ = input.focus();
                    input.select();
                }
                false
            }
            ListMsg::Scrolled(top, height) => {
                let changed = (top / ROW_PX) != (self.scroll_px / ROW_PX) || height != self.view_px;
                self.scroll_px = top;
                self.view_px = height;
                changed
            }
            ListMsg::MessageLoaded(account, uid, message) => {
                let current = self.inbox.selected_row().map(|r| (&r.account, &r.uid));
                if current != Some((&account, &uid)) {
                    return false;
                }
                self.opened = match message {
                    Some((raw, headers_only)) => {
                        self.opened_count += 1;
                        Some(Rc::new(Opened::new(account, uid, raw, headers_only)))
                    }
                    None => {
                        self.status = "That message is no longer stored.".into();
                        None
                    }
                };
                true
            }
            ListMsg::CloseReader => {
                self.opened = None;
                true
            }
            ListMsg::Resized => {
                self.view_known = false;
                true
            }
        }
    }

    pub(super) fn reload_rows(&mut self, ctx: &Context<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        ctx.link().send_future(async move {
            match tasks::load_rows(&store).await {
                Ok(rows) => Msg::Rows(rows),
                Err(e) => Msg::Status(format!("Reading the mail store failed: {e}")),
            }
        });
    }

    pub(super) fn apply_effect(&mut self, ctx: &Context<Self>, effect: Effect) {
        let Some(store) = self.store.clone() else {
            return;
        };
        match effect {
            Effect::None => {}
            Effect::Open { account, uid } => ctx.link().send_future(async move {
                let _ = store.set_read(&account, &uid, true).await;
                let message = store.message(&account, &uid).await.ok().flatten();
                Msg::List(ListMsg::MessageLoaded(account, uid, message))
            }),
            Effect::Delete { account, uid } => {
                if (self.opened.as_ref()).is_some_and(|o| o.account == account && o.uid == uid) {
                    self.opened = None;
                }
                ctx.link().send_future(async move {
                    match store.mark_deleted(&account, &uid).await {
                        Ok(()) => Msg::Status("Message deleted.".into()),
                        Err(e) => Msg::Status(format!("Deleting failed: {e}")),
                    }
                });
            }
            Effect::MarkRead { account, uid, read } => ctx.link().send_future(async move {
                match store.set_read(&account, &uid, read).await {
                    Ok(()) => Msg::Status(String::new()),
                    Err(e) => Msg::Status(format!("Saving the read flag failed: {e}")),
                }
            }),
        }
    }

    /// Keeps the selected row in view after j/k.
    pub(super) fn scroll_to_selected(&mut self) {
        let Some(selected) = self.inbox.selected() else {
            return;
        };
        let view = self.view_px.max(ROW_PX);
        if let Some(target) = scroll_into_view(selected, ROW_PX, self.scroll_px, view) {
            self.scroll_px = target;
            if let Some(list) = self.list_ref.cast::<HtmlElement>() {
                list.set_scroll_top(target as i32);
            }
        }
    }
}
