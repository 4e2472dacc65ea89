//! Accounts: what is kept of one (never the password unless the person asked), and the "add
//! account" form as a reducer — defaults from the address (pop.<domain>, the port that goes
//! with the security), validation in words.

use webpop_shared::relay::Target;
use webpop_shared::secret::{Credentials, Secret};
use webpop_shared::session::Fingerprint;

// The model types live in `crate::model`; they are named here too because the store and the
// tests reach them by this path.
pub use crate::model::{auth_method, Account, PolicyChoice, SecurityChoice, AUTH_CHOICES};

/// A change in the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormAction {
    /// The address changed.
    Email(String),
    /// The user name changed.
    User(String),
    /// The password changed.
    Password(String),
    /// The server changed.
    Host(String),
    /// The port changed.
    Port(String),
    /// The security changed (a [`SecurityChoice::value`]).
    Security(String),
    /// The sign-in method changed.
    Auth(String),
    /// The pinned fingerprint changed.
    Fingerprint(String),
    /// The server policy changed (a [`PolicyChoice::value`]).
    Policy(String),
    /// The days of "delete after N days" changed.
    Days(String),
    /// "Remember password on this device".
    Remember(bool),
    /// Whether the browser has promised to keep webpop's storage under pressure
    /// (`navigator.storage.persisted()`, read at start-up without prompting).
    StoragePersistent(bool),
    /// The person asked for the browser's promise (`persist()`, which may prompt).
    AskToKeep,
    /// The browser's answer to [`FormAction::AskToKeep`]: `Some(promised)`, or `None` when this
    /// browser cannot be asked.
    KeepAnswer(Option<bool>),
    /// Whether WebKit's 7-day deletion of unvisited sites' storage applies here.
    WebKitEviction(bool),
    /// "I understand" for a deleting policy while storage is not persistent.
    AcceptEviction(bool),
    /// Fill the whole form (the demo account) with these values.
    Fill(Box<AccountForm>),
}

/// The "add account" form.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AccountForm {
    /// The address.
    pub email: String,
    /// The user name (follows the address until edited).
    pub user: String,
    /// The password.
    pub password: String,
    /// The server (pop.<domain> until edited).
    pub host: String,
    /// The port, as typed.
    pub port: String,
    /// Encryption.
    pub security: SecurityChoice,
    /// Sign-in method value.
    pub auth: String,
    /// Pinned fingerprint, as typed.
    pub fingerprint: String,
    /// Server policy.
    pub policy: String,
    /// Days for the "days" policy, as typed.
    pub days: String,
    /// Remember the password on this device (off by default).
    pub remember: bool,
    /// The certificate's expected name when it differs from the host (the demo's "localhost").
    pub server_name: Option<String>,
    /// Whether the browser promised to keep this site's storage (see
    /// [`FormAction::StoragePersistent`]); false until it said so.
    pub storage_persistent: bool,
    /// The person confirmed a deleting policy although storage is not persistent.
    pub eviction_accepted: bool,
    /// Where asking the browser to keep webpop's storage stands.
    pub keep_request: KeepRequest,
    /// WebKit may delete webpop's storage after 7 days without a visit
    /// ([`WEBKIT_EVICTION_WARNING`]).
    pub webkit_eviction: bool,
    user_edited: bool,
    host_edited: bool,
    port_edited: bool,
}

impl std::fmt::Debug for AccountForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountForm")
            .field("email", &self.email)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

/// Where asking the browser to keep webpop's storage (`navigator.storage.persist()`) stands.
/// It is asked only when the person presses the button next to [`EVICTION_WARNING`]: Firefox
/// answers through a permission prompt, and nothing may wait on a prompt unasked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepRequest {
    /// Not asked yet.
    #[default]
    NotAsked,
    /// Asked; the browser (or the person, at its prompt) has not answered yet.
    Asking,
    /// The browser promised.
    Promised,
    /// The browser did not promise.
    Refused,
    /// This browser cannot be asked.
    Unsupported,
}

impl KeepRequest {
    /// What to tell the person about the request, if anything.
    pub fn words(self) -> Option<&'static str> {
        match self {
            Self::NotAsked => None,
            Self::Asking => Some("Waiting for the browser's answer (it may ask you first)…"),
            Self::Promised => Some("The browser promised to keep webpop's mail."),
            Self::Refused => Some(
                "The browser did not promise to keep webpop's mail. Browsers often agree once a \
                 site is bookmarked, installed or used regularly.",
            ),
            Self::Unsupported => Some("This browser cannot be asked to keep webpop's mail."),
        }
    }
}

