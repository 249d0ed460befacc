//! Users: ids, names, the stored record and the public view of it.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::{
    domain::{Email, Password, PasswordHash},
    idempotency::{Fingerprint, FingerprintKey},
};

/// A user id: a random UUID in its lowercase hyphenated form, and nothing else, so that an id
/// from a path can never name another kind of item.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// A new random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// An id from outside (a path); `None` unless it is exactly the canonical form.
    pub fn parse(input: &str) -> Option<Self> {
        let uuid = uuid::Uuid::try_parse(input).ok()?;
        let canonical = uuid.hyphenated().to_string();
        (canonical == input).then_some(Self(canonical))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// The most characters a name may have.
    pub const MAX_CHARS: usize = 100;

    /// Trims and checks `input`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let name = input.trim();
        if name.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".to_owned());
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A sign-up request that passed every check; the password is not hashed yet.
#[derive(Debug)]
pub struct NewUser {
    /// Normalised email.
    pub email: Email,
    /// Display name.
    pub name: UserName,
    /// The password, within the length rules.
    pub password: Password,
}

impl NewUser {
    /// The keyed fingerprint of this sign-up, for its `Idempotency-Key` record: email, name and
    /// password, under the stack's key ([`crate::idempotency`] says why the password is in it and
    /// why the hash is keyed).
    pub fn fingerprint(&self, key: &FingerprintKey) -> Fingerprint {
        key.fingerprint(&[
            self.email.as_str().as_bytes(),
            self.name.as_str().as_bytes(),
            self.password.expose().as_bytes(),
        ])
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The id.
    pub id: UserId,
    /// Normalised email.
    pub email: Email,
    /// Display name.
    pub name: UserName,
    /// Argon2id PHC string.
    pub password_hash: PasswordHash,
    /// When the account was created, in milliseconds.
    pub created_at: DateTime<Utc>,
    /// Sessions of another generation are void; a password change moves it on.
    pub session_generation: u64,
}

impl User {
    /// A new user with a fresh id, created now.
    pub fn new(email: Email, name: UserName, password_hash: PasswordHash) -> Self {
        Self {
            id: UserId::generate(),
            email,
            name,
            password_hash,
            created_at: Utc::now(),
            session_generation: 0,
        }
    }

    /// What a client may see of a user: never the hash, never a key.
    pub fn view(&self) -> UserView<'_> {
        UserView {
            id: self.id.as_str(),
            email: self.email.as_str(),
            name: self.name.as_str(),
            created_at: self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}

/// The public JSON shape of a user.
#[derive(Debug, Serialize)]
pub struct UserView<'a> {
    /// The id.
    pub id: &'a str,
    /// Normalised email.
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// RFC 3339, UTC, milliseconds.
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_only_in_canonical_form() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        for bad in [
            "",
            "EMAIL#alice@example.com",
            "../users",
            &id.as_str().to_uppercase(),
            &id.as_str().replace('-', ""),
            &format!("{{{}}}", id.as_str()),
            &format!("urn:uuid:{}", id.as_str()),
            &format!("{}x", id.as_str()),
        ] {
            assert_eq!(UserId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            UserName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"n".repeat(100)).is_ok());
        assert!(UserName::parse(&"n".repeat(101)).is_err());
        assert!(UserName::parse("bad\u{0007}name").is_err());
        assert!(UserName::parse("Zoë 李").is_ok());
    }
}
