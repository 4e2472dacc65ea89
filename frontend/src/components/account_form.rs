//! The "add account" form: fields, defaults from the address, errors in words, and "trust
//! this certificate" for a certificate problem.

use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::state::account::{
    AccountForm, FormAction, KeepRequest, AUTH_CHOICES, EVICTION_WARNING, WEBKIT_EVICTION_WARNING,
};
use crate::state::explain::Problem;

/// What the form shows and reports.
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The form's values.
    pub form: AccountForm,
    /// The last problem, in words.
    pub problem: Option<Problem>,
    /// Signing in right now.
    pub busy: bool,
    /// The demo mailbox is offered.
    pub demo: bool,
    /// Whether there is an account already (then the form can be closed).
    pub can_close: bool,
    /// A field changed.
    pub on_change: Callback<FormAction>,
    /// "Add account".
    pub on_submit: Callback<()>,
    /// "Trust this certificate" with its fingerprint.
    pub on_trust: Callback<String>,
    /// "Try the demo mailbox".
    pub on_demo: Callback<()>,
    /// "Cancel".
    pub on_close: Callback<()>,
}

fn input_value(e: &InputEvent) -> String {
    e.target_unchecked_into::<HtmlInputElement>().value()
}

fn select_value(e: &Event) -> String {
    e.target_unchecked_into::<HtmlSelectElement>().value()
}

