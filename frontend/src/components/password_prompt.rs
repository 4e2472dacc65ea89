//! The password prompt, for an account whose password is not remembered (or was refused). The
//! typed password stays in this component until "Sync"; "Not now" drops it.

use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Whose password, and what to do with it.
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The account, as shown.
    pub label: AttrValue,
    /// "Sync", with the typed password.
    pub on_submit: Callback<String>,
    /// "Not now".
    pub on_dismiss: Callback<()>,
}

/// The prompt.
#[function_component(PasswordPrompt)]
pub fn password_prompt(props: &Props) -> Html {
    let draft = use_mut_ref(String::new);
    let oninput = {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| {
            *draft.borrow_mut() = e.target_unchecked_into::<HtmlInputElement>().value();
        })
    };
    let onsubmit = {
        let on_submit = props.on_submit.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            on_submit.emit(std::mem::take(&mut *draft.borrow_mut()));
        })
    };
    let on_dismiss = props.on_dismiss.clone();
    html! {
        <form class="password-prompt" aria-label="Password" {onsubmit}>
            <label>{ format!("Password for {}", props.label) }
                <input type="password" autocomplete="current-password" {oninput} />
            </label>
            <button type="submit" class="primary">{ "Sync" }</button>
            <button type="button" onclick={move |_| on_dismiss.emit(())}>{ "Not now" }</button>
        </form>
    }
}
