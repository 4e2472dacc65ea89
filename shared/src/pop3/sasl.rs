//! SASL for `AUTH` (RFC 5034): PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER (RFC 7628).
//!
//! The client drives the exchange: it sends `AUTH`, answers each `+ challenge` line, and for the
//! OAuth mechanisms acknowledges the server's error JSON so the server can finish with `-ERR`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::Md5;

use crate::secret::{CredentialError, Credentials, Secret, UserName};

/// RFC 5034 §4: an AUTH command line, CRLF included, may not exceed 255 octets; a longer initial
/// response waits for the server's empty challenge instead.
const MAX_AUTH_LINE: usize = 255;

/// A SASL mechanism with what it needs to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslAuth {
    /// PLAIN (RFC 4616): user and password in one message.
    Plain(Credentials),
    /// LOGIN: user and password answered to two prompts.
    Login(Credentials),
    /// CRAM-MD5 (RFC 2195): an HMAC-MD5 of the server's challenge; the password is not sent.
    CramMd5(Credentials),
    /// XOAUTH2 (Google, Microsoft): an OAuth 2 bearer token.
    XOAuth2 {
        /// The mailbox's user.
        user: UserName,
        /// The access token.
        token: Secret,
    },
    /// OAUTHBEARER (RFC 7628): an OAuth 2 bearer token with optional host and port.
    OAuthBearer(OAuthBearer),
}

/// The arguments of OAUTHBEARER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearer {
    user: UserName,
    token: Secret,
    host: Option<String>,
    port: Option<u16>,
}

impl OAuthBearer {
    /// Builds the arguments; the host must be free of control characters.
    pub fn new(
        user: UserName,
        token: Secret,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<Self, CredentialError> {
        if host.is_some_and(|h| h.bytes().any(|b| b.is_ascii_control())) {
            return Err(CredentialError::ForbiddenByte { field: "host" });
        }
        Ok(Self {
            user,
            token,
            host: host.map(str::to_owned),
            port,
        })
    }
}

impl SaslAuth {
    /// The mechanism's registered name.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Self::Plain(_) => "PLAIN",
            Self::Login(_) => "LOGIN",
            Self::CramMd5(_) => "CRAM-MD5",
            Self::XOAuth2 { .. } => "XOAUTH2",
            Self::OAuthBearer(_) => "OAUTHBEARER",
        }
    }

    fn initial_response(&self) -> Option<Vec<u8>> {
        match self {
            Self::Plain(c) => {
                let mut ir = vec![0];
                ir.extend_from_slice(c.user.as_str().as_bytes());
                ir.push(0);
                ir.extend_from_slice(c.password.expose().as_bytes());
                Some(ir)
            }
            Self::Login(_) | Self::CramMd5(_) => None,
            Self::XOAuth2 { user, token } => Some(
                format!(
                    "user={}\x01auth=Bearer {}\x01\x01",
                    user.as_str(),
                    token.expose()
                )
                .into_bytes(),
            ),
            Self::OAuthBearer(o) => {
                // GS2 header: "n" (no channel binding), "a=" authzid with ',' and '=' escaped.
                let authzid = o.user.as_str().replace('=', "=3D").replace(',', "=2C");
                let mut ir = format!("n,a={authzid},\x01");
                if let Some(host) = &o.host {
                    ir.push_str(&format!("host={host}\x01"));
                }
                if let Some(port) = o.port {
                    ir.push_str(&format!("port={port}\x01"));
                }
                ir.push_str(&format!("auth=Bearer {}\x01\x01", o.token.expose()));
                Some(ir.into_bytes())
            }
        }
    }
}

/// The state of one AUTH exchange in flight.
#[derive(Debug)]
pub(crate) struct Exchange {
    auth: SaslAuth,
    /// An initial response too long for the command line, sent on the first challenge instead.
    deferred: Option<Vec<u8>>,
    /// Challenges answered so far (after the initial response).
    step: u32,
    /// The error JSON an OAuth server sent, kept for the `-ERR` that follows.
    pub(crate) sasl_error: Option<String>,
}

