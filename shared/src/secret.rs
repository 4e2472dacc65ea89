//! Credentials that never show up in logs.

use std::fmt;

/// Why a user name, password or token was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// CR, LF or NUL would let the value end the command line early or split a SASL message.
    #[error("the {field} contains a line break or NUL byte, which POP3 cannot carry")]
    ForbiddenByte {
        /// Which value held the byte: "user name", "password" or "token".
        field: &'static str,
    },
    /// POP3 has no way to send an empty user name.
    #[error("the user name is empty")]
    EmptyUser,
}

fn check(field: &'static str, value: &str) -> Result<(), CredentialError> {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(CredentialError::ForbiddenByte { field });
    }
    Ok(())
}

/// A password or token. `Debug` prints `Secret(***)`; the value is only reachable through
/// [`Secret::expose`], so every place that uses it is easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password, refusing CR, LF and NUL.
    pub fn password(value: impl Into<String>) -> Result<Self, CredentialError> {
        let value = value.into();
        check("password", &value)?;
        Ok(Self(value))
    }

    /// Wraps an OAuth 2 bearer token, refusing CR, LF and NUL.
    pub fn token(value: impl Into<String>) -> Result<Self, CredentialError> {
        let value = value.into();
        check("token", &value)?;
        Ok(Self(value))
    }

    /// The secret itself. Call only where it is put on the (encrypted) wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A POP3 user name: non-empty, no CR, LF or NUL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserName(String);

impl UserName {
    /// Validates a user name.
    pub fn new(value: impl Into<String>) -> Result<Self, CredentialError> {
        let value = value.into();
        if value.is_empty() {
            return Err(CredentialError::EmptyUser);
        }
        check("user name", &value)?;
        Ok(Self(value))
    }

    /// The user name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A user name is often an e-mail address: personal data, kept out of logs as well.
        f.write_str("UserName(***)")
    }
}

/// A user name with its password, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Who logs in.
    pub user: UserName,
    /// Their password.
    pub password: Secret,
}

impl Credentials {
    /// Validates both parts; nothing is sent anywhere.
    pub fn new(
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Self, CredentialError> {
        Ok(Self {
            user: UserName::new(user)?,
            password: Secret::password(password)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_password_and_user() {
        let c = Credentials::new("alice@example.org", "hunter2").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("alice"), "{shown}");
    }

    #[test]
    fn line_breaks_and_nul_are_refused() {
        for bad in ["a\rb", "a\nb", "a\0b", "pass\r\nDELE 1"] {
            assert_eq!(
                Secret::password(bad),
                Err(CredentialError::ForbiddenByte { field: "password" })
            );
            assert!(UserName::new(bad).is_err());
            assert!(Secret::token(bad).is_err());
        }
        assert_eq!(UserName::new(""), Err(CredentialError::EmptyUser));
    }
}
