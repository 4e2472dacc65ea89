//! Errors in words for the person at the screen: wrong password, the relay refused, a
//! certificate problem (with its fingerprint in groups to compare, and an offer to trust it
//! only when no authority vouches for it), full storage.

use webpop_shared::connection::ConnectionError;
use webpop_shared::pop3::RespCode;
use webpop_shared::relay::RelayError;
use webpop_shared::session::{CertProblem, Fingerprint, SessionError};
use webpop_shared::sync::{StoreFault, SyncError};

use crate::store::StoreError;
use crate::sync::SyncFailure;

/// A problem as the UI shows it (and as it crosses from the sync worker).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Problem {
    /// The server refused the user name or password.
    WrongPassword(String),
    /// The relay refused or lost the connection.
    Relay(String),
    /// The server's certificate was refused, and no authority vouches for it (self-signed, or
    /// an unknown issuer): the person may trust it after comparing `fingerprint_groups` with
    /// the fingerprint the provider publishes. Offer "Trust this certificate" for this variant
    /// only.
    Certificate {
        /// What is wrong and how to check it, in words.
        text: String,
        /// Its SHA-256 fingerprint, colon-hex: what "Trust this certificate" pins.
        fingerprint: String,
        /// The same fingerprint in eight groups of four bytes (`AB:CD:EF:01`), to show one
        /// group per line (or two) for a group-by-group comparison.
        fingerprint_groups: Vec<String>,
    },
    /// The server's certificate was refused and must not be trusted from here: an authority
    /// vouched for it and it is still wrong (revoked, expired, another server's, forged), or it
    /// replaced the certificate pinned for this account. No "Trust" offer.
    CertificateRefused {
        /// What is wrong and what to do, in words.
        text: String,
        /// The refused certificate's fingerprint in groups of four bytes, as above.
        fingerprint_groups: Vec<String>,
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
            Self::Certificate { text, .. } | Self::CertificateRefused { text, .. } => text,
        }
    }

    /// The problem in one line, for the status line, which has no fingerprint block: the
    /// sentence, then a refused certificate's fingerprint in its groups, so that words asking
    /// to compare it always come with it.
    pub fn status_text(&self) -> String {
        match self {
            Self::Certificate {
                text,
                fingerprint_groups,
                ..
            }
            | Self::CertificateRefused {
                text,
                fingerprint_groups,
            } => format!(
                "{text} SHA-256 fingerprint of the certificate presented: {}.",
                fingerprint_groups.join(" ")
            ),
            other => other.text().to_owned(),
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
        ConnectionError::Stalled(_) => Problem::Later(format!(
            "{}; webpop will try again later. Nothing was deleted.",
            capitalized(&e.to_string())
        )),
        ConnectionError::Transport | ConnectionError::Open(_) => Problem::Relay(
            "Could not reach the relay (the webpop server): check your network connection.".into(),
        ),
        ConnectionError::Session(SessionError::Certificate {
            problem,
            fingerprint,
        }) => certificate(problem, fingerprint),
        other => Problem::Other(format!("{}.", capitalized(&other.to_string()))),
    }
}

/// The words for a refused certificate; the offer to trust it only where
/// [`CertProblem::can_be_trusted`] allows it.
fn certificate(problem: &CertProblem, fingerprint: &Fingerprint) -> Problem {
    let fingerprint_groups = fingerprint.groups();
    if problem.can_be_trusted() {
        return Problem::Certificate {
            text: "Certificate problem: the server's certificate is not signed by an authority \
                   webpop knows (it may be self-signed). Nothing was sent to the server. Before \
                   you trust it, compare its SHA-256 fingerprint below with the one your \
                   provider publishes (on its website or in its setup instructions), group by \
                   group: anyone between you and the server can present a certificate of their \
                   own, and trusting theirs would send them your password. Only if every group \
                   matches, trust it: webpop will then accept exactly this certificate for this \
                   account, and stop if it ever changes."
                .into(),
            fingerprint: fingerprint.to_string(),
            fingerprint_groups,
        };
    }
    let text = match problem {
        CertProblem::Changed { .. } => "Certificate changed: the server presented a different \
             certificate from the one you trusted for this account, so webpop stopped before \
             sending your password. Providers do replace certificates, but someone intercepting \
             the connection would look just the same. Ask your provider for the fingerprint of \
             its new certificate; only if it matches the one presented, group by group, add the \
             account again (same user name, server and port) with that fingerprint in the \
             certificate fingerprint field."
            .to_owned(),
        _ => format!(
            "Certificate problem: the server's certificate was refused because {problem}. It \
             cannot be trusted from here: a certificate that is wrong this way means a \
             misconfigured server or someone intercepting the connection. Nothing was sent to \
             the server. Check the server name, or ask your provider."
        ),
    };
    Problem::CertificateRefused {
        text,
        fingerprint_groups,
    }
}

/// The browser's storage is full: what happened and what to do.
fn storage_full() -> Problem {
    Problem::Storage(
        "The browser's storage for webpop is full: the sync stopped, nothing was deleted from \
         the server. Free some space (delete mail here) and sync again."
            .into(),
    )
}

