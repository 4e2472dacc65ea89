//! The mail store in IndexedDB (through rexie).
//!
//! Schema (version [`VERSION`]):
//! - `accounts`: one record per account, keyed by its id (no password unless the user opts in).
//! - `uids`: per-account sync state, keyed `[account, uid]`: the state and when it was first seen.
//! - `messages`: the raw bytes, stored once, keyed `[account, uid]`.
//! - `summaries`: the message list's row, keyed `[account, uid]`, indexed by date (all accounts,
//!   and per account since version 2). `text` (the start of the body, for search) came later
//!   without a version change: rows without it are searched by their snippet.
//!
//! A batch from the sync engine is written in one transaction: every message together with its
//! UIDL state and summary, so a crash can never separate them.

use std::collections::HashMap;

use js_sys::{Array, Object, Reflect, Uint8Array};
use rexie::{Index, KeyRange, ObjectStore, Rexie, TransactionMode, TransactionResult};
use wasm_bindgen::JsValue;

use crate::model::{Account, PolicyChoice, Row, SecurityChoice};
use webpop_shared::mime::Summary;
use webpop_shared::secret::Secret;
use webpop_shared::sync::{Batch, FetchMode, Known, KnownState, StoreFault};

mod durable;
mod sealed;
mod storage_manager;
pub use durable::Durability;
pub use storage_manager::{
    estimate, persisted, request_persistence, webkit_may_evict_unvisited_sites, Persistence, Space,
};

/// The IndexedDB database the app uses (the page and the sync worker each open it).
pub const DATABASE: &str = "webpop";

/// The schema version this code writes.
pub const VERSION: u32 = 2;

const UIDS: &str = "uids";
const MESSAGES: &str = "messages";
const SUMMARIES: &str = "summaries";
const ACCOUNTS: &str = "accounts";
/// The field of an account record that holds its remembered password, sealed.
const SEALED_PASSWORD: &str = "password_sealed";
/// The `uids` state of a message deleted here whose body was never stored (older versions
/// read it as headers-only, which they never delete from the server).
const DELETED_HEADERS_ONLY: &str = "deleted-headers-only";

/// Why the store failed, in words a person can read: never a `JsValue`, a JavaScript message or
/// a stack (a browser's message can be a JavaScript expression, as WebKit's "undefined is not an
/// object (evaluating 'arg0.estimate')" was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The browser's storage for this site is full.
    #[error("the browser's storage for webpop is full")]
    QuotaExceeded,
    /// The browser aborted a write transaction when it came to commit: nothing of it was
    /// saved. A full store is the usual reason (a quota error at commit time aborts the
    /// transaction without failing any single write).
    #[error("the browser did not save the mail: its storage for webpop is probably full")]
    Aborted,
    /// The mail store was made by a newer webpop (IndexedDB's `VersionError`).
    #[error("the mail store was made by a newer version of webpop: reload the page to get it")]
    NewerVersion,
    /// IndexedDB failed otherwise; the text is ours, naming the browser's error at most.
    #[error("the mail store failed: {0}")]
    Failed(String),
}

impl StoreError {
    /// The error a browser reported, by its name (`QuotaExceededError`, `UnknownError`, ...).
    fn from_browser(name: Option<&str>) -> Self {
        match name {
            Some("QuotaExceededError") => Self::QuotaExceeded,
            Some("AbortError") => Self::Aborted,
            Some("VersionError") => Self::NewerVersion,
            Some(name) => Self::Failed(format!("the browser reported {name}")),
            None => Self::Failed("the browser gave an unexpected answer".into()),
        }
    }
}

/// The name of a JavaScript error or DOMException, when it looks like one (`UnknownError`).
fn error_name(e: &JsValue) -> Option<String> {
    Reflect::get(e, &"name".into())
        .ok()?
        .as_string()
        .filter(|name| is_error_name(name))
}

/// `QuotaExceededError`, `TypeError`, `DataCloneError`: a bare identifier, nothing that could
/// carry a message or a stack.
fn is_error_name(word: &str) -> bool {
    word.len() <= 40
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word.chars().all(|c| c.is_ascii_alphanumeric())
        && (word.ends_with("Error") || word.ends_with("Exception"))
}

