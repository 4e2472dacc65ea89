//! Errors in words for the person at the screen: wrong password, the relay refused, a
//! certificate problem (with its fingerprint, so it can be trusted), full storage.

use webpop_shared::pop3::RespCode;
use webpop_shared::relay::RelayError;
use webpop_shared::session::SessionError;
use webpop_shared::sync::SyncError;

use crate::net::ConnectionError;
use crate::store::StoreError;
use crate::sync::SyncFailure;

/// A problem as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The server refused the user name or password.
    WrongPassword(String),
    /// The relay refused or lost the connection.
    Relay(String),
    /// The server's certificate was refused; trusting `fingerprint` would let it through.
    Certificate {
        /// What is wrong, in words.
        text: String,
        /// Its SHA-256 fingerprint, colon-hex.
        fingerprint: String,
    },
    /// The browser's storage is full.
    Storage(String),
    /// Try again later (the mailbox is busy, or the server asks to wait).
    Later(String),
    /// Anything else.
    Other(String),
}

impl Problem {
    /// The sentence shown.
    pub fn text(&self) -> &str {
        match self {
            Self::WrongPassword(t)
            | Self::Relay(t)
            | Self::Storage(t)
            | Self::Later(t)
            | Self::Other(t) => t,
            Self::Certificate { text, .. } => text,
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The words for a failed connection or login.
pub fn connection(e: &ConnectionError) -> Problem {
    match e {
        ConnectionError::Rejected { verb, error } if *verb == "login" => match &error.code {
            Some(RespCode::InUse) => Problem::Later(
                "The mailbox is in use by another mail program; webpop will try again later."
                    .into(),
            ),
            Some(RespCode::LoginDelay) => Problem::Later(
                "The server asks to wait longer between logins; webpop will try again later."
                    .into(),
            ),
            Some(RespCode::SysTemp) => Problem::Later(format!(
                "The server has a temporary problem ({}); webpop will try again later.",
                error.text
            )),
            Some(RespCode::SysPerm) => Problem::Other(format!(
                "The server reports a permanent problem with this mailbox: {}",
                error.text
            )),
            _ => Problem::WrongPassword(format!(
                "Wrong user name or password: the server refused to log in ({}).",
                error.text
            )),
        },
        ConnectionError::Relay(relay) => Problem::Relay(match relay {
            RelayError::Forbidden(_) | RelayError::Unauthorized => {
                format!("The relay refused the connection: {relay}.")
            }
            _ => format!("{}.", capitalized(&relay.to_string())),
        }),
        ConnectionError::Stalled => Problem::Later(format!(
            "{}; webpop will try again later. Nothing was deleted.",
            capitalized(&e.to_string())
        )),
        ConnectionError::Transport | ConnectionError::Open(_) => Problem::Relay(
            "Could not reach the relay (the webpop server): check your network connection.".into(),
        ),
        ConnectionError::Session(SessionError::Certificate {
            problem,
            fingerprint,
        }) => Problem::Certificate {
            text: format!(
                "Certificate problem: the server's certificate was refused because {problem}. \
                 Trust it only if its fingerprint is the one your provider publishes."
            ),
            fingerprint: fingerprint.to_string(),
        },
        other => Problem::Other(format!("{}.", capitalized(&other.to_string()))),
    }
}

/// The words for a failed sync.
pub fn sync(e: &SyncFailure) -> Problem {
    match e {
        SyncFailure::Connection(c) => connection(c),
        SyncFailure::Store(StoreError::QuotaExceeded) | SyncFailure::Sync(SyncError::Store(_))
            if e.to_string().contains("full") =>
        {
            Problem::Storage(
                "The browser's storage for webpop is full: the sync stopped, nothing was \
                 deleted from the server. Free some space (delete mail here) and sync again."
                    .into(),
            )
        }
        SyncFailure::Sync(SyncError::Refused { error, .. })
            if matches!(
                error.code,
                Some(RespCode::InUse | RespCode::SysTemp | RespCode::LoginDelay)
            ) =>
        {
            Problem::Later(format!(
                "{}; webpop will try again later.",
                capitalized(&e.to_string())
            ))
        }
        SyncFailure::NotEnoughStorage { .. } => Problem::Storage(format!(
            "{}. Nothing was fetched or deleted.",
            capitalized(&e.to_string())
        )),
        other => Problem::Other(format!("{}.", capitalized(&other.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webpop_shared::pop3::ServerError;
    use webpop_shared::relay::Target;
    use webpop_shared::session::{CertProblem, Fingerprint};

    fn rejected(code: Option<RespCode>) -> ConnectionError {
        ConnectionError::Rejected {
            verb: "login",
            error: ServerError {
                code,
                text: "no".into(),
                sasl_error: None,
            },
        }
    }

    #[test]
    fn wrong_passwords_and_busy_mailboxes() {
        assert!(matches!(
            connection(&rejected(Some(RespCode::Auth))),
            Problem::WrongPassword(t) if t.contains("Wrong user name or password")
        ));
        assert!(matches!(
            connection(&rejected(None)),
            Problem::WrongPassword(_)
        ));
        assert!(matches!(
            connection(&rejected(Some(RespCode::InUse))),
            Problem::Later(_)
        ));
        assert!(matches!(
            connection(&rejected(Some(RespCode::LoginDelay))),
            Problem::Later(_)
        ));
    }

    #[test]
    fn relay_refusals_name_the_target() {
        let target = Target::new("10.0.0.1", 995).unwrap();
        let p = connection(&ConnectionError::Relay(RelayError::Forbidden(target)));
        assert_eq!(
            p.text(),
            "The relay refused the connection: this relay does not allow 10.0.0.1:995."
        );
        assert!(connection(&ConnectionError::Transport)
            .text()
            .contains("Could not reach the relay"));
    }

    #[test]
    fn certificate_problems_carry_the_fingerprint() {
        let fingerprint = Fingerprint::of(b"cert");
        let p = connection(&ConnectionError::Session(SessionError::Certificate {
            problem: CertProblem::UnknownIssuer,
            fingerprint,
        }));
        match p {
            Problem::Certificate {
                text,
                fingerprint: f,
            } => {
                assert!(text.starts_with("Certificate problem:"));
                assert!(text.contains("not signed by a trusted authority"));
                assert_eq!(f, fingerprint.to_string());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn busy_mailboxes_and_stalled_servers_are_retried_later() {
        let refused = SyncFailure::Sync(SyncError::Refused {
            command: "UIDL",
            error: ServerError {
                code: Some(RespCode::InUse),
                text: "busy".into(),
                sasl_error: None,
            },
        });
        assert!(matches!(sync(&refused), Problem::Later(t) if t.contains("refused UIDL: busy")));
        let stalled = connection(&ConnectionError::Stalled);
        assert!(matches!(stalled, Problem::Later(t) if t.contains("stopped answering")));
    }

    #[test]
    fn full_storage_says_nothing_was_deleted() {
        let p = sync(&SyncFailure::Store(StoreError::QuotaExceeded));
        assert!(matches!(p, Problem::Storage(t) if t.contains("nothing was deleted")));
        // A commit the browser aborted (how a full store shows at commit time) reaches the
        // engine as a failed batch.
        let aborted = SyncError::Store(StoreError::Aborted.to_string());
        assert!(matches!(
            sync(&SyncFailure::Sync(aborted)),
            Problem::Storage(_)
        ));
        let p = sync(&SyncFailure::NotEnoughStorage {
            needed: 90,
            available: 10,
        });
        assert!(p.text().contains("90 MB"));
    }
}
