//! Accounts in the real IndexedDB of headless Chromium: a remembered password is sealed with a
//! non-extractable WebCrypto key, never stored in clear, and one stored in clear by an older
//! version is sealed when read.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use webpop_frontend::state::account::{AccountForm, FormAction};
use webpop_frontend::store::MailStore;

wasm_bindgen_test_configure!(run_in_browser);

const PASSWORD: &str = "correct horse battery staple";

/// Every record of `store` in the database `db`, read with plain IndexedDB.
async fn raw_records(db: &str, store: &str) -> Vec<JsValue> {
    let factory: web_sys::IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
        .unwrap()
        .unchecked_into();
    let open = factory.open(db).unwrap();
    JsFuture::from(request_promise(&open)).await.unwrap();
    let database: web_sys::IdbDatabase = open.result().unwrap().unchecked_into();
    let tx = database.transaction_with_str(store).unwrap();
    let all = tx.object_store(store).unwrap().get_all().unwrap();
    JsFuture::from(request_promise(&all)).await.unwrap();
    database.close();
    Array::from(&all.result().unwrap()).iter().collect()
}

fn request_promise(request: &web_sys::IdbRequest) -> js_sys::Promise {
    let request = request.clone();
    js_sys::Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    })
}

/// Whether `value` (a record, recursively) holds `needle` as a string or as UTF-8 bytes.
fn contains_text(value: &JsValue, needle: &str) -> bool {
    if let Some(s) = value.as_string() {
        return s.contains(needle);
    }
    if let Some(bytes) = value.dyn_ref::<js_sys::Uint8Array>() {
        let bytes = bytes.to_vec();
        return bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    }
    if value.is_object() {
        let object: &Object = value.unchecked_ref();
        return Object::values(object)
            .iter()
            .any(|v| contains_text(&v, needle));
    }
    false
}

fn account(remember: bool) -> webpop_frontend::state::account::Account {
    let mut form = AccountForm::new();
    for action in [
        FormAction::Email("ana@example.org".into()),
        FormAction::Password(PASSWORD.into()),
        FormAction::Remember(remember),
    ] {
        form.apply(action);
    }
    form.validate().unwrap().0
}

#[wasm_bindgen_test]
async fn a_remembered_password_is_never_stored_in_clear() {
    // bug: "Remember password on this device" kept the password in clear in `accounts`.
    let name = "t-accounts-sealed";
    MailStore::delete(name).await.unwrap();
    let store = MailStore::open(name).await.unwrap();
    store.put_account(&account(true)).await.unwrap();
    let records = raw_records(name, "accounts").await;
    assert_eq!(records.len(), 1);
    assert!(
        !contains_text(&records[0], PASSWORD),
        "the stored account holds the password in clear"
    );
    assert!(Reflect::get(&records[0], &"password_sealed".into())
        .unwrap()
        .is_object());
    // The device key cannot be exported.
    let keys = raw_records(&format!("{name}-keys"), "keys").await;
    let key: web_sys::CryptoKey = Reflect::get(&keys[0], &"key".into())
        .unwrap()
        .unchecked_into();
    assert!(!key.extractable());
    // Read back, it is the password; a store opened again (a reload) reads it too.
    let read = store.accounts().await.unwrap();
    assert_eq!(read[0].password.as_ref().unwrap().expose(), PASSWORD);
    store.close();
    let again = MailStore::open(name).await.unwrap();
    let read = again.accounts().await.unwrap();
    assert_eq!(read[0].password.as_ref().unwrap().expose(), PASSWORD);
    // Not remembered: nothing of it is stored.
    again.put_account(&account(false)).await.unwrap();
    let records = raw_records(name, "accounts").await;
    assert!(!contains_text(&records[0], PASSWORD));
    assert!(Reflect::get(&records[0], &"password_sealed".into())
        .unwrap()
        .is_undefined());
    assert_eq!(again.accounts().await.unwrap()[0].password, None);
    again.close();
}

#[wasm_bindgen_test]
async fn a_password_an_older_version_stored_in_clear_is_sealed_when_read() {
    let name = "t-accounts-legacy";
    MailStore::delete(name).await.unwrap();
    let store = MailStore::open(name).await.unwrap();
    store.put_account(&account(false)).await.unwrap();
    store.close();
    // What an older version wrote: the password as a plain field.
    let records = raw_records(name, "accounts").await;
    let old = records[0].clone();
    let factory: web_sys::IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
        .unwrap()
        .unchecked_into();
    let open = factory.open(name).unwrap();
    JsFuture::from(request_promise(&open)).await.unwrap();
    let database: web_sys::IdbDatabase = open.result().unwrap().unchecked_into();
    let tx = database
        .transaction_with_str_and_mode("accounts", web_sys::IdbTransactionMode::Readwrite)
        .unwrap();
    Reflect::set(&old, &"password".into(), &PASSWORD.into()).unwrap();
    let put = tx.object_store("accounts").unwrap().put(&old).unwrap();
    JsFuture::from(request_promise(&put)).await.unwrap();
    database.close();

    let store = MailStore::open(name).await.unwrap();
    let read = store.accounts().await.unwrap();
    assert_eq!(read[0].password.as_ref().unwrap().expose(), PASSWORD);
    let records = raw_records(name, "accounts").await;
    assert!(
        !contains_text(&records[0], PASSWORD),
        "the clear copy is gone"
    );
    store.close();
}
