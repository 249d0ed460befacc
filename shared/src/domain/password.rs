//! Passwords: length rules checked before any hashing, and Argon2id hashing off the async threads.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc},
};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::telemetry::xray;

/// Why hashing or verifying a password could not be done: always a fault of ours (a 500), never
/// the request's.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The Argon2id parameters are not valid.
    #[error("the Argon2id parameters are invalid")]
    Params(#[source] argon2::Error),
    /// Argon2id refused to hash.
    #[error("hashing a password failed")]
    Hash(#[source] argon2::password_hash::Error),
    /// A stored hash is not a PHC string we can read.
    #[error("a stored password hash is malformed")]
    Malformed(#[source] phc::Error),
    /// The blocking task that hashes did not finish.
    #[error("the password hashing task failed")]
    Task(#[source] tokio::task::JoinError),
    /// The pool of hashing permits is closed.
    #[error("the password hashing pool is closed")]
    Closed(#[source] tokio::sync::AcquireError),
}

/// Length rules, in characters. The upper bound caps the work an attacker can make one hash cost,
/// and is checked before hashing.
#[derive(Debug, Clone, Copy)]
pub struct PasswordRules;

impl PasswordRules {
    /// The fewest characters a new password may have.
    pub const MIN_CHARS: usize = 8;
    /// The most characters any password may have.
    pub const MAX_CHARS: usize = 128;
}

/// Argon2id with OWASP's first recommended setting: 19 MiB, 2 passes, 1 lane. It fits a small
/// Lambda's memory; the cost per hash on the login function is measured in BENCHMARKS.md.
/// Argon2id's memory per hash, in KiB (one block of this size is allocated per hash).
pub const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// A hash of a random, discarded password with the parameters above. Login verifies against it when
/// the email is unknown, so an unknown email costs the same hash as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cENqXZCR/xUXta2+d2j2Cg$xd0N7HOr5A1CcD+NdCUrQwTDfbF02WY+s8E5hX1r3fM";

/// A password as submitted. `Debug` never shows it and there is no `Display`.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The password itself, for the keyed sign-up fingerprint ([`crate::idempotency`]) only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// A password for a new account: between [`PasswordRules::MIN_CHARS`] and
    /// [`PasswordRules::MAX_CHARS`] characters.
    pub fn parse_new(input: &str) -> Result<Self, String> {
        let chars = input.chars().count();
        if chars < PasswordRules::MIN_CHARS {
            return Err(format!(
                "must be at least {} characters",
                PasswordRules::MIN_CHARS
            ));
        }
        Self::parse_login(input)
    }

    /// A password offered at login: not empty and at most [`PasswordRules::MAX_CHARS`] characters
    /// (a longer one cannot match, and is refused before it costs a hash).
    pub fn parse_login(input: &str) -> Result<Self, String> {
        if input.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if input.chars().count() > PasswordRules::MAX_CHARS {
            return Err(format!(
                "must be at most {} characters",
                PasswordRules::MAX_CHARS
            ));
        }
        Ok(Self(input.to_owned()))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A stored hash in PHC format. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a stored PHC string.
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for storing.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

/// Hashes and verifies on blocking threads, at most as many at once as there are cores: each hash
/// holds 19 MiB, and more at once would only queue for the CPU.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    made: Arc<AtomicU64>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            made: Arc::default(),
        }
    }
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(HashError::Params)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl PasswordHasher {
    /// Hashes a new password with a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<PasswordHash, HashError> {
        self.made.fetch_add(1, Ordering::Relaxed);
        self.blocking(move || {
            let hash = argon2()?
                .hash_password(password.0.as_bytes())
                .map_err(HashError::Hash)?;
            Ok(PasswordHash(hash.to_string()))
        })
        .await
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown email) it verifies against
    /// a dummy hash and answers `false`, taking the same time as a wrong password.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<PasswordHash>,
    ) -> Result<bool, HashError> {
        self.blocking(move || {
            let known = stored.is_some();
            let phc = stored.map_or_else(|| DUMMY_HASH.to_owned(), |h| h.0);
            let parsed = phc::PasswordHash::new(&phc).map_err(HashError::Malformed)?;
            let matches = argon2()?
                .verify_password(password.0.as_bytes(), &parsed)
                .is_ok();
            Ok(known && matches)
        })
        .await
    }

    /// How many new hashes this hasher (and its clones) has been asked for: what a test reads to
    /// check that a replayed sign-up hashed nothing.
    pub fn hashes_made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        // One subsegment for the hash, its wait for a permit included.
        async {
            let _permit = self.permits.acquire().await.map_err(HashError::Closed)?;
            tokio::task::spawn_blocking(work)
                .await
                .map_err(HashError::Task)?
        }
        .instrument(xray::work("Argon2id"))
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn length_rules() {
        assert!(Password::parse_new("1234567").is_err());
        assert!(Password::parse_new("12345678").is_ok());
        assert!(Password::parse_new(&"x".repeat(128)).is_ok());
        assert!(Password::parse_new(&"x".repeat(129)).is_err());
        // characters, not bytes
        assert!(Password::parse_new(&"é".repeat(128)).is_ok());
        assert!(Password::parse_login("").is_err());
        assert!(Password::parse_login("short").is_ok());
        assert!(Password::parse_login(&"x".repeat(1_000_000)).is_err());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let password = Password::parse_new("hunter2hunter2").unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
        let hash = PasswordHash::from_stored(DUMMY_HASH.to_owned());
        assert!(!format!("{hash:?}").contains("argon2"));
    }

    #[test]
    fn the_dummy_hash_uses_the_current_parameters() {
        // If the parameters change, the dummy hash must be regenerated, or an unknown email would
        // cost a different time than a wrong password.
        let parsed = phc::PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (MEMORY_KIB, PASSES, LANES)
        );
        assert_eq!(parsed.algorithm, Algorithm::Argon2id.ident());
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::default();
        let password = Password::parse_new("correct horse battery").unwrap();
        let hash = hasher.hash(password.clone()).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify(password, Some(hash.clone())).await.unwrap());
        let wrong = Password::parse_login("correct horse battery!").unwrap();
        assert!(!hasher.verify(wrong.clone(), Some(hash)).await.unwrap());
        assert!(!hasher.verify(wrong, None).await.unwrap());
    }
}
