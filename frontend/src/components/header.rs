//! The top bar: the account selector, search, "Sync now", export and "Add account", and the
//! offline mark.

use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::export::ExportButton;

/// What the bar shows and what its controls do.
#[derive(Properties, PartialEq)]
pub struct Props {
    /// Every account, as (id, label).
    pub accounts: Vec<(String, String)>,
    /// The account shown, or `None` for all.
    pub shown: Option<String>,
    /// Whether the browser is online.
    pub online: bool,
    /// Whether a sync runs.
    pub syncing: bool,
    /// Whether the account form is open.
    pub show_form: bool,
    /// The search box, for "/" to focus.
    pub search_ref: NodeRef,
    /// An account (or all) was chosen.
    pub on_account: Callback<Option<String>>,
    /// The search text changed.
    pub on_search: Callback<String>,
    /// "Sync now".
    pub on_sync_now: Callback<()>,
    /// "Add account".
    pub on_add_account: Callback<()>,
    /// Something to say in the status line (how an export went).
    pub on_status: Callback<String>,
}

/// The top bar.
#[function_component(Header)]
pub fn header(props: &Props) -> Html {
    let sync_title = if !props.online {
        "You are offline: syncing needs the network. Stored mail stays readable."
    } else if props.syncing {
        "A sync is running."
    } else {
        "Check for new mail now"
    };
    let on_account = props.on_account.reform(|e: Event| {
        let value = e.target_unchecked_into::<HtmlSelectElement>().value();
        (!value.is_empty()).then_some(value)
    });
    let on_search = props
        .on_search
        .reform(|e: InputEvent| e.target_unchecked_into::<HtmlInputElement>().value());
    let shown = props.shown.as_deref().unwrap_or("");
    // The shown account's mail, or everyone's when all (or an unknown one) are shown.
    let export: Vec<(String, String)> = match props.accounts.iter().find(|(id, _)| id == shown) {
        Some(one) => vec![one.clone()],
        None => props.accounts.clone(),
    };
    let has_accounts = !props.accounts.is_empty();
    html! {
        <header class="topbar">
            <h1>{ "webpop" }</h1>
            <div role="status" aria-label="Connection" class="connection">
                if !props.online {
                    <span class="offline" title="Stored mail stays readable; sync needs the network.">
                        { "Offline" }
                    </span>
                }
            </div>
            if has_accounts {
                <select aria-label="Account" onchange={on_account}>
                    <option value="" selected={shown.is_empty()}>{ "All accounts" }</option>
                    { for props.accounts.iter().map(|(id, label)| html! {
                        <option value={id.clone()} selected={id == shown}>{ label }</option>
                    }) }
                </select>
                <input type="search" aria-label="Search mail" placeholder="Search (/)"
                    ref={props.search_ref.clone()} oninput={on_search} />
            }
            <div class="tools">
                if has_accounts {
                    <button type="button" class="primary" disabled={!props.online || props.syncing}
                        title={sync_title} onclick={props.on_sync_now.reform(|_| ())}>
                        { "Sync now" }
                    </button>
                    <ExportButton accounts={export} on_status={props.on_status.clone()} />
                }
                if !props.show_form {
                    <button type="button" onclick={props.on_add_account.reform(|_| ())}>
                        { "Add account" }
                    </button>
                }
            </div>
        </header>
    }
}
