//! "Add account": the form's state, the browser's storage promises it depends on, the demo
//! mailbox, and signing in with the settings before anything is stored. The sign-in runs in the
//! sync worker, which keeps the session: once the account is stored and handed to the app, its
//! first sync runs in that session (a second login at once could meet LOGIN-DELAY).

use std::rc::Rc;

use webpop_shared::secret::Secret;
use yew::prelude::*;

use super::account_form::AccountFormView;
use super::store::{use_store, use_sync};
use crate::model::Account;
use crate::state::account::{AccountForm, FormAction};
use crate::state::explain::Problem;
use crate::store::{self, Persistence};

/// A new account, signed in (its session waits in the sync worker for the first sync) and
/// stored.
pub struct SignedIn {
    /// The account as stored.
    pub account: Account,
    /// Its password, for this session (stored only if the person asked).
    pub password: Secret,
}

/// What the form may do and whom it tells.
#[derive(Properties, PartialEq)]
pub struct Props {
    /// Whether there is an account already (then the form can be closed).
    pub can_close: bool,
    /// Signed in and stored.
    pub on_added: Callback<SignedIn>,
    /// "Cancel".
    pub on_close: Callback<()>,
}

/// The demo mailbox the relay offers (`/demo.json`).
#[derive(Debug, Clone, PartialEq)]
struct Demo {
    host: String,
    port: u16,
    server_name: String,
    user: String,
    password: String,
    fingerprint: String,
}

async fn load_demo() -> Option<Demo> {
    let response = gloo_net::http::Request::get("/demo.json")
        .send()
        .await
        .ok()?;
    if !response.ok() {
        return None;
    }
    let v: serde_json::Value = response.json().await.ok()?;
    Some(Demo {
        host: v["host"].as_str()?.to_owned(),
        port: u16::try_from(v["port"].as_u64()?).ok()?,
        server_name: v["server_name"].as_str()?.to_owned(),
        user: v["user"].as_str()?.to_owned(),
        password: v["password"].as_str()?.to_owned(),
        fingerprint: v["cert_sha256"].as_str()?.to_owned(),
    })
}

/// The form as a yew reducer.
#[derive(Clone, PartialEq)]
struct FormState(AccountForm);

impl Reducible for FormState {
    type Action = FormAction;

    fn reduce(self: Rc<Self>, action: FormAction) -> Rc<Self> {
        let mut form = self.0.clone();
        form.apply(action);
        Rc::new(Self(form))
    }
}

/// The form with its work.
#[function_component(AddAccount)]
pub fn add_account(props: &Props) -> Html {
    let form = use_reducer(|| FormState(AccountForm::new()));
    let problem = use_state(|| None::<Problem>);
    let busy = use_state(|| false);
    let demo = use_state(|| None::<Demo>);
    let store = use_store();
    let client = use_sync();
    {
        let (form, demo) = (form.dispatcher(), demo.setter());
        use_effect_with((), move |()| {
            // Whether the browser already keeps the mail under storage pressure. Only asked,
            // never requested: `persist()` prompts in Firefox, and nothing waits on a prompt. A
            // policy that deletes from the server offers the request, and needs consent
            // without it.
            let webkit = store::webkit_may_evict_unvisited_sites();
            form.dispatch(FormAction::WebKitEviction(webkit));
            let persisted = form.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let persistent = store::persisted().await.is_persistent();
                persisted.dispatch(FormAction::StoragePersistent(persistent));
            });
            wasm_bindgen_futures::spawn_local(async move { demo.set(load_demo().await) });
        });
    }
    // Checks the settings by signing in, then stores the account.
    let submit = {
        let (problem, busy, on_added) = (problem.setter(), busy.setter(), props.on_added.clone());
        move |filled: &AccountForm| {
            let (account, password) = match filled.validate() {
                Ok(v) => v,
                Err(words) => return problem.set(Some(Problem::Other(words))),
            };
            let (Some(store), Some(client)) = (store.clone(), client.clone()) else {
                return;
            };
            busy.set(true);
            problem.set(None);
            let (problem, busy, on_added) = (problem.clone(), busy.clone(), on_added.clone());
            let failed = move |p: Problem| {
                busy.set(false);
                problem.set(Some(p));
            };
            let (signed_in, kept) = (account.clone(), password.clone());
            let worker = Rc::clone(&client);
            client.sign_in(signed_in, kept, move |answer| {
                if let Err(p) = answer {
                    return failed(p);
                }
                wasm_bindgen_futures::spawn_local(async move {
                    if let Err(e) = store.put_account(&account).await {
                        worker.release(&account.id);
                        return failed(Problem::Storage(format!("Saving the account failed: {e}")));
                    }
                    on_added.emit(SignedIn { account, password });
                });
            });
        }
    };
    let submit = Rc::new(submit);
    // A change, and a submit of the form as changed (the reducer's state is read next render).
    let change_and_submit = |form: UseReducerHandle<FormState>| {
        let submit = Rc::clone(&submit);
        move |action: FormAction| {
            let mut filled = form.0.clone();
            filled.apply(action.clone());
            form.dispatch(action);
            submit(&filled);
        }
    };
    let on_change = {
        let form = form.dispatcher();
        Callback::from(move |action: FormAction| {
            if action == FormAction::AskToKeep {
                let form = form.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let answer = match store::request_persistence().await {
                        Persistence::Persistent => Some(true),
                        Persistence::BestEffort => Some(false),
                        Persistence::Unsupported => None,
                    };
                    form.dispatch(FormAction::KeepAnswer(answer));
                });
            }
            form.dispatch(action);
        })
    };
    let on_submit = {
        let (form, submit) = (form.clone(), Rc::clone(&submit));
        Callback::from(move |()| submit(&form.0))
    };
    let on_trust = {
        let trust = change_and_submit(form.clone());
        Callback::from(move |fingerprint| trust(FormAction::Fingerprint(fingerprint)))
    };
    let on_demo = {
        let (fill, demo) = (change_and_submit(form.clone()), (*demo).clone());
        Callback::from(move |()| {
            if let Some(d) = &demo {
                let mut filled =
                    AccountForm::demo(&d.host, d.port, &d.server_name, &d.user, &d.password);
                filled.fingerprint = d.fingerprint.clone();
                fill(FormAction::Fill(Box::new(filled)));
            }
        })
    };
    html! {
        <AccountFormView
            form={form.0.clone()}
            problem={(*problem).clone()}
            busy={*busy}
            demo={demo.is_some()}
            can_close={props.can_close}
            {on_change}
            {on_submit}
            {on_trust}
            {on_demo}
            on_close={props.on_close.clone()}
        />
    }
}