/// Waits for `tx` to end; only a committed transaction is a success. (`done()` reports an
/// aborted transaction as a result, not an error: ignoring it counted unsaved mail as saved.)
async fn finish(tx: rexie::Transaction) -> Result<(), StoreError> {
    match tx.done().await? {
        TransactionResult::Committed => Ok(()),
        TransactionResult::Aborted => Err(StoreError::Aborted),
    }
}

impl From<rexie::Error> for StoreError {
    fn from(e: rexie::Error) -> Self {
        // rexie says only "idb error"; idb's text is "<what failed>: <Name>: <message>". Of
        // that, only the browser's error name is kept.
        let text = match &e {
            rexie::Error::IdbError(e) => e.to_string(),
            _ => return Self::Failed("the browser did not finish a transaction".into()),
        };
        let name = text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|word| is_error_name(word));
        Self::from_browser(name)
    }
}

fn range_err(_: impl std::fmt::Debug) -> StoreError {
    StoreError::Failed("a key range could not be made".into())
}

fn js_err(e: JsValue) -> StoreError {
    StoreError::from_browser(error_name(&e).as_deref())
}

/// The object stores of `version` (1 or 2): the upgrade path is "open with the newer list".
fn builder(name: &str, version: u32) -> rexie::RexieBuilder {
    let mut summaries = ObjectStore::new(SUMMARIES)
        .key_path_array(["account", "uid"])
        .add_index(Index::new("by_date", "date"));
    if version >= 2 {
        summaries = summaries.add_index(Index::new_array("by_account_date", ["account", "date"]));
    }
    Rexie::builder(name)
        .version(version)
        .add_object_store(ObjectStore::new(ACCOUNTS).key_path("id"))
        .add_object_store(
            ObjectStore::new(UIDS)
                .key_path_array(["account", "uid"])
                .add_index(Index::new("by_account", "account")),
        )
        .add_object_store(ObjectStore::new(MESSAGES).key_path_array(["account", "uid"]))
        .add_object_store(summaries)
}

/// A summary read back from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSummary {
    /// The UIDL.
    pub uid: String,
    /// The decoded subject.
    pub subject: String,
    /// Date, seconds since the Unix epoch (0 when the message had none).
    pub date: f64,
}

/// The mail store.
#[derive(Debug)]
pub struct MailStore {
    db: Rexie,
    /// A second connection for writes whose durability matters ([`durable`]).
    raw: durable::RawDb,
    /// The database's name (its device key lives in `<name>-keys`).
    name: String,
    /// Seals remembered passwords ([`sealed`]); opened (and made) only when a password is
    /// remembered or read, so a store that never remembers one writes nothing extra.
    device_key: std::cell::RefCell<Option<std::rc::Rc<sealed::DeviceKey>>>,
    /// The durability the browser gave the last mail write (tests read it back).
    last_durability: std::cell::RefCell<Option<String>>,
}

impl MailStore {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Self, StoreError> {
        Self::open_version(name, VERSION).await
    }

    /// Opens `name` with the schema of an older `version` (for upgrade tests).
    pub async fn open_version(name: &str, version: u32) -> Result<Self, StoreError> {
        let db = builder(name, version).build().await?;
        Ok(Self {
            db,
            raw: durable::RawDb::open(name).await?,
            name: name.to_owned(),
            device_key: std::cell::RefCell::new(None),
            last_durability: std::cell::RefCell::new(None),
        })
    }

    /// Deletes the database `name`.
    pub async fn delete(name: &str) -> Result<(), StoreError> {
        Ok(Rexie::delete(name).await?)
    }

    /// The schema version of the open database.
    pub fn version(&self) -> Result<u32, StoreError> {
        Ok(self.db.version()?)
    }

    /// The space this store may still use: the browser's estimate; `None` when the browser
    /// gives none (WebKitGTK has no `storage.estimate()`).
    pub async fn space(&self) -> Option<Space> {
        estimate().await
    }

