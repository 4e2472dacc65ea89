//! The web app's model: an account as stored (server, security, sign-in method, what happens
//! to mail on the server) and a message as the list shows it. Plain data, shared by the store,
//! the sync glue, the state reducers and the views, so that none of them imports another for
//! its types.

use webpop_shared::pop3::AuthMethod;
use webpop_shared::relay::Target;
use webpop_shared::secret::Secret;
use webpop_shared::session::{Fingerprint, Security};
use webpop_shared::sync::ServerPolicy;

/// How the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum SecurityChoice {
    /// TLS from the first byte (port 995).
    #[default]
    Tls,
    /// STLS on the plain port (110).
    StartTls,
}

impl SecurityChoice {
    /// The form's and the store's value.
    pub fn value(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::StartTls => "stls",
        }
    }

    /// Parses [`SecurityChoice::value`].
    pub fn from_value(value: &str) -> Option<Self> {
        match value {
            "tls" => Some(Self::Tls),
            "stls" => Some(Self::StartTls),
            _ => None,
        }
    }

    /// The usual port.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 995,
            Self::StartTls => 110,
        }
    }

    /// The session's setting.
    pub fn security(self) -> Security {
        match self {
            Self::Tls => Security::ImplicitTls,
            Self::StartTls => Security::StartTls,
        }
    }
}

/// The sign-in methods offered; `auto` picks from the server's CAPA.
pub const AUTH_CHOICES: [(&str, &str); 6] = [
    ("auto", "Automatic (from the server's capabilities)"),
    ("user", "USER / PASS"),
    ("plain", "SASL PLAIN"),
    ("login", "SASL LOGIN"),
    ("cram-md5", "CRAM-MD5"),
    ("apop", "APOP"),
];

/// The sign-in method for a form value (unknown values mean automatic).
pub fn auth_method(value: &str) -> AuthMethod {
    match value {
        "user" => AuthMethod::UserPass,
        "plain" => AuthMethod::Plain,
        "login" => AuthMethod::Login,
        "cram-md5" => AuthMethod::CramMd5,
        "apop" => AuthMethod::Apop,
        _ => AuthMethod::Auto,
    }
}

/// What happens to mail on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum PolicyChoice {
    /// Leave everything on the server.
    #[default]
    Keep,
    /// Delete once first seen this many days ago.
    Days(u32),
    /// Delete from the server when deleted here.
    Mirror,
    /// Remove from the server once stored here.
    Remove,
}

impl PolicyChoice {
    /// The form's and the store's value (the days are kept apart).
    pub fn value(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Days(_) => "days",
            Self::Mirror => "mirror",
            Self::Remove => "remove",
        }
    }

    /// Parses [`PolicyChoice::value`] with the days for `days`.
    pub fn from_value(value: &str, days: u32) -> Option<Self> {
        match value {
            "keep" => Some(Self::Keep),
            "days" => Some(Self::Days(days)),
            "mirror" => Some(Self::Mirror),
            "remove" => Some(Self::Remove),
            _ => None,
        }
    }

    /// The days for `Days`, else 0.
    pub fn days(self) -> u32 {
        match self {
            Self::Days(d) => d,
            _ => 0,
        }
    }

    /// The sync planner's policy.
    pub fn server_policy(self) -> ServerPolicy {
        match self {
            Self::Keep => ServerPolicy::LeaveOnServer,
            Self::Days(d) => ServerPolicy::DeleteAfterDays(d),
            Self::Mirror => ServerPolicy::DeleteWhenDeletedLocally,
            Self::Remove => ServerPolicy::DeleteAfterDownload,
        }
    }
}

/// One account as stored (the password only when the person chose to remember it). It crosses
/// to the sync worker without its remembered password ([`crate::worker::message`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    /// Key in the store: `user@host:port`.
    pub id: String,
    /// The address, as shown.
    pub email: String,
    /// The user name to log in with.
    pub user: String,
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Encryption.
    pub security: SecurityChoice,
    /// The name the certificate must carry (the host unless set otherwise, as for the demo).
    pub server_name: String,
    /// Sign-in method (a value of [`AUTH_CHOICES`]).
    pub auth: String,
    /// A pinned certificate (colon-hex SHA-256), trusted in place of the usual checks.
    pub cert_sha256: Option<String>,
    /// What happens to mail on the server.
    pub policy: PolicyChoice,
    /// The remembered password, only if the person asked for it. Never serialised.
    #[serde(skip)]
    pub password: Option<Secret>,
    /// When the last sync finished, seconds since the Unix epoch.
    pub last_sync: Option<u64>,
}

impl Account {
    /// The store key for a user on a server.
    pub fn id_for(user: &str, host: &str, port: u16) -> String {
        format!("{user}@{host}:{port}")
    }

    /// What the relay is asked to connect to.
    pub fn target(&self) -> Result<Target, String> {
        Target::new(&self.host, self.port).map_err(|e| e.to_string())
    }

    /// The pinned fingerprint, if any.
    pub fn pin(&self) -> Option<Fingerprint> {
        self.cert_sha256.as_deref().and_then(|f| f.parse().ok())
    }

    /// A short name for the account selector.
    pub fn label(&self) -> &str {
        if self.email.is_empty() {
            &self.user
        } else {
            &self.email
        }
    }
}

/// One message in the list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// The account it belongs to.
    pub account: String,
    /// Its UIDL.
    pub uid: String,
    /// Sender, as shown.
    pub from: String,
    /// Subject.
    pub subject: String,
    /// Seconds since the Unix epoch (0 if unknown).
    pub date: i64,
    /// Size in bytes.
    pub size: u64,
    /// Whether it has attachments.
    pub has_attachments: bool,
    /// Whether it was opened.
    pub read: bool,
    /// The start of its text.
    pub snippet: String,
    /// More of its text, for search only: moved into the search index on load, so it is
    /// empty in the rows the inbox holds.
    pub search: String,
}
