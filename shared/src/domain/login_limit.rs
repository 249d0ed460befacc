//! Per-account login throttling: after [`LoginLimit::MAX_FAILURES`] failed logins for one email
//! within [`LoginLimit::WINDOW`], every login for that email is refused with a 429 until the window
//! ends, without verifying the password.
//!
//! # Why these numbers
//! OWASP's Authentication and Credential Stuffing cheat sheets ask for a limit per *account* (an
//! attacker rotates IP addresses, and `X-Forwarded-For` is whatever the client says), loose enough
//! that a person who mistypes a few times is not locked out and tight enough that guessing is
//! pointless. Five failures per fifteen minutes allows at most 480 guesses a day per account
//! against a password that passed the sign-up rules, while a person gets five tries, then a wait
//! whose length the 429 states (`Retry-After`), never a permanent lock an attacker could impose.
//!
//! # How
//! - The counter is keyed on the SHA-256 of the normalised email, known or not, so an unknown
//!   email is throttled exactly like a known one (no enumeration), the table holds no plain
//!   addresses of strangers, and nothing a client can vary without changing the email resets it.
//! - The window is fixed: it starts at the first failure and ends [`LoginLimit::WINDOW`] later;
//!   refused (throttled) attempts do not extend it, so an attacker cannot keep an account locked
//!   beyond the window by hammering it, and the wait is predictable.
//! - The limit is checked before the password is verified (a throttled attempt costs no hash); a
//!   failure is counted after it. Attempts already past the check when the limit is reached still
//!   get their answer, so a burst of parallel attempts can exceed the limit by the number in flight
//!   at that moment (API Gateway's stage throttling bounds that number).
//! - A successful login deletes the counter.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::domain::Email;

/// The login limit per account.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimit;

impl LoginLimit {
    /// Failed logins allowed for one email within [`LoginLimit::WINDOW`]; the next one is refused.
    pub const MAX_FAILURES: u32 = 5;
    /// How long a window of failures lasts, from its first failure.
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
}

/// The key of an email's failure counter: the hex SHA-256 of the normalised address.
#[derive(Clone, PartialEq, Eq)]
pub struct FailureKey(String);

impl FailureKey {
    /// The counter key of `email`.
    pub fn for_email(email: &Email) -> Self {
        Self(hex::encode(Sha256::digest(email.as_str().as_bytes())))
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for FailureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FailureKey({}…)", self.0.get(..8).unwrap_or_default())
    }
}

/// An email's failed logins in the current window, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures counted in the window.
    pub failures: u32,
    /// When the window ends (the table's TTL attribute, whole seconds).
    pub expires_at: DateTime<Utc>,
}

impl LoginFailures {
    /// How long a login must wait, when the limit is reached and the window has not ended at `now`.
    pub fn retry_after(&self, now: DateTime<Utc>) -> Option<Duration> {
        let left = (self.expires_at - now).to_std().ok()?;
        (self.failures >= LoginLimit::MAX_FAILURES && !left.is_zero()).then_some(left)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn failures(n: u32, ends_in_secs: i64, now: DateTime<Utc>) -> LoginFailures {
        LoginFailures {
            failures: n,
            expires_at: now + chrono::Duration::seconds(ends_in_secs),
        }
    }

    #[test]
    fn throttled_only_at_the_limit_and_inside_the_window() {
        let now = Utc::now();
        assert_eq!(failures(4, 600, now).retry_after(now), None);
        assert_eq!(
            failures(5, 600, now).retry_after(now),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            failures(30, 1, now).retry_after(now),
            Some(Duration::from_secs(1))
        );
        // An ended window that the TTL has not deleted yet does not count.
        assert_eq!(failures(30, 0, now).retry_after(now), None);
        assert_eq!(failures(30, -5, now).retry_after(now), None);
    }

    #[test]
    fn keys_depend_on_the_normalised_email_only() {
        let a = FailureKey::for_email(&Email::parse(" Ada@Example.com ").unwrap());
        let b = FailureKey::for_email(&Email::parse("ada@example.com").unwrap());
        let c = FailureKey::for_email(&Email::parse("eve@example.com").unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 64);
        assert!(!a.as_str().contains("ada"));
    }
}
