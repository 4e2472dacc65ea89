//! "Export mailbox (mbox)": the shown account's mail (or every account's) as one mbox file,
//! read from the store in the context.

use webpop_shared::export::{mbox, safe_file_name};
use yew::prelude::*;

use super::store::use_store;
use crate::download;

/// Which mail to export and where to report.
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The accounts to export, as (id, label): the one shown, or all.
    pub accounts: Vec<(String, String)>,
    /// What became of it, in words.
    pub on_status: Callback<String>,
}

/// The export button.
#[function_component(ExportButton)]
pub fn export_button(props: &Props) -> Html {
    let store = use_store();
    let onclick = {
        let (accounts, on_status) = (props.accounts.clone(), props.on_status.clone());
        Callback::from(move |_: MouseEvent| {
            let Some(store) = store.clone() else { return };
            let (accounts, on_status) = (accounts.clone(), on_status.clone());
            let name = match accounts.as_slice() {
                [(_, label)] => format!("{}.mbox", safe_file_name(label, "mail")),
                _ => "webpop.mbox".to_owned(),
            };
            wasm_bindgen_futures::spawn_local(async move {
                let mut all = Vec::new();
                for (id, _) in &accounts {
                    match store.raw_messages(id).await {
                        Ok(mut m) => all.append(&mut m),
                        Err(e) => return on_status.emit(format!("Export failed: {e}")),
                    }
                }
                let bytes = mbox(all.iter().map(Vec::as_slice));
                on_status.emit(match download::save(&bytes, &name) {
                    Ok(()) => format!("Exported {} messages to {name}.", all.len()),
                    Err(_) => "Export failed: the browser refused the download.".into(),
                });
            });
        })
    };
    html! {
        <button type="button" {onclick}>{ "Export mailbox (mbox)" }</button>
    }
}
