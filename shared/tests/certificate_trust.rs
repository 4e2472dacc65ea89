//! Which refused certificates a person may be offered to trust, and what a pin means, over real
//! rustls handshakes with rcgen certificates (in memory: the session is sans-I/O).
//!
//! The bug: "Trust this certificate" was offered for every certificate error, revoked, forged
//! and wrong-name certificates from an authority included, and a pin only added one certificate
//! to the web PKI: a later, different certificate met the same offer again.

use std::io::{Read as _, Write as _};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::ServerConnection;
use webpop_shared::session::{
    CertProblem, Fingerprint, Security, Session, SessionConfig, SessionError, SessionEvent, Trust,
};

/// The server name dialled.
const HOST: &str = "pop.example.com";

/// The session's clock: September 2026.
fn now() -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_790_000_000))
}

/// A certificate and its key.
struct Cert {
    der: CertificateDer<'static>,
    key: KeyPair,
}

impl Cert {
    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.der)
    }
}

/// An authority that may issue certificates.
struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn authority(name: &str) -> Authority {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Authority {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

fn leaf_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

fn self_signed(name: &str) -> Cert {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(name).self_signed(&key).unwrap();
    Cert {
        der: cert.der().clone(),
        key,
    }
}

fn issued(by: &Authority, params: CertificateParams) -> Cert {
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &by.cert, &by.key).unwrap();
    Cert {
        der: cert.der().clone(),
        key,
    }
}

/// Runs a POP3S session against a TLS server presenting `cert` until it is ready or fails.
fn connect(cert: &Cert, trust: Trust) -> Result<SessionEvent, SessionError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            PrivateKeyDer::Pkcs8(cert.key.serialize_der().into()),
        )
        .unwrap();
    let mut server = ServerConnection::new(Arc::new(server_config)).unwrap();
    let config = SessionConfig::new(HOST, Security::ImplicitTls).trust(trust);
    let mut client = Session::new(config, now())?;
    let mut greeted = false;
    for _ in 0..100 {
        if let Some(wire) = client.poll_transmit() {
            server.read_tls(&mut &wire[..]).unwrap();
            // A client that refused the certificate sends an alert: the server fails too.
            let _ = server.process_new_packets();
        }
        if !server.is_handshaking() && !greeted {
            server.writer().write_all(b"+OK POP3 ready\r\n").unwrap();
            greeted = true;
        }
        let mut commands = [0; 1024];
        if let Ok(n) = server.reader().read(&mut commands) {
            if commands[..n].starts_with(b"CAPA") {
                server.writer().write_all(b"+OK\r\nUSER\r\n.\r\n").unwrap();
            }
        }
        let mut wire = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        if !wire.is_empty() {
            client.handle_input(&wire)?;
        }
        while let Some(event) = client.poll_event()? {
            if matches!(event, SessionEvent::Ready { .. }) {
                return Ok(event);
            }
        }
    }
    panic!("the session neither became ready nor failed");
}

