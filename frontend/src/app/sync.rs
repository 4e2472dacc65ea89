//! The root's side of the sync queue: it answers the queue's questions about accounts and
//! passwords, and carries out the effects the queue returns (start a sync, stop it, forget a
//! refused password, keep the time of the last sync, fetch a whole message) — the network work
//! through the sync worker ([`crate::worker::client`]), whose events come back here.

use std::collections::HashMap;

use webpop_shared::secret::Secret;
use yew::prelude::*;

use super::{App, ListMsg, Msg};
use crate::mail;
use crate::model::Account;
use crate::state::inbox::Action;
use crate::state::scheduler::{Roster, SyncAction, SyncEffect};
use crate::worker::message::{outcome_from_wire, Event};

/// The accounts and passwords, as the sync queue asks about them.
struct Known<'a> {
    accounts: &'a [Account],
    passwords: &'a HashMap<String, Secret>,
}

impl Roster for Known<'_> {
    fn accounts(&self) -> Vec<String> {
        self.accounts.iter().map(|a| a.id.clone()).collect()
    }
    fn label(&self, id: &str) -> Option<&str> {
        self.accounts
            .iter()
            .find(|a| a.id == id)
            .map(Account::label)
    }
    fn has_password(&self, id: &str) -> bool {
        self.passwords.contains_key(id)
            || self
                .accounts
                .iter()
                .any(|a| a.id == id && a.password.is_some())
    }
}

impl App {
    /// Saves `account` as it is now (in the background; a failure only loses a timestamp or
    /// keeps a refused password that will be refused again).
    fn save(&self, account: Account) {
        if let Some(store) = self.store.clone() {
            wasm_bindgen_futures::spawn_local(async move {
                let _ = store.put_account(&account).await;
            });
        }
    }

    /// Hands `action` to the sync queue and carries out what it asks; true when it asked
    /// anything.
    pub(super) fn sync(&mut self, ctx: &Context<Self>, action: SyncAction) -> bool {
        let known = Known {
            accounts: &self.accounts,
            passwords: &self.passwords,
        };
        let effects = self.syncs.apply(action, mail::now_secs(), &known);
        let any = !effects.is_empty();
        for effect in effects {
            self.carry_out(ctx, effect);
        }
        any
    }

    /// Turns an event of the sync worker into what the queue and the list take; true when the
    /// page changes.
    pub(super) fn worker_event(&mut self, ctx: &Context<Self>, event: Event) -> bool {
        let action = match event {
            Event::Progress { account, progress } => SyncAction::Progress {
                account,
                progress: progress.into(),
                now_ms: js_sys::Date::now(),
            },
            Event::Done { account, outcome } => SyncAction::Done {
                account,
                outcome: outcome_from_wire(outcome),
            },
            Event::Fetched {
                account,
                uid,
                login_delay,
            } => {
                if let Some(store) = self.store.clone() {
                    let (id, uid) = (account.clone(), uid);
                    ctx.link().send_future(async move {
                        let message = store.message(&id, &uid).await.ok().flatten();
                        Msg::List(ListMsg::MessageLoaded(id, uid, message))
                    });
                }
                SyncAction::LoggedIn {
                    account,
                    login_delay: login_delay.map(Into::into),
                }
            }
            Event::FetchFailed {
                account,
                problem,
                failure,
            } => SyncAction::Failed {
                account,
                problem,
                failure: failure.into(),
            },
            Event::Stored { rows, .. } => {
                self.inbox.apply(Action::Arrived(rows));
                return true;
            }
            // Answers to sign-ins go to the form; the worker's Ready stays in the client.
            _ => return false,
        };
        self.sync_message(ctx, action)
    }

    fn carry_out(&mut self, ctx: &Context<Self>, effect: SyncEffect) {
        let _ = ctx;
        match effect {
            SyncEffect::Status(text) => self.status = text,
            SyncEffect::Start(id) => {
                let account = self.account(&id).cloned();
                let password = account.as_ref().and_then(|a| self.password(a));
                // The queue starts only accounts it was told have a password.
                if let (Some(account), Some(password)) = (account, password) {
                    self.syncing = Some(id);
                    self.client.sync(account, password);
                }
            }
            SyncEffect::CancelRun => {
                if let Some(id) = &self.syncing {
                    self.client.cancel(id);
                }
            }
            SyncEffect::ForgetPassword(id) => {
                self.passwords.remove(&id);
                let account = self.accounts.iter_mut().find(|a| a.id == id);
                if let Some(account) = account {
                    if account.password.take().is_some() {
                        let saved = account.clone();
                        self.save(saved);
                    }
                }
            }
            SyncEffect::Synced { account, at } => {
                if let Some(account) = self.accounts.iter_mut().find(|a| a.id == account) {
                    account.last_sync = Some(at);
                    let saved = account.clone();
                    self.save(saved);
                }
            }
            SyncEffect::Fetch(id) => {
                let account = self.account(&id).cloned();
                let password = account.as_ref().and_then(|a| self.password(a));
                let uid = self.opened.as_ref().map(|o| o.uid.clone());
                if let (Some(account), Some(password), Some(uid)) = (account, password, uid) {
                    self.client.fetch_whole(account, password, uid);
                }
            }
        }
    }
}