/// What WebKit does to a site's storage, in words: Safari (and every browser on an iPhone)
/// deletes it after 7 days of use without a visit to the site.
pub const WEBKIT_EVICTION_WARNING: &str = "This browser (WebKit, as in Safari and on every \
    iPhone) may delete webpop's stored mail after 7 days without a visit. Add webpop to the Home \
    Screen, or ask the browser to keep it, so that mail stays on this device.";

/// Why a deleting policy needs consent when storage is not persistent, in words.
pub const EVICTION_WARNING: &str = "This browser has not promised to keep webpop's stored mail: \
    it may clear it when the disk runs low or the site is not used for a while. Mail that is \
    deleted from the server would then be gone for good. Tick \"I understand\" to go on, or leave \
    mail on the server.";

/// The usual POP3 server for an address: `pop.<domain>`.
pub fn default_host(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((_, domain)) if !domain.trim().is_empty() => format!("pop.{}", domain.trim()),
        _ => String::new(),
    }
}

impl AccountForm {
    /// An empty form with the defaults (TLS on 995, automatic sign-in, leave mail on the
    /// server, password not remembered).
    pub fn new() -> Self {
        Self {
            port: "995".into(),
            auth: "auto".into(),
            policy: "keep".into(),
            days: "30".into(),
            ..Self::default()
        }
    }

    /// A form filled in from an account (to ask again, e.g. after a certificate problem).
    pub fn demo(host: &str, port: u16, server_name: &str, user: &str, password: &str) -> Self {
        let mut form = Self::new();
        form.email = format!("{user}@{server_name}");
        form.user = user.into();
        form.password = password.into();
        form.host = host.into();
        form.port = port.to_string();
        form.server_name = Some(server_name.into());
        form.user_edited = true;
        form.host_edited = true;
        form.port_edited = true;
        form
    }

    /// Applies one change.
    pub fn apply(&mut self, action: FormAction) {
        match action {
            FormAction::Email(email) => {
                if !self.user_edited {
                    self.user = email.trim().to_owned();
                }
                if !self.host_edited {
                    self.host = default_host(&email);
                }
                self.email = email;
            }
            FormAction::User(user) => {
                self.user_edited = true;
                self.user = user;
            }
            FormAction::Password(password) => self.password = password,
            FormAction::Host(host) => {
                self.host_edited = true;
                self.host = host;
            }
            FormAction::Port(port) => {
                self.port_edited = true;
                self.port = port;
            }
            FormAction::Security(value) => {
                if let Some(security) = SecurityChoice::from_value(&value) {
                    self.security = security;
                    if !self.port_edited {
                        self.port = security.default_port().to_string();
                    }
                }
            }
            FormAction::Auth(auth) => self.auth = auth,
            FormAction::Fingerprint(fingerprint) => self.fingerprint = fingerprint,
            FormAction::Policy(policy) => self.policy = policy,
            FormAction::Days(days) => self.days = days,
            FormAction::Remember(remember) => self.remember = remember,
            FormAction::StoragePersistent(persistent) => self.storage_persistent = persistent,
            FormAction::AskToKeep => self.keep_request = KeepRequest::Asking,
            FormAction::KeepAnswer(answer) => {
                self.keep_request = match answer {
                    Some(true) => KeepRequest::Promised,
                    Some(false) => KeepRequest::Refused,
                    None => KeepRequest::Unsupported,
                };
                self.storage_persistent |= answer == Some(true);
            }
            FormAction::WebKitEviction(applies) => self.webkit_eviction = applies,
            FormAction::AcceptEviction(accepted) => self.eviction_accepted = accepted,
            FormAction::Fill(form) => {
                let (persistent, keep, webkit) = (
                    self.storage_persistent,
                    self.keep_request,
                    self.webkit_eviction,
                );
                *self = *form;
                self.storage_persistent = persistent;
                self.keep_request = keep;
                self.webkit_eviction = webkit;
            }
        }
    }

    /// Whether the chosen policy deletes mail from the server while the browser has not
    /// promised to keep what webpop stores: then only the person's explicit "I understand"
    /// lets the account be added ([`EVICTION_WARNING`]).
    pub fn needs_eviction_consent(&self) -> bool {
        self.policy != "keep" && !self.storage_persistent
    }

