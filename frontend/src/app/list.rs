//! The root's side of the inbox: reading the list from the store, carrying out the inbox's
//! effects (open, delete, mark read) in the store, and keeping the selection in view.

use web_sys::HtmlElement;
use yew::prelude::*;

use super::{tasks, App, Msg};
use crate::components::message_list::ROW_PX;
use crate::state::inbox::Effect;
use crate::state::window::scroll_into_view;

impl App {
    pub(super) fn reload_rows(&mut self, ctx: &Context<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        self.last_reload_ms = js_sys::Date::now();
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
                Msg::MessageLoaded(account, uid, message)
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
