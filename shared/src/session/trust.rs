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

impl Fingerprint {
    /// The fingerprint in eight groups of four bytes (`AB:CD:EF:01`), for a person to compare
    /// with the one a provider publishes, group by group: 95 characters in one run are easy to
    /// skim and get wrong, and an attacker's certificate only needs to look alike at a glance.
    pub fn groups(&self) -> Vec<String> {
        self.0.chunks(4).map(colon_hex).collect()
    }
}

/// `bytes` as upper-case hex pairs joined by `:`: the one place a fingerprint gets spelled out.
fn colon_hex(bytes: &[u8]) -> String {
    let digits = hex::encode_upper(bytes);
    let pairs: Vec<&str> = digits
        .as_bytes()
        .chunks(2)
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .collect();
    pairs.join(":")
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&colon_hex(&self.0))
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
        let digits: Vec<u8> = s.bytes().filter(|b| !matches!(b, b':' | b' ')).collect();
        let mut bytes = [0; 32];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| BadFingerprint)?;
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
    /// A certificate was pinned for this server and the server presented another one. The pin
    /// means exactly that certificate: a new one, even one a trusted authority signed, stops the
    /// session until the person checks it and pins it instead.
    Changed {
        /// The certificate that was trusted.
        pinned: Fingerprint,
    },
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
            Self::Changed { pinned } => write!(
                f,
                "it replaced the certificate trusted for this server ({pinned})"
            ),
            Self::Other(what) => write!(f, "{what}"),
        }
    }
}

impl CertProblem {
    /// Whether a person may be offered to trust (pin) the certificate despite this problem.
    ///
    /// Only when no trusted authority vouches for it: a self-signed certificate, or one from an
    /// authority the browser does not know. Comparing its fingerprint with the one the provider
    /// publishes is then the only check there is, and it is enough. Every other problem is a
    /// certificate an authority did vouch for that is still wrong — revoked, expired, for
    /// another name, forged — or a pinned certificate replaced by another: one click would send
    /// the password to whoever holds it, so no offer is made.
    pub fn can_be_trusted(&self) -> bool {
        matches!(self, Self::UnknownIssuer)
    }

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
    /// trust exactly this one. While a pin is set, no other certificate is accepted, not even
    /// one the web PKI would accept ([`CertProblem::Changed`]).
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

/// A refused certificate: its fingerprint, and the problem when the verifier decided it
/// itself (a pin mismatch) rather than rustls.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) problem: Option<CertProblem>,
}

/// The pin if there is one, else web PKI verification; remembers a refused certificate so the
/// error can name it.
#[derive(Debug)]
pub(crate) struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    pinned: Option<Fingerprint>,
    refused: Mutex<Option<Refusal>>,
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

    /// The last certificate refused.
    pub(crate) fn refused(&self) -> Option<Refusal> {
        self.refused.lock().ok().and_then(|r| r.clone())
    }

    fn refuse(&self, fingerprint: Fingerprint, problem: Option<CertProblem>) {
        if let Ok(mut refused) = self.refused.lock() {
            *refused = Some(Refusal {
                fingerprint,
                problem,
            });
        }
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
        if let Some(pinned) = self.pinned {
            // A pin is exactly one certificate: any other stops here, whoever signed it.
            if fingerprint == pinned {
                return Ok(ServerCertVerified::assertion());
            }
            self.refuse(fingerprint, Some(CertProblem::Changed { pinned }));
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .inspect_err(|_| self.refuse(fingerprint, None))
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

    #[test]
    fn a_fingerprint_reads_in_eight_groups_of_four_bytes() {
        let fp = Fingerprint(std::array::from_fn(|i| (i * 0x11) as u8));
        let groups = fp.groups();
        assert_eq!(groups.len(), 8);
        assert_eq!(groups[0], "00:11:22:33");
        assert_eq!(groups[7], "DC:ED:FE:0F");
        assert_eq!(groups.join(":"), fp.to_string());
    }

    #[test]
    fn only_a_certificate_no_authority_vouches_for_may_be_trusted() {
        assert!(CertProblem::UnknownIssuer.can_be_trusted());
        for problem in [
            CertProblem::Expired,
            CertProblem::NotYetValid,
            CertProblem::WrongName,
            CertProblem::Revoked,
            CertProblem::BadSignature,
            CertProblem::Changed {
                pinned: Fingerprint([7; 32]),
            },
            CertProblem::Other("something".into()),
        ] {
            assert!(!problem.can_be_trusted(), "{problem:?}");
        }
    }
}