    /// The account and the password, or what is wrong, in words.
    pub fn validate(&self) -> Result<(Account, Secret), String> {
        let user = self.user.trim();
        let host = self.host.trim();
        if user.is_empty() {
            return Err("Enter the user name for the mail server.".into());
        }
        if host.is_empty() {
            return Err("Enter the POP3 server's name, for example pop.example.com.".into());
        }
        let port: u16 = self
            .port
            .trim()
            .parse()
            .ok()
            .filter(|&p| p > 0)
            .ok_or("The port is a number from 1 to 65535.")?;
        Target::new(host, port).map_err(|e| format!("The server name is not valid: {e}."))?;
        if self.password.is_empty() {
            return Err("Enter the password.".into());
        }
        let credentials = Credentials::new(user, self.password.clone())
            .map_err(|e| format!("The user name or password cannot be used: {e}."))?;
        let fingerprint = self.fingerprint.trim();
        let cert_sha256 = if fingerprint.is_empty() {
            None
        } else {
            let parsed: Fingerprint = fingerprint.parse().map_err(|_| {
                "The certificate fingerprint is 64 hex digits (pairs may be separated by ':')."
                    .to_owned()
            })?;
            Some(parsed.to_string())
        };
        let days: u32 = if self.policy == "days" {
            self.days
                .trim()
                .parse()
                .ok()
                .filter(|&d| d > 0)
                .ok_or("The number of days is a whole number above 0.")?
        } else {
            0
        };
        let policy = PolicyChoice::from_value(&self.policy, days).unwrap_or_default();
        if self.needs_eviction_consent() && !self.eviction_accepted {
            return Err(EVICTION_WARNING.into());
        }
        let password = credentials.password;
        let account = Account {
            id: Account::id_for(user, host, port),
            email: self.email.trim().to_owned(),
            user: user.to_owned(),
            host: host.to_owned(),
            port,
            security: self.security,
            server_name: self.server_name.clone().unwrap_or_else(|| host.to_owned()),
            auth: self.auth.clone(),
            cert_sha256,
            policy,
            password: self.remember.then(|| password.clone()),
            last_sync: None,
        };
        Ok((account, password))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webpop_shared::pop3::AuthMethod;
    use webpop_shared::sync::ServerPolicy;

    fn typed(actions: &[FormAction]) -> AccountForm {
        let mut form = AccountForm::new();
        for a in actions {
            form.apply(a.clone());
        }
        form
    }

    #[test]
    fn defaults_follow_the_address_until_edited() {
        let mut form = typed(&[FormAction::Email("ana@example.org".into())]);
        assert_eq!(form.host, "pop.example.org");
        assert_eq!(form.user, "ana@example.org");
        assert_eq!(form.port, "995");
        assert!(!form.remember, "remember password is off by default");
        assert_eq!(form.auth, "auto");
        form.apply(FormAction::Security("stls".into()));
        assert_eq!(form.port, "110");
        form.apply(FormAction::Host("mail.example.org".into()));
        form.apply(FormAction::User("ana".into()));
        form.apply(FormAction::Email("ana@other.net".into()));
        assert_eq!(form.host, "mail.example.org");
        assert_eq!(form.user, "ana");
        form.apply(FormAction::Port("1995".into()));
        form.apply(FormAction::Security("tls".into()));
        assert_eq!(form.port, "1995");
    }

    #[test]
    fn a_valid_form_gives_an_account_without_the_password_unless_remembered() {
        let form = typed(&[
            FormAction::Email("ana@example.org".into()),
            FormAction::Password("s3cret".into()),
        ]);
        let (account, password) = form.validate().unwrap();
        assert_eq!(account.id, "ana@example.org@pop.example.org:995");
        assert_eq!(account.server_name, "pop.example.org");
        assert_eq!(account.password, None);
        assert_eq!(password.expose(), "s3cret");
        assert!(!format!("{form:?}{account:?}").contains("s3cret"));

        let mut remembered = form.clone();
        remembered.apply(FormAction::Remember(true));
        let (account, _) = remembered.validate().unwrap();
        assert_eq!(account.password.unwrap().expose(), "s3cret");
    }

    #[test]
    fn a_deleting_policy_without_persistent_storage_needs_consent() {
        // bug: navigator.storage.persist()'s answer was ignored; the browser could evict the
        // only copy of mail a deleting policy had already removed from the server.
        let base = [
            FormAction::Email("ana@example.org".into()),
            FormAction::Password("s3cret".into()),
        ];
        for policy in ["remove", "mirror", "days"] {
            let mut form = typed(&base);
            form.apply(FormAction::Policy(policy.into()));
            assert!(form.needs_eviction_consent());
            let refused = form.validate().unwrap_err();
            assert!(refused.contains("gone for good"), "{refused}");
            form.apply(FormAction::AcceptEviction(true));
            assert!(form.validate().is_ok(), "{policy} with consent");

            let mut persistent = typed(&base);
            persistent.apply(FormAction::StoragePersistent(true));
            persistent.apply(FormAction::Policy(policy.into()));
            assert!(!persistent.needs_eviction_consent());
            assert!(
                persistent.validate().is_ok(),
                "{policy}, persistent storage"
            );
        }
        // Keeping mail on the server risks nothing.
        let keep = typed(&base);
        assert!(!keep.needs_eviction_consent());
        assert!(keep.validate().is_ok());
        // Filling the form (the demo) keeps what the browser said.
        let mut form = typed(&[FormAction::StoragePersistent(true)]);
        form.apply(FormAction::Fill(Box::new(AccountForm::new())));
        assert!(form.storage_persistent);
    }

    #[test]
    fn persistence_is_requested_only_when_the_person_asks() {
        // bug: start-up awaited navigator.storage.persist(), which Firefox answers only after the
        // person answers a permission prompt: the app never became ready. Now start-up only
        // reads persisted(); persist() is asked when the person presses the button next to the
        // eviction warning, and nothing waits for its answer.
        let base = [
            FormAction::Email("ana@example.org".into()),
            FormAction::Password("s3cret".into()),
            FormAction::Policy("remove".into()),
        ];
        let mut form = typed(&base);
        assert_eq!(form.keep_request, KeepRequest::NotAsked);
        assert_eq!(form.keep_request.words(), None);
        form.apply(FormAction::AskToKeep);
        assert_eq!(form.keep_request, KeepRequest::Asking);
        assert!(form.keep_request.words().unwrap().contains("Waiting"));
        // The prompt is still open: consent alone lets the account be added.
        assert!(form.needs_eviction_consent());
        form.apply(FormAction::AcceptEviction(true));
        assert!(form.validate().is_ok());

        for (answer, request, persistent) in [
            (Some(true), KeepRequest::Promised, true),
            (Some(false), KeepRequest::Refused, false),
            (None, KeepRequest::Unsupported, false),
        ] {
            let mut form = typed(&base);
            form.apply(FormAction::AskToKeep);
            form.apply(FormAction::KeepAnswer(answer));
            assert_eq!(form.keep_request, request);
            assert_eq!(form.needs_eviction_consent(), !persistent, "{answer:?}");
            assert!(form.keep_request.words().is_some());
            // Filling the form (the demo) keeps the answer.
            form.apply(FormAction::Fill(Box::new(AccountForm::new())));
            assert_eq!(form.keep_request, request);
            assert_eq!(form.storage_persistent, persistent);
        }
    }

    #[test]
    fn webkit_eviction_is_said_plainly_and_survives_filling_the_form() {
        let mut form = typed(&[FormAction::WebKitEviction(true)]);
        assert!(form.webkit_eviction);
        assert!(WEBKIT_EVICTION_WARNING.contains("7 days"));
        form.apply(FormAction::Fill(Box::new(AccountForm::new())));
        assert!(form.webkit_eviction);
    }

    #[test]
    fn mistakes_are_explained() {
        let empty = AccountForm::new();
        assert!(empty.validate().unwrap_err().contains("user name"));
        let mut form = typed(&[FormAction::Email("ana@example.org".into())]);
        assert!(form.validate().unwrap_err().contains("password"));
        form.apply(FormAction::Password("pw".into()));
        form.apply(FormAction::Port("99999".into()));
        assert!(form.validate().unwrap_err().contains("port"));
        form.apply(FormAction::Port("995".into()));
        form.apply(FormAction::Fingerprint("12:34".into()));
        assert!(form.validate().unwrap_err().contains("fingerprint"));
        form.apply(FormAction::Fingerprint("ab".repeat(32)));
        let (account, _) = form.validate().unwrap();
        assert_eq!(
            account.cert_sha256.as_deref(),
            Some(vec!["AB"; 32].join(":").as_str())
        );
        form.apply(FormAction::Policy("days".into()));
        form.apply(FormAction::Days("0".into()));
        assert!(form.validate().unwrap_err().contains("days"));
        form.apply(FormAction::Days("14".into()));
        form.apply(FormAction::AcceptEviction(true));
        assert_eq!(form.validate().unwrap().0.policy, PolicyChoice::Days(14));
        form.apply(FormAction::Host("bad host name!".into()));
        assert!(form.validate().unwrap_err().contains("server name"));
    }

    #[test]
    fn the_demo_form_keeps_its_certificate_name() {
        let form = AccountForm::demo("127.0.0.1", 41_995, "localhost", "demo", "demo");
        let (account, _) = form.validate().unwrap();
        assert_eq!(account.host, "127.0.0.1");
        assert_eq!(account.server_name, "localhost");
        assert_eq!(account.port, 41_995);
    }

    #[test]
    fn policies_and_methods_map_to_the_engine() {
        assert_eq!(
            PolicyChoice::from_value("days", 7).unwrap().server_policy(),
            ServerPolicy::DeleteAfterDays(7)
        );
        assert_eq!(
            PolicyChoice::Mirror.server_policy(),
            ServerPolicy::DeleteWhenDeletedLocally
        );
        assert_eq!(auth_method("cram-md5"), AuthMethod::CramMd5);
        assert_eq!(auth_method("nonsense"), AuthMethod::Auto);
        assert_eq!(default_host("no-at-sign"), "");
    }
}