    /// Closes the database.
    pub fn close(self) {
        self.raw.close();
        self.db.close();
    }

    /// The device key, opened (or made) on first use.
    async fn device_key(&self) -> Result<std::rc::Rc<sealed::DeviceKey>, StoreError> {
        if let Some(key) = self.device_key.borrow().clone() {
            return Ok(key);
        }
        let key = std::rc::Rc::new(sealed::DeviceKey::open(&self.name).await?);
        *self.device_key.borrow_mut() = Some(std::rc::Rc::clone(&key));
        Ok(key)
    }

    /// The durability the browser reported for the last mail write (`"strict"` for a batch a
    /// policy may delete from the server), where the browser tells.
    pub fn last_write_durability(&self) -> Option<String> {
        self.last_durability.borrow().clone()
    }

    /// What the store knows of `account`'s UIDLs.
    pub async fn known(&self, account: &str) -> Result<HashMap<String, Known>, StoreError> {
        let tx = self.db.transaction(&[UIDS], TransactionMode::ReadOnly)?;
        let index = tx.store(UIDS)?.index("by_account")?;
        let range = KeyRange::only(&JsValue::from_str(account)).map_err(range_err)?;
        let mut known = HashMap::new();
        for value in index.get_all(Some(range), None).await? {
            let uid = string(&value, "uid")?;
            let first_seen = number(&value, "first_seen")? as u64;
            let state = match string(&value, "state")?.as_str() {
                "stored" => KnownState::Stored,
                "deleted" => KnownState::DeletedLocally,
                DELETED_HEADERS_ONLY => KnownState::DeletedLocallyHeadersOnly,
                // Anything else (headers only, or a state this version does not know) is never
                // deleted from the server.
                _ => KnownState::HeadersOnly,
            };
            known.insert(uid, Known { first_seen, state });
        }
        Ok(known)
    }

