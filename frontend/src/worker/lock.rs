//! One sync per account across the tabs of a browser profile.
//!
//! - **Web Locks**, where the browser has `navigator.locks`: the page asks for
//!   `navigator.locks.request("webpop-sync:<account>", {ifAvailable: true}, …)` and holds the
//!   lock until its sync reports back. The browser lets go of a lock whose tab closed or
//!   crashed, so a killed tab never blocks another.
//! - **Fallback**, where it has not: a lease in `localStorage` (`webpop-sync-lease:<account>`
//!   holds `"<tab> <expiry ms>"`), renewed every [`LEASE_MS`]`/3` while the sync runs, so a
//!   crashed tab's lease runs out within [`LEASE_MS`]. It is best effort: two tabs starting within
//!   the same few milliseconds can both win. The server's own mailbox lock (`[IN-USE]`) still
//!   keeps the second session out, and that is retried later.
//! - Without either (no `localStorage` either), every tab syncs on its own, as the server allows.

use gloo_timers::callback::Interval;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;

/// How long a fallback lease lasts without renewal.
pub const LEASE_MS: f64 = 30_000.0;

/// The Web Lock's name for `account`'s sync.
pub fn lock_name(account: &str) -> String {
    format!("webpop-sync:{account}")
}

/// Which way this browser keeps one sync per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `navigator.locks`.
    WebLocks,
    /// The `localStorage` lease.
    Lease,
    /// Neither: every tab syncs on its own.
    None,
}

/// The way this browser offers.
pub fn kind() -> Kind {
    if locks().is_some() {
        Kind::WebLocks
    } else if storage().is_some() {
        Kind::Lease
    } else {
        Kind::None
    }
}

fn locks() -> Option<JsValue> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    let request = Reflect::get(&locks, &"request".into()).ok()?;
    request.is_function().then_some(locks)
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// An account's sync lock, held until dropped.
#[derive(Debug)]
pub struct SyncLock {
    /// Resolves the promise the Web Lock's callback returned: the browser then releases it.
    release: Option<Function>,
    /// The fallback lease, given up when the lock is dropped.
    _lease: Option<Lease>,
}

impl Drop for SyncLock {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.call0(&JsValue::NULL);
        }
    }
}

/// Takes `account`'s sync lock for tab `tab` if no other tab holds it; `None` when one does.
pub async fn acquire(tab: &str, account: &str) -> Option<SyncLock> {
    match kind() {
        Kind::WebLocks => match web_lock(account).await {
            Ok(lock) => lock,
            // The browser refused the request itself (an opaque origin): go on without.
            Err(()) => Some(SyncLock {
                release: None,
                _lease: None,
            }),
        },
        Kind::Lease => Lease::take(tab, account).await.map(|lease| SyncLock {
            release: None,
            _lease: Some(lease),
        }),
        Kind::None => Some(SyncLock {
            release: None,
            _lease: None,
        }),
    }
}

async fn web_lock(account: &str) -> Result<Option<SyncLock>, ()> {
    let locks = locks().ok_or(())?;
    let request: Function = Reflect::get(&locks, &"request".into())
        .map_err(|_| ())?
        .dyn_into()
        .map_err(|_| ())?;
    let mut release = None;
    let held = Promise::new(&mut |resolve, _| release = Some(resolve));
    let mut granted = None;
    let answered = Promise::new(&mut |resolve, _| granted = Some(resolve));
    let (Some(release), Some(granted)) = (release, granted) else {
        return Err(());
    };
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let got = !lock.is_null() && !lock.is_undefined();
        let _ = granted.call1(&JsValue::NULL, &JsValue::from_bool(got));
        if got {
            held.into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let options = Object::new();
    Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE).map_err(|_| ())?;
    // The request's own promise rejects only when the callback throws, which it never does.
    request
        .call3(
            &locks,
            &JsValue::from_str(&lock_name(account)),
            &options,
            &callback,
        )
        .map_err(|_| ())?;
    let got = JsFuture::from(answered).await.map_err(|_| ())?;
    Ok(got.as_bool().unwrap_or(false).then(|| SyncLock {
        release: Some(release),
        _lease: None,
    }))
}

/// The fallback: a lease in `localStorage`.
#[derive(Debug)]
struct Lease {
    key: String,
    tab: String,
    _renew: Interval,
}

fn lease_key(account: &str) -> String {
    format!("webpop-sync-lease:{account}")
}

/// `(tab, expiry)` of a lease's value.
fn parse_lease(value: &str) -> Option<(&str, f64)> {
    let (tab, expiry) = value.split_once(' ')?;
    Some((tab, expiry.parse().ok()?))
}

/// Whether `value` (a lease, if any) leaves the account free for `tab` at `now`.
pub fn lease_free_for(value: Option<&str>, tab: &str, now: f64) -> bool {
    match value.and_then(parse_lease) {
        Some((holder, expiry)) => holder == tab || expiry <= now,
        None => true,
    }
}

fn write_lease(storage: &web_sys::Storage, key: &str, tab: &str) {
    let value = format!("{tab} {}", js_sys::Date::now() + LEASE_MS);
    let _ = storage.set_item(key, &value);
}

impl Lease {
    async fn take(tab: &str, account: &str) -> Option<Self> {
        let storage = storage()?;
        let key = lease_key(account);
        let now = js_sys::Date::now();
        if !lease_free_for(storage.get_item(&key).ok()?.as_deref(), tab, now) {
            return None;
        }
        write_lease(&storage, &key, tab);
        // Another tab may have written at the same moment: the last write wins.
        gloo_timers::future::TimeoutFuture::new(50).await;
        let value = storage.get_item(&key).ok()??;
        if parse_lease(&value).map(|(holder, _)| holder) != Some(tab) {
            return None;
        }
        let renew = {
            let (key, tab) = (key.clone(), tab.to_owned());
            Interval::new((LEASE_MS / 3.0) as u32, move || {
                if let Some(storage) = storage_if_ours(&key, &tab) {
                    write_lease(&storage, &key, &tab);
                }
            })
        };
        Some(Self {
            key,
            tab: tab.to_owned(),
            _renew: renew,
        })
    }
}

/// The storage, when the lease under `key` is still `tab`'s.
fn storage_if_ours(key: &str, tab: &str) -> Option<web_sys::Storage> {
    let storage = storage()?;
    let value = storage.get_item(key).ok()??;
    (parse_lease(&value)?.0 == tab).then_some(storage)
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(storage) = storage_if_ours(&self.key, &self.tab) {
            let _ = storage.remove_item(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_held_by_another_tab_keeps_the_account_until_it_expires() {
        let lease = Some("tab-b 2000");
        assert!(!lease_free_for(lease, "tab-a", 1_999.0));
        assert!(lease_free_for(lease, "tab-a", 2_000.0));
        assert!(lease_free_for(lease, "tab-b", 1_000.0));
        assert!(lease_free_for(None, "tab-a", 0.0));
        assert!(lease_free_for(Some("garbage"), "tab-a", 0.0));
    }

    #[test]
    fn the_lock_is_named_per_account() {
        assert_eq!(lock_name("u@h:995"), "webpop-sync:u@h:995");
    }
}