/// The words for a failed sync.
pub fn sync(e: &SyncFailure) -> Problem {
    match e {
        SyncFailure::Connection(c) => connection(c),
        SyncFailure::Store(StoreError::QuotaExceeded)
        | SyncFailure::Commit(StoreError::QuotaExceeded | StoreError::Aborted)
        | SyncFailure::Sync(SyncError::Store(StoreFault::Full)) => storage_full(),
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
    use webpop_shared::connection::STALL_LIMIT;
    use webpop_shared::pop3::ServerError;
    use webpop_shared::relay::Target;

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

    fn refused(problem: CertProblem, fingerprint: Fingerprint) -> Problem {
        connection(&ConnectionError::Session(SessionError::Certificate {
            problem,
            fingerprint,
        }))
    }

    #[test]
    fn a_certificate_no_authority_vouches_for_is_offered_with_its_fingerprint_in_groups() {
        let fingerprint = Fingerprint(std::array::from_fn(|i| (0xA0 + i) as u8));
        match refused(CertProblem::UnknownIssuer, fingerprint) {
            Problem::Certificate {
                text,
                fingerprint: f,
                fingerprint_groups,
            } => {
                assert!(text.starts_with("Certificate problem:"));
                assert!(text.contains("not signed by an authority"));
                assert!(text.contains("compare its SHA-256 fingerprint"));
                assert!(text.contains("the one your provider publishes"));
                assert!(text.contains("group by group"));
                assert!(text.contains("send them your password"), "why: {text}");
                assert!(text.contains("exactly this certificate"));
                assert_eq!(f, fingerprint.to_string());
                assert_eq!(
                    fingerprint_groups,
                    [
                        "A0:A1:A2:A3",
                        "A4:A5:A6:A7",
                        "A8:A9:AA:AB",
                        "AC:AD:AE:AF",
                        "B0:B1:B2:B3",
                        "B4:B5:B6:B7",
                        "B8:B9:BA:BB",
                        "BC:BD:BE:BF",
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wrong_certificate_from_an_authority_is_explained_but_never_offered_for_trust() {
        let fingerprint = Fingerprint::of(b"cert");
        for (problem, words) in [
            (CertProblem::WrongName, "issued for a different server name"),
            (CertProblem::Expired, "it has expired"),
            (CertProblem::Revoked, "it has been revoked"),
            (CertProblem::BadSignature, "its signature is invalid"),
        ] {
            match refused(problem.clone(), fingerprint) {
                Problem::CertificateRefused {
                    text,
                    fingerprint_groups,
                } => {
                    assert!(text.starts_with("Certificate problem:"), "{text}");
                    assert!(text.contains(words), "{problem:?}: {text}");
                    assert!(text.contains("cannot be trusted from here"), "{text}");
                    assert_eq!(fingerprint_groups, fingerprint.groups());
                }
                other => panic!("{problem:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_changed_certificate_stops_and_says_why_without_an_offer() {
        let pinned = Fingerprint::of(b"old");
        let presented = Fingerprint::of(b"new");
        match refused(CertProblem::Changed { pinned }, presented) {
            Problem::CertificateRefused {
                text,
                fingerprint_groups,
            } => {
                assert!(text.starts_with("Certificate changed:"), "{text}");
                assert!(text.contains("before sending your password"), "{text}");
                assert!(text.contains("Ask your provider"), "{text}");
                assert_eq!(fingerprint_groups, presented.groups());
            }
            other => panic!("{other:?}"),
        }
    }

    /// bug: a sync that met a changed certificate said, in the status line, "only if it is the
    /// one below" — and the status line showed no fingerprint, below or anywhere — and pointed
    /// at an account field no screen has.
    #[test]
    fn a_changed_certificate_in_the_status_line_shows_the_fingerprint_it_asks_to_compare() {
        let presented = Fingerprint(std::array::from_fn(|i| (0xA0 + i) as u8));
        let problem = refused(
            CertProblem::Changed {
                pinned: Fingerprint::of(b"old"),
            },
            presented,
        );
        let status = problem.status_text();
        assert!(status.starts_with(problem.text()), "{status}");
        assert!(
            status.ends_with(
                "SHA-256 fingerprint of the certificate presented: A0:A1:A2:A3 A4:A5:A6:A7 \
                 A8:A9:AA:AB AC:AD:AE:AF B0:B1:B2:B3 B4:B5:B6:B7 B8:B9:BA:BB BC:BD:BE:BF."
            ),
            "{status}"
        );
        assert!(!status.contains("below"), "{status}");
        assert!(status.contains("add the account again"), "{status}");
        // Every certificate problem carries its fingerprint there; other problems are as shown.
        let expired = refused(CertProblem::Expired, presented).status_text();
        assert!(expired.ends_with("BC:BD:BE:BF."), "{expired}");
        let later = connection(&ConnectionError::Stalled(STALL_LIMIT));
        assert_eq!(later.status_text(), later.text());
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
        let stalled = connection(&ConnectionError::Stalled(STALL_LIMIT));
        assert!(matches!(stalled, Problem::Later(t) if t.contains("stopped answering")));
    }

    #[test]
    fn full_storage_says_nothing_was_deleted() {
        let p = sync(&SyncFailure::Store(StoreError::QuotaExceeded));
        assert!(matches!(p, Problem::Storage(t) if t.contains("nothing was deleted")));
        // A commit the browser aborted (how a full store shows at commit time) reaches the
        // engine as a failed batch.
        let aborted = SyncFailure::Commit(StoreError::Aborted);
        assert!(matches!(sync(&aborted), Problem::Storage(t) if t.contains("nothing was deleted")));
        let full = SyncFailure::Sync(SyncError::Store(StoreFault::Full));
        assert!(matches!(sync(&full), Problem::Storage(_)));
        let p = sync(&SyncFailure::NotEnoughStorage {
            needed: 90,
            available: 10,
        });
        assert!(p.text().contains("90 MB"));
    }
}
