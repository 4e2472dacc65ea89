//! Which server certificates the session accepts: the web PKI (webpki-roots), extra roots from
//! the caller, or one pinned certificate; and typed reasons when it refuses one.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A certificate's SHA-256 fingerprint. Displays as upper-case hex pairs joined by colons,
/// the form browsers and `openssl x509 -fingerprint -sha256` show.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(cert_der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A fingerprint string that is not 32 hex-encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a SHA-256 fingerprint is 64 hex digits, optionally in pairs separated by ':'")]
pub struct BadFingerprint;

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: Vec<u8> = s
            .bytes()
            .filter(|b| !matches!(b, b':' | b' '))
            .map(|b| (b as char).to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()
            .ok_or(BadFingerprint)?;
        if digits.len() != 64 {
            return Err(BadFingerprint);
        }
        let mut bytes = [0; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            bytes[i] = pair[0] << 4 | pair[1];
        }
        Ok(Self(bytes))
    }
}

/// What is wrong with a refused certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertProblem {
    /// Past its validity period.
    Expired,
    /// Before its validity period.
    NotYetValid,
    /// Not issued for the server name that was dialled.
    WrongName,
    /// Not signed by a trusted authority (e.g. self-signed).
    UnknownIssuer,
    /// Revoked by its issuer.
    Revoked,
    /// A signature in the chain does not verify.
    BadSignature,
    /// Something else, as rustls describes it.
    Other(String),
}

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired => f.write_str("it has expired"),
            Self::NotYetValid => f.write_str("it is not valid yet"),
            Self::WrongName => f.write_str("it was issued for a different server name"),
            Self::UnknownIssuer => f.write_str("it is not signed by a trusted authority"),
            Self::Revoked => f.write_str("it has been revoked"),
            Self::BadSignature => f.write_str("its signature is invalid"),
            Self::Other(what) => write!(f, "{what}"),
        }
    }
}

impl CertProblem {
    pub(crate) fn from_rustls(e: &rustls::CertificateError) -> Self {
        use rustls::CertificateError as E;
        match e {
            E::Expired | E::ExpiredContext { .. } => Self::Expired,
            E::NotValidYet | E::NotValidYetContext { .. } => Self::NotYetValid,
            E::NotValidForName | E::NotValidForNameContext { .. } => Self::WrongName,
            E::UnknownIssuer => Self::UnknownIssuer,
            E::Revoked => Self::Revoked,
            E::BadSignature => Self::BadSignature,
            other => Self::Other(format!("{other:?}")),
        }
    }
}

/// Extra trust beyond the web PKI, for servers with self-signed or private certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trust {
    /// Root certificates (DER) to trust in addition to webpki-roots.
    pub extra_roots: Vec<Vec<u8>>,
    /// A certificate accepted as is, whatever its issuer, name or dates: the user chose to
    /// trust exactly this one.
    pub pinned: Option<Fingerprint>,
}

impl Trust {
    /// Adds a DER root certificate.
    pub fn with_root(mut self, der: Vec<u8>) -> Self {
        self.extra_roots.push(der);
        self
    }

    /// Pins one certificate by fingerprint.
    pub fn with_pin(mut self, fingerprint: Fingerprint) -> Self {
        self.pinned = Some(fingerprint);
        self
    }
}

/// Web PKI verification plus the pin, remembering the fingerprint of a refused certificate so
/// the error can name it.
#[derive(Debug)]
pub(crate) struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    pinned: Option<Fingerprint>,
    refused: Mutex<Option<Fingerprint>>,
}

impl Verifier {
    pub(crate) fn new(trust: &Trust, provider: Arc<CryptoProvider>) -> Result<Self, rustls::Error> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for der in &trust.extra_roots {
            roots.add(CertificateDer::from(der.clone()))?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(Self {
            webpki,
            provider,
            pinned: trust.pinned,
            refused: Mutex::new(None),
        })
    }

    /// The fingerprint of the last certificate refused.
    pub(crate) fn refused(&self) -> Option<Fingerprint> {
        self.refused.lock().ok().and_then(|r| *r)
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity);
        if self.pinned == Some(fingerprint) {
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .inspect_err(|_| {
                if let Ok(mut refused) = self.refused.lock() {
                    *refused = Some(fingerprint);
                }
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_through_text() {
        let fp = Fingerprint::of(b"not really a certificate");
        let text = fp.to_string();
        assert_eq!(text.len(), 95);
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
        assert_eq!(
            text.replace(':', "").to_lowercase().parse::<Fingerprint>(),
            Ok(fp)
        );
        assert_eq!("AB:CD".parse::<Fingerprint>(), Err(BadFingerprint));
        assert_eq!("zz".repeat(32).parse::<Fingerprint>(), Err(BadFingerprint));
    }
}
