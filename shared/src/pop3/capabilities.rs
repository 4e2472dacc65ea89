//! The server's CAPA reply (RFC 2449), parsed.

/// How long the server wants between logins (RFC 2449 §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginDelay {
    /// Minimum seconds between logins.
    pub seconds: u32,
    /// `USER`: the value may differ per user (advertised before login).
    pub per_user: bool,
}

/// How long the server keeps retrieved mail (RFC 2449 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expire {
    /// `EXPIRE NEVER`: mail stays until deleted.
    Never,
    /// `EXPIRE n`: retrieved mail may be deleted after `days` days (0: at the end of the session).
    Days {
        /// Retention in days.
        days: u32,
        /// `USER`: the value may differ per user.
        per_user: bool,
    },
}

/// What a server said it can do. Unknown capabilities are kept in [`Capabilities::other`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `TOP`.
    pub top: bool,
    /// `USER`: USER/PASS login.
    pub user: bool,
    /// `UIDL`.
    pub uidl: bool,
    /// `STLS` (RFC 2595).
    pub stls: bool,
    /// `PIPELINING`: commands may be sent without waiting for replies.
    pub pipelining: bool,
    /// `RESP-CODES`.
    pub resp_codes: bool,
    /// `AUTH-RESP-CODE` (RFC 3206).
    pub auth_resp_code: bool,
    /// SASL mechanisms from `SASL ...`, upper-cased.
    pub sasl: Vec<String>,
    /// `LOGIN-DELAY`.
    pub login_delay: Option<LoginDelay>,
    /// `EXPIRE`.
    pub expire: Option<Expire>,
    /// `IMPLEMENTATION` text.
    pub implementation: Option<String>,
    /// Any other capability line, as sent.
    pub other: Vec<String>,
}

impl Capabilities {
    /// Whether `SASL` lists `mechanism` (case-insensitive).
    pub fn has_sasl(&self, mechanism: &str) -> bool {
        self.sasl.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// Adds one CAPA line. Malformed values of known capabilities are kept in `other`.
    pub(crate) fn add_line(&mut self, line: &str) {
        let mut words = line.split_ascii_whitespace();
        let Some(name) = words.next() else { return };
        let args: Vec<&str> = words.collect();
        let known = match name.to_ascii_uppercase().as_str() {
            "TOP" => set(&mut self.top),
            "USER" => set(&mut self.user),
            "UIDL" => set(&mut self.uidl),
            "STLS" => set(&mut self.stls),
            "PIPELINING" => set(&mut self.pipelining),
            "RESP-CODES" => set(&mut self.resp_codes),
            "AUTH-RESP-CODE" => set(&mut self.auth_resp_code),
            "SASL" => {
                self.sasl
                    .extend(args.iter().map(|m| m.to_ascii_uppercase()));
                true
            }
            "LOGIN-DELAY" => parse_login_delay(&args)
                .map(|d| self.login_delay = Some(d))
                .is_some(),
            "EXPIRE" => parse_expire(&args).map(|e| self.expire = Some(e)).is_some(),
            "IMPLEMENTATION" => {
                self.implementation = Some(line[name.len()..].trim().to_owned());
                true
            }
            _ => false,
        };
        if !known {
            self.other.push(line.to_owned());
        }
    }
}

fn set(flag: &mut bool) -> bool {
    *flag = true;
    true
}

fn per_user(rest: &[&str]) -> Option<bool> {
    match rest {
        [] => Some(false),
        [u] if u.eq_ignore_ascii_case("USER") => Some(true),
        _ => None,
    }
}

fn parse_login_delay(args: &[&str]) -> Option<LoginDelay> {
    let (seconds, rest) = args.split_first()?;
    Some(LoginDelay {
        seconds: seconds.parse().ok()?,
        per_user: per_user(rest)?,
    })
}

fn parse_expire(args: &[&str]) -> Option<Expire> {
    let (value, rest) = args.split_first()?;
    if value.eq_ignore_ascii_case("NEVER") {
        return rest.is_empty().then_some(Expire::Never);
    }
    Some(Expire::Days {
        days: value.parse().ok()?,
        per_user: per_user(rest)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(lines: &[&str]) -> Capabilities {
        let mut c = Capabilities::default();
        lines.iter().for_each(|l| c.add_line(l));
        c
    }

    #[test]
    fn dovecot_capa() {
        let c = caps(&[
            "CAPA",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "PIPELINING",
            "AUTH-RESP-CODE",
            "STLS",
            "USER",
            "SASL PLAIN LOGIN cram-md5",
        ]);
        assert!(c.top && c.uidl && c.resp_codes && c.pipelining && c.auth_resp_code);
        assert!(c.stls && c.user);
        assert!(c.has_sasl("CRAM-MD5") && c.has_sasl("plain") && !c.has_sasl("XOAUTH2"));
        assert_eq!(c.other, vec!["CAPA".to_owned()]);
    }

    #[test]
    fn login_delay_and_expire_values() {
        let c = caps(&[
            "LOGIN-DELAY 900",
            "EXPIRE NEVER",
            "IMPLEMENTATION Shlemazle Plotz v302",
        ]);
        assert_eq!(
            c.login_delay,
            Some(LoginDelay {
                seconds: 900,
                per_user: false
            })
        );
        assert_eq!(c.expire, Some(Expire::Never));
        assert_eq!(c.implementation.as_deref(), Some("Shlemazle Plotz v302"));

        let c = caps(&["LOGIN-DELAY 30 USER", "EXPIRE 0 USER"]);
        assert_eq!(
            c.login_delay,
            Some(LoginDelay {
                seconds: 30,
                per_user: true
            })
        );
        assert_eq!(
            c.expire,
            Some(Expire::Days {
                days: 0,
                per_user: true
            })
        );
    }

    #[test]
    fn malformed_values_are_kept_not_trusted() {
        let c = caps(&["LOGIN-DELAY soon", "EXPIRE 5 GROUP", "EXPIRE NEVER USER"]);
        assert_eq!(c.login_delay, None);
        assert_eq!(c.expire, None);
        assert_eq!(c.other.len(), 3);
    }
}
