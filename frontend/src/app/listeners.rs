//! The window's events the app follows: keys outside text fields, on/offline, and resizing.

use gloo_events::{EventListener, EventListenerOptions};
use wasm_bindgen::JsCast as _;
use web_sys::KeyboardEvent;
use yew::html::Scope;

use super::{App, ListMsg, Msg};
use crate::state::inbox;
use crate::state::scheduler::SyncAction;

/// The browser window.
pub(super) fn window() -> web_sys::Window {
    web_sys::window().expect("the app runs in a browser window")
}

fn in_text_field(target: Option<web_sys::EventTarget>) -> bool {
    target
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

/// Listens for the inbox's keys ("/" focuses the search), the network and the window's size.
pub(super) fn listen(link: &Scope<App>) -> Vec<EventListener> {
    let w = window();
    let keys = {
        let link = link.clone();
        EventListener::new_with_options(
            &w,
            "keydown",
            EventListenerOptions::enable_prevent_default(),
            move |e| {
                let Some(e) = e.dyn_ref::<KeyboardEvent>() else {
                    return;
                };
                if e.ctrl_key() || e.meta_key() || e.alt_key() || in_text_field(e.target()) {
                    return;
                }
                let key = e.key();
                if key == "/" {
                    e.prevent_default();
                    link.send_message(Msg::List(ListMsg::FocusSearch));
                } else if inbox::key_action(&key).is_some() {
                    e.prevent_default();
                    link.send_message(Msg::List(ListMsg::Key(key)));
                }
            },
        )
    };
    let online = |online: bool| {
        let link = link.clone();
        let event = if online { "online" } else { "offline" };
        EventListener::new(&w, event, move |_| {
            link.send_message(Msg::Sync(SyncAction::Online(online)))
        })
    };
    let resize = {
        let link = link.clone();
        EventListener::new(&w, "resize", move |_| {
            link.send_message(Msg::List(ListMsg::Resized))
        })
    };
    vec![keys, online(true), online(false), resize]
}