/// The certificate error of a session that must fail on its certificate.
fn refused(cert: &Cert, trust: Trust) -> (CertProblem, Fingerprint, Option<Fingerprint>) {
    match connect(cert, trust) {
        Err(e @ SessionError::Certificate { .. }) => {
            let trustable = e.trustable_certificate();
            let SessionError::Certificate {
                problem,
                fingerprint,
            } = e
            else {
                unreachable!()
            };
            (problem, fingerprint, trustable)
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[test]
fn a_self_signed_certificate_may_be_trusted_and_then_that_one_is_accepted() {
    let cert = self_signed(HOST);
    let (problem, fingerprint, trustable) = refused(&cert, Trust::default());
    assert_eq!(problem, CertProblem::UnknownIssuer);
    assert_eq!(fingerprint, cert.fingerprint());
    assert_eq!(trustable, Some(cert.fingerprint()));

    let pinned = Trust::default().with_pin(cert.fingerprint());
    assert!(matches!(
        connect(&cert, pinned),
        Ok(SessionEvent::Ready { .. })
    ));
}

#[test]
fn a_certificate_from_an_unknown_authority_may_be_trusted() {
    let private = authority("Private CA");
    let cert = issued(&private, leaf_params(HOST));
    let (problem, _, trustable) = refused(&cert, Trust::default());
    assert_eq!(problem, CertProblem::UnknownIssuer);
    assert_eq!(trustable, Some(cert.fingerprint()));
}

#[test]
fn a_ca_certificate_for_another_name_is_not_offered_for_trust() {
    let ca = authority("Test CA");
    let cert = issued(&ca, leaf_params("mail.attacker.example"));
    let trust = Trust::default().with_root(ca.cert.der().to_vec());
    let (problem, fingerprint, trustable) = refused(&cert, trust);
    assert_eq!(problem, CertProblem::WrongName);
    assert_eq!(fingerprint, cert.fingerprint());
    assert_eq!(trustable, None);
}

#[test]
fn an_expired_ca_certificate_is_not_offered_for_trust() {
    let ca = authority("Test CA");
    let mut params = leaf_params(HOST);
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let cert = issued(&ca, params);
    let trust = Trust::default().with_root(ca.cert.der().to_vec());
    let (problem, _, trustable) = refused(&cert, trust);
    assert_eq!(problem, CertProblem::Expired);
    assert_eq!(trustable, None);
}

#[test]
fn a_certificate_with_a_forged_authority_signature_is_not_offered_for_trust() {
    let ca = authority("Test CA");
    // Same name as the trusted authority, another key: the signature does not verify.
    let forger = authority("Test CA");
    let cert = issued(&forger, leaf_params(HOST));
    let trust = Trust::default().with_root(ca.cert.der().to_vec());
    let (problem, _, trustable) = refused(&cert, trust);
    assert_eq!(problem, CertProblem::BadSignature);
    assert_eq!(trustable, None);
}

#[test]
fn a_pinned_certificate_replaced_by_another_stops_with_certificate_changed() {
    let pinned = self_signed(HOST);
    let trust = Trust::default().with_pin(pinned.fingerprint());

    // Another self-signed certificate: stopped, named, and not offered for trust again.
    let other = self_signed(HOST);
    let (problem, fingerprint, trustable) = refused(&other, trust.clone());
    assert_eq!(
        problem,
        CertProblem::Changed {
            pinned: pinned.fingerprint()
        }
    );
    assert_eq!(fingerprint, other.fingerprint());
    assert_eq!(trustable, None);

    // Even a certificate the web PKI (here: an extra root) would accept: a pin is exactly one
    // certificate.
    let ca = authority("Test CA");
    let valid = issued(&ca, leaf_params(HOST));
    let with_root = trust.clone().with_root(ca.cert.der().to_vec());
    assert!(
        matches!(
            connect(&valid, Trust::default().with_root(ca.cert.der().to_vec())),
            Ok(SessionEvent::Ready { .. })
        ),
        "the CA certificate is valid without the pin"
    );
    let (problem, fingerprint, trustable) = refused(&valid, with_root);
    assert_eq!(
        problem,
        CertProblem::Changed {
            pinned: pinned.fingerprint()
        }
    );
    assert_eq!(fingerprint, valid.fingerprint());
    assert_eq!(trustable, None);

    // The pinned certificate itself still works.
    assert!(matches!(
        connect(&pinned, trust),
        Ok(SessionEvent::Ready { .. })
    ));
}

/// A self-signed certificate past its dates: the web PKI reports the dates before the
/// issuer (rustls-webpki checks the certificate's own validity first), so it is refused as
/// expired, not offered for trust as merely self-signed. The browser end-to-end test
/// (`frontend/e2e/certificates.test.mjs`) relies on this.
#[test]
fn an_expired_self_signed_certificate_is_not_offered_for_trust() {
    let key = KeyPair::generate().unwrap();
    let mut params = leaf_params(HOST);
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let cert = Cert {
        der: params.self_signed(&key).unwrap().der().clone(),
        key,
    };
    let (problem, fingerprint, trustable) = refused(&cert, Trust::default());
    assert_eq!(problem, CertProblem::Expired);
    assert_eq!(fingerprint, cert.fingerprint());
    assert_eq!(trustable, None);

    let key = KeyPair::generate().unwrap();
    let mut params = leaf_params(HOST);
    params.not_before = rcgen::date_time_ymd(2090, 1, 1);
    params.not_after = rcgen::date_time_ymd(2091, 1, 1);
    let cert = Cert {
        der: params.self_signed(&key).unwrap().der().clone(),
        key,
    };
    let (problem, _, trustable) = refused(&cert, Trust::default());
    assert_eq!(problem, CertProblem::NotYetValid);
    assert_eq!(trustable, None);
}