    /// Writes `batch` for `account` in one transaction, as first seen at `now` (seconds since
    /// the Unix epoch), with `summaries[i]` as `batch.messages[i]`'s row. Returns only once the
    /// transaction has committed.
    pub async fn commit(
        &self,
        account: &str,
        batch: &Batch,
        summaries: &[Summary],
        now: u64,
    ) -> Result<(), StoreError> {
        // Build every record first, then issue all puts at once: IndexedDB queues them in the
        // transaction, and waiting for each in turn would cost a task round trip per record.
        let (mut uids, mut messages, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        let empty = Summary::default();
        for (i, m) in batch.messages.iter().enumerate() {
            let state = match m.mode {
                FetchMode::Whole => "stored",
                FetchMode::HeadersOnly => "headers",
            };
            let uid = record(account, &m.uid)?;
            set(&uid, "state", &JsValue::from_str(state))?;
            set(&uid, "first_seen", &JsValue::from_f64(now as f64))?;
            uids.push(JsValue::from(uid));

            let message = record(account, &m.uid)?;
            set(&message, "raw", &Uint8Array::from(m.raw.as_slice()))?;
            messages.push(JsValue::from(message));

            let summary = record(account, &m.uid)?;
            let s = summaries.get(i).unwrap_or(&empty);
            set(&summary, "from", &JsValue::from_str(&s.from))?;
            set(&summary, "to", &JsValue::from_str(&s.to))?;
            set(&summary, "subject", &JsValue::from_str(&s.subject))?;
            let date = s.date.unwrap_or(0) as f64;
            set(&summary, "date", &JsValue::from_f64(date))?;
            set(&summary, "size", &JsValue::from_f64(m.size as f64))?;
            let attachments = JsValue::from_bool(s.has_attachments);
            set(&summary, "has_attachments", &attachments)?;
            set(&summary, "snippet", &JsValue::from_str(&s.snippet))?;
            set(&summary, "text", &JsValue::from_str(&s.text))?;
            set(&summary, "read", &JsValue::FALSE)?;
            set(&summary, "flagged", &JsValue::FALSE)?;
            rows.push(JsValue::from(summary));
        }
        let durability = if batch.durable {
            Durability::Strict
        } else {
            Durability::Default
        };
        // Every put is queued before this returns to the event loop, so the transaction holds
        // the whole batch or nothing: it commits on its own once they are done, even if this
        // future is dropped while waiting.
        let tx = self.raw.writer(&[UIDS, MESSAGES, SUMMARIES], durability)?;
        for (store, values) in [(UIDS, uids), (MESSAGES, messages), (SUMMARIES, rows)] {
            for value in values {
                tx.put(store, &value)?;
            }
        }
        *self.last_durability.borrow_mut() = tx.durability();
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the headers stored for `uid` with the whole message `raw` (a body fetched on
    /// demand), and its row's text with `s`'s, in one transaction.
    pub async fn store_whole(
        &self,
        account: &str,
        uid: &str,
        raw: &[u8],
        s: &Summary,
        durability: Durability,
    ) -> Result<(), StoreError> {
        // Read what is there first; the write is then one transaction of puts only.
        let key: JsValue = Array::of2(&account.into(), &uid.into()).into();
        let (state, summary) = {
            let tx = self
                .db
                .transaction(&[UIDS, SUMMARIES], TransactionMode::ReadOnly)?;
            let state = tx
                .store(UIDS)?
                .get(key.clone())
                .await?
                .ok_or_else(|| StoreError::Failed(format!("no record of {uid}")))?;
            let summary = tx.store(SUMMARIES)?.get(key).await?;
            (state, summary)
        };
        set(&state, "state", &JsValue::from_str("stored"))?;
        let message = record(account, uid)?;
        set(&message, "raw", &Uint8Array::from(raw))?;
        if let Some(summary) = &summary {
            set(
                summary,
                "has_attachments",
                &JsValue::from_bool(s.has_attachments),
            )?;
            set(summary, "snippet", &JsValue::from_str(&s.snippet))?;
            set(summary, "text", &JsValue::from_str(&s.text))?;
        }
        let tx = self.raw.writer(&[UIDS, MESSAGES, SUMMARIES], durability)?;
        tx.put(UIDS, &state)?;
        tx.put(MESSAGES, &message)?;
        if let Some(summary) = &summary {
            tx.put(SUMMARIES, summary)?;
        }
        *self.last_durability.borrow_mut() = tx.durability();
        tx.commit().await
    }

    /// The states of `account`'s UIDLs (for tests and the UI's "download body" button).
    pub async fn states(&self, account: &str) -> Result<Vec<(String, KnownState)>, StoreError> {
        let mut out: Vec<(String, KnownState)> = self
            .known(account)
            .await?
            .into_iter()
            .map(|(uid, k)| (uid, k.state))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The raw bytes of every stored message of `account`.
    pub async fn raw_messages(&self, account: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self
            .db
            .transaction(&[MESSAGES], TransactionMode::ReadOnly)?;
        let range = account_range(account)?;
        let mut out = Vec::new();
        for value in tx.store(MESSAGES)?.get_all(Some(range), None).await? {
            let raw = Reflect::get(&value, &"raw".into()).map_err(js_err)?;
            out.push(Uint8Array::new(&raw).to_vec());
        }
        Ok(out)
    }

    /// The summaries of `account`, newest first.
    pub async fn summaries(&self, account: &str) -> Result<Vec<StoredSummary>, StoreError> {
        let tx = self
            .db
            .transaction(&[SUMMARIES], TransactionMode::ReadOnly)?;
        let index = tx.store(SUMMARIES)?.index("by_account_date")?;
        let lower = Array::of2(&account.into(), &JsValue::from_f64(f64::MIN));
        let upper = Array::of2(&account.into(), &JsValue::from_f64(f64::MAX));
        let range = KeyRange::bound(&lower, &upper, None, None).map_err(range_err)?;
        let mut out = Vec::new();
        for value in index.get_all(Some(range), None).await? {
            out.push(StoredSummary {
                uid: string(&value, "uid")?,
                subject: string(&value, "subject")?,
                date: number(&value, "date")?,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Marks `uid` deleted by the user (its UIDL state stays, so it is not fetched again).
    pub async fn mark_deleted(&self, account: &str, uid: &str) -> Result<(), StoreError> {
        let tx = self
            .db
            .transaction(&[UIDS, MESSAGES, SUMMARIES], TransactionMode::ReadWrite)?;
        let key: JsValue = Array::of2(&account.into(), &uid.into()).into();
        let uids = tx.store(UIDS)?;
        if let Some(value) = uids.get(key.clone()).await? {
            // A message whose body was never stored must stay distinguishable: only "delete
            // on server when deleted here" may remove it from the server.
            let deleted = if string(&value, "state")? == "headers" {
                DELETED_HEADERS_ONLY
            } else {
                "deleted"
            };
            set(&value, "state", &JsValue::from_str(deleted))?;
            uids.put(&value, None).await?;
        }
        tx.store(MESSAGES)?.delete(key.clone()).await?;
        tx.store(SUMMARIES)?.delete(key).await?;
        finish(tx).await?;
        Ok(())
    }
}

impl MailStore {
    /// Every account, in the order they were added.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let tx = self
            .db
            .transaction(&[ACCOUNTS], TransactionMode::ReadOnly)?;
        let records = tx.store(ACCOUNTS)?.get_all(None, None).await?;
        let mut out = Vec::new();
        for value in records {
            // A record this version cannot read is skipped, not fatal: the rest still load.
            let Ok(mut account) = account_from_js(&value) else {
                continue;
            };
            let sealed = Reflect::get(&value, &SEALED_PASSWORD.into()).map_err(js_err)?;
            let clear = Reflect::get(&value, &"password".into()).map_err(js_err)?;
            if let Some(sealed) = Some(sealed).filter(|v| v.is_object()) {
                account.password = self.device_key().await?.unseal(&sealed).await;
            } else if let Some(clear) = clear.as_string() {
                // Saved in clear by an older version: sealed now, and the clear copy goes.
                account.password = Secret::password(clear).ok();
                self.put_account(&account).await?;
            }
            out.push(account);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Adds or replaces an account.
    /// A remembered password is sealed with the device key, never stored in clear.
    pub async fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let record = account_to_js(account)?;
        if let Some(password) = &account.password {
            set(
                &record,
                SEALED_PASSWORD,
                &self.device_key().await?.seal(password).await?.into(),
            )?;
        }
        let tx = self
            .db
            .transaction(&[ACCOUNTS], TransactionMode::ReadWrite)?;
        tx.store(ACCOUNTS)?.put(&record, None).await?;
        finish(tx).await?;
        Ok(())
    }

    /// Up to `n` list rows of all accounts in key order, starting after `after` (the key a
    /// previous page returned), and the key to go on from (`None` once the end is reached).
    /// Each page is its own read, so a large inbox loads in steps the page can breathe between.
    pub async fn rows_page(
        &self,
        after: Option<&JsValue>,
        n: u32,
    ) -> Result<(Vec<Row>, Option<JsValue>), StoreError> {
        let tx = self
            .db
            .transaction(&[SUMMARIES], TransactionMode::ReadOnly)?;
        let range = after
            .map(|key| KeyRange::lower_bound(key, Some(true)))
            .transpose()
            .map_err(range_err)?;
        let values = tx.store(SUMMARIES)?.get_all(range, Some(n)).await?;
        let next = match values.last() {
            Some(last) if values.len() >= n as usize => {
                let field = |name: &str| Reflect::get(last, &name.into()).map_err(js_err);
                Some(Array::of2(&field("account")?, &field("uid")?).into())
            }
            _ => None,
        };
        let keys = RowKeys::new();
        let rows = values
            .iter()
            .map(|value| keys.row(value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((rows, next))
    }

    /// The newest `n` list rows of all accounts (a first screenful while the rest load).
    pub async fn newest_rows(&self, n: u32) -> Result<Vec<Row>, StoreError> {
        let tx = self
            .db
            .transaction(&[SUMMARIES], TransactionMode::ReadOnly)?;
        let index = tx.store(SUMMARIES)?.index("by_date")?;
        let keys = RowKeys::new();
        let mut rows = Vec::new();
        for (_, value) in index
            .scan(None, Some(n), None, Some(rexie::Direction::Prev))
            .await?
        {
            rows.push(keys.row(&value)?);
        }
        Ok(rows)
    }

    /// The raw message and whether only its headers are stored.
    pub async fn message(
        &self,
        account: &str,
        uid: &str,
    ) -> Result<Option<(Vec<u8>, bool)>, StoreError> {
        let tx = self
            .db
            .transaction(&[UIDS, MESSAGES], TransactionMode::ReadOnly)?;
        let key: JsValue = Array::of2(&account.into(), &uid.into()).into();
        let Some(message) = tx.store(MESSAGES)?.get(key.clone()).await? else {
            return Ok(None);
        };
        let raw = Reflect::get(&message, &"raw".into()).map_err(js_err)?;
        let headers_only = match tx.store(UIDS)?.get(key).await? {
            Some(state) => string(&state, "state")? == "headers",
            None => false,
        };
        Ok(Some((Uint8Array::new(&raw).to_vec(), headers_only)))
    }

    /// Sets the read flag of a message.
    pub async fn set_read(&self, account: &str, uid: &str, read: bool) -> Result<(), StoreError> {
        let tx = self
            .db
            .transaction(&[SUMMARIES], TransactionMode::ReadWrite)?;
        let key: JsValue = Array::of2(&account.into(), &uid.into()).into();
        let summaries = tx.store(SUMMARIES)?;
        if let Some(summary) = summaries.get(key).await? {
            set(&summary, "read", &JsValue::from_bool(read))?;
            summaries.put(&summary, None).await?;
        }
        finish(tx).await?;
        Ok(())
    }
}

/// Property names as JS strings, made once for a whole list rather than per row.
struct RowKeys([JsValue; 10]);

impl RowKeys {
    fn new() -> Self {
        Self(
            [
                "account",
                "uid",
                "from",
                "subject",
                "date",
                "size",
                "has_attachments",
                "read",
                "snippet",
                "text",
            ]
            .map(JsValue::from_str),
        )
    }

    fn row(&self, o: &JsValue) -> Result<Row, StoreError> {
        let get = |i: usize| Reflect::get(o, &self.0[i]).map_err(js_err);
        let text = |i: usize| get(i).map(|v| v.as_string().unwrap_or_default());
        Ok(Row {
            account: text(0)?,
            uid: text(1)?,
            from: text(2)?,
            subject: text(3)?,
            date: get(4)?.as_f64().unwrap_or(0.0) as i64,
            size: get(5)?.as_f64().unwrap_or(0.0) as u64,
            has_attachments: get(6)?.is_truthy(),
            read: get(7)?.is_truthy(),
            snippet: text(8)?,
            search: text(9)?,
        })
    }
}

fn account_to_js(a: &Account) -> Result<Object, StoreError> {
    let o = Object::new();
    let opt = |v: Option<&str>| v.map_or(JsValue::NULL, JsValue::from_str);
    set(&o, "id", &a.id.as_str().into())?;
    set(&o, "email", &a.email.as_str().into())?;
    set(&o, "user", &a.user.as_str().into())?;
    set(&o, "host", &a.host.as_str().into())?;
    set(&o, "port", &JsValue::from_f64(f64::from(a.port)))?;
    set(&o, "security", &a.security.value().into())?;
    set(&o, "server_name", &a.server_name.as_str().into())?;
    set(&o, "auth", &a.auth.as_str().into())?;
    set(&o, "cert_sha256", &opt(a.cert_sha256.as_deref()))?;
    set(&o, "policy", &a.policy.value().into())?;
    set(&o, "days", &JsValue::from_f64(f64::from(a.policy.days())))?;
    let last = a
        .last_sync
        .map_or(JsValue::NULL, |t| JsValue::from_f64(t as f64));
    set(&o, "last_sync", &last)?;
    Ok(o)
}

fn account_from_js(o: &JsValue) -> Result<Account, StoreError> {
    let opt = |key: &str| -> Result<Option<String>, StoreError> {
        Ok(Reflect::get(o, &JsValue::from_str(key))
            .map_err(js_err)?
            .as_string())
    };
    let num = |key: &str| -> Result<Option<f64>, StoreError> {
        Ok(Reflect::get(o, &JsValue::from_str(key))
            .map_err(js_err)?
            .as_f64())
    };
    let host = string(o, "host")?;
    let days = num("days")?.unwrap_or(0.0) as u32;
    Ok(Account {
        id: string(o, "id")?,
        email: opt("email")?.unwrap_or_default(),
        user: string(o, "user")?,
        server_name: opt("server_name")?.unwrap_or_else(|| host.clone()),
        host,
        port: num("port")?.unwrap_or(995.0) as u16,
        security: opt("security")?
            .and_then(|s| SecurityChoice::from_value(&s))
            .unwrap_or_default(),
        auth: opt("auth")?.unwrap_or_else(|| "auto".into()),
        cert_sha256: opt("cert_sha256")?,
        policy: opt("policy")?
            .and_then(|p| PolicyChoice::from_value(&p, days))
            .unwrap_or_default(),
        // Unsealed by `MailStore::accounts` (see `sealed`).
        password: None,
        last_sync: num("last_sync")?.map(|t| t as u64),
    })
}

/// A new object `{account, uid}`.
fn record(account: &str, uid: &str) -> Result<Object, StoreError> {
    let o = Object::new();
    set(&o, "account", &JsValue::from_str(account))?;
    set(&o, "uid", &JsValue::from_str(uid))?;
    Ok(o)
}

fn set(o: &JsValue, key: &str, value: &JsValue) -> Result<(), StoreError> {
    Reflect::set(o, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(js_err)
}

fn string(o: &JsValue, key: &str) -> Result<String, StoreError> {
    Reflect::get(o, &JsValue::from_str(key))
        .map_err(js_err)?
        .as_string()
        .ok_or_else(|| StoreError::Failed(format!("record without {key}")))
}

fn number(o: &JsValue, key: &str) -> Result<f64, StoreError> {
    Reflect::get(o, &JsValue::from_str(key))
        .map_err(js_err)?
        .as_f64()
        .ok_or_else(|| StoreError::Failed(format!("record without {key}")))
}

/// Every key `[account, *]`.
fn account_range(account: &str) -> Result<KeyRange, StoreError> {
    let lower = Array::of2(&account.into(), &JsValue::from_str(""));
    let upper = Array::of2(&account.into(), &JsValue::from_str("\u{ffff}"));
    KeyRange::bound(&lower, &upper, None, None).map_err(range_err)
}

/// The sync host ([`webpop_shared::sync::host`]) writes into IndexedDB through this.
impl webpop_shared::sync::host::MailStore for MailStore {
    type Error = StoreError;

    async fn known(&self, account: &str) -> Result<HashMap<String, Known>, StoreError> {
        MailStore::known(self, account).await
    }

    async fn commit(
        &self,
        account: &str,
        batch: &Batch,
        summaries: &[Summary],
        now: u64,
    ) -> Result<(), StoreError> {
        MailStore::commit(self, account, batch, summaries, now).await
    }

    async fn space(&self) -> Option<u64> {
        MailStore::space(self).await.map(|s| s.available() as u64)
    }

    async fn store_whole(
        &self,
        account: &str,
        uid: &str,
        raw: &[u8],
        summary: &Summary,
        durable: bool,
    ) -> Result<(), StoreError> {
        let durability = if durable {
            Durability::Strict
        } else {
            Durability::Default
        };
        MailStore::store_whole(self, account, uid, raw, summary, durability).await
    }

    fn fault(&self, error: &StoreError) -> StoreFault {
        match error {
            // A quota error at commit time aborts the transaction: the store is full either way.
            StoreError::QuotaExceeded | StoreError::Aborted => StoreFault::Full,
            _ => StoreFault::Failed,
        }
    }
}
