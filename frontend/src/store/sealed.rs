//! Remembered passwords, sealed with a device key: AES-256-GCM under a WebCrypto key that is
//! made non-extractable, kept in a database of its own (`<store>-keys`), and never leaves this
//! browser profile.
//!
//! What this protects against: the password is never in the mail store in clear, so a copy
//! of the store's records (an export, a bug that logs a record, someone reading the accounts
//! in the browser's developer tools) does not give it away. What it does not: anyone who can
//! use this browser profile, or malware on the device, can still ask the browser to unseal
//! it. The UI says so where the person chooses to remember it.

use js_sys::{Array, Object, Reflect, Uint8Array};
use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use webpop_shared::secret::Secret;

use super::{finish, js_err, set, StoreError};

const KEYS: &str = "keys";
const DEVICE: &str = "device";

/// The device key, and the crypto object that uses it.
#[derive(Debug)]
pub struct DeviceKey {
    key: web_sys::CryptoKey,
    crypto: web_sys::Crypto,
}

/// WebCrypto, when the page has it: browsers offer `crypto.subtle` only to https:// and
/// localhost pages, so a relay served over plain http from another host cannot remember a
/// password (and says so) rather than failing on `undefined`.
fn crypto() -> Result<web_sys::Crypto, StoreError> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(js_err)?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).unwrap_or(JsValue::UNDEFINED);
    if subtle.is_undefined() || subtle.is_null() {
        return Err(StoreError::Failed(
            "this page cannot encrypt a remembered password: browsers offer that only to \
             https:// pages (and localhost)"
                .into(),
        ));
    }
    crypto
        .dyn_into()
        .map_err(|_| StoreError::Failed("this browser has no WebCrypto".into()))
}

fn aes_gcm(iv: Option<&[u8]>) -> Result<Object, StoreError> {
    let algorithm = Object::new();
    set(&algorithm, "name", &"AES-GCM".into())?;
    match iv {
        Some(iv) => set(&algorithm, "iv", &Uint8Array::from(iv))?,
        None => set(&algorithm, "length", &JsValue::from_f64(256.0))?,
    }
    Ok(algorithm)
}

impl DeviceKey {
    /// The key of the store `name`, made on first use. Two tabs making one at once keep the
    /// first that was saved.
    pub async fn open(name: &str) -> Result<Self, StoreError> {
        let crypto = crypto()?;
        let db = Rexie::builder(&format!("{name}-keys"))
            .version(1)
            .add_object_store(ObjectStore::new(KEYS).key_path("id"))
            .build()
            .await?;
        let key = match Self::saved(&db).await? {
            Some(key) => key,
            None => {
                let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
                let made = crypto
                    .subtle()
                    .generate_key_with_object(&aes_gcm(None)?, false, &usages)
                    .map_err(js_err)?;
                let made: web_sys::CryptoKey =
                    JsFuture::from(made).await.map_err(js_err)?.unchecked_into();
                let record = Object::new();
                set(&record, "id", &DEVICE.into())?;
                set(&record, "key", &made)?;
                let tx = db.transaction(&[KEYS], TransactionMode::ReadWrite)?;
                // `add` fails if another tab saved one first; then that one is used.
                let added = tx.store(KEYS)?.add(&record, None).await.is_ok();
                let _ = finish(tx).await;
                match added {
                    true => made,
                    false => Self::saved(&db)
                        .await?
                        .ok_or_else(|| StoreError::Failed("the device key was not saved".into()))?,
                }
            }
        };
        db.close();
        Ok(Self { key, crypto })
    }

    async fn saved(db: &Rexie) -> Result<Option<web_sys::CryptoKey>, StoreError> {
        let tx = db.transaction(&[KEYS], TransactionMode::ReadOnly)?;
        let record = tx.store(KEYS)?.get(DEVICE.into()).await?;
        Ok(match record {
            Some(r) => Some(
                Reflect::get(&r, &"key".into())
                    .map_err(js_err)?
                    .dyn_into()
                    .map_err(js_err)?,
            ),
            None => None,
        })
    }

    /// `{iv, data}`: `secret` encrypted under the device key with a fresh random IV.
    pub async fn seal(&self, secret: &Secret) -> Result<Object, StoreError> {
        let mut iv = [0u8; 12];
        self.crypto
            .get_random_values_with_u8_array(&mut iv)
            .map_err(js_err)?;
        let sealed = self
            .crypto
            .subtle()
            .encrypt_with_object_and_u8_array(
                &aes_gcm(Some(&iv))?,
                &self.key,
                secret.expose().as_bytes(),
            )
            .map_err(js_err)?;
        let data = JsFuture::from(sealed).await.map_err(js_err)?;
        let out = Object::new();
        set(&out, "iv", &Uint8Array::from(iv.as_slice()))?;
        set(&out, "data", &Uint8Array::new(&data))?;
        Ok(out)
    }

    /// The secret in a `{iv, data}` made by [`DeviceKey::seal`]; `None` if it cannot be
    /// opened (another profile's, or damaged): the person is asked for the password again.
    pub async fn unseal(&self, sealed: &JsValue) -> Option<Secret> {
        let iv = Uint8Array::new(&Reflect::get(sealed, &"iv".into()).ok()?).to_vec();
        let data = Uint8Array::new(&Reflect::get(sealed, &"data".into()).ok()?).to_vec();
        let opened = self
            .crypto
            .subtle()
            .decrypt_with_object_and_u8_array(&aes_gcm(Some(&iv)).ok()?, &self.key, &data)
            .ok()?;
        let plain = Uint8Array::new(&JsFuture::from(opened).await.ok()?).to_vec();
        Secret::password(String::from_utf8(plain).ok()?).ok()
    }
}
