//! Planning one sync: which messages to fetch, which to delete from the server, and which the
//! server no longer has.
//!
//! Deletion safety lives here as much as in the engine: the plan only ever deletes messages
//! the store has already committed (or that the user deleted locally, when the policy says so),
//! and marks new messages for deletion only after their store transaction commits
//! ([`Plan::delete_after_store`]).

use std::collections::{HashMap, HashSet};

use crate::pop3::{ListEntry, UidEntry};

/// Seconds in a day.
const DAY: u64 = 24 * 60 * 60;

/// What happens to mail on the server after it is downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ServerPolicy {
    /// Leave everything on the server.
    #[default]
    LeaveOnServer,
    /// Delete a message from the server once it was first seen this many days ago.
    DeleteAfterDays(u32),
    /// Delete a message from the server when it is deleted in webpop.
    DeleteWhenDeletedLocally,
    /// Delete a message from the server as soon as it is stored in webpop.
    DeleteAfterDownload,
}

/// What the store holds for one UIDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KnownState {
    /// The whole message is stored.
    Stored,
    /// Only the headers are stored (a large message); the body is fetched on demand.
    HeadersOnly,
    /// The user deleted the message in webpop after its whole body was stored.
    DeletedLocally,
    /// The user deleted the message in webpop while only its headers were stored: its body
    /// was never kept, so only [`ServerPolicy::DeleteWhenDeletedLocally`] (the user asked for
    /// this deletion) may remove it from the server; the policies that delete mail because it
    /// is safely stored here must not.
    DeletedLocallyHeadersOnly,
}

/// The store's record of one UIDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// When webpop first saw the UIDL, in seconds since the Unix epoch.
    pub first_seen: u64,
    /// What is stored.
    pub state: KnownState,
}

/// One message on the server: its number in this session, its UIDL and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Message number (valid for this session only).
    pub msg: u32,
    /// Unique id (stable across sessions).
    pub uid: String,
    /// Size in octets as the server counts them.
    pub size: u64,
}

/// How much of a message to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// The whole message (`RETR`).
    Whole,
    /// The headers only (`TOP n 0`); the body later, on demand.
    HeadersOnly,
}

/// A message to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// The message.
    pub message: Listed,
    /// How much of it.
    pub mode: FetchMode,
}

/// Knobs for [`plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// The account's server policy.
    pub policy: ServerPolicy,
    /// Messages larger than this are fetched headers-first, when the server has `TOP`.
    pub large_message: u64,
    /// Whether the server offers `TOP`.
    pub top: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            policy: ServerPolicy::default(),
            large_message: 2 * 1024 * 1024,
            top: true,
        }
    }
}

/// Why a sync cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The server has no `UIDL`: webpop cannot tell which messages it already has, and guessing
    /// (by content or position) could duplicate or skip mail.
    #[error("this server does not support UIDL, so webpop cannot tell new mail from mail it already has")]
    NoUidl,
    /// Two messages share a UIDL, which RFC 1939 forbids.
    #[error("the server listed the unique id {0:?} twice")]
    DuplicateUid(String),
    /// `UIDL` and `LIST` disagree about which messages exist.
    #[error("the server's UIDL and LIST replies name different messages")]
    ListingMismatch,
}

/// The decisions for one sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Messages to fetch, newest first.
    pub fetch: Vec<Fetch>,
    /// Messages already stored (or deleted locally) that the policy deletes now. Send `DELE`
    /// for them only after the fetches' store transactions, and `QUIT` last.
    pub delete: Vec<Listed>,
    /// Whether each message fetched whole should get `DELE` once its store transaction commits.
    pub delete_after_store: bool,
    /// UIDLs the store knows that the server no longer lists.
    pub gone: Vec<String>,
    /// Bytes to fetch for whole messages (for progress).
    pub bytes: u64,
}

/// Joins a `UIDL` and a `LIST` reply into one listing, in message-number order.
pub fn listing(uids: &[UidEntry], sizes: &[ListEntry]) -> Result<Vec<Listed>, PlanError> {
    if uids.len() != sizes.len() {
        return Err(PlanError::ListingMismatch);
    }
    let sizes: HashMap<u32, u64> = sizes.iter().map(|e| (e.msg, e.size)).collect();
    let mut listed = uids
        .iter()
        .map(|u| {
            sizes
                .get(&u.msg)
                .map(|size| Listed {
                    msg: u.msg,
                    uid: u.uid.clone(),
                    size: *size,
                })
                .ok_or(PlanError::ListingMismatch)
        })
        .collect::<Result<Vec<_>, _>>()?;
    listed.sort_by_key(|l| l.msg);
    if listed.windows(2).any(|w| w[0].msg == w[1].msg) {
        return Err(PlanError::ListingMismatch);
    }
    Ok(listed)
}

/// Plans a sync of `listed` (the server's messages) against `known` (the store's UIDLs) at
/// `now` (seconds since the Unix epoch).
pub fn plan(
    listed: &[Listed],
    known: &HashMap<String, Known>,
    options: PlanOptions,
    now: u64,
) -> Result<Plan, PlanError> {
    let mut seen = HashSet::with_capacity(listed.len());
    for message in listed {
        if !seen.insert(message.uid.as_str()) {
            return Err(PlanError::DuplicateUid(message.uid.clone()));
        }
    }
    let mut result = Plan {
        delete_after_store: options.policy == ServerPolicy::DeleteAfterDownload,
        ..Plan::default()
    };
    for message in listed.iter().rev() {
        match known.get(&message.uid) {
            None => {
                let mode = if options.top && message.size > options.large_message {
                    FetchMode::HeadersOnly
                } else {
                    FetchMode::Whole
                };
                if mode == FetchMode::Whole {
                    result.bytes = result.bytes.saturating_add(message.size);
                }
                result.fetch.push(Fetch {
                    message: message.clone(),
                    mode,
                });
            }
            Some(record) => {
                if deletes(options.policy, record, now) {
                    result.delete.push(message.clone());
                }
            }
        }
    }
    result.delete.sort_by_key(|l| l.msg);
    let mut gone: Vec<String> = known
        .keys()
        .filter(|uid| !seen.contains(uid.as_str()))
        .cloned()
        .collect();
    gone.sort();
    result.gone = gone;
    Ok(result)
}

/// Whether `policy` deletes a message the store already has a record of. A message whose body
/// is not stored (headers only) is never deleted, unless the user deleted it here and the policy
/// is to mirror that.
fn deletes(policy: ServerPolicy, record: &Known, now: u64) -> bool {
    match (policy, record.state) {
        (_, KnownState::HeadersOnly) | (ServerPolicy::LeaveOnServer, _) => false,
        (ServerPolicy::DeleteWhenDeletedLocally, KnownState::DeletedLocallyHeadersOnly) => true,
        (_, KnownState::DeletedLocallyHeadersOnly) => false,
        (ServerPolicy::DeleteAfterDays(days), _) => {
            now.saturating_sub(record.first_seen) >= u64::from(days) * DAY
        }
        (ServerPolicy::DeleteWhenDeletedLocally, state) => state == KnownState::DeletedLocally,
        // Left over from a sync that ended before QUIT: stored, so it may go now.
        (ServerPolicy::DeleteAfterDownload, KnownState::Stored) => true,
        (ServerPolicy::DeleteAfterDownload, KnownState::DeletedLocally) => true,
    }
}

#[cfg(test)]
mod tests;
