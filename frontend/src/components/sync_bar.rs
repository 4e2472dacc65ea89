//! The sync bar: the running sync's progress with "Cancel sync", or the status line.

use yew::prelude::*;

use crate::state::progress::ProgressView;

/// What the bar shows.
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The running sync's progress, if one runs.
    pub progress: Option<ProgressView>,
    /// The status line, shown when no sync runs.
    pub status: AttrValue,
    /// Say that syncing waits for the network.
    pub offline: bool,
    /// "Cancel sync".
    pub on_cancel: Callback<()>,
}

/// The sync bar.
#[function_component(SyncBar)]
pub fn sync_bar(props: &Props) -> Html {
    match &props.progress {
        Some(view) => {
            let on_cancel = props.on_cancel.clone();
            html! {
                <div class="syncbar">
                    <progress aria-label="Sync progress" max="1"
                        value={format!("{:.4}", view.fraction)} />
                    <span role="status" aria-label="Sync status">{ view.text.clone() }</span>
                    <button type="button" onclick={move |_| on_cancel.emit(())}>
                        { "Cancel sync" }
                    </button>
                </div>
            }
        }
        None => html! {
            <div class="syncbar idle">
                if props.offline {
                    <p class="offline-note">
                        { "You are offline. Your stored mail is readable; syncing resumes when the network is back." }
                    </p>
                }
                <span role="status" aria-label="Sync status">{ props.status.clone() }</span>
            </div>
        },
    }
}