/// The form.
#[function_component(AccountFormView)]
pub fn account_form(props: &Props) -> Html {
    let form = &props.form;
    let text = |make: fn(String) -> FormAction| {
        let on_change = props.on_change.clone();
        Callback::from(move |e: InputEvent| on_change.emit(make(input_value(&e))))
    };
    let select = |make: fn(String) -> FormAction| {
        let on_change = props.on_change.clone();
        Callback::from(move |e: Event| on_change.emit(make(select_value(&e))))
    };
    let remember = {
        let on_change = props.on_change.clone();
        Callback::from(move |e: Event| {
            let checked = e.target_unchecked_into::<HtmlInputElement>().checked();
            on_change.emit(FormAction::Remember(checked))
        })
    };
    let accept_eviction = {
        let on_change = props.on_change.clone();
        Callback::from(move |e: Event| {
            let checked = e.target_unchecked_into::<HtmlInputElement>().checked();
            on_change.emit(FormAction::AcceptEviction(checked))
        })
    };
    let ask_to_keep = {
        let on_change = props.on_change.clone();
        Callback::from(move |_| on_change.emit(FormAction::AskToKeep))
    };
    let submit = {
        let on_submit = props.on_submit.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            on_submit.emit(())
        })
    };
    let problem = props.problem.as_ref().map(|p| {
        // The fingerprint in groups of four bytes, to compare one group at a time with the
        // provider's; the text still reads as the whole colon-hex fingerprint.
        let groups = |groups: &[String]| {
            let last = groups.len().saturating_sub(1);
            html! {
                <p class="fingerprint">{ "SHA-256 fingerprint: " }
                    <code class="fingerprint-groups">
                        { for groups.iter().enumerate().map(|(i, g)| html! {
                            <><span class="group">{ g }</span>{ if i < last { ":" } else { "" } }</>
                        }) }
                    </code>
                </p>
            }
        };
        let trust = match p {
            Problem::Certificate {
                fingerprint,
                fingerprint_groups,
                ..
            } => {
                let on_trust = props.on_trust.clone();
                let fp = fingerprint.clone();
                html! {
                    <>
                        { groups(fingerprint_groups) }
                        <button type="button" onclick={move |_| on_trust.emit(fp.clone())}>
                            { "Trust this certificate" }
                        </button>
                    </>
                }
            }
            Problem::CertificateRefused {
                fingerprint_groups, ..
            } => groups(fingerprint_groups),
            _ => html! {},
        };
        html! {
            <div role="alert" class="problem">
                <p>{ p.text() }</p>
                { trust }
            </div>
        }
    });
    let on_demo = props.on_demo.clone();
    let on_close = props.on_close.clone();
    let policy_days = form.policy == "days";
    html! {
        <section class="account-panel">
            if props.demo {
                <div class="demo-offer">
                    <p>{ "New here? A demo mailbox with sample mail runs next to this page." }</p>
                    <button type="button" class="primary" disabled={props.busy}
                        onclick={move |_| on_demo.emit(())}>
                        { "Try the demo mailbox" }
                    </button>
                </div>
            }
            <form aria-label="Add account" onsubmit={submit} novalidate=true>
                <h2>{ "Add a POP3 account" }</h2>
                <label>{ "Email address" }
                    <input type="email" autocomplete="email" value={form.email.clone()}
                        oninput={text(FormAction::Email)} /></label>
                <label>{ "User name" }
                    <input type="text" autocomplete="username" value={form.user.clone()}
                        oninput={text(FormAction::User)} /></label>
                <label>{ "Password" }
                    <input type="password" autocomplete="current-password"
                        value={form.password.clone()} oninput={text(FormAction::Password)} /></label>
                <div class="row">
                    <label class="grow">{ "Server" }
                        <input type="text" value={form.host.clone()} inputmode="url"
                            oninput={text(FormAction::Host)} /></label>
                    <label class="port">{ "Port" }
                        <input type="number" min="1" max="65535" value={form.port.clone()}
                            oninput={text(FormAction::Port)} /></label>
                </div>
                <div class="row">
                    <label class="grow">{ "Security" }
                        <select onchange={select(FormAction::Security)}>
                            <option value="tls" selected={form.security.value() == "tls"}>
                                { "TLS (port 995)" }</option>
                            <option value="stls" selected={form.security.value() == "stls"}>
                                { "STARTTLS (port 110)" }</option>
                        </select></label>
                    <label class="grow">{ "Sign-in method" }
                        <select onchange={select(FormAction::Auth)}>
                            { for AUTH_CHOICES.iter().map(|(value, name)| html! {
                                <option value={*value} selected={form.auth == *value}>{ *name }</option>
                            }) }
                        </select></label>
                </div>
                <div class="row">
                    <label class="grow">{ "On the server" }
                        <select onchange={select(FormAction::Policy)}>
                            <option value="keep" selected={form.policy == "keep"}>
                                { "Leave mail on the server" }</option>
                            <option value="days" selected={policy_days}>
                                { "Delete after some days" }</option>
                            <option value="mirror" selected={form.policy == "mirror"}>
                                { "Delete when deleted here" }</option>
                            <option value="remove" selected={form.policy == "remove"}>
                                { "Remove after download" }</option>
                        </select></label>
                    if policy_days {
                        <label class="port">{ "Days" }
                            <input type="number" min="1" value={form.days.clone()}
                                oninput={text(FormAction::Days)} /></label>
                    }
                </div>
                if form.webkit_eviction && !form.storage_persistent {
                    <p class="notice warning">{ WEBKIT_EVICTION_WARNING }</p>
                }
                if form.needs_eviction_consent() {
                    <p class="notice warning">{ EVICTION_WARNING }</p>
                    <p class="keep-request">
                        <button type="button" onclick={ask_to_keep}
                            disabled={form.keep_request == KeepRequest::Asking}>
                            { "Ask the browser to keep webpop's mail" }
                        </button>
                        if let Some(words) = form.keep_request.words() {
                            { " " }<span role="status">{ words }</span>
                        }
                    </p>
                    <label class="check">
                        <input type="checkbox" checked={form.eviction_accepted}
                            onchange={accept_eviction} />
                        { "I understand: this browser may clear stored mail, and mail deleted \
                           from the server would then be lost" }
                    </label>
                }
                <label>{ "Certificate fingerprint (SHA-256)" }
                    <input type="text" placeholder="optional: pins the server's certificate"
                        spellcheck="false" value={form.fingerprint.clone()}
                        oninput={text(FormAction::Fingerprint)} /></label>
                <label class="check">
                    <input type="checkbox" checked={form.remember} onchange={remember} />
                    { "Remember password on this device" }
                </label>
                if form.remember {
                    <p class="hint">{ "The password is kept in this browser, encrypted with a key \
                        that cannot be copied out of it, so it is never stored in readable form. \
                        Anyone who can use this browser profile can still read your mail, and \
                        malware on this device can still get the password: do not remember it \
                        on a shared or untrusted computer. A refused password is forgotten at once." }</p>
                }
                { for problem }
                <div class="actions">
                    <button type="submit" class="primary" disabled={props.busy}>
                        { if props.busy { "Signing in…" } else { "Add account" } }
                    </button>
                    if props.can_close {
                        <button type="button" onclick={move |_| on_close.emit(())}>{ "Cancel" }</button>
                    }
                </div>
                <p class="hint">{ "Your password and mail go from this page to your mail server \
                    encrypted end to end; the webpop server in between only relays ciphertext." }</p>
            </form>
        </section>
    }
}
