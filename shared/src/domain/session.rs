//! Opaque bearer sessions. The token is 256 random bits shown to the client once; only its SHA-256
//! is stored, so a leaked table does not leak usable tokens.
//!
//! # Comparing secrets
//! A presented token is never compared with a stored one: its SHA-256 is the session item's key,
//! and DynamoDB either has that key or not. Timing cannot leak a stored token through that lookup,
//! since an attacker cannot choose the hash of a guess bit by bit. Expiry is checked on every read
//! ([`Session::is_valid_at`]); DynamoDB's TTL deletes late. Where code does compare a token or its
//! hash (`==`), the comparison is constant-time ([`subtle`]), so no later change can add a
//! byte-by-byte timing oracle by accident. Password verification compares in constant time inside
//! the argon2 crate.

use std::{fmt, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::domain::{User, UserId};

/// The operating system gave no randomness for a token (a 500).
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a session token")]
pub struct NoRandomness(#[source] getrandom::Error);

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(3600);

const TOKEN_BYTES: usize = 32;
/// Base64url without padding of 32 bytes.
const TOKEN_CHARS: usize = 43;

/// A bearer token. `Debug` never shows it; `==` takes the same time wherever two tokens differ.
#[derive(Clone)]
pub struct SessionToken(String);

impl PartialEq for SessionToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SessionToken {}

impl SessionToken {
    /// 256 bits from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, NoRandomness> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(NoRandomness)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token as presented by a client; `None` when it cannot be one of ours, which saves a read.
    pub fn parse(presented: &str) -> Option<Self> {
        (presented.len() == TOKEN_CHARS
            && presented
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(presented.to_owned()))
    }

    /// The token, for the one response that hands it out.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up: the hex SHA-256 of the token.
    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// The stored form of a token. Shown in `Debug` only by a short prefix; `==` is constant-time.
#[derive(Clone)]
pub struct TokenHash(String);

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for TokenHash {}

impl TokenHash {
    /// The hex digest, for the key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a digest read back from the table.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", self.0.get(..8).unwrap_or_default())
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The digest of the token.
    pub token_hash: TokenHash,
    /// Whose session it is.
    pub user_id: UserId,
    /// The user's session generation when it started: valid only while the user's is the same
    /// ([`crate::store`] says why).
    pub generation: u64,
    /// When it stops being valid; also the table's TTL attribute.
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// A new session for `user` (of its current session generation), starting `now`.
    pub fn start(token: &SessionToken, user: &User, now: DateTime<Utc>) -> Self {
        let ttl = chrono::Duration::from_std(SESSION_TTL).unwrap_or(chrono::Duration::hours(1));
        Self {
            token_hash: token.hash(),
            user_id: user.id.clone(),
            generation: user.session_generation,
            expires_at: now + ttl,
        }
    }

    /// Whether this session still admits its user at `now`: not expired, and of the user's
    /// current session generation (a password change or a deletion ends the others).
    pub fn admits(&self, user: &User, now: DateTime<Utc>) -> bool {
        self.is_valid_at(now)
            && self.user_id == user.id
            && self.generation == user.session_generation
    }

    /// DynamoDB deletes expired items up to days late, so expiry is checked on every read.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_CHARS);
        assert_eq!(SessionToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.hash().as_str().len(), 64);
        assert_ne!(a.hash(), b.hash());
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn malformed_tokens_are_refused_without_a_lookup() {
        for bad in [
            "",
            "abc",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
            &"é".repeat(22),
        ] {
            assert_eq!(SessionToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn comparisons_still_compare() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert_eq!(a, a.clone());
        assert_ne!(a, b);
        assert_eq!(a.hash(), a.clone().hash());
        assert_ne!(a.hash(), b.hash());
        assert_ne!(
            TokenHash::from_stored("ab".to_owned()),
            TokenHash::from_stored("abc".to_owned())
        );
    }

    fn ada() -> User {
        User::new(
            crate::domain::Email::parse("ada@example.com").unwrap(),
            crate::domain::UserName::parse("Ada").unwrap(),
            crate::domain::PasswordHash::from_stored("$argon2id$stub".to_owned()),
        )
    }

    #[test]
    fn sessions_expire() {
        let now = Utc::now();
        let session = Session::start(&SessionToken::generate().unwrap(), &ada(), now);
        assert!(session.is_valid_at(now));
        assert!(!session.is_valid_at(now + chrono::Duration::hours(1)));
    }

    #[test]
    fn a_session_admits_only_its_user_of_the_same_generation() {
        let now = Utc::now();
        let mut user = ada();
        let session = Session::start(&SessionToken::generate().unwrap(), &user, now);
        assert!(session.admits(&user, now));
        assert!(
            !session.admits(&user, now + chrono::Duration::hours(1)),
            "expired"
        );
        assert!(!session.admits(&ada(), now), "another user");
        user.session_generation += 1;
        assert!(
            !session.admits(&user, now),
            "a password change moved the generation on"
        );
    }
}
