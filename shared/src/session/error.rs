//! Errors of the TLS+POP3 session.

use crate::pop3::{self, ServerError};

use super::trust::{CertProblem, Fingerprint};

/// Why a session failed. Sticky: once returned, every later call returns it again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The POP3 layer failed (protocol violation, lost connection, refused command).
    #[error(transparent)]
    Pop3(#[from] pop3::Error),
    /// The server's certificate was refused. When [`SessionError::trustable_certificate`]
    /// says so, a UI may offer to trust (pin) it by `fingerprint`; otherwise it must not.
    #[error("the server's certificate was refused because {problem} (SHA-256 fingerprint {fingerprint})")]
    Certificate {
        /// What is wrong with it.
        problem: CertProblem,
        /// Its SHA-256 fingerprint.
        fingerprint: Fingerprint,
    },
    /// TLS failed for a reason other than the certificate.
    #[error("TLS failed: {0}")]
    Tls(rustls::Error),
    /// The trust settings could not be used (e.g. an extra root certificate is not valid DER).
    #[error("the trust settings are invalid: {0}")]
    BadTrust(rustls::Error),
    /// The host is not a valid DNS name or IP address.
    #[error("{host:?} is not a valid server name")]
    BadServerName {
        /// The host as given.
        host: String,
    },
    /// STLS was asked for, but the server on this plain port does not offer it.
    #[error(
        "the server does not offer STLS, so the connection cannot be encrypted and your \
         password would travel in the clear; use implicit TLS (usually port 995) instead"
    )]
    StlsNotOffered,
    /// The server answered STLS with `-ERR`.
    #[error("the server refused to start TLS: {}", .0.text)]
    StlsRefused(ServerError),
    /// The server refused the connection in its greeting.
    #[error("the server refused the connection: {}", .0.text)]
    Refused(ServerError),
    /// The plaintext testing mode was asked for a host that is not loopback.
    #[error(
        "plaintext POP3 is only allowed to a loopback address, for tests; {host:?} is not one"
    )]
    PlaintextNotLoopback {
        /// The host as given.
        host: String,
    },
}

impl SessionError {
    /// The fingerprint of the refused certificate if a person may be offered to trust it:
    /// only for a certificate no trusted authority vouches for ([`CertProblem::can_be_trusted`]),
    /// never for one that is revoked, expired, for another name, forged, or that replaced a
    /// pinned one.
    pub fn trustable_certificate(&self) -> Option<Fingerprint> {
        match self {
            Self::Certificate {
                problem,
                fingerprint,
            } if problem.can_be_trusted() => Some(*fingerprint),
            _ => None,
        }
    }
}