impl Exchange {
    /// Starts an exchange: appends the AUTH line to `out`.
    pub(crate) fn start(auth: SaslAuth, out: &mut Vec<u8>) -> Self {
        let mechanism = auth.mechanism();
        let mut deferred = None;
        let mut line = format!("AUTH {mechanism}");
        if let Some(ir) = auth.initial_response() {
            let encoded = if ir.is_empty() {
                "=".to_owned()
            } else {
                B64.encode(&ir)
            };
            if line.len() + 1 + encoded.len() + 2 <= MAX_AUTH_LINE {
                line.push(' ');
                line.push_str(&encoded);
            } else {
                deferred = Some(ir);
            }
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        Self {
            auth,
            deferred,
            step: 0,
            sasl_error: None,
        }
    }

    /// Answers one `+ challenge` line (base64 text): appends the response line to `out`.
    pub(crate) fn respond(&mut self, challenge: &[u8], out: &mut Vec<u8>) {
        if let Some(ir) = self.deferred.take() {
            return line(&B64.encode(ir), out);
        }
        let step = self.step;
        self.step += 1;
        let decoded = B64.decode(challenge.trim_ascii());
        match (&self.auth, step) {
            (SaslAuth::Login(c), 0) => line(&B64.encode(c.user.as_str()), out),
            (SaslAuth::Login(c), 1) => line(&B64.encode(c.password.expose()), out),
            (SaslAuth::CramMd5(c), 0) => match decoded {
                Ok(challenge) => line(&B64.encode(cram_md5(c, &challenge)), out),
                Err(_) => cancel(out),
            },
            (SaslAuth::XOAuth2 { .. }, _) | (SaslAuth::OAuthBearer(_), _) if step == 0 => {
                // Any challenge after the token is the server's error JSON (RFC 7628 §3.2.2).
                self.sasl_error = Some(match decoded {
                    Ok(json) => String::from_utf8_lossy(&json).into_owned(),
                    Err(_) => String::from_utf8_lossy(challenge).into_owned(),
                });
                if matches!(self.auth, SaslAuth::OAuthBearer(_)) {
                    // A single %x01 tells the server to finish with its error (RFC 7628 §3.2.3).
                    line(&B64.encode([1u8]), out)
                } else {
                    line("", out)
                }
            }
            _ => cancel(out),
        }
    }
}

fn line(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `*` cancels an exchange the client cannot continue (RFC 5034 §4); the server answers `-ERR`.
fn cancel(out: &mut Vec<u8>) {
    line("*", out)
}

fn cram_md5(c: &Credentials, challenge: &[u8]) -> String {
    let mut mac = match Hmac::<Md5>::new_from_slice(c.password.expose().as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(challenge);
    format!(
        "{} {}",
        c.user.as_str(),
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The APOP digest (RFC 1939 §7): MD5 of the greeting's timestamp followed by the password.
pub(crate) fn apop_digest(timestamp: &str, password: &Secret) -> String {
    use md5::Digest;
    let mut md5 = Md5::new();
    md5.update(timestamp.as_bytes());
    md5.update(password.expose().as_bytes());
    hex::encode(md5.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("tim", "tanstaaftanstaaf").unwrap()
    }

    #[test]
    fn rfc1939_apop_example() {
        let pass = Secret::password("tanstaaf").unwrap();
        assert_eq!(
            apop_digest("<1896.697170952@dbc.mtview.ca.us>", &pass),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
    }

    #[test]
    fn rfc2195_cram_md5_example() {
        let mut out = Vec::new();
        let mut ex = Exchange::start(SaslAuth::CramMd5(creds()), &mut out);
        assert_eq!(out, b"AUTH CRAM-MD5\r\n");
        out.clear();
        ex.respond(
            b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
            &mut out,
        );
        assert_eq!(
            out,
            b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n".as_slice()
        );
    }

    #[test]
    fn plain_sends_initial_response() {
        let mut out = Vec::new();
        Exchange::start(SaslAuth::Plain(creds()), &mut out);
        assert_eq!(out, b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
    }

    #[test]
    fn long_initial_response_waits_for_the_empty_challenge() {
        let token = Secret::token("x".repeat(300)).unwrap();
        let user = UserName::new("someone@example.org").unwrap();
        let mut out = Vec::new();
        let mut ex = Exchange::start(SaslAuth::XOAuth2 { user, token }, &mut out);
        assert_eq!(out, b"AUTH XOAUTH2\r\n");
        out.clear();
        ex.respond(b"", &mut out);
        let sent = B64.decode(out.trim_ascii()).unwrap();
        assert!(sent.starts_with(b"user=someone@example.org\x01auth=Bearer xxx"));
    }

    #[test]
    fn initial_response_at_the_limit_is_inline() {
        // "AUTH XOAUTH2 " (13) + 240 base64 chars (180 bytes) + CRLF = 255 octets exactly.
        let auth = |token_len: usize| SaslAuth::XOAuth2 {
            user: UserName::new("u").unwrap(),
            token: Secret::token("t".repeat(token_len)).unwrap(),
        };
        let mut out = Vec::new();
        Exchange::start(auth(159), &mut out);
        assert_eq!(out.len(), 255);
        out.clear();
        Exchange::start(auth(162), &mut out);
        assert_eq!(out, b"AUTH XOAUTH2\r\n");
    }

    #[test]
    fn oauthbearer_error_step_is_acknowledged_with_kvsep() {
        let o = OAuthBearer::new(
            UserName::new("a,b=c").unwrap(),
            Secret::token("tok").unwrap(),
            Some("server.example.com"),
            Some(995),
        )
        .unwrap();
        let mut out = Vec::new();
        let mut ex = Exchange::start(SaslAuth::OAuthBearer(o), &mut out);
        let line = std::str::from_utf8(&out).unwrap();
        let ir = B64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        assert_eq!(
            ir,
            b"n,a=a=2Cb=3Dc,\x01host=server.example.com\x01port=995\x01auth=Bearer tok\x01\x01"
        );
        out.clear();
        let json = br#"{"status":"invalid_token","scope":"mail"}"#;
        ex.respond(B64.encode(json).as_bytes(), &mut out);
        assert_eq!(out, b"AQ==\r\n");
        assert_eq!(
            ex.sasl_error.as_deref(),
            Some(std::str::from_utf8(json).unwrap())
        );
    }

    #[test]
    fn login_answers_two_prompts_then_cancels() {
        let mut out = Vec::new();
        let mut ex = Exchange::start(SaslAuth::Login(creds()), &mut out);
        assert_eq!(out, b"AUTH LOGIN\r\n");
        out.clear();
        ex.respond(b"VXNlcm5hbWU6", &mut out);
        ex.respond(b"UGFzc3dvcmQ6", &mut out);
        ex.respond(b"", &mut out);
        assert_eq!(out, b"dGlt\r\ndGFuc3RhYWZ0YW5zdGFhZg==\r\n*\r\n");
    }
}
